//! The forward pass with the activations and the KV cache on the GPU (spec §B, the same math as
//! `model.rs`): embeddings are looked up on the host and uploaded, then every norm, RoPE,
//! product, the MLA attention (absorbed form, for prefill and decode alike), the cache stores,
//! the MoE routing and expert products, and the residual adds are recorded into one command
//! stream; only the logits come back.
//!
//! The indexer's top-k selection runs on the device too (an exact radix select per query).
//! One host crossing remains by design: a MoE layer whose routed experts stay in RAM
//! (`cpu_moe`) hands its normalised activations to the CPU kernels and takes the result back.

use crate::cache::KvCache;
use crate::gpu::GpuWeights;
use crate::model::{Logits, Model};
use crate::weights::{Ffn, GateUp, LayerWeights, QTensor};
use crate::GlmError;
use localglm_gpu::{cache_words, AttentionArgs, Buffer, Gpu, Pool, QWeight};
use localglm_quants::{dequantize_row, dequantize_to_vec, KvType};

/// Epsilons as in `model.rs` (HF defaults for the low-rank norms and the indexer LayerNorm).
const LORA_NORM_EPS: f32 = 1e-6;
/// Batches of at least this many tokens run the routed-expert products grouped by expert
/// (one read of an expert's weights per 8 of its tokens); smaller ones per slot.
const BY_EXPERT_FROM: usize = 8;
const INDEXER_LN_EPS: f32 = 1e-6;
/// The additive mask value of a key the indexer did not select (exp() of it is 0).
const HIDDEN: f32 = -1e30;

/// Per-layer vectors on the device.
pub(crate) struct DeviceVecs {
    attn_norm: Buffer,
    q_a_norm: Buffer,
    kv_a_norm: Buffer,
    ffn_norm: Buffer,
    /// LayerNorm weight then bias, `idx_dim` each.
    idx_norm: Option<Buffer>,
    expert_bias: Option<Buffer>,
}

/// The model's vectors on the device.
pub(crate) struct DeviceModel {
    layers: Vec<DeviceVecs>,
    output_norm: Buffer,
}

impl DeviceModel {
    pub(crate) fn upload(
        model_gguf: &localglm_gguf::GgufModel,
        gpu: &Gpu,
        w: &crate::weights::Weights,
    ) -> Result<Self, GlmError> {
        let vec = |t: &QTensor| -> Result<Vec<f32>, GlmError> {
            Ok(dequantize_to_vec(
                t.ty(),
                t.bytes(model_gguf),
                t.info.n_elems as usize,
            )?)
        };
        let up = |t: &QTensor| -> Result<Buffer, GlmError> { Ok(gpu.upload_f32(&vec(t)?)?) };
        let mut layers = Vec::with_capacity(w.layers.len());
        for l in &w.layers {
            let idx_norm = match &l.indexer {
                Some(ix) => {
                    let mut both = vec(&ix.k_norm_w)?;
                    both.extend(vec(&ix.k_norm_b)?);
                    Some(gpu.upload_f32(&both)?)
                }
                None => None,
            };
            let expert_bias = match &l.ffn {
                Ffn::Moe(m) => match &m.bias {
                    Some(b) => Some(up(b)?),
                    None => None,
                },
                Ffn::Dense(_) => None,
            };
            layers.push(DeviceVecs {
                attn_norm: up(&l.attn_norm)?,
                q_a_norm: up(&l.q_a_norm)?,
                kv_a_norm: up(&l.kv_a_norm)?,
                ffn_norm: up(&l.ffn_norm)?,
                idx_norm,
                expert_bias,
            });
        }
        Ok(Self {
            layers,
            output_norm: up(&w.output_norm)?,
        })
    }
}

/// A growable device buffer of cache rows (`words` u32 per row).
pub(crate) struct DeviceRows {
    buf: Option<Buffer>,
    cap: usize,
    words: usize,
}

impl DeviceRows {
    fn new(kv: KvType, width: usize) -> Self {
        Self {
            buf: None,
            cap: 0,
            words: cache_words(kv, width),
        }
    }

