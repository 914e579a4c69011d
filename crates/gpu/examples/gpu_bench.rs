//! Weight-product speed of the GPU kernels on this machine's adapter, as a ratio to the
//! bandwidth at which a compute shader streams device memory, measured in the same run (on
//! lavapipe only the counts mean anything). Small on purpose: it carries no model and no mistralrs, so it can be copied to a
//! lent GPU machine with the kernel tests (`scripts/device_check.sh`).
//!
//! `cargo run --example gpu_bench -- [--mib 256] [--reps 20] [--types Q4_K,IQ2_XXS]`
//!
//! With `--check` it runs `Gpu::verify` instead (`localglm gpu --check` without the CLI),
//! printing each kernel's worst error as a fraction of its bound; exit status 1 if one fails.
//! With `--tokens N` it times a prompt's product of N tokens instead, on the adapter's matrix
//! units (where it has them) against the f32 tile kernels, the same weights in the same run.

use localglm_gpu::{Buffer, Gpu, GpuError, GpuOptions, Matrices, GPU_TYPES};
use localglm_quants::synth::{random_blocks, random_vector};
use std::time::Instant;

const PER_SUBMISSION: usize = 8;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Seconds per product of PER_SUBMISSION products recorded into one submission, as a decoded
/// token records its products: by the GPU's timestamps where the adapter has them, else by the
/// wall clock to the read-back of `y` (which adds the submission's fixed cost).
fn per_product(gpu: &Gpu, product: impl Fn() -> Result<(), GpuError>, y: &Buffer) -> f64 {
    let all = || (0..PER_SUBMISSION).try_for_each(|_| product());
    let t = Instant::now();
    let timed = gpu.gpu_time(all).expect("product");
    let secs = timed.unwrap_or_else(|| {
        gpu.read_f32_range(y, 0, 1).expect("sync");
        t.elapsed().as_secs_f64()
    });
    secs / PER_SUBMISSION as f64
}

fn main() {
    let mib: usize = arg("--mib").and_then(|v| v.parse().ok()).unwrap_or(256);
    let reps: usize = arg("--reps").and_then(|v| v.parse().ok()).unwrap_or(20);
    let only: Vec<String> = arg("--types")
        .map(|v| v.split(',').map(|s| s.trim().to_uppercase()).collect())
        .unwrap_or_default();
    if std::env::args().any(|a| a == "--check") {
        check();
        return;
    }
    if let Some(tokens) = arg("--tokens").and_then(|v| v.parse().ok()) {
        prefill(tokens, mib, reps, &only);
        return;
    }
    let gpu = open(Matrices::from_env());
    let a = gpu.adapter();
    println!(
        "adapter: {} ({}, {}), subgroups {:?} (used: {})",
        a.name,
        a.backend,
        a.device_type,
        a.subgroup_sizes,
        gpu.uses_subgroups()
    );
    println!(
        "timed by {}",
        if gpu.has_timestamps() {
            "GPU timestamps"
        } else {
            "the wall clock (no timestamp queries on this adapter)"
        }
    );
    let bytes = (mib << 20).min(gpu.max_binding_bytes() as usize * 4);
    let copy = gpu.copy_bandwidth(bytes, reps).expect("copy bandwidth");
    println!(
        "device copy bandwidth: {:.1} GB/s (read + write of {} MiB, best of {reps})",
        copy / 1e9,
        bytes >> 20
    );
    // The ratios below are to what a compute shader reads, measured now, not to the copy.
    let stream = gpu.read_bandwidth(bytes, reps).expect("read bandwidth");
    println!(
        "compute-shader read bandwidth: {:.1} GB/s ({} MiB, 16-byte loads; the ratios' reference)",
        stream / 1e9,
        bytes >> 20
    );
    println!(concat!(
        "| type | rows × cols | GB/s of weights | ÷ read bandwidth | dispatches/product ",
        "| one product with its submission and read-back, µs ",
        "| MoE (8 of 64 experts) GB/s | ÷ read bandwidth |"
    ));
    println!("|---|---|---|---|---|---|---|---|");
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
        // Warm-up: at least 100 ms of products, so the clocks are up after the upload.
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < 0.1 {
            for _ in 0..PER_SUBMISSION {
                gpu.matmul(&w, &x, 0, 1, &y, 0).expect("warm-up");
            }
            gpu.read_f32_range(&y, 0, 1).expect("warm-up");
        }
        // Throughput: PER_SUBMISSION products per submission, as a decoded token records its
        // products (one submission and read-back cost a fixed time, printed apart).
        let mut best = f64::MAX;
        let mut one = f64::MAX;
        let mut dispatches = 0;
        for _ in 0..reps {
            let before = gpu.counters();
            best = best.min(per_product(&gpu, || gpu.matmul(&w, &x, 0, 1, &y, 0), &y));
            dispatches = gpu.counters().since(&before).dispatches / PER_SUBMISSION as u64;
            let t = Instant::now();
            gpu.matmul(&w, &x, 0, 1, &y, 0).expect("product");
            gpu.read_f32_range(&y, 0, 1).expect("sync");
            one = one.min(t.elapsed().as_secs_f64());
        }
        // The MoE decode product: the same bytes as 64 experts, 8 slots picking 8 of them.
        let experts = 64;
        let e_rows = rows / experts;
        let we = gpu
            .upload_weight(
                "bench experts",
                ty,
                &data[..experts * e_rows * row_bytes],
                experts,
                e_rows,
                cols,
            )
            .expect("upload experts");
        let ids = gpu
            .upload_u32(&(0..8).map(|i| i * 8).collect::<Vec<u32>>())
            .expect("ids");
        let ye = gpu.zeros(8 * e_rows).expect("y");
        let mut best_e = f64::MAX;
        for _ in 0..reps {
            let product = || gpu.matvec_indexed(&we, &ids, 8, &x, 0, false, &ye, 0);
            best_e = best_e.min(per_product(&gpu, product, &ye));
        }
        drop(we);
        let gbs_e = (8 * e_rows * row_bytes) as f64 / best_e;
        let gbs = (rows * row_bytes) as f64 / best;
        println!(
            "| {} | {rows} × {cols} | {:.1} | {:.2} | {dispatches} | {:.0} | {:.1} | {:.2} |",
            ty.name(),
            gbs / 1e9,
            gbs / stream,
            one * 1e6,
            gbs_e / 1e9,
            gbs_e / stream,
        );
    }
}

