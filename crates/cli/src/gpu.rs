//! `localglm gpu`: the GPU adapters this machine offers to the GLM runtime's GPU backend.

use anyhow::Result;

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
