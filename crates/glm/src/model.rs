//! The GLM-5.x forward pass (`docs/glm52-spec.md` §B): embeddings, RMSNorm, MLA in absorbed
//! form over a latent KV cache (`kv_lora + qk_rope` values per token per layer), the DSA
//! lightning indexer (full layers select top-k keys, shared layers reuse the last full layer's
//! selection; exactly dense while the context is ≤ top-k), dense and MoE FFNs, final norm and
//! head.
//!
//! Activations are candle tensors on a [`Device`]; attention math, norms and RoPE are candle
//! ops. Weight products go through [`Model::linear`] / [`Model::per_head`], which on the CPU run
//! the fused quant kernels of `localglm-quants` straight from the memory map. A GPU backend
//! replaces those two functions (and the MoE expert product) with device kernels; nothing else
//! assumes the CPU.

pub use crate::cache::KvCache;
use crate::cache::{GrowBuf, LayerCache};
use crate::config::GlmConfig;
use crate::gpu::GpuWeights;
use crate::weights::{Ffn, LayerWeights, QTensor, Weights};
use crate::GlmError;
use candle_core::{DType, Device, Tensor};
use localglm_gguf::GgufModel;
use localglm_quants::{
    dequantize_row, dequantize_to_vec, matmul_with, matvec_indexed_with, Activations,
};
use std::path::Path;
use std::sync::Arc;

/// Epsilon of the q_a / kv_a RMSNorms (HF class default; llama.cpp uses the model's 1e-5).
const LORA_NORM_EPS: f32 = 1e-6;
/// Batches up to this many tokens (decode, and verifying a few drafted tokens) run the
/// per-head and expert products as indexed mat-vecs, one parallel call for every token's heads
/// or experts, rather than one batched product per head or expert: for so few tokens the
/// batched form re-reads little and forks and joins once per head or expert (a 2-token pass
/// cost 3.1× a 1-token one on the mid bench model).
pub(crate) const SMALL_BATCH: usize = 4;

/// Epsilon of the indexer key LayerNorm.
const INDEXER_LN_EPS: f32 = 1e-6;

pub use localglm_quants::KvType;

/// The tensor element type of a cache of `kv`; `None` for the block-quantized q8_0 cache.
pub(crate) fn kv_dtype(kv: KvType) -> Option<DType> {
    match kv {
        KvType::F32 => Some(DType::F32),
        KvType::F16 => Some(DType::F16),
        KvType::BF16 => Some(DType::BF16),
        KvType::Q8_0 => None,
    }
}

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Int8 activations (fast, default) or exact f32 products.
    pub activations: Activations,
    pub kv_type: KvType,
    /// Maximum context (tokens); `0` means the model's trained context.
    pub max_context: usize,
    pub device: Device,
    /// Batches of at least this many tokens run MLA in expanded form (per-head keys and values
    /// decompressed from the latent cache) — when that also saves work for the model's
    /// dimensions and its key/value buffers stay within 1 GiB. `1` forces it for every batch
    /// (tests). Decode always runs absorbed.
    pub mla_expand_from: usize,
    /// Run the weight products on a GPU (`None`: the CPU kernels).
    pub gpu: Option<crate::gpu::GpuPlacement>,
    /// The most tokens one pass takes (`0`: as many as keep the attention scores within
    /// 256 MiB and at most 512 on a GPU, within 1 GiB and at most 4096 on the CPU); a longer
    /// prompt runs as consecutive passes over the growing cache. Tests set it small.
    pub device_chunk: usize,
    /// Load the MTP (NextN) block, where the file has one, and keep its cache in step with the
    /// trunk, so that [`crate::spec::Decoder`] can draft with it (CPU only for now).
    pub mtp: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            activations: Activations::Int8,
            kv_type: KvType::F16,
            max_context: 0,
            device: Device::Cpu,
            mla_expand_from: 256,
            gpu: None,
            device_chunk: 0,
            mtp: false,
        }
    }
}

