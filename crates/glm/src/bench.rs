//! Decode and prefill speed of the runtime on a `glm-dsa` GGUF (or a dense LLaMA-family one,
//! such as the default model), as a ratio to the memory-bandwidth bound (weight bytes one token
//! reads ÷ read bandwidth measured in the same run) and, when a `llama-bench` binary is given,
//! as a ratio to llama.cpp on the same file in the same run. `localglm bench glm` runs it after
//! placing the model with the planner; the `glm_bench` example runs it with no planner and no
//! mistralrs, small enough to carry to a lent GPU machine (`scripts/device_check.sh`).

use crate::spec::{expected_tokens, Decoder, Drafting, MAX_AUTO_DRAFT};
use crate::{GpuPlacement, KvType, Logits, Model, RuntimeOptions};
use anyhow::{bail, Context, Result};
use localglm_quants::bench::measure_bandwidth;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What to measure.
pub struct GlmBench {
    pub model: PathBuf,
    /// Prompt tokens of the prefill measurement (and the depth the decode starts at).
    pub prompt: usize,
    /// Tokens decoded.
    pub gen: usize,
    /// Repetitions; the best is kept.
    pub reps: usize,
    /// llama.cpp's `llama-bench`, run on the same file in the same run.
    pub llama_bench: Option<PathBuf>,
    /// llama.cpp's CPU threads.
    pub threads: usize,
    pub kv_type: KvType,
    pub mtp: Drafting,
}

struct Speeds {
    prefill: f64,
    decode: f64,
}

fn ours(model: &Model, prompt: usize, gen: usize, reps: usize) -> Result<Speeds> {
    let vocab = model.config.vocab as u32;
    // Deterministic token ids away from the specials at the end of the vocabulary.
    let tokens: Vec<u32> = (0..prompt as u32)
        .map(|i| (i * 7919 + 13) % (vocab / 2))
        .collect();
    let mut best = Speeds {
        prefill: 0.0,
        decode: 0.0,
    };
    for _ in 0..reps.max(1) {
        let mut cache = model.new_cache();
        let t = Instant::now();
        let logits = model.forward(&tokens, &mut cache, Logits::Last)?;
        let pp = prompt as f64 / t.elapsed().as_secs_f64();
        let mut next = crate::sampler::argmax(&logits[0]);
        let t = Instant::now();
        for _ in 0..gen {
            let l = model.forward(&[next], &mut cache, Logits::Last)?;
            next = crate::sampler::argmax(&l[0]);
        }
        let tg = gen as f64 / t.elapsed().as_secs_f64();
        best.prefill = best.prefill.max(pp);
        best.decode = best.decode.max(tg);
    }
    Ok(best)
}

/// Runs llama-bench and returns (pp t/s, tg t/s) parsed from its JSON output: prefill of
/// `prompt` tokens, and decode of `gen` tokens after them (`-d prompt`, as LocalGLM's decode
/// is measured; llama-bench's own tg starts from an empty cache, which at 1024 tokens of
/// prompt made its decode look 1.7× faster than it is at that depth).
/// With `gpu`, every layer on llama.cpp's GPU backend (`-ngl 99`), as ours; else none.
fn llama(
    bin: &Path,
    model: &Path,
    [prompt, gen, reps, threads]: [usize; 4],
    kv: KvType,
    gpu: bool,
) -> Result<Speeds> {
    let run = |shape, extra: &[&str]| llama_run(bin, model, shape, [reps, threads], kv, gpu, extra);
    let both = |extra: &[&str]| -> Result<Speeds> {
        let pp = run([prompt, 0, 0], extra)?;
        let tg = run([0, gen, prompt], extra)?;
        Ok(Speeds {
            prefill: pp.prefill,
            decode: tg.decode,
        })
    };
    both(&[]).or_else(|e| {
        // llama.cpp's CPU backend repacks some weight types into buffers of its own; on some
        // CPUs (an AVX-512 Xeon with AMX, session 28) scheduling a glm-dsa graph over them
        // fails an assertion. Measured again without them, and said so.
        eprintln!("llama-bench: {e:#}; measuring it again with --repack 0");
        both(&["--repack", "0"])
    })
}

