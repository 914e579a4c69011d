//! LocalGLM's own GLM-5.x runtime (GGUF architecture `glm-dsa`, Hugging Face
//! `GlmMoeDsaForCausalLM`), which the published `mistralrs` cannot run.
//!
//! * [`config::GlmConfig`] — hyperparameters from GGUF metadata (GLM-5 / 5.1 / 5.2 fallbacks).
//! * [`weights`] — every tensor located and shape-checked, left in its block type in the map.
//! * [`model::Model`] — the forward pass (MLA + DSA indexer + MoE) with a latent KV cache.
//! * [`tokenizer::GlmTokenizer`] — byte-level BPE from `tokenizer.ggml.*`, specials whole.
//! * [`template::ChatTemplate`] — the GGUF's Jinja chat template, rendered like `jinja2`.
//! * [`sampler::Sampler`] — temperature / top-k / top-p sampling.
//!
//! Invariant: logits match the Hugging Face reference on the same weights (see
//! `tests/reference.rs` and `scripts/make_glm_fixtures.py`).

pub mod bench;
mod cache;
pub mod config;
mod cpu_attn;
mod cpu_mla;
mod cpu_ops;
mod ffn;
pub mod gpu;
mod gpu_ops;
pub mod model;
mod mtp;
mod pass;
pub mod sampler;
pub mod spec;
pub mod template;
pub mod tokenizer;
pub mod weights;

pub use config::GlmConfig;
pub use gpu::GpuPlacement;
pub use model::{KvCache, KvType, Logits, Model, RuntimeOptions};

/// What can go wrong in the GLM runtime.
#[derive(Debug, thiserror::Error)]
pub enum GlmError {
    #[error("{0}")]
    Load(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("the context is full: {needed} tokens needed, the limit is {limit}")]
    ContextFull { needed: usize, limit: usize },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("tensor op: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("quant kernel: {0}")]
    Quant(#[from] localglm_quants::QuantError),
    #[error("{0}")]
    Gpu(#[from] localglm_gpu::GpuError),
}

/// Why this runtime would not run a GGUF (`None`: it runs it): an architecture it does not
/// know, a config it cannot load, a tokenizer it does not implement, no chat template. Cheap
/// (metadata only), so a caller can choose another backend before letting a model go.
pub fn unsupported(g: &localglm_gguf::GgufModel) -> Option<String> {
    let arch = g.architecture().unwrap_or("");
    if !config::runs_architecture(arch) {
        return Some(format!("architecture `{arch}`"));
    }
    if let Err(e) = GlmConfig::from_gguf(g) {
        return Some(e.to_string());
    }
    if let Err(e) = tokenizer::pre_tokenizer(g) {
        return Some(e.to_string());
    }
    if template::TemplateSource::of(g).is_none() {
        return Some("no chat template (tokenizer.chat_template)".into());
    }
    None
}

/// Log-softmax over a logit row (f64 accumulation).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let mx = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits
        .iter()
        .map(|&z| (z as f64 - mx).exp())
        .sum::<f64>()
        .ln()
        + mx;
    logits.iter().map(|&z| (z as f64 - lse) as f32).collect()
}
