//! The GLM-5.x model: options, loading (weights checked against the config, norm vectors, the
//! RoPE frequencies, the GPU upload, the MTP block) and the forward pass's driver — a long
//! prompt in consecutive passes, each run by [`crate::pass`] over the CPU's or the GPU's
//! [`crate::pass::Ops`], the MTP block's cache kept in step after it.

pub use crate::cache::KvCache;
use crate::cache::{GrowBuf, LayerCache};
use crate::config::GlmConfig;
use crate::cpu_ops::CpuOps;
use crate::gpu::GpuWeights;
use crate::weights::{Attention, Ffn, LayerWeights, QTensor, Weights};
use crate::GlmError;
use candle_core::{DType, Device, Tensor};
use localglm_gguf::GgufModel;
use localglm_quants::{dequantize_to_vec, Activations};
use std::path::Path;
use std::sync::Arc;

/// Batches up to this many tokens (decode, and verifying a few drafted tokens) run the
/// per-head and expert products as indexed mat-vecs, one parallel call for every token's heads
/// or experts, rather than one batched product per head or expert: for so few tokens the
/// batched form re-reads little and forks and joins once per head or expert (a 2-token pass
/// cost 3.1× a 1-token one on the mid bench model). The dense products of such a batch are
/// each token's own mat-vec too (`MATVEC_UP_TO`, the same bound), so the batch is bit for bit
/// decode.
pub(crate) const SMALL_BATCH: usize = localglm_quants::MATVEC_UP_TO;

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
    /// The most tokens one pass takes (`0`: as many as keep the attention scratch within
    /// 256 MiB and at most 512 on a GPU, the scores within 1 GiB and at most 4096 on the CPU); a longer
    /// prompt runs as consecutive passes over the growing cache. Tests set it small.
    pub device_chunk: usize,
    /// Load the MTP (NextN) block, where the file has one, and keep its cache in step with the
    /// trunk, so that [`crate::spec::Decoder`] can draft with it (on the CPU or the GPU).
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
    pub(crate) ffn_norm: Tensor,
    /// MLA's q_a / kv_a norms, or a dense model's per-head q / k norms (`qwen3`).
    pub(crate) q_norm: Option<Tensor>,
    pub(crate) kv_norm: Option<Tensor>,
    /// A dense model's q / k / v biases (`qwen2`).
    pub(crate) bias: [Option<Tensor>; 3],
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
        let opt = |t: Option<&QTensor>| t.map(|t| vec_tensor(t, gguf, dev)).transpose();
        let (q_norm, kv_norm, bias) = match &l.attn {
            Attention::Mla(a) => (Some(&a.q_a_norm), Some(&a.kv_a_norm), [None, None, None]),
            Attention::Gqa(a) => (
                a.q_norm.as_ref(),
                a.k_norm.as_ref(),
                [&a.q_bias, &a.k_bias, &a.v_bias].map(Option::as_ref),
            ),
        };
        Ok(LayerVecs {
            attn_norm: vec_tensor(&l.attn_norm, gguf, dev)?,
            ffn_norm: vec_tensor(&l.ffn_norm, gguf, dev)?,
            q_norm: opt(q_norm)?,
            kv_norm: opt(kv_norm)?,
            bias: [opt(bias[0])?, opt(bias[1])?, opt(bias[2])?],
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
    pub(crate) output_norm: Tensor,
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

/// Keeps glibc's allocator from handing a pass's large temporaries (activation panels,
/// attention scores, per-expert buffers: 0.1–10 MiB, allocated and freed many times per
/// layer) back to the kernel and taking them again: with its default dynamic thresholds they
/// were `mmap`ed or trimmed and re-faulted, every page zeroed by the kernel (a GLM mix's
/// prefill +6–8 % with the two settings below, alternating runs). Blocks from 64 MiB (KV
/// caches, model-sized buffers) are still mapped on their own; freed memory up to 1 GiB stays
/// with the process. Once per process; nothing elsewhere.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static DONE: std::sync::Once = std::sync::Once::new();
        DONE.call_once(|| {
            // WORKAROUND: `mallopt` has no safe binding; it only sets two glibc tunables
            // (it fails harmlessly, returning 0, for values glibc rejects).
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

impl Model {
    /// Opens a `glm-dsa` GGUF (one file or any shard of a split set) and checks every tensor.
    pub fn open(path: impl AsRef<Path>, opts: RuntimeOptions) -> Result<Self, GlmError> {
        let g = GgufModel::open(path.as_ref()).map_err(|e| GlmError::Load(e.to_string()))?;
        Self::from_gguf(Arc::new(g), opts)
    }

    pub fn from_gguf(gguf: Arc<GgufModel>, opts: RuntimeOptions) -> Result<Self, GlmError> {
        tune_allocator();
        let config = GlmConfig::from_gguf(&gguf)?;
        let weights = Weights::load(&gguf, &config)?;
        let dev = &opts.device;
        let mut vecs = Vec::with_capacity(config.n_layer);
        for l in &weights.layers {
            vecs.push(LayerVecs::of(l, &gguf, dev)?);
        }
        let output_norm = vec_tensor(&weights.output_norm, &gguf, dev)?;
        let half = config.qk_rope / 2;
        let factors = match &weights.rope_freqs {
            Some(t) => dequantize_to_vec(t.ty(), t.bytes(&gguf), half)?,
            None => vec![1.0; half],
        };
        let inv_freq = (0..half)
            .map(|i| {
                config
                    .rope_base
                    .powf(-(2.0 * i as f32) / config.qk_rope as f32)
                    / factors[i]
            })
            .collect();
        let mtp = match opts.mtp {
            true => crate::mtp::MtpBlock::load(&gguf, &config, dev)?,
            false => None,
        };
        let gpu = match &opts.gpu {
            Some(p) => Some(GpuWeights::upload(
                &gguf,
                &weights,
                mtp.as_ref().map(|b| &b.w),
                p,
                opts.activations == Activations::F32,
            )?),
            None => None,
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

    /// Bytes of one sequence's KV cache of `context` tokens (latent or `[k ; v]` rows and
    /// indexer keys, in the cache's type).
    pub fn kv_bytes(&self, context: usize) -> u64 {
        let kv = self.opts.kv_type;
        let per_token: u64 = self
            .weights
            .layers
            .iter()
            .map(|l| {
                kv.bytes(self.config.kv_width() as u64)
                    + l.indexer
                        .as_ref()
                        .map_or(0, |_| kv.bytes(self.config.idx_dim as u64))
            })
            .sum();
        per_token * context as u64
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
        // A long prompt runs as consecutive passes over the growing cache (the same result):
        // one pass would hold its attention and indexer scores — tokens × heads × context
        // floats — at once (96 GB for a 60k-token agent prompt on the tiny fixture on the CPU;
        // the GPU's scratch is smaller still). Only the last pass computes logits, unless all
        // positions' are asked for.
        // Checked before any pass runs, so a bad request leaves the cache as it was.
        if cache.len + tokens.len() > self.max_context() {
            return Err(GlmError::ContextFull {
                needed: cache.len + tokens.len(),
                limit: self.max_context(),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(GlmError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        let chunk = self.pass_tokens(cache.len + tokens.len());
        let parts: Vec<&[u32]> = tokens.chunks(chunk.max(1)).collect();
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let want = (which == Logits::All || i + 1 == parts.len()).then_some(which);
            out.extend(self.forward_pass(part, cache, want)?);
        }
        Ok(out)
    }

    /// Tokens per pass for a context of `t_len` (`RuntimeOptions::device_chunk` when set): on
    /// the CPU the scores of the widest attention (MLA or indexer heads; tokens × heads ×
    /// `t_len` floats) within 1 GiB, at most 4096 tokens; on a GPU the attention scratch within
    /// 256 MiB, at most 512 tokens — for MLA the chunks' partial results (a fixed size per
    /// token) and the indexer's scores and selection (2 × `t_len` floats a token), for a dense
    /// model its scores (heads × `t_len`).
    fn pass_tokens(&self, t_len: usize) -> usize {
        let c = &self.config;
        let t = t_len.max(1);
        let (bytes, per_token, most) = match (self.gpu.is_some(), c.gqa) {
            (true, Some(_)) => (256usize << 20, 4 * c.n_head * t, 512),
            (true, None) => {
                let idx = if c.has_indexer() { 2 * t } else { 0 };
                let attn = localglm_gpu::attention_scratch_words(1, c.n_head, c.kv_lora);
                (256 << 20, 4 * (attn + idx), 512)
            }
            (false, _) => (1usize << 30, 4 * c.n_head.max(c.idx_heads) * t, 4096),
        };
        match self.opts.device_chunk {
            0 => (bytes / per_token.max(1)).clamp(1, most),
            n => n,
        }
    }

    /// One pass (`want`: the logits it returns; `None`, the cache filled only).
    fn forward_pass(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: Option<Logits>,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        let n = tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let p0 = cache.len;
        // The final norm's rows are also what the MTP block reads of the trunk.
        let keep_mtp = self.mtp.is_some() && cache.mtp.is_some();
        let out = match &self.gpu {
            Some(gw) => {
                let dkv = cache
                    .device
                    .as_mut()
                    .ok_or_else(|| GlmError::Input("a CPU cache given to a GPU model".into()))?;
                let mut ops = crate::gpu_ops::GpuOps::new(self, gw, dkv, p0, n)?;
                crate::pass::trunk(&mut ops, self, tokens, want, keep_mtp)?
            }
            None => {
                // Run the whole pass on a pool worker: every parallel kernel inside then forks
                // from a worker (no cross-thread injection and wake-up of the caller per
                // weight product).
                let mut out = None;
                rayon::scope(|_| {
                    out = Some((|| {
                        let mut ops = CpuOps::new(self, &mut cache.layers, None, p0, n)?;
                        crate::pass::trunk(&mut ops, self, tokens, want, keep_mtp)
                    })())
                });
                out.expect("scope ran the pass")?
            }
        };
        cache.len = p0 + n;
        if keep_mtp {
            self.mtp_catch_up(cache, tokens, p0, &out.hidden)?;
        }
        Ok(out.logits)
    }

    /// Rows of the embedding table `t` for `tokens` (`n_embd` floats each, after one another);
    /// with `zero_first` the first row is zero (the MTP block at position 0).
    pub(crate) fn embed_rows(
        &self,
        t: &QTensor,
        tokens: &[u32],
        zero_first: bool,
    ) -> Result<Vec<f32>, GlmError> {
        let d = self.config.n_embd;
        let row_bytes = t.ty().row_bytes(d)?;
        let bytes = t.bytes(&self.gguf);
        let mut out = vec![0f32; tokens.len() * d];
        for (k, &id) in tokens.iter().enumerate().skip(usize::from(zero_first)) {
            let o = id as usize * row_bytes;
            localglm_quants::dequantize_row(
                t.ty(),
                &bytes[o..o + row_bytes],
                &mut out[k * d..(k + 1) * d],
            )?;
        }
        Ok(out)
    }

    /// cos and sin of the interleaved RoPE angles for positions `p0..p0 + n`: `n × rope/2`
    /// each.
    pub(crate) fn rope_angles(&self, p0: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(2 * n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in p0..p0 + n {
            for f in &self.inv_freq {
                // Angle in f64: positions reach 10^6 and f32 would lose the phase.
                let a = p as f64 * *f as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        (cos, sin)
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