/// Every kernel of every type against the CPU (`Gpu::verify`).
fn check() {
    let gpu = open(Matrices::from_env());
    println!(
        "adapter: {} ({}), matrix units: {:?}{}",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.matrix_size(),
        gpu.matrix_fallback()
            .map_or(String::new(), |why| format!(" ({why})"))
    );
    let results = gpu.verify().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    for r in &results {
        let verdict = if r.passed { "ok" } else { "FAILED" };
        println!("{:<8} {:<24} {:.1e} {verdict}", r.ty, r.kernel, r.worst);
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    println!(
        "{} kernels checked, {failed} outside their bounds",
        results.len()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn open(matrices: Matrices) -> Gpu {
    Gpu::new(&GpuOptions {
        allow_software: true,
        matrices,
        ..GpuOptions::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })
}

/// A prompt's product of `tokens` tokens by a `mib`-MiB weight of 4096 columns, per quantized
/// type: multiply-adds per second on the f32 tile kernels and on the matrix units (best of
/// `reps`, PER_SUBMISSION products per submission), and their ratio.
fn prefill(tokens: usize, mib: usize, reps: usize, only: &[String]) {
    let tile = open(Matrices::Off);
    let coop = open(Matrices::Always);
    let a = coop.adapter();
    println!(
        "adapter: {} ({}), matrix units: {}; {tokens} tokens, timed by {}",
        a.name,
        a.backend,
        match (coop.matrix_size(), coop.matrix_fallback()) {
            (Some(s), _) => format!("{s}x{s}x{s} f16 -> f32"),
            (None, Some(why)) => why,
            (None, None) => format!("none in use (the adapter lists {:?})", a.cooperative_matrix),
        },
        if coop.has_timestamps() {
            "GPU timestamps"
        } else {
            "the wall clock"
        }
    );
    println!("| type | rows × cols | tile kernels, G multiply-adds/s | matrix units | ÷ tile |");
    println!("|---|---|---|---|---|");
    for ty in GPU_TYPES.into_iter().filter(|t| t.block_elems() > 1) {
        if !only.is_empty() && !only.iter().any(|o| o == ty.name()) {
            continue;
        }
        let cols = 4096usize;
        let row_bytes = ty.row_bytes(cols).expect("whole blocks");
        let rows = ((mib << 20) / row_bytes).clamp(32, 65536);
        let data = random_blocks(ty, rows * cols / ty.block_elems(), 1);
        let xs = random_vector(tokens * cols, 2);
        let rate = |gpu: &Gpu| {
            let w = gpu
                .upload_weight("bench", ty, &data, 1, rows, cols)
                .expect("upload");
            let x = gpu.upload_f32(&xs).expect("x");
            let y = gpu.zeros(tokens * rows).expect("y");
            let product = || gpu.matmul(&w, &x, 0, tokens, &y, 0);
            product().expect("warm-up");
            gpu.read_f32_range(&y, 0, 1).expect("warm-up");
            let best = (0..reps.max(1))
                .map(|_| per_product(gpu, product, &y))
                .fold(f64::MAX, f64::min);
            (rows * cols * tokens) as f64 / best / 1e9
        };
        let on_tile = rate(&tile);
        let before = coop.counters().matrix_products;
        let on_coop = coop.matrix_size().map(|_| rate(&coop));
        // A type whose matrix-unit kernel the driver refused ran on the tile kernels.
        let on_coop = on_coop.filter(|_| coop.counters().matrix_products > before);
        println!(
            "| {} | {rows} × {cols} | {on_tile:.1} | {} | {} |",
            ty.name(),
            on_coop.map_or("—".into(), |r| format!("{r:.1}")),
            on_coop.map_or("—".into(), |r| format!("{:.2}", r / on_tile)),
        );
    }
    if let Some(why) = coop.matrix_fallback() {
        println!("matrix units: {why}");
    }
}
