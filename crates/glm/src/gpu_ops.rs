//! [`Ops`] on the GPU: the activations and the KV cache live on the device. Embeddings are
//! looked up on the host and uploaded, then every norm, RoPE, product, the MLA attention
//! (absorbed form, for prefill and decode alike) — or a dense model's biases, per-head norms
//! and causal GQA attention over `[k ; v]` rows (each half stored on its own, whole words) —
//! the cache stores, the MoE routing and expert products, and the residual adds are recorded
//! into one command stream; only what the pass
//! returns comes back (the logits, and with the MTP block loaded the final-norm rows it reads),
//! in one read.
//!
//! The indexer's top-k selection runs on the device too (an exact radix select per query).
//! One host crossing remains by design: a MoE layer whose routed experts stay in RAM
//! (`cpu_moe`) hands its normalised activations to the CPU kernels and takes the result back.

use crate::gpu::GpuWeights;
use crate::model::Model;
use crate::pass::{linears_each, Ops, RowPrep, Site, Vector};
use crate::weights::{Attention, DenseFfn, Ffn, LayerWeights, MlaWeights, MoeWeights, QTensor};
use crate::GlmError;
use localglm_gpu::{cache_words, AttentionArgs, Buffer, Gpu, GqaAttentionArgs, Pool, QWeight};
use localglm_quants::dequantize_to_vec;

#[path = "gpu_moe.rs"]
mod moe;
#[path = "gpu_store.rs"]
mod store;

/// Batches of at least this many tokens run the routed-expert products grouped by expert
/// (one read of an expert's weights per 8 of its tokens); smaller ones per slot.
const BY_EXPERT_FROM: usize = 8;
/// The additive mask value of a key the indexer did not select (exp() of it is 0).
const HIDDEN: f32 = -1e30;

/// Per-layer vectors on the device.
pub(crate) struct DeviceVecs {
    attn_norm: Buffer,
    /// MLA's q_a norm, or a dense model's per-head q norm (when it has one).
    q_norm: Option<Buffer>,
    /// MLA's kv_a norm, or a dense model's per-head k norm.
    k_norm: Option<Buffer>,
    /// A dense model's q, k and v biases (qwen2).
    bias: [Option<Buffer>; 3],
    ffn_norm: Buffer,
    /// LayerNorm weight then bias, `idx_dim` each.
    idx_norm: Option<Buffer>,
    expert_bias: Option<Buffer>,
}

/// The MTP block's vectors on the device.
pub(crate) struct DeviceMtp {
    layer: DeviceVecs,
    enorm: Buffer,
    hnorm: Buffer,
    head_norm: Buffer,
}

/// The model's vectors on the device.
pub(crate) struct DeviceModel {
    layers: Vec<DeviceVecs>,
    output_norm: Buffer,
    mtp: Option<DeviceMtp>,
}

