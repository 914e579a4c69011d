//! `localglm gpu`: the GPU adapters this machine offers to the GLM runtime's GPU backend;
//! `--check`: every weight kernel of the one it would use against the CPU.

use anyhow::{bail, Result};
use localglm_gpu::{Gpu, GpuOptions, Verified};

pub fn run(json: bool) -> Result<()> {
    let found = localglm_gpu::adapters();
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    if found.is_empty() {
        println!(
            "no Vulkan, Metal or DX12 adapter found (on Linux: install the GPU's Vulkan driver, \
             or Mesa's mesa-vulkan-drivers for the software one)"
        );
        return Ok(());
    }
    for (i, a) in found.iter().enumerate() {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        println!("{i}: {} ({}, {})", a.name, a.backend, a.device_type);
        if !a.driver.is_empty() {
            println!("   driver:        {}", a.driver);
        }
        if let Some(m) = a.memory_bytes {
            println!(
                "   memory:        {:.1} GiB",
                m as f64 / (1u64 << 30) as f64
            );
        }
        println!(
            "   limits:        {:.0} MiB per storage binding, {:.0} MiB per buffer",
            mib(a.max_storage_binding_bytes),
            mib(a.max_buffer_bytes)
        );
        println!(
            "   features:      subgroups {} (sizes {}–{}), f16 {}, int64 {}",
            yes(a.subgroups),
            a.subgroup_sizes.0,
            a.subgroup_sizes.1,
            yes(a.shader_f16),
            yes(a.shader_int64)
        );
        if !a.cooperative_matrix.is_empty() {
            println!(
                "   matrices:      {} (cooperative)",
                a.cooperative_matrix.join(", ")
            );
        }
        if a.software {
            println!(
                "   note:          a software rasterizer: used only with --device gpu (tests) or \
                 when named by LOCALGLM_GPU_ADAPTER, never chosen automatically"
            );
        }
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `localglm gpu --check`: opens the adapter `--device gpu` would use (software ones included,
/// `LOCALGLM_GPU_ADAPTER` to pick another) and runs [`Gpu::verify`]: every kernel shape of every
/// type against the CPU's dequantizer, each output within the bound `localglm_gpu::verify`
/// derives. A table (or JSON) of each shape's worst error as a fraction of its bound; exits
/// non-zero where one exceeds it.
pub fn check(json: bool) -> Result<()> {
    let gpu = Gpu::new(&GpuOptions {
        allow_software: true,
        ..Default::default()
    })?;
    let started = std::time::Instant::now();
    let results = gpu.verify()?;
    let failed: Vec<&Verified> = results.iter().filter(|r| !r.passed).collect();
    let matrices = gpu.matrix_size().map(|s| format!("{s}x{s}x{s} f16 -> f32"));
    if json {
        let report = serde_json::json!({
            "adapter": gpu.adapter(),
            "matrix_units": matrices,
            "matrix_fallback": gpu.matrix_fallback(),
            "results": results,
            "passed": failed.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let a = gpu.adapter();
        println!("{} ({}, {})", a.name, a.backend, a.device_type);
        println!(
            "matrix units: {}",
            matrices.as_deref().unwrap_or("none in use")
        );
        if let Some(why) = gpu.matrix_fallback() {
            println!("              {why}");
        }
        println!("worst error of each kernel as a fraction of its bound (1 = the bound):");
        let mut shapes: Vec<&str> = Vec::new();
        for r in &results {
            if !shapes.contains(&r.kernel) {
                shapes.push(r.kernel);
            }
        }
        println!("{:<8} {}", "type", shapes.join(" | "));
        let mut types: Vec<&str> = Vec::new();
        for r in &results {
            if !types.contains(&r.ty.as_str()) {
                types.push(&r.ty);
            }
        }
        for ty in types {
            let cells: Vec<String> = shapes
                .iter()
                .map(|k| {
                    let cell = results
                        .iter()
                        .find(|r| r.ty == ty && r.kernel == *k)
                        .map_or("—".to_string(), |r| {
                            format!("{:.1e}{}", r.worst, if r.passed { "" } else { " FAILED" })
                        });
                    format!("{cell:>width$}", width = k.len())
                })
                .collect();
            println!("{ty:<8} {}", cells.join(" | "));
        }
        println!(
            "{} kernels checked in {:.1} s: {}",
            results.len(),
            started.elapsed().as_secs_f64(),
            if failed.is_empty() {
                "all within their bounds".to_string()
            } else {
                format!("{} outside their bounds", failed.len())
            }
        );
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|r| format!("{} {}", r.ty, r.kernel))
            .collect();
        bail!(
            "the GPU computed wrong results for: {} (choose --device cpu, and please report \
             the adapter and driver)",
            names.join(", ")
        );
    }
    Ok(())
}