    /// Room for `rows` rows, keeping the first `keep` (capacity doubles).
    fn reserve(&mut self, gpu: &Gpu, rows: usize, keep: usize) -> Result<&Buffer, GlmError> {
        if rows > self.cap || self.buf.is_none() {
            let cap = rows.max(self.cap * 2).max(64);
            let fresh = gpu.zeros(cap * self.words)?;
            if let Some(old) = &self.buf {
                gpu.copy(old, 0, &fresh, 0, keep * self.words)?;
                // The old rows are freed once no cached bind group holds them.
                gpu.release_bindings();
            }
            self.buf = Some(fresh);
            self.cap = cap;
        }
        Ok(self.buf.as_ref().expect("reserved"))
    }
}

impl DeviceRows {
    fn bytes(&self) -> usize {
        self.cap * self.words * 4
    }

    /// A new buffer with a copy of the first `rows` rows.
    fn fork(&self, gpu: &Gpu, rows: usize) -> Result<Self, GlmError> {
        let mut out = Self {
            buf: None,
            cap: 0,
            words: self.words,
        };
        if let (Some(old), true) = (&self.buf, rows > 0) {
            let fresh = out.reserve(gpu, rows, 0)?.clone();
            gpu.copy(old, 0, &fresh, 0, rows * self.words)?;
        }
        Ok(out)
    }
}

impl DeviceKv {
    /// Bytes of device memory held.
    pub(crate) fn bytes(&self) -> usize {
        self.kv
            .iter()
            .chain(self.idx.iter().flatten())
            .map(DeviceRows::bytes)
            .sum()
    }

    /// A copy of the first `rows` tokens' caches.
    pub(crate) fn fork(&self, rows: usize) -> Result<Self, GlmError> {
        let gpu = &self.gpu;
        Ok(Self {
            kv: self
                .kv
                .iter()
                .map(|r| r.fork(gpu, rows))
                .collect::<Result<_, _>>()?,
            idx: self
                .idx
                .iter()
                .map(|r| r.as_ref().map(|r| r.fork(gpu, rows)).transpose())
                .collect::<Result<_, _>>()?,
            gpu: gpu.clone(),
        })
    }
}

/// One sequence's latent KV and indexer-key caches on the device.
pub(crate) struct DeviceKv {
    kv: Vec<DeviceRows>,
    idx: Vec<Option<DeviceRows>>,
    gpu: std::sync::Arc<Gpu>,
}

impl Drop for DeviceKv {
    /// Cached bind groups hold the cache's buffers: let them go with it.
    fn drop(&mut self) {
        self.gpu.release_bindings();
    }
}

impl Model {
    /// A fresh device cache (when the model runs the device pass).
    pub(crate) fn new_device_kv(&self) -> Option<DeviceKv> {
        let gw = self.gpu.as_ref()?;
        let kv = self.opts.kv_type;
        Some(DeviceKv {
            gpu: gw.gpu.clone(),
            kv: (0..self.config.n_layer)
                .map(|_| DeviceRows::new(kv, self.config.kv_width()))
                .collect(),
            idx: self
                .weights
                .layers
                .iter()
                .map(|l| {
                    l.indexer
                        .as_ref()
                        .map(|_| DeviceRows::new(kv, self.config.idx_dim))
                })
                .collect(),
        })
    }

    /// The forward pass on the device; see the module header.
    /// The forward pass on the device, in passes of at most [`Model::device_chunk`] tokens
    /// (the same result as one pass: each pass attends over the cache the previous ones
    /// filled).
    pub(crate) fn forward_device(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        which: Logits,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        let chunk = self.device_chunk(cache.len + tokens.len());
        if tokens.len() <= chunk {
            return self.device_pass(tokens, cache, Some(which));
        }
        let mut out = Vec::new();
        let parts: Vec<&[u32]> = tokens.chunks(chunk).collect();
        for (i, part) in parts.iter().enumerate() {
            // Only the last pass computes the last position's logits.
            let want = (which == Logits::All || i + 1 == parts.len()).then_some(which);
            out.extend(self.device_pass(part, cache, want)?);
        }
        Ok(out)
    }

