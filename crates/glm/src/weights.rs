//! Weights as they sit in the GGUF: every tensor stays in its block type, memory-mapped, and is
//! only ever read through the fused kernels of `localglm-quants` (never dequantized whole).

use crate::config::GlmConfig;
use crate::GlmError;
use localglm_gguf::{GgufModel, TensorInfo};
use localglm_quants::{Experts, GgmlType};

/// One tensor of the model: its header entry (the bytes are looked up in the mapped file).
#[derive(Debug, Clone)]
pub struct QTensor {
    pub info: TensorInfo,
}

impl QTensor {
    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }

    /// ggml dims (dims[0] contiguous).
    pub fn dim(&self, i: usize) -> usize {
        self.info.dims.get(i).copied().unwrap_or(1) as usize
    }

    /// Columns of a 2-D weight (input width).
    pub fn cols(&self) -> usize {
        self.dim(0)
    }

    /// Rows of a 2-D weight (output width), or rows per slice of a 3-D one.
    pub fn rows(&self) -> usize {
        self.dim(1)
    }

    pub fn bytes<'a>(&self, g: &'a GgufModel) -> &'a [u8] {
        g.tensor_bytes(&self.info)
    }

    /// A 3-D tensor as a stack of matrices (experts, or per-head MLA blocks).
    pub fn stacked<'a>(&self, g: &'a GgufModel) -> Experts<'a> {
        Experts {
            ty: self.ty(),
            data: self.bytes(g),
            n_experts: self.dim(2),
            rows: self.dim(1),
            cols: self.dim(0),
        }
    }
}

/// Looks tensors up by name and checks their shapes.
pub(crate) struct Loader<'a> {
    pub g: &'a GgufModel,
}

impl Loader<'_> {
    pub fn get(&self, name: &str, dims: &[usize]) -> Result<QTensor, GlmError> {
        let info = self
            .g
            .tensor(name)
            .map_err(|_| GlmError::Load(format!("tensor {name} is missing")))?;
        let have: Vec<usize> = info.dims.iter().map(|&d| d as usize).collect();
        // Trailing 1-dims are not always written.
        let mut want = dims.to_vec();
        while want.len() > have.len() && want.last() == Some(&1) {
            want.pop();
        }
        if have != want {
            return Err(GlmError::Load(format!(
                "tensor {name} has shape {have:?}, expected {want:?}"
            )));
        }
        if !info.ty.is_supported() {
            return Err(GlmError::Load(format!(
                "tensor {name} has type {}, which this runtime cannot read",
                info.ty.name()
            )));
        }
        Ok(QTensor { info: info.clone() })
    }

    pub fn opt(&self, name: &str, dims: &[usize]) -> Result<Option<QTensor>, GlmError> {
        if self.g.tensor(name).is_err() {
            return Ok(None);
        }
        self.get(name, dims).map(Some)
    }
}

/// The DSA lightning indexer of a full layer.
#[derive(Debug, Clone)]
pub struct IndexerWeights {
    pub q_b: QTensor,
    pub k: QTensor,
    pub k_norm_w: QTensor,
    pub k_norm_b: QTensor,
    pub proj: QTensor,
}

/// Routed expert gate/up projections: separate tensors, or one fused (gate rows first).
#[derive(Debug, Clone)]
pub enum GateUp {
    Separate { gate: QTensor, up: QTensor },
    Fused(QTensor),
}

#[derive(Debug, Clone)]
pub struct MoeWeights {
    pub router: QTensor,
    pub bias: Option<QTensor>,
    pub gate_up: GateUp,
    pub down: QTensor,
    pub shared: Option<DenseFfn>,
}

#[derive(Debug, Clone)]
pub struct DenseFfn {
    pub gate: QTensor,
    pub up: QTensor,
    pub down: QTensor,
}

/// One per layer, built once at load: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Ffn {
    Dense(DenseFfn),
    Moe(MoeWeights),
}

/// GLM-5.x's multi-head latent attention.
#[derive(Debug, Clone)]
pub struct MlaWeights {
    pub q_a: QTensor,
    pub q_a_norm: QTensor,
    pub q_b: QTensor,
    pub kv_a: QTensor,
    pub kv_a_norm: QTensor,
    pub k_b: QTensor,
    pub v_b: QTensor,
}

