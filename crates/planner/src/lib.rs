//! Will a model fit this machine, and how is it placed?
//!
//! [`plan`] is a pure function of the hardware ([`localglm_hardware::Hardware`], probed or
//! simulated), the model's tensors with their real types and bytes ([`ModelSpec`], from GGUF
//! headers alone: local files or remote ones by HTTP range requests, see [`remote`]), the
//! context length, the KV-cache type and a placement choice. It mirrors how the runtimes place a
//! MoE model: everything on the GPU, or the routed experts of the first N MoE layers in system
//! RAM (llama.cpp's `--n-cpu-moe`), or all in system RAM. On Apple Silicon the GPU share is the
//! Metal wired limit of the one unified memory.
//!
//! Budgets: system RAM keeps `max(4 GiB, 5 %)` for the OS; a discrete GPU keeps 512 MiB for its
//! driver context. Compute scratch follows the spec's §G.2 (fused DSA indexer scores, top-k
//! indices, activations, logits) for a 512-token prefill batch.

pub mod catalog;
pub mod remote;
mod spec;
pub mod view;

pub use spec::{Kind, KvSpec, ModelSpec, SpecError, TensorSpec};

use localglm_hardware::{Hardware, GIB};
use serde::Serialize;

pub use localglm_quants::KvType;

/// Where the user wants the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The GPU first, then as few MoE layers' experts in RAM as needed, else RAM only.
    Auto,
    /// The experts of exactly this many MoE layers (the first ones) in RAM, the rest on the GPU.
    CpuMoe(u32),
    /// Everything in system RAM.
    CpuOnly,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything on the GPU (or within the Metal limit).
    Gpu,
    /// On the GPU with some MoE layers' experts in system RAM.
    GpuCpuExperts,
    /// In system RAM only.
    Cpu,
    NoFit,
}

/// Bytes per component of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Bytes {
    pub weights_gpu: u64,
    pub weights_cpu: u64,
    pub kv: u64,
    pub scratch: u64,
    /// Of `weights_gpu` / `weights_cpu`: the routed experts.
    pub experts_gpu: u64,
    pub experts_cpu: u64,
    /// System RAM kept for the OS and other programs.
    pub os_reserve: u64,
    /// What the GPU may hold (VRAM less the driver's share, or the Metal limit); 0 without one.
    pub gpu_budget: u64,
    /// System RAM the model may use (total less `os_reserve`).
    pub ram_budget: u64,
    /// Totals placed on each side (weights + KV + scratch where they live).
    pub gpu_used: u64,
    pub ram_used: u64,
}

/// A concrete change that makes the model fit (or fit better).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// `shorter_context`, `kv_q8_0`, `more_experts_on_cpu`, `raise_gpu_limit`, `smaller_quant`.
    pub kind: String,
    pub text: String,
    /// The number the fix names (tokens, layers, MB or bytes).
    pub value: Option<u64>,
}

/// Where everything goes, and whether it fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub verdict: Verdict,
    /// MoE layers whose experts stay in system RAM.
    pub cpu_moe_layers: u32,
    /// MoE layers of the model.
    pub moe_layers: u32,
    pub context: u64,
    /// Largest context that fits with this placement (0 if none does).
    pub max_context: u64,
    pub kv_type: KvType,
    pub bytes: Bytes,
    /// Weights the runtime loads (the NextN / MTP block included when counted).
    pub model_bytes: u64,
    pub fixes: Vec<Fix>,
    pub summary: String,
}

/// Tokens per prefill batch the scratch is sized for.
pub const UBATCH: u64 = 512;
/// DSA top-k: indices kept per query token.
const INDEX_TOPK: u64 = 2048;

/// The spec of a local model (a single GGUF or any shard of a split set), from its headers.
pub fn local_spec(path: &std::path::Path) -> Result<ModelSpec, SpecError> {
    let g = localglm_gguf::GgufModel::open(path)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    ModelSpec::from_header(&name, g.metadata(), g.tensors())
}