/// Small per-layer vectors, held as device tensors.
pub(crate) struct LayerVecs {
    pub(crate) attn_norm: Tensor,
    pub(crate) q_a_norm: Tensor,
    pub(crate) kv_a_norm: Tensor,
    pub(crate) ffn_norm: Tensor,
    pub(crate) idx_norm: Option<(Tensor, Tensor)>,
    pub(crate) expert_bias: Option<Vec<f32>>,
}

impl LayerVecs {
    pub(crate) fn of(l: &LayerWeights, gguf: &GgufModel, dev: &Device) -> Result<Self, GlmError> {
        let expert_bias = match &l.ffn {
            Ffn::Moe(m) => match &m.bias {
                Some(b) => Some(dequantize_to_vec(
                    b.ty(),
                    b.bytes(gguf),
                    b.info.n_elems as usize,
                )?),
                None => None,
            },
            Ffn::Dense(_) => None,
        };
        Ok(LayerVecs {
            attn_norm: vec_tensor(&l.attn_norm, gguf, dev)?,
            q_a_norm: vec_tensor(&l.q_a_norm, gguf, dev)?,
            kv_a_norm: vec_tensor(&l.kv_a_norm, gguf, dev)?,
            ffn_norm: vec_tensor(&l.ffn_norm, gguf, dev)?,
            idx_norm: match &l.indexer {
                Some(ix) => Some((
                    vec_tensor(&ix.k_norm_w, gguf, dev)?,
                    vec_tensor(&ix.k_norm_b, gguf, dev)?,
                )),
                None => None,
            },
            expert_bias,
        })
    }
}

/// A small tensor (a norm's weights) as an f32 device vector.
pub(crate) fn vec_tensor(t: &QTensor, gguf: &GgufModel, dev: &Device) -> Result<Tensor, GlmError> {
    let v = dequantize_to_vec(t.ty(), t.bytes(gguf), t.info.n_elems as usize)?;
    Ok(Tensor::from_vec(v, t.info.n_elems as usize, dev)?)
}

/// A loaded GLM-5.x model.
pub struct Model {
    pub(crate) gguf: Arc<GgufModel>,
    pub config: GlmConfig,
    pub(crate) weights: Weights,
    pub(crate) vecs: Vec<LayerVecs>,
    output_norm: Tensor,
    pub(crate) opts: RuntimeOptions,
    pub(crate) inv_freq: Vec<f32>,
    /// The weights on the GPU, when the model runs there.
    pub(crate) gpu: Option<GpuWeights>,
    /// The MTP block, when loaded (`RuntimeOptions::mtp`).
    pub(crate) mtp: Option<crate::mtp::MtpBlock>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .finish()
    }
}

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (generation).
    Last,
    /// Every position of the batch (scoring, `localglm logprobs`).
    All,
}

impl Model {
    /// Opens a `glm-dsa` GGUF (one file or any shard of a split set) and checks every tensor.
    pub fn open(path: impl AsRef<Path>, opts: RuntimeOptions) -> Result<Self, GlmError> {
        let g = GgufModel::open(path.as_ref()).map_err(|e| GlmError::Load(e.to_string()))?;
        Self::from_gguf(Arc::new(g), opts)
    }

    pub fn from_gguf(gguf: Arc<GgufModel>, opts: RuntimeOptions) -> Result<Self, GlmError> {
        let config = GlmConfig::from_gguf(&gguf)?;
        let weights = Weights::load(&gguf, &config)?;
        let dev = &opts.device;
        let mut vecs = Vec::with_capacity(config.n_layer);
        for l in &weights.layers {
            vecs.push(LayerVecs::of(l, &gguf, dev)?);
        }
        let output_norm = vec_tensor(&weights.output_norm, &gguf, dev)?;
        let half = config.qk_rope / 2;
        let inv_freq = (0..half)
            .map(|i| {
                config
                    .rope_base
                    .powf(-(2.0 * i as f32) / config.qk_rope as f32)
            })
            .collect();
        let gpu = match &opts.gpu {
            Some(p) => Some(GpuWeights::upload(&gguf, &weights, p)?),
            None => None,
        };
        let mtp = match opts.mtp && gpu.is_none() {
            true => crate::mtp::MtpBlock::load(&gguf, &config, dev)?,
            false => None,
        };
        Ok(Self {
            gguf,
            config,
            weights,
            vecs,
            output_norm,
            opts,
            inv_freq,
            gpu,
            mtp,
        })
    }