/// A dense model's grouped-query attention: projections, `qwen2`'s biases, `qwen3`'s per-head
/// q/k norms.
#[derive(Debug, Clone)]
pub struct GqaWeights {
    pub q: QTensor,
    pub k: QTensor,
    pub v: QTensor,
    pub q_bias: Option<QTensor>,
    pub k_bias: Option<QTensor>,
    pub v_bias: Option<QTensor>,
    pub q_norm: Option<QTensor>,
    pub k_norm: Option<QTensor>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Attention {
    Mla(MlaWeights),
    Gqa(GqaWeights),
}

impl Attention {
    /// The weights multiplied by (not the norms or biases).
    pub fn products(&self) -> Vec<&QTensor> {
        match self {
            Attention::Mla(a) => vec![&a.q_a, &a.q_b, &a.kv_a, &a.k_b, &a.v_b],
            Attention::Gqa(a) => vec![&a.q, &a.k, &a.v],
        }
    }

    /// Every tensor, products and vectors.
    fn all(&self) -> Vec<&QTensor> {
        let mut out = self.products();
        match self {
            Attention::Mla(a) => out.extend([&a.q_a_norm, &a.kv_a_norm]),
            Attention::Gqa(a) => out.extend(
                [&a.q_bias, &a.k_bias, &a.v_bias, &a.q_norm, &a.k_norm]
                    .into_iter()
                    .flatten(),
            ),
        }
        out
    }

    /// The MLA weights (`None` for a dense model).
    pub fn mla(&self) -> Option<&MlaWeights> {
        match self {
            Attention::Mla(a) => Some(a),
            Attention::Gqa(_) => None,
        }
    }
}

impl MlaWeights {
    /// The products of the attention's input, in the order the pass asks for them together
    /// (`Ops::linears`): q_a, kv_a, and on a layer with an indexer its key projection. A GPU
    /// stacks them into one device weight.
    pub fn input_products<'a>(&'a self, ix: Option<&'a IndexerWeights>) -> Vec<&'a QTensor> {
        let mut parts = vec![&self.q_a, &self.kv_a];
        parts.extend(ix.map(|ix| &ix.k));
        parts
    }
}

#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: QTensor,
    pub attn: Attention,
    pub out: QTensor,
    pub ffn_norm: QTensor,
    pub indexer: Option<IndexerWeights>,
    pub ffn: Ffn,
}

/// The MTP (NextN) block: `u = eh_proj · [RMSNorm_enorm(embed(t)) ; RMSNorm_hnorm(h)]`, one
/// transformer block on `u`, then `head · RMSNorm_head_norm(·)` (spec §B.9).
#[derive(Debug, Clone)]
pub struct MtpWeights {
    pub layer: LayerWeights,
    pub eh_proj: QTensor,
    pub enorm: QTensor,
    pub hnorm: QTensor,
    pub head_norm: QTensor,
    /// Its own embedding and head, where the file has them (Unsloth's share the trunk's).
    pub embed: Option<QTensor>,
    pub head: Option<QTensor>,
}

#[derive(Debug, Clone)]
pub struct Weights {
    pub token_embd: QTensor,
    pub output_norm: QTensor,
    pub output: QTensor,
    pub layers: Vec<LayerWeights>,
    /// Llama 3's RoPE frequency factors (each pair's angle divided by its factor).
    pub rope_freqs: Option<QTensor>,
    /// The MTP block, loaded only when drafting is wanted (`RuntimeOptions::mtp`).
    pub mtp: Option<MtpWeights>,
}

