//! `localglm fit`: will a model fit this machine (or a described one), and how is it placed —
//! from GGUF headers alone, for a local file or a remote one (fetched by range requests).

use anyhow::{bail, Context, Result};
use clap::Args;
use localglm_hardware::Hardware;
use localglm_planner::{plan, remote, KvType, ModelSpec, Placement, Plan, Verdict};
use std::path::PathBuf;

#[derive(Args)]
pub struct FitArgs {
    /// The model: a local GGUF (any shard of a split set), an http(s) URL of one, or
    /// `hf://OWNER/REPO/PATH.gguf` (resolved against `HF_ENDPOINT`, default huggingface.co).
    model: String,
    /// Context length to plan for (default: 32768, or the model's maximum if smaller).
    #[arg(long)]
    ctx: Option<u64>,
    /// KV-cache type: f16, bf16, f32 or q8_0.
    #[arg(long = "kv-type", default_value = "f16")]
    kv_type: String,
    /// Plan for a machine with this much system RAM (GiB) instead of this one.
    #[arg(long = "ram-gib")]
    ram_gib: Option<f64>,
    /// ... with one discrete GPU of this much VRAM (GiB).
    #[arg(long = "vram-gib")]
    vram_gib: Option<f64>,
    /// ... or with this much Apple unified memory (GiB).
    #[arg(long = "unified-gib")]
    unified_gib: Option<f64>,
    /// The GPU wired limit of that unified memory (GiB; default: Metal's, 75 %).
    #[arg(long = "gpu-limit-gib")]
    gpu_limit_gib: Option<f64>,
    /// Keep the experts of this many MoE layers in system RAM (the rest on the GPU); default:
    /// as few as needed.
    #[arg(long = "cpu-moe")]
    cpu_moe: Option<u32>,
    /// Everything in system RAM.
    #[arg(long = "cpu-only", conflicts_with = "cpu_moe")]
    cpu_only: bool,
    /// Plan without the MTP block (as `--mtp 0` runs); by default it is counted, since the
    /// runtime loads it for speculative decoding.
    #[arg(long = "no-mtp")]
    no_mtp: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `hf://owner/repo/path` → a resolve URL on `HF_ENDPOINT`.
fn resolve_url(model: &str) -> Option<String> {
    if model.starts_with("http://") || model.starts_with("https://") {
        return Some(model.to_string());
    }
    let rest = model.strip_prefix("hf://")?;
    let mut parts = rest.splitn(3, '/');
    let (owner, repo, path) = (parts.next()?, parts.next()?, parts.next()?);
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    Some(format!(
        "{}/{owner}/{repo}/resolve/main/{path}",
        endpoint.trim_end_matches('/')
    ))
}

fn hardware(a: &FitArgs) -> Result<Hardware> {
    match (a.unified_gib, a.ram_gib, a.vram_gib) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            bail!("--unified-gib describes a Mac: give it without --ram-gib / --vram-gib")
        }
        (Some(u), None, None) => Ok(Hardware::simulated(u, None, Some(a.gpu_limit_gib))),
        (None, Some(r), v) => Ok(Hardware::simulated(r, v, None)),
        (None, None, Some(v)) => {
            let mut h = Hardware::simulated(0.0, Some(v), None);
            let probed = Hardware::probe();
            (h.ram_total, h.ram_available) = (probed.ram_total, probed.ram_available);
            Ok(h)
        }
        (None, None, None) => {
            if a.gpu_limit_gib.is_some() {
                bail!("--gpu-limit-gib needs --unified-gib");
            }
            Ok(Hardware::probe())
        }
    }
}

fn gb(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1e9)
}

pub fn run(a: &FitArgs) -> Result<()> {
    let kv = KvType::parse(&a.kv_type)
        .with_context(|| format!("--kv-type {}: expected f16, bf16, f32 or q8_0", a.kv_type))?;
    let hw = hardware(a)?;
    let (spec, source): (ModelSpec, serde_json::Value) = match resolve_url(&a.model) {
        Some(url) => {
            let m = remote::fetch(&url)?;
            let files: Vec<_> = m
                .files
                .iter()
                .map(|(u, size)| serde_json::json!({ "url": u, "bytes": size }))
                .collect();
            let src = serde_json::json!({ "remote": true, "files": files, "header_bytes_fetched": m.bytes_fetched });
            (m.spec, src)
        }
        None => {
            let path = PathBuf::from(&a.model);
            let spec = localglm_planner::local_spec(&path).map_err(anyhow::Error::msg)?;
            (spec, serde_json::json!({ "remote": false, "path": path }))
        }
    };
    let mut spec = spec;
    spec.mtp &= !a.no_mtp;
    let ctx = a.ctx.unwrap_or(32_768.min(spec.context_max));
    let placement = match (a.cpu_only, a.cpu_moe) {
        (true, _) => Placement::CpuOnly,
        (false, Some(k)) => Placement::CpuMoe(k),
        (false, None) => Placement::Auto,
    };
    let p = plan(&hw, &spec, ctx, kv, placement);
    if a.json {
        let mut v = serde_json::to_value(&p)?;
        let obj = v.as_object_mut().expect("plan is an object");
        obj.insert(
            "model".into(),
            serde_json::json!({
                "name": spec.name, "architecture": spec.architecture,
                "context_max": spec.context_max, "source": source,
            }),
        );
        obj.insert("hardware".into(), serde_json::to_value(&hw)?);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_plan(&spec, &hw, &p);
    }
    Ok(())
}

fn print_plan(spec: &ModelSpec, hw: &Hardware, p: &Plan) {
    let b = &p.bytes;
    println!(
        "{} ({}): {} of weights{}, {} MoE layers",
        spec.name,
        spec.architecture,
        gb(p.model_bytes),
        match spec.mtp {
            true => " (the MTP block included)",
            false => "",
        },
        p.moe_layers
    );
    println!("Machine: {}", hw.describe());
    println!(
        "Context {} tokens, KV cache {:?}: {}; compute scratch {}",
        p.context,
        p.kv_type,
        gb(b.kv),
        gb(b.scratch)
    );
    let verdict = match p.verdict {
        Verdict::Gpu => "fits on the GPU".to_string(),
        Verdict::GpuCpuExperts => format!(
            "fits with the experts of {} of {} MoE layers in system RAM (--cpu-moe {})",
            p.cpu_moe_layers, p.moe_layers, p.cpu_moe_layers
        ),
        Verdict::Cpu => "fits in system memory only".to_string(),
        Verdict::NoFit => "does not fit".to_string(),
    };
    println!("Verdict: {verdict}");
    if b.gpu_budget > 0 && p.verdict != Verdict::Cpu {
        println!(
            "  GPU: weights {} (experts {}) + KV + scratch = {} of {}",
            gb(b.weights_gpu),
            gb(b.experts_gpu),
            gb(b.gpu_used),
            gb(b.gpu_budget)
        );
    }
    println!(
        "  RAM: weights {} (experts {}), {} in all of {} (keeping {} for the system)",
        gb(b.weights_cpu),
        gb(b.experts_cpu),
        gb(b.ram_used),
        gb(b.ram_budget),
        gb(b.os_reserve)
    );
    println!(
        "Largest context with this placement: {} tokens",
        p.max_context
    );
    if !p.fixes.is_empty() {
        println!("To make it fit (or fit better):");
        for f in &p.fixes {
            println!("  - {}", f.text);
        }
    }
}