/// One llama-bench run of `[prompt, gen, depth]`, with `extra` arguments.
#[allow(clippy::too_many_arguments)]
fn llama_run(
    bin: &Path,
    model: &Path,
    [prompt, gen, depth]: [usize; 3],
    [reps, threads]: [usize; 2],
    kv: KvType,
    gpu: bool,
    extra: &[&str],
) -> Result<Speeds> {
    // The same cache type on both sides (llama-bench's `-ctk` holds MLA's latent; llama.cpp
    // requires `-ctv` to match it).
    let ctk = kv.name();
    let out = Command::new(bin)
        .args(["-m"])
        .arg(model)
        .args([
            "-ctk",
            ctk,
            "-ctv",
            ctk,
            "-p",
            &prompt.to_string(),
            "-n",
            &gen.to_string(),
            "-d",
            &depth.to_string(),
            "-t",
            &threads.to_string(),
            "-r",
            &reps.max(1).to_string(),
            "-ngl",
            if gpu { "99" } else { "0" },
            "-o",
            "json",
        ])
        .args(extra)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        // The assertion or error line, not the backtrace a crash prints after it.
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        let why = lines
            .iter()
            .find(|l| l.contains("GGML_ASSERT") || l.contains("error"))
            .or(lines.last())
            .unwrap_or(&"");
        bail!("llama-bench failed: {}", why.trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("llama-bench JSON")?;
    let mut s = Speeds {
        prefill: 0.0,
        decode: 0.0,
    };
    for row in v.as_array().into_iter().flatten() {
        // Best repetition, the statistic reported for LocalGLM too (this VM's noise is
        // one-sided: interference only ever slows a run down).
        let ts = row["samples_ts"]
            .as_array()
            .and_then(|a| a.iter().filter_map(|x| x.as_f64()).reduce(f64::max))
            .unwrap_or_else(|| row["avg_ts"].as_f64().unwrap_or(0.0));
        if row["n_prompt"].as_u64().unwrap_or(0) > 0 {
            s.prefill = ts;
        } else if row["n_gen"].as_u64().unwrap_or(0) > 0 {
            s.decode = ts;
        }
    }
    Ok(s)
}

/// Loads the model with `gpu` (None: on the CPU) and prints the tables.
pub fn run(a: &GlmBench, gpu: Option<GpuPlacement>) -> Result<()> {
    let on_gpu = gpu.is_some();
    let opts = RuntimeOptions {
        kv_type: a.kv_type,
        gpu,
        mtp: a.mtp != Drafting::Fixed(0),
        ..Default::default()
    };
    let model =
        Model::open(&a.model, opts).with_context(|| format!("loading {}", a.model.display()))?;
    let bpt = model.bytes_per_token() as f64;
    eprintln!(
        "{}: {:.2} GiB on disk, {:.1} MiB of weights read per decoded token",
        a.model.display(),
        model.gguf().total_file_bytes() as f64 / (1u64 << 30) as f64,
        bpt / (1u64 << 20) as f64
    );
    // The bound is the bandwidth of the memory the weights are read from: what a compute
    // shader streams from device memory (measured now) on the GPU — a buffer copy measured
    // a quarter of it on an H200 — and the CPU's read bandwidth otherwise.
    let (read, source) = match model.gpu() {
        Some(gpu) => {
            eprintln!("measuring the device's read bandwidth (256 MiB buffer) ...");
            (gpu.read_bandwidth(256 << 20, 5)?, "device read bandwidth")
        }
        None => {
            eprintln!("measuring memory bandwidth (512 MiB buffers) ...");
            (
                measure_bandwidth(512 << 20, 5).read_bytes_per_s,
                "read bandwidth",
            )
        }
    };
    let bound = read / bpt;
    eprintln!("warm-up ...");
    ours(&model, a.prompt.min(16), 2, 1)?;
    if model.gpu().is_some() {
        gpu_counts(&model, a.prompt.min(64), a.gen.clamp(1, 8))?;
    }
    let mine = ours(&model, a.prompt, a.gen, a.reps)?;
    // A peer that fails (a llama.cpp build without this architecture or backend) is reported,
    // and our own figures are still printed.
    let peer = a.llama_bench.as_ref().and_then(|bin| {
        let shape = [a.prompt, a.gen, a.reps, a.threads];
        llama(bin, &a.model, shape, a.kv_type, on_gpu)
            .map_err(|e| eprintln!("llama-bench: {e:#}"))
            .ok()
    });
    println!(
        "{source}: {:.2} GB/s → decode bound {:.1} tok/s ({:.1} MiB/token)",
        read / 1e9,
        bound,
        bpt / (1u64 << 20) as f64
    );
    println!(
        "| phase | LocalGLM tok/s | ÷ bandwidth bound | llama.cpp tok/s | LocalGLM ÷ llama.cpp |"
    );
    println!("|---|---|---|---|---|");
    let row = |name: &str, ours: f64, theirs: Option<f64>, bound: Option<f64>| {
        println!(
            "| {name} | {ours:.2} | {} | {} | {} |",
            bound
                .map(|b| format!("{:.2}", ours / b))
                .unwrap_or_else(|| "—".into()),
            theirs
                .map(|t| format!("{t:.2}"))
                .unwrap_or_else(|| "—".into()),
            theirs
                .filter(|t| *t > 0.0)
                .map(|t| format!("{:.2}", ours / t))
                .unwrap_or_else(|| "—".into()),
        )
    };
    row(
        &format!("decode (tg{})", a.gen),
        mine.decode,
        peer.as_ref().map(|p| p.decode),
        Some(bound),
    );
    row(
        &format!("prefill (pp{})", a.prompt),
        mine.prefill,
        peer.as_ref().map(|p| p.prefill),
        None,
    );
    if model.has_mtp() {
        let max_k = match a.mtp {
            Drafting::Fixed(k) => k,
            Drafting::Auto => MAX_AUTO_DRAFT,
        };
        mtp_table(&model, a.prompt, a.gen.max(32), max_k, a.reps)?;
    }
    Ok(())
}

/// Acceptance llama.cpp measured for GLM-5.2's MTP block (UD-IQ1_S, greedy): the share of
/// rounds whose draft at position 1, 2, 3 was accepted (ggml-org/llama.cpp PR #25980).
const PUBLISHED_ACCEPT: [f64; 3] = [0.834, 0.653, 0.494];

/// Speculative decoding on this machine: what verifying k+1 tokens (and drafting k) costs
/// against decoding one, the acceptance on this model, and the speed-up that results.
fn mtp_table(model: &Model, prompt: usize, gen: usize, max_k: usize, reps: usize) -> Result<()> {
    let vocab = model.config.vocab as u32;
    let tokens: Vec<u32> = (0..prompt.max(2) as u32)
        .map(|i| (i * 7919 + 13) % (vocab / 2))
        .collect();
    let mut cache = model.new_cache();
    model.forward(&tokens[..tokens.len() - 1], &mut cache, Logits::Last)?;
    let base = cache.len();
    let batch: Vec<u32> = (0..max_k as u32 + 1)
        .map(|i| (i * 31 + 5) % (vocab / 2))
        .collect();
    let rounds = (reps.max(1) * 5).max(5);
    // Best of `rounds` (this VM's noise only ever slows a run down), the cache cut back each time.
    let mut time = |n: usize, mtp: bool| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..rounds {
            let t = Instant::now();
            if mtp {
                for &tok in &batch[..n] {
                    model.mtp_step(&mut cache, tok)?;
                }
                model.mtp_rewind(&mut cache);
            } else {
                let which = if n == 1 { Logits::Last } else { Logits::All };
                model.forward(&batch[..n], &mut cache, which)?;
                cache.truncate(base);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let one = time(1, false)?;
    let step = time(1, true)?;
    let verify: Vec<f64> = (1..=max_k)
        .map(|k| time(k + 1, false))
        .collect::<Result<_>>()?;
    // Acceptance on this model (greedy, drafting max_k).
    let greedy = crate::sampler::Sampler::new(crate::sampler::SamplerConfig {
        temperature: 0.0,
        ..Default::default()
    });
    let mut dec = Decoder::new(model, greedy, Drafting::Fixed(max_k.max(1)));
    let mut c = model.new_cache();
    let mut history = tokens.clone();
    let mut pending = tokens.clone();
    while history.len() < tokens.len() + gen {
        let got = dec.step(&mut c, &history, &pending)?;
        history.extend_from_slice(&got);
        pending = vec![*got.last().expect("a token")];
    }
    let acc = dec.stats.acceptance();
    println!(
        "MTP: one decode step {:.2} ms, one MTP draft step {:.3} × that; acceptance on this model {:.3} ({}/{} drafts, greedy, {} per round{})",
        one * 1e3,
        step / one,
        acc,
        dec.stats.accepted,
        dec.stats.drafted,
        max_k.max(1),
        if acc < 0.2 {
            "; random weights: the block and the trunk rarely agree"
        } else {
            ""
        }
    );
    println!(concat!(
        "| drafts k | verify k+1 tokens ÷ decode 1 | round (verify + k drafts) ÷ decode 1 ",
        "| break-even acceptance | speed-up at this model's acceptance ",
        "| speed-up at GLM-5.2's published acceptance |"
    ));
    println!("|---|---|---|---|---|---|");
    for (i, v) in verify.iter().enumerate() {
        let k = i + 1;
        let cost = (v + k as f64 * step) / one;
        let tokens_at = |a: f64| expected_tokens(a, k);
        let (mut lo, mut hi) = (0.0, 1.0);
        for _ in 0..50 {
            let mid = (lo + hi) / 2.0;
            if tokens_at(mid) < cost {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let even = if tokens_at(1.0) < cost {
            "never".to_string()
        } else {
            format!("{hi:.2}")
        };
        let published = 1.0 + PUBLISHED_ACCEPT.iter().take(k).sum::<f64>();
        println!(
            "| {k} | {:.2} | {cost:.2} | {even} | {:.2} | {} |",
            v / one,
            tokens_at(acc) / cost,
            if k <= PUBLISHED_ACCEPT.len() {
                format!("{:.2}", published / cost)
            } else {
                "—".into()
            }
        );
    }
    Ok(())
}

/// The cache bytes `gen` decoded tokens after a `prompt`-token prompt need at least: per layer
/// each key attention keeps (all visible ones, or the indexer's top-k) read once, and once the
/// context is past the top-k, every indexer key once in each layer that selects.
fn kv_minimum(model: &Model, prompt: usize, gen: usize) -> u64 {
    let c = &model.config;
    let kv = model.options().kv_type;
    let row = kv.bytes(c.kv_width() as u64);
    let full = (0..c.n_layer)
        .filter(|&i| c.indexer_full.get(i).copied().unwrap_or(true))
        .count() as u64;
    (prompt + 1..=prompt + gen)
        .map(|t| {
            let sparse = c.has_indexer() && t > c.idx_topk;
            let kept = if sparse { c.idx_topk } else { t } as u64;
            let idx = if sparse {
                full * t as u64 * kv.bytes(c.idx_dim as u64)
            } else {
                0
            };
            c.n_layer as u64 * kept * row + idx
        })
        .sum()
}

/// Per decoded token on the GPU backend: dispatches, submissions and the bytes moved, against
/// the minimum the model needs (the weights one token reads). On a software adapter
/// (lavapipe) these counts, not the times, are what the benchmark measures.
fn gpu_counts(model: &Model, prompt: usize, gen: usize) -> Result<()> {
    let gpu = model.gpu().expect("checked by the caller");
    let (adapter, bytes, cpu_moe) = model.gpu_placement().expect("on a GPU");
    let vocab = model.config.vocab as u32;
    let tokens: Vec<u32> = (0..prompt.max(1) as u32)
        .map(|i| (i * 7919 + 13) % (vocab / 2))
        .collect();
    let mut cache = model.new_cache();
    let start = gpu.counters();
    let logits = model.forward(&tokens, &mut cache, Logits::Last)?;
    let pre = gpu.counters().since(&start);
    let mut next = crate::sampler::argmax(&logits[0]);
    let before = gpu.counters();
    for _ in 0..gen {
        let l = model.forward(&[next], &mut cache, Logits::Last)?;
        next = crate::sampler::argmax(&l[0]);
    }
    let d = gpu.counters().since(&before);
    // Where a decoded token's time goes: the device's execution (timestamps around the token's
    // one compute pass) against the wall clock (recording, submission, execution, read-back).
    // With experts in RAM a token is several passes, and only the first would be timed.
    let mut timed = None;
    if cpu_moe == 0 {
        let (mut wall, mut dev) = (f64::MAX, f64::MAX);
        for _ in 0..gen {
            let t = Instant::now();
            let mut out = None;
            let g = gpu.gpu_time(|| {
                out = Some(model.forward(&[next], &mut cache, Logits::Last));
                Ok(())
            })?;
            next = crate::sampler::argmax(&out.expect("ran")?[0]);
            wall = wall.min(t.elapsed().as_secs_f64());
            dev = dev.min(g.unwrap_or(f64::NAN));
        }
        timed = (!dev.is_nan()).then_some((wall, dev));
    }
    let per = |v: u64| v as f64 / gen as f64;
    let min = model.bytes_per_token() as f64;
    println!(
        "GPU: {} ({}), {:.1} MiB of weights placed, experts of {cpu_moe} MoE layers in RAM",
        adapter.name,
        adapter.backend,
        bytes as f64 / (1u64 << 20) as f64
    );
    println!("| per decoded token | count | ÷ minimum |");
    println!("|---|---|---|");
    println!("| dispatches | {:.0} | — |", per(d.dispatches));
    println!("| submissions | {:.0} | — |", per(d.submissions));
    println!("| compute passes | {:.1} | — |", per(d.passes));
    println!("| bind groups created | {:.1} | — |", per(d.bind_groups));
    println!(
        "| weight bytes read on the GPU | {:.0} | {:.3} |",
        per(d.weight_bytes),
        per(d.weight_bytes) / min
    );
    let kv_min = kv_minimum(model, tokens.len(), gen) as f64;
    println!(
        "| KV cache and indexer key bytes read | {:.0} | {:.2} |",
        per(d.kv_bytes),
        d.kv_bytes as f64 / kv_min.max(1.0)
    );
    println!(
        "| bytes uploaded (activations, ids) | {:.0} | — |",
        per(d.upload_bytes)
    );
    println!("| bytes read back | {:.0} | — |", per(d.readback_bytes));
    println!("| device buffers created | {:.1} | — |", per(d.allocations));
    if let Some((wall, dev)) = timed {
        println!(
            "a decoded token (best of {gen}): {:.3} ms on the wall clock, {:.3} ms executing on the \
             device by its timestamps ({:.2} of the wall time; the rest is recording, \
             submission, waiting and read-back)",
            wall * 1e3,
            dev * 1e3,
            dev / wall
        );
    }
    // The prefill reads each weight once per tile of tokens (routed experts once per tile of
    // the slots routed to them), so per prompt token it reads a fraction of a decoded token's.
    let per_prompt = pre.weight_bytes as f64 / tokens.len() as f64;
    println!(
        "prefill of {} tokens: {:.0} weight bytes read per prompt token = {:.3} × a decoded \
         token's minimum ({} dispatches, {} submissions; {} products on the matrix units{})",
        tokens.len(),
        per_prompt,
        per_prompt / min,
        pre.dispatches,
        pre.submissions,
        pre.matrix_products,
        match gpu.matrix_size() {
            Some(s) => format!(", {s}x{s}x{s} f16 -> f32"),
            None => format!(
                ": none in use; the adapter lists {:?}",
                adapter.cooperative_matrix
            ),
        }
    );
    // A check that failed, or kernels the driver refused (the matrix units' fallback).
    if let Some(why) = gpu.matrix_fallback() {
        println!("matrix units: {why}");
    }
    Ok(())
}