impl DeviceModel {
    pub(crate) fn upload(
        model_gguf: &localglm_gguf::GgufModel,
        gpu: &Gpu,
        w: &crate::weights::Weights,
        mtp: Option<&crate::weights::MtpWeights>,
    ) -> Result<Self, GlmError> {
        let vec = |t: &QTensor| -> Result<Vec<f32>, GlmError> {
            Ok(dequantize_to_vec(
                t.ty(),
                t.bytes(model_gguf),
                t.info.n_elems as usize,
            )?)
        };
        let up = |t: &QTensor| -> Result<Buffer, GlmError> { Ok(gpu.upload_f32(&vec(t)?)?) };
        let opt = |t: &Option<QTensor>| t.as_ref().map(up).transpose();
        let layer = |l: &LayerWeights| -> Result<DeviceVecs, GlmError> {
            let (q_norm, k_norm, bias) = match &l.attn {
                Attention::Mla(a) => (
                    Some(up(&a.q_a_norm)?),
                    Some(up(&a.kv_a_norm)?),
                    Default::default(),
                ),
                Attention::Gqa(a) => (
                    opt(&a.q_norm)?,
                    opt(&a.k_norm)?,
                    [opt(&a.q_bias)?, opt(&a.k_bias)?, opt(&a.v_bias)?],
                ),
            };
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
            Ok(DeviceVecs {
                attn_norm: up(&l.attn_norm)?,
                q_norm,
                k_norm,
                bias,
                ffn_norm: up(&l.ffn_norm)?,
                idx_norm,
                expert_bias,
            })
        };
        let mtp = match mtp {
            Some(m) => Some(DeviceMtp {
                layer: layer(&m.layer)?,
                enorm: up(&m.enorm)?,
                hnorm: up(&m.hnorm)?,
                head_norm: up(&m.head_norm)?,
            }),
            None => None,
        };
        Ok(Self {
            layers: w.layers.iter().map(layer).collect::<Result<_, _>>()?,
            output_norm: up(&w.output_norm)?,
            mtp,
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
    /// Rows of `words` u32 each.
    fn new(words: usize) -> Self {
        Self {
            buf: None,
            cap: 0,
            words,
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

    /// A new buffer with a copy of the first `rows` rows (as many as it holds: the MTP
    /// block's cache is a row behind the trunk's).
    fn fork(&self, gpu: &Gpu, rows: usize) -> Result<Self, GlmError> {
        let mut out = Self {
            buf: None,
            cap: 0,
            words: self.words,
        };
        let rows = rows.min(self.cap);
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
        // A dense model's row is its keys then its values, each half whole words (so each is
        // stored on its own).
        let row_words = match self.config.gqa {
            Some(g) => 2 * cache_words(kv, g.n_kv_head * g.head_dim),
            None => cache_words(kv, self.config.kv_width()),
        };
        // The MTP block's caches, when it is loaded, follow the trunk's layers.
        let layers = self
            .weights
            .layers
            .iter()
            .chain(self.mtp.as_ref().map(|b| &b.w.layer));
        Some(DeviceKv {
            gpu: gw.gpu.clone(),
            kv: layers.clone().map(|_| DeviceRows::new(row_words)).collect(),
            idx: layers
                .map(|l| {
                    l.indexer
                        .as_ref()
                        .map(|_| DeviceRows::new(cache_words(kv, self.config.idx_dim)))
                })
                .collect(),
        })
    }
}

/// An activation on the device: `rows × width` floats at `off` in `buf`, rows `stride` floats
/// apart (`width`, but for a view of one product's outputs in a stacked product's rows).
#[derive(Clone)]
pub(crate) struct Act {
    buf: Buffer,
    off: usize,
    rows: usize,
    width: usize,
    stride: usize,
}

impl Act {
    fn new(buf: Buffer, rows: usize, width: usize) -> Self {
        Self {
            buf,
            off: 0,
            rows,
            width,
            stride: width,
        }
    }

    fn len(&self) -> usize {
        self.rows * self.width
    }

    /// Itself, when its rows are adjacent (the ops that take a flat range need them so).
    fn flat(&self) -> Result<&Self, GlmError> {
        match self.stride == self.width || self.rows <= 1 {
            true => Ok(self),
            false => Err(GlmError::Input(
                "a strided activation where a flat one is needed".into(),
            )),
        }
    }
}

/// One device pass: positions `p0..p0 + n` over a sequence's device cache, every op recorded
/// into the pending submission.
pub(crate) struct GpuOps<'a> {
    m: &'a Model,
    gw: &'a GpuWeights,
    dm: &'a DeviceModel,
    g: &'a Gpu,
    /// Scratch reused across passes (one pass at a time per model).
    pool: std::sync::MutexGuard<'a, Pool>,
    dkv: &'a mut DeviceKv,
    p0: usize,
    n: usize,
    /// The RoPE table of the pass's positions: cos rows, then sin rows at `sin_off`.
    table: Buffer,
    sin_off: usize,
    /// Each token's head numbers (the per-head products' expert ids), and for a batch the
    /// slots grouped by head (`Gpu::bucket`'s layout), so a head's weights are read per tile.
    head_ids: Buffer,
    head_groups: Option<Buffer>,
}

impl<'a> GpuOps<'a> {
    pub(crate) fn new(
        m: &'a Model,
        gw: &'a GpuWeights,
        dkv: &'a mut DeviceKv,
        p0: usize,
        n: usize,
    ) -> Result<Self, GlmError> {
        let dm = gw.device.as_ref().expect("device vectors uploaded");
        let g: &Gpu = &gw.gpu;
        let mut pool = gw.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let half = m.inv_freq.len();
        let (mut cos, sin) = m.rope_angles(p0, n);
        cos.extend(sin);
        let table = pool.get(g, "rope", cos.len())?;
        g.write_f32(&table, &cos)?;
        let nh = m.config.n_head;
        let ids: Vec<u32> = (0..n).flat_map(|_| 0..nh as u32).collect();
        let head_ids = pool.get(g, "head_ids", ids.len())?;
        g.write_u32(&head_ids, &ids)?;
        let mut head_groups = None;
        if n >= BY_EXPERT_FROM {
            let slots = (0..nh).flat_map(|h| (0..n).map(move |t| (t * nh + h) as u32));
            let groups: Vec<u32> = (0..=nh).map(|h| (h * n) as u32).chain(slots).collect();
            let buf = head_groups.insert(pool.get(g, "head_groups", groups.len())?);
            g.write_u32(buf, &groups)?;
        }
        Ok(Self {
            m,
            gw,
            dm,
            g,
            pool,
            dkv,
            p0,
            n,
            table,
            sin_off: n * half,
            head_ids,
            head_groups,
        })
    }

    fn get(&mut self, slot: &'static str, len: usize) -> Result<Buffer, GlmError> {
        Ok(self.pool.get(self.g, slot, len)?)
    }

    /// The cache index of `at` (the MTP block's follows the trunk's layers).
    fn layer(&self, at: Site) -> usize {
        match at {
            Site::Trunk(i) => i,
            Site::Mtp => self.m.config.n_layer,
        }
    }

    fn mtp(&self) -> Result<&'a DeviceMtp, GlmError> {
        self.dm
            .mtp
            .as_ref()
            .ok_or_else(|| GlmError::Input("the MTP block is not on the GPU".into()))
    }

    fn vecs(&self, at: Site) -> Result<&'a DeviceVecs, GlmError> {
        match at {
            Site::Trunk(i) => Ok(&self.dm.layers[i]),
            Site::Mtp => Ok(&self.mtp()?.layer),
        }
    }

    fn vector(&self, v: Vector) -> Result<&'a Buffer, GlmError> {
        Ok(match v {
            Vector::Attn(at) => &self.vecs(at)?.attn_norm,
            Vector::QNorm(at) => need(&self.vecs(at)?.q_norm, "q norm")?,
            Vector::KNorm(at) => need(&self.vecs(at)?.k_norm, "k norm")?,
            Vector::Bias(at, i) => need(&self.vecs(at)?.bias[i], "bias")?,
            Vector::Ffn(at) => &self.vecs(at)?.ffn_norm,
            Vector::Output => &self.dm.output_norm,
            Vector::MtpE => &self.mtp()?.enorm,
            Vector::MtpH => &self.mtp()?.hnorm,
            Vector::MtpHead => &self.mtp()?.head_norm,
        })
    }

    fn w(&self, t: &QTensor) -> Result<&'a QWeight, GlmError> {
        w(self.gw, t)
    }
}