/// KV-cache bytes for `ctx` tokens (the MTP block's caches included when it is counted).
pub fn kv_bytes(model: &ModelSpec, ctx: u64, kv: KvType) -> u64 {
    let mtp = if model.mtp { kv.bytes(model.kv.mtp) } else { 0 };
    ctx * (kv.bytes(model.kv.attn) + kv.bytes(model.kv.indexer) + mtp)
}

/// Compute scratch for `ctx` tokens: DSA indexer scores (fused over heads) and top-k indices,
/// activations (16 × n_embd floats per batch token), and one row of logits.
pub fn scratch_bytes(model: &ModelSpec, ctx: u64) -> u64 {
    let indexer = if model.kv.indexer > 0 {
        UBATCH * 4 * (ctx + INDEX_TOPK)
    } else {
        0
    };
    indexer + UBATCH * 4 * 16 * model.n_embd + model.vocab * 4
}

/// RAM kept for the OS: 5 % of it, at least 4 GiB.
pub fn os_reserve(hw: &Hardware) -> u64 {
    (hw.ram_total / 20).max(4 * GIB)
}

/// What the GPU side may hold; `None` without a GPU.
pub fn gpu_budget(hw: &Hardware) -> Option<u64> {
    if let Some(u) = &hw.unified {
        return Some(u.gpu_limit);
    }
    if hw.gpus.is_empty() {
        return None;
    }
    Some(
        hw.gpus
            .iter()
            .map(|g| g.vram_free.saturating_sub(512 << 20))
            .sum(),
    )
}

/// The evaluation of one placement at one context.
struct Try {
    bytes: Bytes,
    fits: bool,
}

struct Ctx<'a> {
    hw: &'a Hardware,
    model: &'a ModelSpec,
    experts: Vec<u64>,
    other: u64,
    embd: u64,
}

impl<'a> Ctx<'a> {
    fn new(hw: &'a Hardware, model: &'a ModelSpec) -> Self {
        Self {
            hw,
            model,
            experts: model.expert_bytes_per_layer(),
            other: model.bytes_of(Kind::Other) + model.mtp_bytes(Kind::Mtp),
            embd: model.bytes_of(Kind::TokenEmbd),
        }
    }

    /// `cpu_moe`: `None` = everything in RAM; `Some(k)` = GPU with k MoE layers' experts in RAM.
    fn eval(&self, cpu_moe: Option<u32>, ctx: u64, kv: KvType, gpu_limit: Option<u64>) -> Try {
        let reserve = os_reserve(self.hw);
        let ram_budget = self.hw.ram_total.saturating_sub(reserve);
        let kv_b = kv_bytes(self.model, ctx, kv);
        let scratch = scratch_bytes(self.model, ctx);
        let total_experts: u64 = self.experts.iter().sum();
        let budget = gpu_limit.or_else(|| gpu_budget(self.hw));
        let mut b = Bytes {
            kv: kv_b,
            scratch,
            os_reserve: reserve,
            ram_budget,
            gpu_budget: budget.unwrap_or(0),
            ..Bytes::default()
        };
        let fits = match (cpu_moe, budget) {
            (Some(k), Some(budget)) => {
                let k = (k as usize).min(self.experts.len());
                // The MTP block's experts go to the GPU only when every trunk layer's do.
                let mtp = self.model.mtp_bytes(Kind::MtpExpert);
                let (mtp_gpu, mtp_cpu) = if k == 0 { (mtp, 0) } else { (0, mtp) };
                let trunk_cpu: u64 = self.experts[..k].iter().sum();
                let cpu_experts = trunk_cpu + mtp_cpu;
                b.experts_cpu = cpu_experts;
                b.experts_gpu = total_experts - trunk_cpu + mtp_gpu;
                b.weights_gpu = self.other + b.experts_gpu;
                b.weights_cpu = self.embd + cpu_experts;
                b.gpu_used = b.weights_gpu + kv_b + scratch;
                b.ram_used = if self.hw.unified.is_some() {
                    // One memory: the GPU's share counts too.
                    b.gpu_used + b.weights_cpu
                } else {
                    b.weights_cpu
                };
                b.gpu_used <= budget && b.ram_used <= ram_budget
            }
            _ => {
                b.experts_cpu = total_experts + self.model.mtp_bytes(Kind::MtpExpert);
                b.weights_cpu = self.model.loaded_bytes();
                b.ram_used = b.weights_cpu + kv_b + scratch;
                b.ram_used <= ram_budget
            }
        };
        Try { bytes: b, fits }
    }