impl Weights {
    /// Finds and shape-checks every tensor the trunk needs (the MTP block is loaded apart, by
    /// [`Weights::load_mtp`]; the indexer tensors Unsloth duplicates into shared layers are
    /// ignored).
    pub fn load(g: &GgufModel, c: &GlmConfig) -> Result<Self, GlmError> {
        let l = Loader { g };
        let d = c.n_embd;
        let token_embd = l.get("token_embd.weight", &[d, c.vocab])?;
        let output_norm = l.get("output_norm.weight", &[d])?;
        let output = match l.opt("output.weight", &[d, c.vocab])? {
            Some(t) => t,
            None => token_embd.clone(),
        };
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let full = c.indexer_full.get(i).copied().unwrap_or(false);
            layers.push(Self::layer(&l, c, i, full)?);
        }
        let rope_freqs = match c.gqa {
            Some(_) => l.opt("rope_freqs.weight", &[c.qk_rope / 2])?,
            None => None,
        };
        Ok(Self {
            token_embd,
            output_norm,
            output,
            layers,
            rope_freqs,
            mtp: None,
        })
    }

    /// The MTP (NextN) block after the trunk (`blk.{n_layer}`): a whole MoE layer, with an
    /// indexer where the file has one, and the `nextn.*` projection and norms. `None` when the
    /// file has no such block.
    pub fn load_mtp(g: &GgufModel, c: &GlmConfig) -> Result<Option<MtpWeights>, GlmError> {
        if c.n_nextn == 0 {
            return Ok(None);
        }
        let l = Loader { g };
        let i = c.n_layer;
        let d = c.n_embd;
        let n = |s: &str| format!("blk.{i}.nextn.{s}");
        let full = c.has_indexer() && g.tensor(&format!("blk.{i}.indexer.proj.weight")).is_ok();
        Ok(Some(MtpWeights {
            layer: Self::layer(&l, c, i, full)?,
            eh_proj: l.get(&n("eh_proj.weight"), &[2 * d, d])?,
            enorm: l.get(&n("enorm.weight"), &[d])?,
            hnorm: l.get(&n("hnorm.weight"), &[d])?,
            head_norm: l.get(&n("shared_head_norm.weight"), &[d])?,
            embed: l.opt(&n("embed_tokens.weight"), &[d, c.vocab])?,
            head: l.opt(&n("shared_head_head.weight"), &[d, c.vocab])?,
        }))
    }

    /// One transformer block `blk.{i}` (`full`: it has its own indexer).
    fn layer(l: &Loader, c: &GlmConfig, i: usize, full: bool) -> Result<LayerWeights, GlmError> {
        let d = c.n_embd;
        let h = c.n_head;
        let qk = c.qk_nope + c.qk_rope;
        let n = |s: &str| format!("blk.{i}.{s}");
        if let Some(a) = c.gqa {
            let (q, kv) = (h * a.head_dim, a.n_kv_head * a.head_dim);
            return Ok(LayerWeights {
                attn_norm: l.get(&n("attn_norm.weight"), &[d])?,
                attn: Attention::Gqa(GqaWeights {
                    q: l.get(&n("attn_q.weight"), &[d, q])?,
                    k: l.get(&n("attn_k.weight"), &[d, kv])?,
                    v: l.get(&n("attn_v.weight"), &[d, kv])?,
                    q_bias: l.opt(&n("attn_q.bias"), &[q])?,
                    k_bias: l.opt(&n("attn_k.bias"), &[kv])?,
                    v_bias: l.opt(&n("attn_v.bias"), &[kv])?,
                    q_norm: l.opt(&n("attn_q_norm.weight"), &[a.head_dim])?,
                    k_norm: l.opt(&n("attn_k_norm.weight"), &[a.head_dim])?,
                }),
                out: l.get(&n("attn_output.weight"), &[q, d])?,
                ffn_norm: l.get(&n("ffn_norm.weight"), &[d])?,
                indexer: None,
                ffn: Ffn::Dense(DenseFfn {
                    gate: l.get(&n("ffn_gate.weight"), &[d, c.n_ff])?,
                    up: l.get(&n("ffn_up.weight"), &[d, c.n_ff])?,
                    down: l.get(&n("ffn_down.weight"), &[c.n_ff, d])?,
                }),
            });
        }
        let indexer = if full {
            Some(IndexerWeights {
                q_b: l.get(
                    &n("indexer.attn_q_b.weight"),
                    &[c.q_lora, c.idx_heads * c.idx_dim],
                )?,
                k: l.get(&n("indexer.attn_k.weight"), &[d, c.idx_dim])?,
                k_norm_w: l.get(&n("indexer.k_norm.weight"), &[c.idx_dim])?,
                k_norm_b: l.get(&n("indexer.k_norm.bias"), &[c.idx_dim])?,
                proj: l.get(&n("indexer.proj.weight"), &[d, c.idx_heads])?,
            })
        } else {
            None
        };
        let ffn = if c.is_moe_layer(i) {
            let e = c.n_expert;
            let f = c.expert_ff;
            let gate_up = match l.opt(&n("ffn_gate_up_exps.weight"), &[d, 2 * f, e])? {
                Some(t) => GateUp::Fused(t),
                None => GateUp::Separate {
                    gate: l.get(&n("ffn_gate_exps.weight"), &[d, f, e])?,
                    up: l.get(&n("ffn_up_exps.weight"), &[d, f, e])?,
                },
            };
            let shared = if c.n_expert_shared > 0 {
                let fs = f * c.n_expert_shared;
                Some(DenseFfn {
                    gate: l.get(&n("ffn_gate_shexp.weight"), &[d, fs])?,
                    up: l.get(&n("ffn_up_shexp.weight"), &[d, fs])?,
                    down: l.get(&n("ffn_down_shexp.weight"), &[fs, d])?,
                })
            } else {
                None
            };
            Ffn::Moe(MoeWeights {
                router: l.get(&n("ffn_gate_inp.weight"), &[d, e])?,
                bias: l.opt(&n("exp_probs_b.bias"), &[e])?,
                gate_up,
                down: l.get(&n("ffn_down_exps.weight"), &[f, d, e])?,
                shared,
            })
        } else {
            Ffn::Dense(DenseFfn {
                gate: l.get(&n("ffn_gate.weight"), &[d, c.n_ff])?,
                up: l.get(&n("ffn_up.weight"), &[d, c.n_ff])?,
                down: l.get(&n("ffn_down.weight"), &[c.n_ff, d])?,
            })
        };
        Ok(LayerWeights {
            attn_norm: l.get(&n("attn_norm.weight"), &[d])?,
            attn: Attention::Mla(MlaWeights {
                q_a: l.get(&n("attn_q_a.weight"), &[d, c.q_lora])?,
                q_a_norm: l.get(&n("attn_q_a_norm.weight"), &[c.q_lora])?,
                q_b: l.get(&n("attn_q_b.weight"), &[c.q_lora, h * qk])?,
                kv_a: l.get(&n("attn_kv_a_mqa.weight"), &[d, c.kv_width()])?,
                kv_a_norm: l.get(&n("attn_kv_a_norm.weight"), &[c.kv_lora])?,
                k_b: l.get(&n("attn_k_b.weight"), &[c.qk_nope, c.kv_lora, h])?,
                v_b: l.get(&n("attn_v_b.weight"), &[c.kv_lora, c.v_head, h])?,
            }),
            out: l.get(&n("attn_output.weight"), &[h * c.v_head, d])?,
            ffn_norm: l.get(&n("ffn_norm.weight"), &[d])?,
            indexer,
            ffn,
        })
    }

    /// Bytes of weights read for one decoded token (embedding row, every dense weight, the
    /// used experts' slices, the head): the numerator of the memory-bandwidth bound.
    pub fn bytes_per_token(&self, c: &GlmConfig) -> u64 {
        let all = |t: &QTensor| t.info.size_bytes;
        let mut sum = self.token_embd.info.size_bytes / c.vocab.max(1) as u64;
        sum += all(&self.output_norm) + all(&self.output);
        for l in &self.layers {
            for t in [&l.attn_norm, &l.out, &l.ffn_norm]
                .into_iter()
                .chain(l.attn.all())
            {
                sum += all(t);
            }
            if let Some(ix) = &l.indexer {
                for t in [&ix.q_b, &ix.k, &ix.k_norm_w, &ix.k_norm_b, &ix.proj] {
                    sum += all(t);
                }
            }
            match &l.ffn {
                Ffn::Dense(f) => sum += all(&f.gate) + all(&f.up) + all(&f.down),
                Ffn::Moe(m) => {
                    let used = c.n_expert_used as u64;
                    let e = c.n_expert.max(1) as u64;
                    sum += all(&m.router);
                    sum += m.bias.as_ref().map_or(0, all);
                    let gu = match &m.gate_up {
                        GateUp::Separate { gate, up } => all(gate) + all(up),
                        GateUp::Fused(t) => all(t),
                    };
                    sum += (gu + all(&m.down)) / e * used;
                    if let Some(f) = &m.shared {
                        sum += all(&f.gate) + all(&f.up) + all(&f.down);
                    }
                }
            }
        }
        sum
    }
}
