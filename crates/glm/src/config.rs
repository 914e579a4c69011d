//! Model hyperparameters, read from GGUF metadata and tensor shapes with the fallbacks of
//! `docs/glm52-spec.md` §C.3 (GLM-5 / 5.1 / 5.2 all load from the same keys) — and those of the
//! dense LLaMA-family architectures the same runtime runs ([`DENSE_ARCHES`]: GQA attention in
//! place of MLA, a dense SwiGLU FFN in every layer).

use crate::GlmError;
use localglm_gguf::{glm_dsa, GgufModel, Value};

/// The architecture string of GLM-5.x GGUFs.
pub const ARCH: &str = "glm-dsa";

/// The dense architectures the runtime runs besides `glm-dsa`: GQA attention with RoPE
/// (adjacent pairs for `llama` — Llama 3, SmolLM —, whose converter permutes the q/k rows for
/// it; the halves of each head, NeoX style, for `qwen2` / `qwen3`), q/k/v biases
/// (`qwen2`), per-head q/k RMSNorm (`qwen3`), RMSNorm, SwiGLU. (Mixtral is `llama` with
/// experts: refused here, it runs on mistral.rs.)
pub const DENSE_ARCHES: &[&str] = &["llama", "qwen2", "qwen3"];

/// Whether this runtime runs a GGUF of architecture `arch`.
pub fn runs_architecture(arch: &str) -> bool {
    arch == ARCH || DENSE_ARCHES.contains(&arch)
}

/// The attention of a dense model: grouped-query attention over a cache of `[k ; v]` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gqa {
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// RoPE on the two halves of each head (`qwen2`, `qwen3`) rather than adjacent pairs.
    pub neox: bool,
}

/// How router logits become gating scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    Sigmoid,
}

/// Everything the forward pass needs to know about a GLM-5.x model.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmConfig {
    /// Main trunk layers (`block_count − nextn_predict_layers`); the MTP block is not run.
    pub n_layer: usize,
    /// MTP/NextN blocks stored after the trunk (read, not run).
    pub n_nextn: usize,
    pub n_embd: usize,
    pub vocab: usize,
    pub n_head: usize,
    pub q_lora: usize,
    pub kv_lora: usize,
    pub qk_nope: usize,
    pub qk_rope: usize,
    pub v_head: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
    pub ctx_train: usize,
    /// Layers `0..n_lead_dense` have a dense FFN; the rest are MoE.
    pub n_lead_dense: usize,
    pub n_ff: usize,
    pub n_expert: usize,
    pub n_expert_used: usize,
    pub n_expert_shared: usize,
    pub expert_ff: usize,
    pub expert_scale: f32,
    pub expert_norm: bool,
    pub gating: Gating,
    pub idx_heads: usize,
    pub idx_dim: usize,
    pub idx_topk: usize,
    /// Per trunk layer: `true` = full indexer layer, `false` = shared (reuses the last full
    /// layer's top-k). Empty when the file has no indexer (dense MLA everywhere).
    pub indexer_full: Vec<bool>,
    /// `general.architecture`.
    pub arch: String,
    /// A dense model's attention (`None`: GLM-5.x's MLA).
    pub gqa: Option<Gqa>,
}

impl GlmConfig {
    /// Softmax scale of the main attention: `1/√(qk_nope + qk_rope)` (no YaRN in GLM-5.x).
    /// (`1/√head_dim` for a dense model).
    pub fn attn_scale(&self) -> f32 {
        match self.gqa {
            Some(a) => 1.0 / (a.head_dim as f32).sqrt(),
            None => 1.0 / ((self.qk_nope + self.qk_rope) as f32).sqrt(),
        }
    }

    /// Values cached per token per layer (latent + rope key; 576 for GLM-5.x; a dense model's
    /// keys then values of its KV heads).
    pub fn kv_width(&self) -> usize {
        match self.gqa {
            Some(a) => 2 * a.n_kv_head * a.head_dim,
            None => self.kv_lora + self.qk_rope,
        }
    }

    pub fn has_indexer(&self) -> bool {
        !self.indexer_full.is_empty()
    }

    pub fn is_moe_layer(&self, layer: usize) -> bool {
        layer >= self.n_lead_dense && self.n_expert > 0
    }