    /// Largest context (≤ the model's maximum) at which the placement fits; 0 if none.
    fn max_context(&self, cpu_moe: Option<u32>, kv: KvType, gpu_limit: Option<u64>) -> u64 {
        let fits = |c: u64| self.eval(cpu_moe, c, kv, gpu_limit).fits;
        let (mut lo, mut hi) = (0u64, self.model.context_max);
        if !fits(1) {
            return 0;
        }
        if fits(hi) {
            return hi;
        }
        lo = lo.max(1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Smallest number of MoE layers' experts in RAM that fits on the GPU side.
    fn smallest_cpu_moe(&self, ctx: u64, kv: KvType, gpu_limit: Option<u64>) -> Option<u32> {
        gpu_budget(self.hw).or(gpu_limit)?;
        (0..=self.experts.len() as u32).find(|&k| self.eval(Some(k), ctx, kv, gpu_limit).fits)
    }
}

fn gb(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1e9)
}

/// Plans `model` on `hw` at `context` tokens.
pub fn plan(
    hw: &Hardware,
    model: &ModelSpec,
    context: u64,
    kv: KvType,
    placement: Placement,
) -> Plan {
    let c = Ctx::new(hw, model);
    let n_moe = c.experts.len() as u32;
    let has_gpu = gpu_budget(hw).is_some();
    // The placement evaluated: `None` = RAM only.
    let chosen: Option<u32> = match placement {
        Placement::CpuOnly => None,
        Placement::CpuMoe(k) if has_gpu => Some(k.min(n_moe)),
        Placement::CpuMoe(_) => None,
        Placement::Auto => match c.smallest_cpu_moe(context, kv, None) {
            Some(k) => Some(k),
            None if c.eval(None, context, kv, None).fits => None,
            // Nothing fits: describe the GPU placement that needs the least GPU memory.
            None if has_gpu => Some(n_moe),
            None => None,
        },
    };
    let t = c.eval(chosen, context, kv, None);
    let verdict = match (t.fits, chosen) {
        (false, _) => Verdict::NoFit,
        (true, None) => Verdict::Cpu,
        (true, Some(0)) => Verdict::Gpu,
        (true, Some(_)) if n_moe == 0 => Verdict::Gpu,
        (true, Some(_)) => Verdict::GpuCpuExperts,
    };
    let max_context = c.max_context(chosen, kv, None);
    let mut fixes = Vec::new();

    if verdict == Verdict::NoFit {
        if max_context > 0 {
            fixes.push(Fix {
                kind: "shorter_context".into(),
                text: format!("Use a context of at most {max_context} tokens."),
                value: Some(max_context),
            });
        }
        if kv != KvType::Q8_0 && c.eval(chosen, context, KvType::Q8_0, None).fits {
            fixes.push(Fix {
                kind: "kv_q8_0".into(),
                text: "Store the KV cache as q8_0 (about half the size of f16).".into(),
                value: None,
            });
        }
        if let (Placement::CpuMoe(_), Some(k)) = (placement, c.smallest_cpu_moe(context, kv, None))
        {
            fixes.push(Fix {
                kind: "more_experts_on_cpu".into(),
                text: format!("Keep the experts of {k} MoE layers in system RAM (--cpu-moe {k})."),
                value: Some(u64::from(k)),
            });
        }
    }
    // Apple Silicon: would a raised wired limit put (more of) it on the GPU?
    if let Some(u) = &hw.unified {
        if verdict != Verdict::Gpu {
            let all_gpu = c.eval(Some(0), context, kv, Some(u64::MAX));
            let need = all_gpu.bytes.gpu_used;
            let ceiling = hw.ram_total.saturating_sub(os_reserve(hw));
            if need > u.gpu_limit && all_gpu.bytes.ram_used <= ceiling {
                // Round up to the next GiB, in MB as the sysctl takes it.
                let mb = need.div_ceil(GIB) * 1024;
                fixes.push(Fix {
                    kind: "raise_gpu_limit".into(),
                    text: format!(
                        "Let the GPU wire more memory: sudo sysctl iogpu.wired_limit_mb={mb} \
                         (now {} MB; resets at reboot).",
                        u.gpu_limit >> 20
                    ),
                    value: Some(mb),
                });
            }
        }
    }
    if verdict == Verdict::NoFit {
        // Weights that would fit at this context with the roomiest placement.
        let reserve = os_reserve(hw);
        let extra = kv_bytes(model, context, kv) + scratch_bytes(model, context);
        let room = match (&hw.unified, gpu_budget(hw)) {
            (Some(_), _) | (None, None) => hw.ram_total.saturating_sub(reserve),
            (None, Some(g)) => hw.ram_total.saturating_sub(reserve) + g,
        }
        .saturating_sub(extra);
        let mut text = format!(
            "A smaller quant: at most {} of weights fit at this context (this file loads {}).",
            gb(room),
            gb(model.loaded_bytes())
        );
        if model.architecture == "glm-dsa" {
            let f = catalog::Family::of(&model.name, model.context_max);
            let fitting: Vec<&str> = f
                .quants
                .iter()
                .filter(|q| q.size_bytes <= room)
                .map(|q| q.label)
                .collect();
            match fitting.last() {
                Some(best) => text.push_str(&format!(" {} {best} would.", f.name)),
                None => text.push_str(&format!(
                    " Even {}'s smallest quant ({}) needs more; run it on a server \
                     and connect to it instead.",
                    f.name, f.quants[0].label
                )),
            }
        }
        fixes.push(Fix {
            kind: "smaller_quant".into(),
            text,
            value: Some(room),
        });
    }

    let b = t.bytes;
    let summary = match verdict {
        Verdict::Gpu => format!(
            "Fits on the GPU: {} of {} used.",
            gb(b.gpu_used),
            gb(b.gpu_budget)
        ),
        Verdict::GpuCpuExperts => format!(
            "Fits with the experts of {} of {n_moe} MoE layers in system RAM: GPU {} of {}, RAM {} of {}.",
            chosen.unwrap_or(0),
            gb(b.gpu_used),
            gb(b.gpu_budget),
            gb(b.ram_used),
            gb(b.ram_budget)
        ),
        Verdict::Cpu => format!(
            "Fits in system memory only: {} of {}.",
            gb(b.ram_used),
            gb(b.ram_budget)
        ),
        Verdict::NoFit => format!(
            "Does not fit: needs {} (weights {}, KV {}, scratch {}); {} usable.",
            gb(model.loaded_bytes() + b.kv + b.scratch),
            gb(model.loaded_bytes()),
            gb(b.kv),
            gb(b.scratch),
            gb(b.ram_budget
                + if hw.unified.is_none() {
                    b.gpu_budget
                } else {
                    0
                })
        ),
    };
    Plan {
        verdict,
        cpu_moe_layers: chosen.unwrap_or(n_moe),
        moe_layers: n_moe,
        context,
        max_context,
        kv_type: kv,
        bytes: b,
        model_bytes: model.loaded_bytes(),
        fixes,
        summary,
    }
}