    /// Tokens per device pass for a context of `t_len`: the attention scores scratch
    /// (tokens × heads × `t_len` floats) within 256 MiB, at most 512 tokens.
    fn device_chunk(&self, t_len: usize) -> usize {
        const SCORES_BYTES: usize = 256 << 20;
        match self.opts.device_chunk {
            0 => (SCORES_BYTES / (4 * self.config.n_head.max(1) * t_len.max(1))).clamp(1, 512),
            n => n,
        }
    }

    /// One device pass over `tokens`, with the logits `which` asks for (`None`: none, the
    /// cache filled only).
    fn device_pass(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        which: Option<Logits>,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        let gw = self.gpu.as_ref().expect("device pass on a GPU");
        let dm = gw.device.as_ref().expect("device vectors uploaded");
        let g: &Gpu = &gw.gpu;
        // Scratch reused across passes (one pass at a time per model).
        let mut pool = gw.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let pool = &mut *pool;
        let c = &self.config;
        let kvt = self.opts.kv_type;
        let n = tokens.len();
        let p0 = cache.len;
        let t_len = p0 + n;
        let d = c.n_embd;
        let (nh, nope, rope) = (c.n_head, c.qk_nope, c.qk_rope);
        let qk = nope + rope;
        let half = rope / 2;
        let width = c.kv_width();

        // Embeddings (rows of the token table) and the RoPE table, uploaded once.
        let x = {
            let t = &self.weights.token_embd;
            let row_bytes = t.ty().row_bytes(d)?;
            let bytes = t.bytes(&self.gguf);
            let mut out = vec![0f32; n * d];
            for (k, &id) in tokens.iter().enumerate() {
                let o = id as usize * row_bytes;
                dequantize_row(
                    t.ty(),
                    &bytes[o..o + row_bytes],
                    &mut out[k * d..(k + 1) * d],
                )?;
            }
            let x = pool.get(g, "x", n * d)?;
            g.write_f32(&x, &out)?;
            x
        };
        let table = {
            let mut cos = Vec::with_capacity(2 * n * half);
            let mut sin = Vec::with_capacity(n * half);
            for p in p0..t_len {
                for f in &self.inv_freq {
                    let a = p as f64 * *f as f64;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
            cos.extend(sin);
            let table = pool.get(g, "rope", cos.len())?;
            g.write_f32(&table, &cos)?;
            table
        };
        let sin_off = n * half;
        let head_ids: Vec<u32> = (0..n).flat_map(|_| 0..nh as u32).collect();
        let head_ids = {
            let b = pool.get(g, "head_ids", head_ids.len())?;
            g.write_u32(&b, &head_ids)?;
            b
        };

        // Scratch for the whole pass (sized for the widest layer).
        let k = c.n_expert_used.max(1);
        // Widest FFN intermediate of n tokens: dense, k routed experts per token, or shared.
        let ff = c
            .n_ff
            .max(c.expert_ff * k)
            .max(c.expert_ff * c.n_expert_shared.max(1));
        let h = pool.get(g, "h", n * d)?;
        let cq = pool.get(g, "cq", n * c.q_lora)?;
        let q = pool.get(g, "q", n * nh * qk)?;
        let kv = pool.get(g, "kv", n * width)?;
        let qabs = pool.get(g, "qabs", n * nh * c.kv_lora)?;
        let olat = pool.get(g, "olat", n * nh * c.kv_lora)?;
        let o = pool.get(g, "o", n * nh * c.v_head)?;
        let a = pool.get(g, "a", n * d)?;
        let scratch = pool.get(g, "scratch", n * nh * t_len)?;
        let gu = pool.get(g, "gu", 2 * n * ff)?;
        let act = pool.get(g, "act", n * ff)?;
        let y = pool.get(g, "y", n * k * d)?;
        let logits_r = pool.get(g, "logits_r", n * c.n_expert.max(1))?;
        let ids = pool.get(g, "ids", n * k)?;
        let wts = pool.get(g, "wts", n * k)?;
        let dkv = cache
            .device
            .as_mut()
            .ok_or_else(|| GlmError::Input("a CPU cache given to a GPU model".into()))?;

        let mut shared_mask: Option<Buffer> = None;
        for (i, lw) in self.weights.layers.iter().enumerate() {
            let v = &dm.layers[i];
            g.rms_norm((&x, 0, d), (&h, 0, d), (&v.attn_norm, 0), n, d, c.rms_eps)?;

            // Queries: c_q = RMSNorm(W_qa h), q = W_qb c_q, RoPE on each head's last dims.
            g.matmul(w(gw, &lw.q_a)?, &h, 0, n, &cq, 0)?;
            g.rms_norm(
                (&cq, 0, c.q_lora),
                (&cq, 0, c.q_lora),
                (&v.q_a_norm, 0),
                n,
                c.q_lora,
                LORA_NORM_EPS,
            )?;
            g.matmul(w(gw, &lw.q_b)?, &cq, 0, n, &q, 0)?;
            g.rope(&q, nope, n, nh, half, nh * qk, qk, &table, 0, sin_off)?;

            // The cache row: [RMSNorm(c_kv) ; RoPE(k_pe)], stored in the cache's type.
            g.matmul(w(gw, &lw.kv_a)?, &h, 0, n, &kv, 0)?;
            g.rms_norm(
                (&kv, 0, width),
                (&kv, 0, width),
                (&v.kv_a_norm, 0),
                n,
                c.kv_lora,
                LORA_NORM_EPS,
            )?;
            g.rope(&kv, c.kv_lora, n, 1, half, width, 0, &table, 0, sin_off)?;
            let rows = &mut dkv.kv[i];
            let words = rows.words;
            let kbuf = rows.reserve(g, t_len, p0)?;
            g.kv_store(kvt, kbuf, 0, words, p0, &kv, 0, width, n, width)?;

            // Which keys each query sees.
            let mask = match (&lw.indexer, dkv.idx[i].as_mut()) {
                (Some(_), Some(irows)) => {
                    let m =
                        self.device_indexer(g, gw, pool, lw, v, irows, &h, &cq, &table, n, p0)?;
                    shared_mask = m;
                    shared_mask.as_ref()
                }
                _ if c.has_indexer() && !c.indexer_full[i] => shared_mask.as_ref(),
                _ => None,
            };

            // Absorbed MLA: q̃ = K_b[h]·q_nope; attention over the latent cache; V_b; output.
            g.matvec_indexed_grouped(w(gw, &lw.k_b)?, &head_ids, n * nh, &q, 0, qk, 1, &qabs, 0)?;
            let kbuf = dkv.kv[i].buf.as_ref().expect("stored above");
            g.attention(&AttentionArgs {
                kv: kvt,
                out: &olat,
                out_off: 0,
                qabs: &qabs,
                qabs_off: 0,
                q: &q,
                qpe_off: nope,
                qpe_token_stride: nh * qk,
                qpe_head_stride: qk,
                cache: kbuf,
                key_base: 0,
                key_stride: words,
                scratch: &scratch,
                scratch_off: 0,
                mask,
                n,
                heads: nh,
                t_len,
                p0,
                kv_lora: c.kv_lora,
                rope,
                scale: c.attn_scale(),
            })?;
            g.matvec_indexed_grouped(
                w(gw, &lw.v_b)?,
                &head_ids,
                n * nh,
                &olat,
                0,
                c.kv_lora,
                1,
                &o,
                0,
            )?;
            // The output projection adds itself to the residual stream.
            g.matmul_add(w(gw, &lw.out)?, &o, 0, n, &x, 0)?;

            // Feed-forward.
            g.rms_norm((&x, 0, d), (&h, 0, d), (&v.ffn_norm, 0), n, d, c.rms_eps)?;
            match &lw.ffn {
                Ffn::Dense(f) => self.device_dense(g, gw, f, &h, &gu, &act, &x, n)?,
                Ffn::Moe(m) if gw.get(&m.down).is_none() => {
                    // Experts in RAM: the router runs here, its logits and the normed
                    // activations come back in one read, the CPU runs the routed experts, and
                    // their sum comes back to be added; the shared expert stays on the device.
                    let e = c.n_expert;
                    g.matmul(w(gw, &m.router)?, &h, 0, n, &logits_r, 0)?;
                    let mut back = g.read_f32_ranges(&[(&h, 0, n * d), (&logits_r, 0, n * e)])?;
                    let (lv, hv) = (back.pop().expect("logits"), back.pop().expect("h"));
                    let rows =
                        |v: &[f32], w: usize| v.chunks_exact(w).map(<[f32]>::to_vec).collect();
                    let (xs, logits): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (rows(&hv, d), rows(&lv, e));
                    let mut routed = vec![0f32; n * d];
                    self.moe_routed(m, &self.vecs[i], &logits, &xs, &mut routed)?;
                    g.write_f32(&a, &routed)?;
                    g.add(&x, 0, &a, 0, n * d)?;
                    if let Some(sh) = &m.shared {
                        self.device_dense(g, gw, sh, &h, &gu, &act, &x, n)?;
                    }
                }
                Ffn::Moe(m) => {
                    let (e, f) = (c.n_expert, c.expert_ff);
                    g.matmul(w(gw, &m.router)?, &h, 0, n, &logits_r, 0)?;
                    g.route(
                        &logits_r,
                        0,
                        v.expert_bias.as_ref(),
                        n,
                        e,
                        k,
                        c.gating == crate::config::Gating::Sigmoid,
                        c.expert_norm,
                        c.expert_scale,
                        &ids,
                        &wts,
                    )?;
                    let slots = n * k;
                    // A batch groups its slots by expert first, so each expert's weights are
                    // read once per 8 of its tokens; a decoded token reads its k directly.
                    let groups = if n >= BY_EXPERT_FROM {
                        let groups = pool.get(g, "groups", e + 1 + slots)?;
                        g.bucket(&ids, slots, e, &groups)?;
                        Some(groups)
                    } else {
                        None
                    };
                    let product =
                        |wt: &QWeight, x: &Buffer, xs: usize, xd: usize, y: &Buffer, yo| {
                            match &groups {
                                Some(gr) => g.matvec_by_expert(wt, gr, slots, x, 0, xs, xd, y, yo),
                                None => {
                                    g.matvec_indexed_grouped(wt, &ids, slots, x, 0, xs, xd, y, yo)
                                }
                            }
                        };
                    match &m.gate_up {
                        GateUp::Separate { gate, up } => {
                            product(w(gw, gate)?, &h, d, k, &gu, 0)?;
                            product(w(gw, up)?, &h, d, k, &gu, slots * f)?;
                            g.silu_mul(&act, 0, &gu, 0, slots * f, f, slots, f)?;
                        }
                        GateUp::Fused(t) => {
                            product(w(gw, t)?, &h, d, k, &gu, 0)?;
                            g.silu_mul(&act, 0, &gu, 0, f, 2 * f, slots, f)?;
                        }
                    }
                    product(w(gw, &m.down)?, &act, f, 1, &y, 0)?;
                    g.combine(&x, 0, &y, 0, &wts, 0, n, d, k)?;
                    if let Some(sh) = &m.shared {
                        self.device_dense(g, gw, sh, &h, &gu, &act, &x, n)?;
                    }
                }
            }
        }
        cache.len = t_len;

        let (first, rows) = match which {
            Some(Logits::Last) => (n - 1, 1),
            Some(Logits::All) => (0, n),
            None => {
                g.flush();
                return Ok(Vec::new());
            }
        };
        g.rms_norm(
            (&x, first * d, d),
            (&h, 0, d),
            (&dm.output_norm, 0),
            rows,
            d,
            c.rms_eps,
        )?;
        let out = pool.get(g, "logits", rows * c.vocab)?;
        g.matmul(w(gw, &self.weights.output)?, &h, 0, rows, &out, 0)?;
        let flat = g.read_f32_range(&out, 0, rows * c.vocab)?;
        Ok(flat.chunks_exact(c.vocab).map(<[f32]>::to_vec).collect())
    }

    /// Dense SwiGLU FFN (or the shared expert) of `h`, added to `out` (`[n, d]`: the residual
    /// stream).
    #[allow(clippy::too_many_arguments)]
    fn device_dense(
        &self,
        g: &Gpu,
        gw: &GpuWeights,
        f: &crate::weights::DenseFfn,
        h: &Buffer,
        gu: &Buffer,
        act: &Buffer,
        out: &Buffer,
        n: usize,
    ) -> Result<(), GlmError> {
        let ff = f.gate.rows();
        g.matmul(w(gw, &f.gate)?, h, 0, n, gu, 0)?;
        g.matmul(w(gw, &f.up)?, h, 0, n, gu, n * ff)?;
        g.silu_mul(act, 0, gu, 0, n * ff, ff, n, ff)?;
        g.matmul_add(w(gw, &f.down)?, act, 0, n, out, 0)?;
        Ok(())
    }

    /// The lightning indexer of a full layer on the device: stores this batch's keys and, once
    /// the context passes top-k, returns the additive selection mask `[n, T]` (`None`: every
    /// causal key is selected, i.e. dense attention).
    #[allow(clippy::too_many_arguments)]
    fn device_indexer(
        &self,
        g: &Gpu,
        gw: &GpuWeights,
        pool: &mut Pool,
        lw: &LayerWeights,
        v: &DeviceVecs,
        irows: &mut DeviceRows,
        h: &Buffer,
        cq: &Buffer,
        table: &Buffer,
        n: usize,
        p0: usize,
    ) -> Result<Option<Buffer>, GlmError> {
        let c = &self.config;
        let ix = lw.indexer.as_ref().expect("full layer");
        let (nih, dim, rope) = (c.idx_heads, c.idx_dim, c.qk_rope);
        let half = rope / 2;
        let sin_off = n * half;
        let t_len = p0 + n;
        let norm = v.idx_norm.as_ref().expect("full layer has its norm");

        // Keys: LayerNorm(W_k h), RoPE on the first `rope` dims; stored.
        let kb = pool.get(g, "idx_kb", n * dim)?;
        g.matmul(w(gw, &ix.k)?, h, 0, n, &kb, 0)?;
        g.layer_norm(
            (&kb, 0, dim),
            (&kb, 0, dim),
            (norm, 0),
            dim,
            n,
            dim,
            INDEXER_LN_EPS,
        )?;
        g.rope(&kb, 0, n, 1, half, dim, 0, table, 0, sin_off)?;
        let words = irows.words;
        let ibuf = irows.reserve(g, t_len, p0)?;
        g.kv_store(self.opts.kv_type, ibuf, 0, words, p0, &kb, 0, dim, n, dim)?;
        if t_len <= c.idx_topk {
            return Ok(None);
        }

        // Queries (RoPE per head), head weights, scores, and the top-k selection as a mask.
        let qb = pool.get(g, "idx_qb", n * nih * dim)?;
        g.matmul(w(gw, &ix.q_b)?, cq, 0, n, &qb, 0)?;
        g.rope(&qb, 0, n, nih, half, nih * dim, dim, table, 0, sin_off)?;
        let wb = pool.get(g, "idx_wb", n * nih)?;
        g.matmul(w(gw, &ix.proj)?, h, 0, n, &wb, 0)?;
        let sb = pool.get(g, "idx_sb", n * t_len)?;
        let ibuf = irows.buf.as_ref().expect("stored above");
        g.index_scores(
            self.opts.kv_type,
            &sb,
            0,
            &qb,
            0,
            &wb,
            0,
            ibuf,
            0,
            words,
            n,
            nih,
            dim,
            t_len,
            p0,
            1.0 / ((dim * nih) as f32).sqrt(),
        )?;
        let mask = pool.get(g, "idx_mask", n * t_len)?;
        g.topk_mask(&sb, 0, &mask, 0, n, t_len, p0, c.idx_topk, HIDDEN)?;
        Ok(Some(mask))
    }
}

/// The device copy of a weight the pass multiplies by (all are placed, but for the routed
/// experts of CPU layers, which the pass never asks for).
fn w<'a>(gw: &'a GpuWeights, t: &QTensor) -> Result<&'a QWeight, GlmError> {
    gw.get(t)
        .ok_or_else(|| GlmError::Load(format!("{} is not on the GPU", t.info.name)))
}