    /// Reads the config of a `glm-dsa` model or of one of the [`DENSE_ARCHES`].
    pub fn from_gguf(g: &GgufModel) -> Result<Self, GlmError> {
        let arch = g.architecture().unwrap_or("");
        if DENSE_ARCHES.contains(&arch) {
            return Self::dense_from_gguf(g, arch);
        }
        if arch != ARCH {
            return Err(GlmError::Load(format!(
                "architecture is `{arch}`, which this runtime does not run (it runs `{ARCH}` \
                 (GLM-5.x) and {})",
                DENSE_ARCHES.join(", ")
            )));
        }
        let key = |k: &str| format!("{ARCH}.{k}");
        let req = |k: &str| -> Result<usize, GlmError> {
            g.get_u64(&key(k))
                .map(|v| v as usize)
                .ok_or_else(|| GlmError::Load(format!("metadata key {} is missing", key(k))))
        };
        let opt = |k: &str| g.get_u64(&key(k)).map(|v| v as usize);
        let dims = |name: &str| -> Option<Vec<usize>> {
            g.tensor(name)
                .ok()
                .map(|t| t.dims.iter().map(|&d| d as usize).collect())
        };

        let block_count = req("block_count")?;
        let n_nextn = opt("nextn_predict_layers").unwrap_or(0);
        if n_nextn >= block_count {
            return Err(GlmError::Load(format!(
                "nextn_predict_layers {n_nextn} leaves no trunk layers of {block_count}"
            )));
        }
        let n_layer = block_count - n_nextn;
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let embd = dims("token_embd.weight")
            .ok_or_else(|| GlmError::Load("tensor token_embd.weight is missing".into()))?;
        let vocab = opt("vocab_size").unwrap_or(*embd.get(1).unwrap_or(&0));
        let qk_rope = opt("rope.dimension_count").unwrap_or(64);
        let kv_lora = match opt("attention.kv_lora_rank") {
            Some(v) => v,
            None => dims("blk.0.attn_kv_a_norm.weight")
                .map(|d| d[0])
                .ok_or_else(|| GlmError::Load("kv_lora_rank unknown".into()))?,
        };
        let q_lora = match opt("attention.q_lora_rank") {
            Some(v) => v,
            None => dims("blk.0.attn_q_a_norm.weight")
                .map(|d| d[0])
                .ok_or_else(|| GlmError::Load("q_lora_rank unknown".into()))?,
        };
        // Per-head widths: from the split k_b / v_b shapes, else the *_mla keys.
        let qk_nope = match dims("blk.0.attn_k_b.weight") {
            Some(d) => d[0],
            None => opt("attention.key_length_mla")
                .map(|k| k - qk_rope)
                .ok_or_else(|| GlmError::Load("qk_nope_head_dim unknown".into()))?,
        };
        let v_head = match dims("blk.0.attn_v_b.weight") {
            Some(d) => d[1],
            None => opt("attention.value_length_mla")
                .ok_or_else(|| GlmError::Load("v_head_dim unknown".into()))?,
        };
        let ctx_train = opt("context_length").unwrap_or(glm_dsa::DEFAULT_CTX as usize);
        let rope_base = g
            .get_f64(&key("rope.freq_base"))
            .unwrap_or(glm_dsa::default_rope_base(ctx_train as u64)) as f32;
        let rms_eps = g
            .get_f64(&key("attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-5) as f32;
        let gating = match opt("expert_gating_func") {
            Some(1) => Gating::Softmax,
            _ => Gating::Sigmoid,
        };

        let has_indexer = g.tensor("blk.0.indexer.attn_k.weight").is_ok();
        let indexer_full = if !has_indexer {
            Vec::new()
        } else {
            glm_dsa::indexer_types(
                g.get(&key("attention.indexer.types")),
                n_layer,
                ctx_train as u64,
            )
            .map_err(|e| GlmError::Load(e.to_string()))?
        };

        Ok(Self {
            n_layer,
            n_nextn,
            n_embd,
            vocab,
            n_head,
            q_lora,
            kv_lora,
            qk_nope,
            qk_rope,
            v_head,
            rope_base,
            rms_eps,
            ctx_train,
            n_lead_dense: opt("leading_dense_block_count").unwrap_or(0),
            n_ff: opt("feed_forward_length").unwrap_or(0),
            n_expert: opt("expert_count").unwrap_or(0),
            n_expert_used: opt("expert_used_count").unwrap_or(0),
            n_expert_shared: opt("expert_shared_count").unwrap_or(0),
            expert_ff: opt("expert_feed_forward_length").unwrap_or(0),
            expert_scale: g
                .get_f64(&key("expert_weights_scale"))
                .map(|v| v as f32)
                .unwrap_or(1.0),
            expert_norm: g
                .get(&key("expert_weights_norm"))
                .and_then(Value::as_bool)
                .unwrap_or(true),
            gating,
            idx_heads: opt("attention.indexer.head_count").unwrap_or(32),
            idx_dim: opt("attention.indexer.key_length").unwrap_or(128),
            idx_topk: opt("attention.indexer.top_k").unwrap_or(2048),
            indexer_full,
            arch: ARCH.into(),
            gqa: None,
        })
    }

    /// A dense LLaMA-family model: every layer GQA attention and a SwiGLU FFN.
    fn dense_from_gguf(g: &GgufModel, arch: &str) -> Result<Self, GlmError> {
        let key = |k: &str| format!("{arch}.{k}");
        let opt = |k: &str| g.get_u64(&key(k)).map(|v| v as usize);
        let req = |k: &str| -> Result<usize, GlmError> {
            opt(k).ok_or_else(|| GlmError::Load(format!("metadata key {} is missing", key(k))))
        };
        let n_layer = req("block_count")?;
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let n_kv_head = opt("attention.head_count_kv").unwrap_or(n_head);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 {
            return Err(GlmError::Load(format!(
                "{n_head} attention heads cannot share {n_kv_head} KV heads"
            )));
        }
        let head_dim = opt("attention.key_length").unwrap_or(n_embd / n_head);
        if opt("attention.value_length").is_some_and(|v| v != head_dim) {
            return Err(GlmError::Load(
                "key and value head widths differ, which this runtime does not run".into(),
            ));
        }
        let rope = opt("rope.dimension_count").unwrap_or(head_dim);
        if rope != head_dim || head_dim % 2 != 0 {
            return Err(GlmError::Load(format!(
                "RoPE over {rope} of {head_dim} head dimensions is not supported"
            )));
        }
        // (Llama 3's frequency factors come as the `rope_freqs.weight` tensor, which the model
        // applies; YaRN and linear scaling are not implemented.)
        if let Some(kind) = g
            .get_str(&key("rope.scaling.type"))
            .filter(|k| *k != "none")
        {
            return Err(GlmError::Load(format!(
                "{kind} RoPE scaling is not supported by this runtime"
            )));
        }
        let vocab = match opt("vocab_size") {
            Some(v) => v,
            None => g
                .tensor("token_embd.weight")
                .ok()
                .and_then(|t| t.dims.get(1).copied())
                .ok_or_else(|| GlmError::Load("tensor token_embd.weight is missing".into()))?
                as usize,
        };
        if opt("expert_count").is_some_and(|e| e > 0) {
            return Err(GlmError::Load(
                "a mixture-of-experts `llama` model (Mixtral-style) is not a dense model".into(),
            ));
        }
        let n_ff = req("feed_forward_length")?;
        let ctx_train = opt("context_length").unwrap_or(4096);
        Ok(Self {
            n_layer,
            n_nextn: 0,
            n_embd,
            vocab,
            n_head,
            q_lora: 0,
            kv_lora: 0,
            qk_nope: 0,
            qk_rope: head_dim,
            v_head: head_dim,
            rope_base: g
                .get_f64(&key("rope.freq_base"))
                .map(|v| v as f32)
                .unwrap_or(10_000.0),
            rms_eps: g
                .get_f64(&key("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-5) as f32,
            ctx_train,
            n_lead_dense: n_layer,
            n_ff,
            n_expert: 0,
            n_expert_used: 0,
            n_expert_shared: 0,
            expert_ff: 0,
            expert_scale: 1.0,
            expert_norm: false,
            gating: Gating::Softmax,
            idx_heads: 0,
            idx_dim: 0,
            idx_topk: 0,
            indexer_full: Vec::new(),
            arch: arch.into(),
            gqa: Some(Gqa {
                n_kv_head,
                head_dim,
                neox: matches!(arch, "qwen2" | "qwen3"),
            }),
        })
    }
}