/// A vector a layer has, or the error that it has none.
fn need<'b>(v: &'b Option<Buffer>, what: &str) -> Result<&'b Buffer, GlmError> {
    v.as_ref()
        .ok_or_else(|| GlmError::Input(format!("no {what} on the device")))
}

impl Drop for GpuOps<'_> {
    /// A pass that stopped on an error leaves its recorded work submitted, so the next pass's
    /// uploads (ordered before the next submission) cannot land under it. (A pass that ended
    /// normally has submitted already: then this does nothing.)
    fn drop(&mut self) {
        self.g.flush();
    }
}

impl Ops for GpuOps<'_> {
    type X = Act;
    type Mask = Buffer;

    fn embed(&mut self, t: &QTensor, tokens: &[u32], zero_first: bool) -> Result<Act, GlmError> {
        let rows = self.m.embed_rows(t, tokens, zero_first)?;
        self.upload(&rows, self.m.config.n_embd, "x")
    }

    fn upload(
        &mut self,
        values: &[f32],
        width: usize,
        slot: &'static str,
    ) -> Result<Act, GlmError> {
        let buf = self.get(slot, values.len())?;
        self.g.write_f32(&buf, values)?;
        Ok(Act::new(buf, values.len() / width, width))
    }

    fn rms_norm(
        &mut self,
        x: &Act,
        v: Vector,
        eps: f32,
        slot: &'static str,
    ) -> Result<Act, GlmError> {
        let y = self.get(slot, x.len())?;
        let w = self.vector(v)?;
        let d = x.width;
        self.g.rms_norm(
            (&x.buf, x.off, x.stride),
            (&y, 0, d),
            (w, 0),
            x.rows,
            d,
            eps,
        )?;
        Ok(Act::new(y, x.rows, d))
    }

    fn rms_norm_in(&mut self, x: Act, v: Vector, cols: usize, eps: f32) -> Result<Act, GlmError> {
        let w = self.vector(v)?;
        let at = (&x.buf, x.off, x.stride);
        self.g.rms_norm(at, at, (w, 0), x.rows, cols, eps)?;
        Ok(x)
    }

    fn rms_norm_heads(
        &mut self,
        x: Act,
        v: Vector,
        width: usize,
        eps: f32,
    ) -> Result<Act, GlmError> {
        // Each head of each row is a row of its own.
        x.flat()?;
        let w = self.vector(v)?;
        let at = (&x.buf, x.off, width);
        let rows = x.len() / width;
        self.g.rms_norm(at, at, (w, 0), rows, width, eps)?;
        Ok(x)
    }

    fn add_vector(&mut self, x: Act, v: Vector) -> Result<Act, GlmError> {
        let b = self.vector(v)?;
        x.flat()?;
        self.g.add_rows(&x.buf, x.off, x.rows, x.width, b, 0)?;
        Ok(x)
    }

    fn layer_norm_in(&mut self, x: Act, at: Site, eps: f32) -> Result<Act, GlmError> {
        let norm = self.vecs(at)?.idx_norm.as_ref();
        let norm = norm.ok_or_else(|| GlmError::Input("no indexer norm".into()))?;
        let d = x.width;
        let place = (&x.buf, x.off, x.stride);
        // The bias follows the weight in one buffer.
        self.g
            .layer_norm(place, place, (norm, 0), d, x.rows, d, eps)?;
        Ok(x)
    }

    fn linear(
        &mut self,
        t: &QTensor,
        x: &Act,
        _: bool,
        slot: &'static str,
    ) -> Result<Act, GlmError> {
        // The device computes in f32 from the decoded blocks: `exact` always holds.
        let y = self.get(slot, x.rows * t.rows())?;
        self.g
            .matmul_strided(self.w(t)?, &x.buf, x.off, x.stride, x.rows, &y, 0)?;
        Ok(Act::new(y, x.rows, t.rows()))
    }

    fn linears(&mut self, ws: &[&QTensor], x: &Act) -> Result<Vec<Act>, GlmError> {
        let Some(q) = self.gw.stack(ws) else {
            return linears_each(self, ws, x);
        };
        // One product; each weight's outputs a view of every token's row of the stack's.
        let y = self.get("stacked", x.rows * q.rows())?;
        self.g
            .matmul_strided(q, &x.buf, x.off, x.stride, x.rows, &y, 0)?;
        let mut off = 0;
        let mut views = Vec::with_capacity(ws.len());
        for t in ws {
            views.push(Act {
                buf: y.clone(),
                off,
                rows: x.rows,
                width: t.rows(),
                stride: q.rows(),
            });
            off += t.rows();
        }
        Ok(views)
    }

    fn linear_add(&mut self, t: &QTensor, x: &Act, acc: Act) -> Result<Act, GlmError> {
        x.flat()?;
        self.g
            .matmul_add(self.w(t)?, &x.buf, x.off, x.rows, &acc.buf, acc.off)?;
        Ok(acc)
    }

    fn rope(
        &mut self,
        x: Act,
        heads: usize,
        head_width: usize,
        off: usize,
    ) -> Result<Act, GlmError> {
        let r = self.row_rope(off);
        let (cos, sin) = (r.cos_off, r.sin_off);
        let at = x.off + r.off;
        let (rows, stride) = (x.rows, x.stride);
        self.g.rope(
            &x.buf, at, rows, heads, r.half, stride, head_width, r.table, cos, sin, r.halves,
        )?;
        Ok(x)
    }

    fn ffn_add(&mut self, f: &DenseFfn, x: &Act, acc: Act) -> Result<Act, GlmError> {
        let (n, ff) = (x.rows, f.gate.rows());
        let gu = self.get("gu", 2 * n * ff)?;
        // Where the up product sits: (floats from a token's gate product, between tokens).
        let (up, stride) = match self.gw.stack(&[&f.gate, &f.up]) {
            Some(pair) => {
                self.g.matmul(pair, &x.buf, x.off, n, &gu, 0)?;
                (ff, 2 * ff)
            }
            None => {
                self.g.matmul(self.w(&f.gate)?, &x.buf, x.off, n, &gu, 0)?;
                self.g
                    .matmul(self.w(&f.up)?, &x.buf, x.off, n, &gu, n * ff)?;
                (n * ff, ff)
            }
        };
        if n == 1 {
            // A decoded token: SwiGLU inside the down product's activation staging.
            self.g
                .matvec_swiglu_add(self.w(&f.down)?, &gu, 0, up, &acc.buf, acc.off)?;
            return Ok(acc);
        }
        let act = self.get("act", n * ff)?;
        self.g.silu_mul(&act, 0, &gu, 0, up, stride, n, ff)?;
        self.g
            .matmul_add(self.w(&f.down)?, &act, 0, n, &acc.buf, acc.off)?;
        Ok(acc)
    }

    fn store_kv(&mut self, at: Site, rows: &Act) -> Result<(), GlmError> {
        self.store(self.layer(at), false, &[(rows, 0)])
    }

    fn store_kv_pair(&mut self, at: Site, k: &Act, v: &Act) -> Result<(), GlmError> {
        let i = self.layer(at);
        let half = self.dkv.kv[i].words / 2;
        self.store(i, false, &[(k, 0), (v, half)])
    }

    fn attend_gqa(&mut self, at: Site, q: &Act) -> Result<Act, GlmError> {
        let c = &self.m.config;
        let g = c
            .gqa
            .ok_or_else(|| GlmError::Input("GQA on an MLA model".into()))?;
        let i = self.layer(at);
        let (n, nh, t_len) = (q.rows, c.n_head, self.p0 + self.n);
        let scratch = self.get("scratch", n * nh * t_len)?;
        let o = self.get("o", n * nh * g.head_dim)?;
        let rows = &self.dkv.kv[i];
        self.g.attention_gqa(&GqaAttentionArgs {
            kv: self.m.opts.kv_type,
            out: &o,
            out_off: 0,
            q: &q.buf,
            q_off: q.off,
            cache: rows.buf.as_ref().expect("stored above"),
            key_base: 0,
            key_stride: rows.words,
            v_base: rows.words / 2,
            scratch: &scratch,
            scratch_off: 0,
            n,
            heads: nh,
            kv_heads: g.n_kv_head,
            head_dim: g.head_dim,
            t_len,
            p0: self.p0,
            scale: c.attn_scale(),
        })?;
        Ok(Act::new(o, n, nh * g.head_dim))
    }

    fn cached(&self, _: Site) -> usize {
        self.p0 + self.n
    }

    fn store_index_keys(&mut self, at: Site, keys: &Act) -> Result<(), GlmError> {
        self.store(self.layer(at), true, &[(keys, 0)])
    }

    fn store_prepared(&mut self, at: Site, rows: Act, p: RowPrep) -> Result<(), GlmError> {
        self.store_prepared_on_device(at, rows, p)
    }

    fn index_select(&mut self, at: Site, q: &Act, w: &Act, scale: f32) -> Result<Buffer, GlmError> {
        let c = &self.m.config;
        let i = self.layer(at);
        let (n, t_len) = (q.rows, self.p0 + self.n);
        let sb = self.get("idx_sb", n * t_len)?;
        let mask = self.get("idx_mask", n * t_len)?;
        let keys = self.dkv.idx[i].as_ref().expect("keys stored");
        let cache = keys.buf.as_ref().expect("keys stored");
        self.g.index_scores(
            self.m.opts.kv_type,
            &sb,
            0,
            &q.buf,
            q.off,
            &w.buf,
            w.off,
            cache,
            0,
            keys.words,
            n,
            c.idx_heads,
            c.idx_dim,
            t_len,
            self.p0,
            scale,
        )?;
        self.g
            .topk_mask(&sb, 0, &mask, 0, n, t_len, self.p0, c.idx_topk, HIDDEN)?;
        Ok(mask)
    }

    fn attend(
        &mut self,
        at: Site,
        lw: &MlaWeights,
        q: &Act,
        mask: Option<&Buffer>,
    ) -> Result<Act, GlmError> {
        let c = &self.m.config;
        let i = self.layer(at);
        let (n, nh, t_len) = (q.rows, c.n_head, self.p0 + self.n);
        let qk = c.qk_nope + c.qk_rope;
        let qabs = self.get("qabs", n * nh * c.kv_lora)?;
        let olat = self.get("olat", n * nh * c.kv_lora)?;
        let words = localglm_gpu::attention_scratch_words(n, nh, c.kv_lora);
        let scratch = self.get("scratch", words)?;
        let o = self.get("o", n * nh * c.v_head)?;
        let (ids, groups) = (&self.head_ids, self.head_groups.as_ref());
        // Absorbed MLA: q̃ = K_b[h]·q_nope; attention over the latent cache; V_b.
        let (g, k_b, v_b) = (self.g, w(self.gw, &lw.k_b)?, w(self.gw, &lw.v_b)?);
        let per_head = |wt, x: &Buffer, xo, xs, y: &Buffer| match groups {
            Some(gr) => g.matvec_by_expert(wt, gr, n * nh, x, xo, xs, 1, y, 0),
            None => g.matvec_indexed_grouped(wt, ids, n * nh, x, xo, xs, 1, y, 0),
        };
        per_head(k_b, &q.buf, q.off, qk, &qabs)?;
        let rows = &self.dkv.kv[i];
        g.attention(&AttentionArgs {
            kv: self.m.opts.kv_type,
            out: &olat,
            out_off: 0,
            qabs: &qabs,
            qabs_off: 0,
            q: &q.buf,
            qpe_off: q.off + c.qk_nope,
            qpe_token_stride: nh * qk,
            qpe_head_stride: qk,
            cache: rows.buf.as_ref().expect("stored above"),
            key_base: 0,
            key_stride: rows.words,
            scratch: &scratch,
            scratch_off: 0,
            mask,
            selected: c.idx_topk,
            n,
            heads: nh,
            t_len,
            p0: self.p0,
            kv_lora: c.kv_lora,
            rope: c.qk_rope,
            scale: c.attn_scale(),
        })?;
        per_head(v_b, &olat, 0, c.kv_lora, &o)?;
        Ok(Act::new(o, n, nh * c.v_head))
    }

    fn moe(&mut self, at: Site, m: &MoeWeights, h: &Act, acc: Act) -> Result<Act, GlmError> {
        self.moe_on_device(at, m, h, acc)
    }

    fn norm_pair(
        &mut self,
        (x, vx): (&Act, Vector),
        (y, vy): (&Act, Vector),
        eps: f32,
        slot: &'static str,
    ) -> Result<Act, GlmError> {
        // Each norm writes its half of the output rows.
        let (d, rows) = (x.width, x.rows);
        let out = self.get(slot, rows * 2 * d)?;
        let (wx, wy) = (self.vector(vx)?, self.vector(vy)?);
        let g = self.g;
        g.rms_norm(
            (&x.buf, x.off, x.stride),
            (&out, 0, 2 * d),
            (wx, 0),
            rows,
            d,
            eps,
        )?;
        g.rms_norm(
            (&y.buf, y.off, y.stride),
            (&out, d, 2 * d),
            (wy, 0),
            rows,
            d,
            eps,
        )?;
        Ok(Act::new(out, rows, 2 * d))
    }

    fn rows(&mut self, x: Act, first: usize, count: usize) -> Result<Act, GlmError> {
        Ok(Act {
            off: x.off + first * x.stride,
            rows: count,
            ..x
        })
    }

    fn read(&mut self, xs: &[&Act]) -> Result<Vec<Vec<f32>>, GlmError> {
        for x in xs {
            x.flat()?;
        }
        let ranges: Vec<_> = xs.iter().map(|x| (&x.buf, x.off, x.len())).collect();
        Ok(self.g.read_f32_ranges(&ranges)?)
    }

    fn finish(&mut self) -> Result<(), GlmError> {
        self.g.flush();
        Ok(())
    }
}

/// The device copy of a weight the pass multiplies by (all are placed, but for the routed
/// experts of CPU layers, which the pass never asks for).
fn w<'a>(gw: &'a GpuWeights, t: &QTensor) -> Result<&'a QWeight, GlmError> {
    gw.get(t)
        .ok_or_else(|| GlmError::Load(format!("{} is not on the GPU", t.info.name)))
}
