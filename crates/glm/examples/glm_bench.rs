//! `localglm bench glm` without the planner and without mistralrs: a binary small enough to
//! carry to a lent GPU machine (`scripts/device_build.sh`, `scripts/device_check.sh`), which
//! cannot build the CLI. The model goes on the first adapter (`--device gpu`, the default; the
//! routed experts of the first `--cpu-moe N` MoE layers stay in RAM) or on the CPU.
//!
//! `glm_bench --model M.gguf [--prompt 128] [--gen 32] [--reps 2] [--device gpu|cpu]
//!  [--cpu-moe 0] [--kv-type f16] [--mtp 0] [--llama-bench PATH] [--threads N]
//!  [--weights stacked|separate]` (separate: each FFN's gate and up, and each MLA layer's q_a,
//!  kv_a and indexer key, as GPU products of their own, as on a device that reads the file in
//!  place)

use localglm_glm::bench::{run, GlmBench};
use localglm_glm::GpuPlacement;
use localglm_gpu::{Gpu, GpuOptions};
use std::sync::Arc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match arg(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|e| {
            eprintln!("{name} {v}: {e}");
            std::process::exit(2)
        }),
    }
}

fn main() -> anyhow::Result<()> {
    let Some(model) = arg("--model") else {
        eprintln!("usage: glm_bench --model M.gguf [--prompt N] [--gen N] [--reps N] [--device gpu|cpu] [--cpu-moe N] [--kv-type T] [--mtp K] [--llama-bench PATH] [--threads N] [--weights stacked|separate]");
        std::process::exit(2)
    };
    let gpu = match arg("--device").as_deref().unwrap_or("gpu") {
        "cpu" => None,
        "gpu" => {
            // A software adapter (lavapipe) only where no other exists: a lent machine's run
            // must measure its GPU, and says which adapter it got.
            let gpu = Gpu::new(&GpuOptions {
                allow_software: true,
                ..GpuOptions::default()
            })?;
            eprintln!("adapter: {:?}", gpu.adapter());
            Some(GpuPlacement {
                gpu: Arc::new(gpu),
                cpu_moe: parsed("--cpu-moe", 0usize),
                progress: None,
                separate_weights: arg("--weights").as_deref() == Some("separate"),
            })
        }
        other => {
            eprintln!("--device {other}: expected gpu or cpu");
            std::process::exit(2)
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    run(
        &GlmBench {
            model: model.into(),
            prompt: parsed("--prompt", 128),
            gen: parsed("--gen", 32),
            reps: parsed("--reps", 2),
            llama_bench: arg("--llama-bench").map(Into::into),
            threads: parsed("--threads", threads),
            kv_type: parsed("--kv-type", localglm_glm::KvType::F16),
            mtp: parsed("--mtp", localglm_glm::spec::Drafting::Fixed(0)),
        },
        gpu,
    )
}