    pub fn gguf(&self) -> &GgufModel {
        &self.gguf
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.opts
    }

    /// The context limit in force (tokens).
    pub fn max_context(&self) -> usize {
        match self.opts.max_context {
            0 => self.config.ctx_train,
            n => n,
        }
    }

    /// Bytes of weights one decoded token reads (for the bandwidth bound).
    pub fn bytes_per_token(&self) -> u64 {
        self.weights.bytes_per_token(&self.config)
    }

    /// A fresh, empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        let kv = self.opts.kv_type;
        KvCache {
            layers: (0..self.config.n_layer)
                .map(|i| LayerCache {
                    kv: GrowBuf::new(self.config.kv_width(), kv),
                    idx_k: self.weights.layers[i]
                        .indexer
                        .as_ref()
                        .map(|_| GrowBuf::new(self.config.idx_dim, kv)),
                })
                .collect(),
            len: 0,
            device: self.new_device_kv(),
            mtp: self.mtp.as_ref().map(|m| m.new_cache(&self.config, kv)),
        }
    }

    /// Runs `tokens` (appended after what `cache` holds) and returns logits, one `vocab`-long
    /// row per requested position.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        which: Logits,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        // A long prompt on the CPU runs as consecutive passes over the growing cache (the same
        // result): one pass would hold its attention and indexer scores — tokens × heads ×
        // context floats — at once, 96 GB for a 60k-token agent prompt on the tiny fixture.
        let chunk = self.cpu_chunk(cache.len + tokens.len());
        if self.gpu.is_none() && tokens.len() > chunk {
            let parts: Vec<&[u32]> = tokens.chunks(chunk).collect();
            let mut out = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let rows = self.forward(part, cache, which)?;
                if which == Logits::All || i + 1 == parts.len() {
                    out.extend(rows);
                }
            }
            return Ok(out);
        }
        // Run the whole pass on a pool worker: every parallel kernel inside then forks from a
        // worker (no cross-thread injection and wake-up of the caller per weight product).
        let mut out = None;
        rayon::scope(|_| out = Some(self.forward_inner(tokens, cache, which)));
        out.expect("scope ran the pass")
    }

    /// Tokens per CPU pass for a context of `t_len`: the scores of the widest attention (MLA or
    /// indexer heads; tokens × heads × `t_len` floats) within 1 GiB, at most 4096 tokens
    /// (`RuntimeOptions::device_chunk` when set).
    fn cpu_chunk(&self, t_len: usize) -> usize {
        const SCORES_BYTES: usize = 1 << 30;
        let heads = self.config.n_head.max(self.config.idx_heads).max(1);
        match self.opts.device_chunk {
            0 => (SCORES_BYTES / (4 * heads * t_len.max(1))).clamp(1, 4096),
            n => n,
        }
    }

    fn forward_inner(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        which: Logits,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        let n = tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let p0 = cache.len;
        if p0 + n > self.max_context() {
            return Err(GlmError::ContextFull {
                needed: p0 + n,
                limit: self.max_context(),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(GlmError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        if self.gpu.is_some() {
            return self.forward_device(tokens, cache, which);
        }
        let mut x = self.embed(tokens)?;
        let (cos, sin) = self.rope_tables(p0, n)?;
        let mut shared_mask: Option<Tensor> = None;
        for (i, lw) in self.weights.layers.iter().enumerate() {
            x = self.block(
                i,
                lw,
                &self.vecs[i],
                x,
                p0,
                (&cos, &sin),
                &mut cache.layers[i],
                &mut shared_mask,
            )?;
        }
        cache.len = p0 + n;
        let keep_mtp = self.mtp.is_some() && cache.mtp.is_some();
        let x = match which {
            Logits::Last if !keep_mtp => x.narrow(0, n - 1, 1)?,
            _ => x,
        };
        // The final norm's output is also what the MTP block reads of the trunk.
        let y = candle_nn::ops::rms_norm(&x, &self.output_norm, self.config.rms_eps)?;
        if keep_mtp {
            self.mtp_catch_up(cache, tokens, p0, &y)?;
        }
        let y = match which {
            Logits::Last => y.narrow(0, y.dim(0)? - 1, 1)?,
            Logits::All => y,
        };
        let logits = self.linear(&self.weights.output, &y, self.opts.activations)?;
        Ok(logits.to_vec2::<f32>()?)
    }

    /// One transformer block on the residual stream `x` (positions `p0..`): attention over
    /// `cache`, then the dense or MoE FFN.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn block(
        &self,
        i: usize,
        lw: &LayerWeights,
        v: &LayerVecs,
        x: Tensor,
        p0: usize,
        (cos, sin): (&Tensor, &Tensor),
        cache: &mut LayerCache,
        shared_mask: &mut Option<Tensor>,
    ) -> Result<Tensor, GlmError> {
        let h = candle_nn::ops::rms_norm(&x, &v.attn_norm, self.config.rms_eps)?;
        let a = self.attention(i, lw, v, &h, p0, cos, sin, cache, shared_mask)?;
        let x = (x + a)?;
        let h2 = candle_nn::ops::rms_norm(&x, &v.ffn_norm, self.config.rms_eps)?;
        let f = match &lw.ffn {
            Ffn::Dense(f) => self.dense_ffn(f, &h2)?,
            Ffn::Moe(m) => self.moe(m, v, &h2)?,
        };
        Ok((x + f)?)
    }

    fn embed(&self, tokens: &[u32]) -> Result<Tensor, GlmError> {
        self.embed_with(&self.weights.token_embd, tokens)
    }

    pub(crate) fn embed_with(&self, t: &QTensor, tokens: &[u32]) -> Result<Tensor, GlmError> {
        let d = self.config.n_embd;
        let row_bytes = t.ty().row_bytes(d)?;
        let bytes = t.bytes(&self.gguf);
        let mut out = vec![0f32; tokens.len() * d];
        for (k, &id) in tokens.iter().enumerate() {
            let o = id as usize * row_bytes;
            dequantize_row(
                t.ty(),
                &bytes[o..o + row_bytes],
                &mut out[k * d..(k + 1) * d],
            )?;
        }
        Ok(Tensor::from_vec(out, (tokens.len(), d), &self.opts.device)?)
    }

    /// cos/sin of the interleaved RoPE for positions `p0..p0+n`: `[n, rope/2]` each.
    pub(crate) fn rope_tables(&self, p0: usize, n: usize) -> Result<(Tensor, Tensor), GlmError> {
        let half = self.inv_freq.len();
        let mut c = Vec::with_capacity(n * half);
        let mut s = Vec::with_capacity(n * half);
        for p in p0..p0 + n {
            for f in &self.inv_freq {
                // Angle in f64: positions reach 10^6 and f32 would lose the phase.
                let a = p as f64 * *f as f64;
                c.push(a.cos() as f32);
                s.push(a.sin() as f32);
            }
        }
        let dev = &self.opts.device;
        Ok((
            Tensor::from_vec(c, (n, half), dev)?,
            Tensor::from_vec(s, (n, half), dev)?,
        ))
    }

    /// `[n, heads, d]` → RoPE'd, via candle's interleaved kernel (wants `[b, h, t, d]`).
    fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        let x = x.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
        let y = candle_nn::rotary_emb::rope_i(&x, cos, sin)?;
        y.squeeze(0)?.transpose(0, 1)?.contiguous()
    }

    /// `x · Wᵀ` for a `[n, cols]` activation and a GGUF weight `[rows × cols]`.
    pub(crate) fn linear(
        &self,
        w: &QTensor,
        x: &Tensor,
        mode: Activations,
    ) -> Result<Tensor, GlmError> {
        let (n, cols) = x.dims2()?;
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let rows = w.rows();
        let mut ys = vec![0f32; n * rows];
        matmul_with(
            mode,
            w.ty(),
            w.bytes(&self.gguf),
            rows,
            cols,
            &xs,
            n,
            &mut ys,
        )?;
        Ok(Tensor::from_vec(ys, (n, rows), &self.opts.device)?)
    }

    /// Where the model runs: `None` on the CPU, else the adapter, the bytes placed on it and
    /// the number of MoE layers whose routed experts stayed in RAM.
    pub fn gpu_placement(&self) -> Option<(localglm_gpu::AdapterReport, u64, usize)> {
        let gw = self.gpu.as_ref()?;
        Some((gw.gpu.adapter().clone(), gw.bytes, gw.cpu_moe))
    }

    /// The GPU the model runs on, if any (for the benchmark's counters).
    pub fn gpu(&self) -> Option<&localglm_gpu::Gpu> {
        self.gpu.as_ref().map(|g| &*g.gpu)
    }

    /// Per-head products with a stacked `[heads][rows × cols]` weight (`attn_k_b`, `attn_v_b`):
    /// `x` is `[n, heads, cols]`, the result `[n, heads, rows]`.
    fn per_head(&self, w: &QTensor, x: &Tensor) -> Result<Tensor, GlmError> {
        let (n, h, cols) = x.dims3()?;
        if n > SMALL_BATCH {
            // Prefill: one batched product per head (its weights decoded once for all tokens).
            let rows = w.rows();
            let per = w.ty().row_bytes(cols)? * rows;
            let bytes = w.bytes(&self.gguf);
            let xh = x.transpose(0, 1)?.contiguous()?.to_vec3::<f32>()?; // [h][n][cols]
            let mut out = vec![0f32; n * h * rows];
            let mut yh = vec![0f32; n * rows];
            for (head, xs) in xh.iter().enumerate() {
                let flat: Vec<f32> = xs.concat();
                matmul_with(
                    self.opts.activations,
                    w.ty(),
                    &bytes[head * per..(head + 1) * per],
                    rows,
                    cols,
                    &flat,
                    n,
                    &mut yh,
                )?;
                for t in 0..n {
                    out[(t * h + head) * rows..(t * h + head + 1) * rows]
                        .copy_from_slice(&yh[t * rows..(t + 1) * rows]);
                }
            }
            return Ok(Tensor::from_vec(out, (n, h, rows), &self.opts.device)?);
        }
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let ids: Vec<u32> = (0..n).flat_map(|_| 0..h as u32).collect();
        let rows = w.rows();
        let mut ys = vec![0f32; n * h * rows];
        matvec_indexed_with(
            self.opts.activations,
            w.stacked(&self.gguf),
            &ids,
            &xs,
            &mut ys,
        )?;
        Ok(Tensor::from_vec(ys, (n, h, rows), &self.opts.device)?)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: usize,
        lw: &LayerWeights,
        v: &LayerVecs,
        h: &Tensor,
        p0: usize,
        cos: &Tensor,
        sin: &Tensor,
        cache: &mut LayerCache,
        shared_mask: &mut Option<Tensor>,
    ) -> Result<Tensor, GlmError> {
        let c = &self.config;
        let mode = self.opts.activations;
        let n = h.dim(0)?;
        let nh = c.n_head;
        let qk = c.qk_nope + c.qk_rope;

        // Query path: c_q = RMSNorm(W_qa h); q = W_qb c_q, per head [nope | rope].
        let cq = self.linear(&lw.q_a, h, mode)?;
        let cq = candle_nn::ops::rms_norm(&cq, &v.q_a_norm, LORA_NORM_EPS)?;
        let q = self.linear(&lw.q_b, &cq, mode)?.reshape((n, nh, qk))?;
        let q_nope = q.narrow(2, 0, c.qk_nope)?;
        let q_pe = Self::rope_heads(&q.narrow(2, c.qk_nope, c.qk_rope)?, cos, sin)?;

        // Key/value path: latent c_kv (normed) and one shared rope key.
        let kv = self.linear(&lw.kv_a, h, mode)?;
        let ckv = candle_nn::ops::rms_norm(
            &kv.narrow(1, 0, c.kv_lora)?.contiguous()?,
            &v.kv_a_norm,
            LORA_NORM_EPS,
        )?;
        let k_pe = Self::rope_heads(&kv.narrow(1, c.kv_lora, c.qk_rope)?.unsqueeze(1)?, cos, sin)?
            .squeeze(1)?;
        cache.kv.append(&Tensor::cat(&[&ckv, &k_pe], 1)?)?;
        let keys = cache.kv.view(h.device())?; // [T, kv_lora + rope]
        let t_len = keys.dim(0)?;

        // Which keys each query may see: causal, intersected with the DSA top-k selection.
        let mask = match (&lw.indexer, cache.idx_k.as_mut()) {
            (Some(ix), Some(kbuf)) => {
                let m = self.indexer_mask(ix, v, h, &cq, p0, cos, sin, kbuf)?;
                *shared_mask = Some(m.clone());
                m
            }
            // (The MTP block, past the trunk's table, has its own indexer or none.)
            _ if c.has_indexer() && !c.indexer_full.get(layer).copied().unwrap_or(true) => {
                match shared_mask {
                    Some(m) => m.clone(),
                    None => self.causal_mask(n, p0, t_len)?,
                }
            }
            _ => self.causal_mask(n, p0, t_len)?,
        };

        if self.expand_mla(n, t_len) {
            let o = self.expanded_mla(lw, &q_nope, &q_pe, &keys, &mask)?;
            return self.linear(&lw.out, &o, mode);
        }
        // Absorbed MLA: q̃_h = K_b[h]·q_nope_h; scores over [c_kv ; k_pe]; values = c_kv.
        let q_abs = self.per_head(&lw.k_b, &q_nope.contiguous()?)?; // [n, H, kv_lora]
        let qf = Tensor::cat(&[&q_abs, &q_pe], 2)?.reshape((n * nh, c.kv_width()))?;
        let scores = (qf.matmul(&keys.t()?)? * c.attn_scale() as f64)?.reshape((n, nh, t_len))?;
        let scores = scores.broadcast_add(&mask.unsqueeze(1)?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((n * nh, t_len))?;
        let values = keys.narrow(1, 0, c.kv_lora)?;
        let o_lat = probs.matmul(&values)?.reshape((n, nh, c.kv_lora))?;
        let o = self
            .per_head(&lw.v_b, &o_lat)?
            .reshape((n, nh * c.v_head))?;
        self.linear(&lw.out, &o, mode)
    }

    /// Whether a batch of `n` queries over `t_len` keys runs MLA expanded: past the size where it
    /// does fewer multiply-adds than the absorbed form, and with its per-head keys and values
    /// (`H·T·(nope + v)` f32, twice over while transposed) within 1 GiB.
    fn expand_mla(&self, n: usize, t_len: usize) -> bool {
        let c = &self.config;
        if self.opts.mla_expand_from <= 1 {
            return n >= 2;
        }
        let absorbed = 2 * c.kv_lora + c.qk_rope;
        let expanded = c.qk_nope + c.qk_rope + c.v_head;
        if absorbed <= expanded {
            return false;
        }
        let pays_from = c.kv_lora * (c.qk_nope + c.v_head) / (absorbed - expanded) + 1;
        let bytes = c.n_head * t_len * (c.qk_nope + c.v_head) * 4 * 2;
        n >= self.opts.mla_expand_from.max(pays_from) && bytes <= 1 << 30
    }

    /// MLA in expanded form for a long batch: per head, keys `c_kv·K_b[h]` and values
    /// `c_kv·V_b[h]ᵀ` from the latent cache, then ordinary attention. Per layer about
    /// `T·H·kv_lora·(nope + v) + n·T·H·(nope + rope + v)` multiply-adds against the absorbed
    /// form's `n·T·H·(2·kv_lora + rope)`. Returns the heads' outputs `[n, H·v_head]`.
    fn expanded_mla(
        &self,
        lw: &LayerWeights,
        q_nope: &Tensor,
        q_pe: &Tensor,
        keys: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor, GlmError> {
        let c = &self.config;
        let (n, nh, _) = q_nope.dims3()?;
        let t_len = keys.dim(0)?;
        let heads = |w: &QTensor, rows: usize, cols: usize| -> Result<Tensor, GlmError> {
            let v = localglm_quants::dequant::dequantize_to_vec(
                w.ty(),
                w.bytes(&self.gguf),
                nh * rows * cols,
            )?;
            Ok(Tensor::from_vec(v, (nh, rows, cols), &self.opts.device)?)
        };
        // All heads in one product each: [kv_lora, H·nope] and [kv_lora, H·v_head].
        let k_b = heads(&lw.k_b, c.kv_lora, c.qk_nope)? // [H, kv_lora, nope]
            .transpose(0, 1)?
            .contiguous()?
            .reshape((c.kv_lora, nh * c.qk_nope))?;
        let v_b = heads(&lw.v_b, c.v_head, c.kv_lora)? // [H, v_head, kv_lora]
            .transpose(0, 2)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((c.kv_lora, nh * c.v_head))?; // [kv_lora, H·v_head]
        let latent = keys.narrow(1, 0, c.kv_lora)?.contiguous()?; // [T, kv_lora]
        let per_head = |t: Tensor, d: usize| -> Result<Tensor, GlmError> {
            Ok(t.reshape((t_len, nh, d))?.transpose(0, 1)?.contiguous()?)
        };
        let k_nope = per_head(latent.matmul(&k_b)?, c.qk_nope)?; // [H, T, nope]
        let values = per_head(latent.matmul(&v_b)?, c.v_head)?; // [H, T, v_head]
        let k_pe = keys
            .narrow(1, c.kv_lora, c.qk_rope)?
            .t()?
            .contiguous()?
            .unsqueeze(0)?
            .broadcast_as((nh, c.qk_rope, t_len))?
            .contiguous()?; // [H, rope, T]
        let qn = q_nope.transpose(0, 1)?.contiguous()?; // [H, n, nope]
        let qp = q_pe.transpose(0, 1)?.contiguous()?; // [H, n, rope]
        let scores = (qn.matmul(&k_nope.transpose(1, 2)?.contiguous()?)? + qp.matmul(&k_pe)?)?;
        let scores = (scores * c.attn_scale() as f64)?.broadcast_add(&mask.unsqueeze(0)?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?; // [H, n, T]
        let o = probs.matmul(&values)?; // [H, n, v_head]
        Ok(o.transpose(0, 1)?
            .contiguous()?
            .reshape((n, nh * c.v_head))?)
    }

    /// Additive causal mask `[n, T]` (0 visible, −∞ hidden).
    fn causal_mask(&self, n: usize, p0: usize, t_len: usize) -> Result<Tensor, GlmError> {
        let mut m = vec![f32::NEG_INFINITY; n * t_len];
        for i in 0..n {
            let visible = (p0 + i + 1).min(t_len);
            m[i * t_len..i * t_len + visible].fill(0.0);
        }
        Ok(Tensor::from_vec(m, (n, t_len), &self.opts.device)?)
    }

    /// The lightning indexer of a full layer: caches this batch's indexer keys and returns the
    /// additive mask selecting, per query, the top-k causal keys by indexer score.
    #[allow(clippy::too_many_arguments)]
    fn indexer_mask(
        &self,
        ix: &crate::weights::IndexerWeights,
        v: &LayerVecs,
        h: &Tensor,
        cq: &Tensor,
        p0: usize,
        cos: &Tensor,
        sin: &Tensor,
        kbuf: &mut GrowBuf,
    ) -> Result<Tensor, GlmError> {
        let c = &self.config;
        let mode = self.opts.activations;
        let n = h.dim(0)?;
        let (nih, d) = (c.idx_heads, c.idx_dim);
        let rope = c.qk_rope;

        // Keys: LayerNorm(W_k h), rope on the FIRST `rope` dims.
        let k = self.linear(&ix.k, h, mode)?;
        let (lw, lb) = v.idx_norm.as_ref().expect("full layer has its norm");
        let k = candle_nn::ops::layer_norm(&k, lw, lb, INDEXER_LN_EPS)?;
        let k_pe = Self::rope_heads(&k.narrow(1, 0, rope)?.unsqueeze(1)?, cos, sin)?.squeeze(1)?;
        let k = Tensor::cat(&[&k_pe, &k.narrow(1, rope, d - rope)?], 1)?;
        kbuf.append(&k)?;
        let t_len = kbuf.len;
        let causal = self.causal_mask(n, p0, t_len)?;
        if t_len <= c.idx_topk {
            // Every visible key is selected: exactly dense attention.
            return Ok(causal);
        }
        let keys = kbuf.view(k.device())?; // [T, d]

        // Queries: W_qb c_q → [n, heads, d], rope on the first `rope` dims of each head.
        let q = self.linear(&ix.q_b, cq, mode)?.reshape((n, nih, d))?;
        let q_pe = Self::rope_heads(&q.narrow(2, 0, rope)?, cos, sin)?;
        let q = Tensor::cat(&[&q_pe, &q.narrow(2, rope, d - rope)?], 2)?;
        // Head weights (f32), with both positive scales folded in: 1/√(d·heads).
        let w = self.linear(&ix.proj, h, Activations::F32)?;
        let w = (w * (1.0 / ((d * nih) as f64).sqrt()))?;

        let s = q
            .reshape((n * nih, d))?
            .matmul(&keys.t()?)?
            .relu()?
            .reshape((n, nih, t_len))?;
        let score = w.unsqueeze(1)?.matmul(&s)?.squeeze(1)?; // [n, T]
        let score = (score + &causal)?.to_vec2::<f32>()?;
        let m = topk_mask(&score, p0, t_len, c.idx_topk, f32::NEG_INFINITY);
        Ok(Tensor::from_vec(m, (n, t_len), &self.opts.device)?)
    }
}

/// The indexer's selection as an additive mask `[n, T]`: per query `i` (position `p0 + i`), 0
/// for the `topk` visible keys of highest score (all visible keys while there are no more than
/// `topk`; ties at the k-th score taken in key order), `hidden` elsewhere. The GPU pass applies
/// the same rule in `localglm-gpu`'s `shaders/ops/topk.wgsl`.
pub(crate) fn topk_mask<R: AsRef<[f32]>>(
    scores: &[R],
    p0: usize,
    t_len: usize,
    topk: usize,
    hidden: f32,
) -> Vec<f32> {
    let mut m = vec![hidden; scores.len() * t_len];
    let mut order: Vec<u32> = Vec::with_capacity(t_len);
    for (i, row) in scores.iter().enumerate() {
        let row = row.as_ref();
        let visible = (p0 + i + 1).min(t_len);
        let out = &mut m[i * t_len..(i + 1) * t_len];
        if visible <= topk {
            out[..visible].fill(0.0);
            continue;
        }
        order.clear();
        order.extend(0..visible as u32);
        order.select_nth_unstable_by(topk - 1, |&a, &b| {
            row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b))
        });
        for &t in &order[..topk] {
            out[t as usize] = 0.0;
        }
    }
    m
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Model>();
}
