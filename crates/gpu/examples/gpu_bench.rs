//! Weight-product speed of the GPU kernels on this machine's adapter, as a ratio to the
//! device's own copy bandwidth measured in the same run (on lavapipe only the counts mean
//! anything). Small on purpose: it carries no model and no mistralrs, so it can be copied to a
//! lent GPU machine with the kernel tests (`scripts/device_check.sh`).
//!
//! `cargo run --example gpu_bench -- [--mib 256] [--reps 20] [--types Q4_K,IQ2_XXS]`

use localglm_gpu::{Gpu, GpuOptions, GPU_TYPES};
use localglm_quants::synth::{random_blocks, random_vector};
use localglm_quants::GgmlType;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let mib: usize = arg("--mib").and_then(|v| v.parse().ok()).unwrap_or(256);
    let reps: usize = arg("--reps").and_then(|v| v.parse().ok()).unwrap_or(20);
    let only: Vec<String> = arg("--types")
        .map(|v| v.split(',').map(|s| s.trim().to_uppercase()).collect())
        .unwrap_or_default();
    let gpu = Gpu::new(&GpuOptions {
        allow_software: true,
        ..GpuOptions::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let a = gpu.adapter();
    println!(
        "adapter: {} ({}, {}), subgroups {:?} (used: {})",
        a.name,
        a.backend,
        a.device_type,
        a.subgroup_sizes,
        gpu.uses_subgroups()
    );
    let bytes = (mib << 20).min(gpu.max_binding_bytes() as usize * 4);
    let copy = gpu.copy_bandwidth(bytes, reps).expect("copy bandwidth");
    println!(
        "device copy bandwidth: {:.1} GB/s (read + write of {} MiB, best of {reps})",
        copy / 1e9,
        bytes >> 20
    );
    println!("| type | rows × cols | GB/s of weights | ÷ copy bandwidth | dispatches/product |");
    println!("|---|---|---|---|---|");
    for ty in GPU_TYPES {
        if !only.is_empty() && !only.iter().any(|o| o == ty.name()) {
            continue;
        }
        let cols = 4096usize;
        let row_bytes = ty.row_bytes(cols).expect("whole blocks");
        let rows = (bytes / row_bytes).max(1);
        let data = random_blocks(ty, rows * cols / ty.block_elems(), 1);
        let w = gpu
            .upload_weight("bench", ty, &data, 1, rows, cols)
            .expect("upload");
        let x = gpu.upload_f32(&random_vector(cols, 2)).expect("x");
        let y = gpu.zeros(rows).expect("y");
        gpu.matmul(&w, &x, 0, 1, &y, 0).expect("warm-up");
        gpu.read_f32_range(&y, 0, 1).expect("warm-up");
        let mut best = f64::MAX;
        let mut dispatches = 0;
        for _ in 0..reps {
            let before = gpu.counters();
            let t = Instant::now();
            gpu.matmul(&w, &x, 0, 1, &y, 0).expect("product");
            gpu.read_f32_range(&y, 0, 1).expect("sync");
            best = best.min(t.elapsed().as_secs_f64());
            dispatches = gpu.counters().since(&before).dispatches;
        }
        let gbs = (rows * row_bytes) as f64 / best;
        println!(
            "| {} | {rows} × {cols} | {:.1} | {:.2} | {dispatches} |",
            ty.name(),
            gbs / 1e9,
            gbs / copy
        );
    }
    let _ = GgmlType::F32;
}
