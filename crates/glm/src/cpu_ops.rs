//! [`Ops`] on the CPU: activations are candle tensors in memory; weight products run the fused
//! quant kernels of `localglm-quants` straight from the memory map (int8 activations unless
//! `Activations::F32`); attention math, norms and RoPE are candle ops. Batches of up to
//! [`SMALL_BATCH`] tokens run the per-head and expert products as indexed mat-vecs; long
//! batches run MLA in expanded form where that saves work.

use crate::cache::LayerCache;
use crate::cpu_mla::mla;
use crate::model::{LayerVecs, Model, SMALL_BATCH};
use crate::pass::{Ops, Site, Vector};
use crate::weights::{DenseFfn, MlaWeights, MoeWeights, QTensor};
use crate::GlmError;
use candle_core::{DType, Tensor};
use localglm_quants::attn_rows::{self, Strided};
use localglm_quants::{matmul_with, matvec_many_with, Activations, MatvecPart};

/// One CPU pass: positions `p0..p0 + n` over the trunk's layer caches or the MTP block's.
pub(crate) struct CpuOps<'a> {
    m: &'a Model,
    trunk: &'a mut [LayerCache],
    mtp: Option<&'a mut LayerCache>,
    p0: usize,
    /// cos/sin of the interleaved RoPE for the pass's positions: `[n, rope/2]` each.
    cos: Tensor,
    sin: Tensor,
    /// The same tables on the host, for the plain-loop RoPE of f32 activations.
    cos_host: Vec<f32>,
    sin_host: Vec<f32>,
}

impl<'a> CpuOps<'a> {
    pub(crate) fn new(
        m: &'a Model,
        trunk: &'a mut [LayerCache],
        mtp: Option<&'a mut LayerCache>,
        p0: usize,
        n: usize,
    ) -> Result<Self, GlmError> {
        let half = m.inv_freq.len();
        let (c, s) = m.rope_angles(p0, n);
        let dev = &m.opts.device;
        Ok(Self {
            m,
            trunk,
            mtp,
            p0,
            cos: Tensor::from_vec(c.clone(), (n, half), dev)?,
            sin: Tensor::from_vec(s.clone(), (n, half), dev)?,
            cos_host: c,
            sin_host: s,
        })
    }

    fn cache(&mut self, at: Site) -> Result<&mut LayerCache, GlmError> {
        match at {
            Site::Trunk(i) => self.trunk.get_mut(i),
            Site::Mtp => self.mtp.as_deref_mut(),
        }
        .ok_or_else(|| GlmError::Input(format!("no cache for {at:?}")))
    }

    fn vecs(&self, at: Site) -> &'a LayerVecs {
        match at {
            Site::Trunk(i) => &self.m.vecs[i],
            Site::Mtp => &self.m.mtp.as_ref().expect("an MTP pass has its block").vecs,
        }
    }

    fn vector(&self, v: Vector) -> Result<&'a Tensor, GlmError> {
        let block = || self.m.mtp.as_ref().expect("an MTP pass has its block");
        let have = |t: &'a Option<Tensor>| {
            t.as_ref()
                .ok_or_else(|| GlmError::Input(format!("the model has no {v:?} vector")))
        };
        Ok(match v {
            Vector::Attn(at) => &self.vecs(at).attn_norm,
            Vector::QNorm(at) => have(&self.vecs(at).q_norm)?,
            Vector::KNorm(at) => have(&self.vecs(at).kv_norm)?,
            Vector::Bias(at, i) => have(&self.vecs(at).bias[i])?,
            Vector::Ffn(at) => &self.vecs(at).ffn_norm,
            Vector::Output => &self.m.output_norm,
            Vector::MtpE => &block().enorm,
            Vector::MtpH => &block().hnorm,
            Vector::MtpHead => &block().head_norm,
        })
    }

    fn mode(&self, exact: bool) -> Activations {
        match exact {
            true => Activations::F32,
            false => self.m.opts.activations,
        }
    }

    /// Additive causal mask `[n, T]` (0 visible, −∞ hidden).
    fn causal_mask(&self, n: usize, t_len: usize) -> Result<Tensor, GlmError> {
        let p0 = self.p0;
        let mut m = vec![f32::NEG_INFINITY; n * t_len];
        for i in 0..n {
            let visible = (p0 + i + 1).min(t_len);
            m[i * t_len..i * t_len + visible].fill(0.0);
        }
        Ok(Tensor::from_vec(m, (n, t_len), &self.m.opts.device)?)
    }

    /// The indexer scores of queries at `p0..` over the first `t_len` cached keys (causal):
    /// one query over an f16 cache read in place, or `cpu_attn`'s parallel GEMM tasks.
    fn index_scores(
        &mut self,
        at: Site,
        q: &Tensor,
        w: &Tensor,
        scale: f32,
        p0: usize,
        t_len: usize,
    ) -> Result<Vec<Vec<f32>>, GlmError> {
        let c = &self.m.config;
        let n = q.dim(0)?;
        let dev = self.m.opts.device.clone();
        let q = q.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let w = (w.to_dtype(DType::F32)? * scale as f64)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let kbuf = self.cache(at)?.idx_k.as_ref().expect("keys stored");
        let mut one = None;
        if n == 1 {
            let visible = (p0 + 1).min(t_len);
            kbuf.with_f16_bits(|bits, stride| {
                let keys = (bits, stride);
                one = Some(crate::cpu_attn::index_scores_f16(
                    &q, &w, c.idx_dim, keys, visible,
                ));
            });
        }
        if let Some(mut row) = one {
            row.resize(t_len, f32::NEG_INFINITY);
            return Ok(vec![row]);
        }
        let keys = kbuf.view(&dev)?.narrow(0, 0, t_len)?.flatten_all()?;
        let keys = keys.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        Ok(crate::cpu_attn::index_scores(&crate::cpu_attn::Indexer {
            q: &q,
            w: &w,
            keys: &keys,
            heads: c.idx_heads,
            n,
            d: c.idx_dim,
            t_len,
            p0,
        }))
    }
}

/// Activations up to this many values are RMS-normed in a plain loop on the calling thread:
/// candle's op runs on rayon, and from a thread outside its pool every call is a round trip
/// through a woken pool thread — ~60 of them per decoded token of a 30-layer model.
const PLAIN_NORM_MAX: usize = 1 << 16;

/// `RMSNorm(row)·w` for every row of the f32 matrix `x` (rows as wide as `w`), with candle's
/// formula (`x / sqrt(mean(x²) + eps) · w`, f32 sums).
fn rms_norm_plain(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor, GlmError> {
    let w = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let width = w.len();
    if width == 0 || !xs.len().is_multiple_of(width) {
        return Err(GlmError::Input(format!(
            "RMSNorm of {} values by a {width}-wide weight",
            xs.len()
        )));
    }
    let mut out = vec![0f32; xs.len()];
    for (src, dst) in xs.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let sum2 = src.iter().map(|v| v * v).sum::<f32>();
        let m = (sum2 / width as f32 + eps).sqrt();
        for ((d, s), a) in dst.iter_mut().zip(src).zip(&w) {
            *d = *s / m * *a;
        }
    }
    Ok(Tensor::from_vec(out, x.shape(), x.device())?)
}

impl CpuOps<'_> {
    /// [`Ops::attend_gqa`] for a few queries (decode, drafts) in plain loops over the cache's
    /// rows: the tensor form's reshapes, copies and small products cost ~200 µs a layer on
    /// SmolLM2 — more than the layer's weight products. One task per query, KV head and
    /// split of the cache (two splits from [`ATTN_SPLIT_FROM`] rows), on the thread team:
    /// each reads its KV head's columns in chunks of [`ATTN_CHUNK`] rows converted to f32 as
    /// they come, with the softmax kept online (a running maximum and sum per head; the
    /// output rescaled when the maximum grows); the splits' partial results are merged by
    /// their maxima. No f32 copy of the cache is made.
    fn attend_gqa_rows(&mut self, at: Site, q: &Tensor) -> Result<Tensor, GlmError> {
        let c = &self.m.config;
        let g = c.gqa.expect("a dense model");
        let (heads, kvh, hd) = (c.n_head, g.n_kv_head, g.head_dim);
        let group = heads / kvh;
        let scale = c.attn_scale();
        let n = q.dim(0)?;
        let qs = q.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let p0 = self.p0;
        let dev = self.m.opts.device.clone();
        let kv = &self.cache(at)?.kv;
        let t_len = kv.len;
        let splits = if t_len >= ATTN_SPLIT_FROM { 2 } else { 1 };
        let per = t_len.div_ceil(splits).next_multiple_of(ATTN_CHUNK);
        // Per task (query i, KV head, split): each head's running maximum, sum and output.
        let mut parts: Vec<AttnPart> = (0..n * kvh * splits)
            .map(|_| AttnPart {
                top: vec![f32::NEG_INFINITY; group],
                sum: vec![0f32; group],
                out: vec![0f32; group * hd],
                err: None,
            })
            .collect();
        let tasks: Vec<(usize, &mut AttnPart)> = parts.iter_mut().enumerate().collect();
        localglm_quants::team::for_each(tasks, |(k, part)| {
            let (i, kh, split) = (k / (kvh * splits), k / splits % kvh, k % splits);
            // Keys query i sees (causal), within this split.
            let visible = (p0 + i + 1).min(t_len);
            let rows = split * per..((split + 1) * per).min(visible);
            if rows.is_empty() {
                return;
            }
            let queries = &qs[(i * heads + kh * group) * hd..][..group * hd];
            let query = |j: usize| &queries[j * hd..][..hd];
            let mut scores = vec![0f32; group * ATTN_CHUNK];
            // An f16 cache is read in place: keys and values of this KV head at the cache's
            // row stride, each row converted once for the group's query heads.
            let in_place = kv.with_f16_bits(|bits, width| {
                for c0 in rows.clone().step_by(ATTN_CHUNK) {
                    let t_n = (rows.end - c0).min(ATTN_CHUNK);
                    let keys = &bits[c0 * width + kh * hd..];
                    let values = &bits[c0 * width + (kvh + kh) * hd..];
                    let s = &mut scores[..group * t_n];
                    attn_rows::dots_f16(queries, hd, keys, &Strided(width), s);
                    for (j, sj) in s.chunks_exact_mut(t_n).enumerate() {
                        fold_chunk(part, j, hd, scale, sj, |_, _| {});
                    }
                    attn_rows::axpys_f16(s, values, &Strided(width), hd, &mut part.out);
                }
            });
            if in_place {
                return;
            }
            let cols = [kh * hd..(kh + 1) * hd, (kvh + kh) * hd..(kvh + kh + 1) * hd];
            let r = kv.with_row_chunks(&dev, ATTN_CHUNK, rows, &cols, |chunk| {
                let t_n = chunk.len() / (2 * hd);
                for j in 0..group {
                    let s = &mut scores[..t_n];
                    for (t, s) in s.iter_mut().enumerate() {
                        *s = dot(query(j), &chunk[t * 2 * hd..][..hd]);
                    }
                    fold_chunk(part, j, hd, scale, s, |p, o| {
                        for (t, &p) in p.iter().enumerate() {
                            let v = &chunk[t * 2 * hd + hd..][..hd];
                            o.iter_mut().zip(v).for_each(|(oj, vj)| *oj += p * vj);
                        }
                    });
                }
            });
            part.err = r.err();
        });
        let mut out = vec![0f32; n * heads * hd];
        for (k, o) in out.chunks_exact_mut(group * hd).enumerate() {
            // Output block k: query k / kvh, KV head k % kvh; merge its splits.
            let mine = &parts[k * splits..(k + 1) * splits];
            if let Some(e) = mine.iter().find_map(|p| p.err.as_ref()) {
                return Err(GlmError::Input(format!("reading the KV cache: {e}")));
            }
            merge_parts(mine.iter(), hd, o);
        }
        Ok(Tensor::from_vec(out, (n, heads * hd), &dev)?)
    }
}

/// Folds one chunk of head `j`'s raw scores (`q·k`, scaled here) into its running maximum,
/// sum and output, leaving the scores as the chunk's probabilities; `add_values(p, out)` adds
/// `Σ_t p_t·v_t` of the chunk's values to `out` (the f16 path adds every head's at once after).
pub(crate) fn fold_chunk(
    part: &mut AttnPart,
    j: usize,
    hd: usize,
    scale: f32,
    scores: &mut [f32],
    add_values: impl FnOnce(&[f32], &mut [f32]),
) {
    let (m, sum) = attn_rows::softmax_chunk(scores, scale, part.top[j]);
    let o = &mut part.out[j * hd..][..hd];
    if m > part.top[j] && part.sum[j] > 0.0 {
        let r = (part.top[j] - m).exp();
        part.sum[j] *= r;
        o.iter_mut().for_each(|x| *x *= r);
    }
    part.top[j] = m;
    part.sum[j] += sum;
    add_values(scores, o);
}

/// Merges the splits `parts` of the same heads (in order) into their outputs `out`
/// (`heads × width`, zeroed): each head's rescaled sums over the largest maximum.
pub(crate) fn merge_parts<'p>(
    parts: impl Iterator<Item = &'p AttnPart> + Clone,
    width: usize,
    out: &mut [f32],
) {
    for (j, oj) in out.chunks_exact_mut(width).enumerate() {
        let top = parts
            .clone()
            .map(|p| p.top[j])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for p in parts.clone().filter(|p| p.sum[j] > 0.0) {
            let r = (p.top[j] - top).exp();
            sum += p.sum[j] * r;
            for (x, y) in oj.iter_mut().zip(&p.out[j * width..][..width]) {
                *x += r * y;
            }
        }
        oj.iter_mut().for_each(|x| *x /= sum);
    }
}

/// One attention task's partial result (see `attend_gqa_rows`).
pub(crate) struct AttnPart {
    pub(crate) top: Vec<f32>,
    pub(crate) sum: Vec<f32>,
    pub(crate) out: Vec<f32>,
    pub(crate) err: Option<candle_core::Error>,
}

/// Cache length from which decode attention splits each KV head's rows in two tasks.
pub(crate) const ATTN_SPLIT_FROM: usize = 4 * ATTN_CHUNK;

/// Cache rows per chunk of decode attention (`attend_gqa_rows`).
pub(crate) const ATTN_CHUNK: usize = 64;

/// `a · b` in eight independent lanes (so that it vectorizes).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// RoPE of one head's rotated span in place, as candle's `rope_i` (adjacent pairs) or
/// `rope` (`neox`: element j with j + half): `(a, b) → (a·cos − b·sin, a·sin + b·cos)`.
fn rope_span(x: &mut [f32], cos: &[f32], sin: &[f32], neox: bool) {
    let half = cos.len();
    for j in 0..half {
        let (i1, i2) = match neox {
            true => (j, j + half),
            false => (2 * j, 2 * j + 1),
        };
        let (a, b) = (x[i1], x[i2]);
        x[i1] = a * cos[j] - b * sin[j];
        x[i2] = a * sin[j] + b * cos[j];
    }
}

/// `[n, heads, d]` → RoPE'd, via candle's kernels (they want `[b, h, t, d]`): on adjacent
/// pairs, or (`neox`) on the two halves.
fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor, neox: bool) -> candle_core::Result<Tensor> {
    let x = x.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
    let y = match neox {
        true => candle_nn::rotary_emb::rope(&x, cos, sin)?,
        false => candle_nn::rotary_emb::rope_i(&x, cos, sin)?,
    };
    y.squeeze(0)?.transpose(0, 1)?.contiguous()
}

/// `x · Wᵀ` for a `[n, cols]` activation and a GGUF weight `[rows × cols]`.
pub(crate) fn linear(
    m: &Model,
    w: &QTensor,
    x: &Tensor,
    mode: Activations,
) -> Result<Tensor, GlmError> {
    let (n, cols) = x.dims2()?;
    let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let rows = w.rows();
    let mut ys = vec![0f32; n * rows];
    matmul_with(mode, w.ty(), w.bytes(&m.gguf), rows, cols, &xs, n, &mut ys)?;
    Ok(Tensor::from_vec(ys, (n, rows), &m.opts.device)?)
}

/// `x · Wᵀ` for each of `ws`, one token: one parallel product (`matvec_many_with`).
fn linears_one(
    m: &Model,
    ws: &[&QTensor],
    x: &Tensor,
    mode: Activations,
) -> Result<Vec<Tensor>, GlmError> {
    let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut ys: Vec<Vec<f32>> = ws.iter().map(|w| vec![0f32; w.rows()]).collect();
    let mut parts: Vec<MatvecPart> = ws
        .iter()
        .zip(ys.iter_mut())
        .map(|(w, y)| MatvecPart {
            ty: w.ty(),
            w: w.bytes(&m.gguf),
            y,
        })
        .collect();
    matvec_many_with(mode, &mut parts, &xs)?;
    ys.into_iter()
        .map(|y| {
            let n = y.len();
            Ok(Tensor::from_vec(y, (1, n), &m.opts.device)?)
        })
        .collect()
}

impl Ops for CpuOps<'_> {
    type X = Tensor;
    type Mask = Tensor;

    fn embed(&mut self, t: &QTensor, tokens: &[u32], zero_first: bool) -> Result<Tensor, GlmError> {
        let rows = self.m.embed_rows(t, tokens, zero_first)?;
        let d = self.m.config.n_embd;
        Ok(Tensor::from_vec(
            rows,
            (tokens.len(), d),
            &self.m.opts.device,
        )?)
    }

    fn upload(
        &mut self,
        values: &[f32],
        width: usize,
        _: &'static str,
    ) -> Result<Tensor, GlmError> {
        let rows = values.len() / width;
        Ok(Tensor::from_vec(
            values.to_vec(),
            (rows, width),
            &self.m.opts.device,
        )?)
    }

    fn rms_norm(
        &mut self,
        x: &Tensor,
        v: Vector,
        eps: f32,
        _: &'static str,
    ) -> Result<Tensor, GlmError> {
        let w = self.vector(v)?;
        if x.dtype() == DType::F32 && x.elem_count() <= PLAIN_NORM_MAX {
            return rms_norm_plain(x, w, eps);
        }
        Ok(candle_nn::ops::rms_norm(x, w, eps)?)
    }

    fn rms_norm_in(
        &mut self,
        x: Tensor,
        v: Vector,
        cols: usize,
        eps: f32,
    ) -> Result<Tensor, GlmError> {
        let width = x.dim(1)?;
        if cols == width {
            return self.rms_norm(&x, v, eps, "");
        }
        let head = x.narrow(1, 0, cols)?.contiguous()?;
        let head = self.rms_norm(&head, v, eps, "")?;
        Ok(Tensor::cat(&[&head, &x.narrow(1, cols, width - cols)?], 1)?)
    }

    fn rms_norm_heads(
        &mut self,
        x: Tensor,
        v: Vector,
        width: usize,
        eps: f32,
    ) -> Result<Tensor, GlmError> {
        let (n, cols) = x.dims2()?;
        let heads = x.reshape((n * cols / width, width))?;
        let normed = self.rms_norm(&heads, v, eps, "")?;
        Ok(normed.reshape((n, cols))?)
    }

    fn add_vector(&mut self, x: Tensor, v: Vector) -> Result<Tensor, GlmError> {
        Ok(x.broadcast_add(self.vector(v)?)?)
    }

    fn layer_norm_in(&mut self, x: Tensor, at: Site, eps: f32) -> Result<Tensor, GlmError> {
        let (w, b) = self
            .vecs(at)
            .idx_norm
            .as_ref()
            .expect("a full layer has its norm");
        Ok(candle_nn::ops::layer_norm(&x, w, b, eps)?)
    }

    fn linear(
        &mut self,
        w: &QTensor,
        x: &Tensor,
        exact: bool,
        _: &'static str,
    ) -> Result<Tensor, GlmError> {
        linear(self.m, w, x, self.mode(exact))
    }

    fn linears(&mut self, ws: &[&QTensor], x: &Tensor) -> Result<Vec<Tensor>, GlmError> {
        if x.dim(0)? != 1 {
            return ws
                .iter()
                .map(|w| linear(self.m, w, x, self.mode(false)))
                .collect();
        }
        linears_one(self.m, ws, x, self.mode(false))
    }

    fn linear_add(&mut self, w: &QTensor, x: &Tensor, acc: Tensor) -> Result<Tensor, GlmError> {
        Ok((acc + linear(self.m, w, x, self.mode(false))?)?)
    }

    fn rope(
        &mut self,
        x: Tensor,
        heads: usize,
        head_width: usize,
        off: usize,
    ) -> Result<Tensor, GlmError> {
        let rope = self.m.config.qk_rope;
        let n = x.dim(0)?;
        let neox = self.m.config.gqa.is_some_and(|g| g.neox);
        if x.dtype() == DType::F32 {
            // In place on the host rows, at any batch size: candle's kernels want `[b, h, t,
            // d]`, and the transposes, narrows and concatenation around them were ~4 % of a
            // 1024-token prefill.
            let mut v = x.flatten_all()?.to_vec1::<f32>()?;
            let half = rope / 2;
            for (i, row) in v.chunks_exact_mut(heads * head_width).enumerate() {
                let (cos, sin) = (&self.cos_host[i * half..], &self.sin_host[i * half..]);
                for head in row.chunks_exact_mut(head_width) {
                    rope_span(&mut head[off..off + rope], &cos[..half], &sin[..half], neox);
                }
            }
            return Ok(Tensor::from_vec(v, x.shape(), x.device())?);
        }
        let x = x.reshape((n, heads, head_width))?;
        let roped = rope_heads(&x.narrow(2, off, rope)?, &self.cos, &self.sin, neox)?;
        let mut parts = Vec::with_capacity(3);
        if off > 0 {
            parts.push(x.narrow(2, 0, off)?);
        }
        parts.push(roped);
        if off + rope < head_width {
            parts.push(x.narrow(2, off + rope, head_width - off - rope)?);
        }
        Ok(Tensor::cat(&parts, 2)?.reshape((n, heads * head_width))?)
    }

    fn ffn_add(&mut self, f: &DenseFfn, x: &Tensor, acc: Tensor) -> Result<Tensor, GlmError> {
        let gu = self.linears(&[&f.gate, &f.up], x)?;
        let a = (candle_nn::ops::silu(&gu[0])? * &gu[1])?;
        self.linear_add(&f.down, &a, acc)
    }

    fn store_kv(&mut self, at: Site, rows: &Tensor) -> Result<(), GlmError> {
        Ok(self.cache(at)?.kv.append(rows)?)
    }

    fn store_kv_pair(&mut self, at: Site, k: &Tensor, v: &Tensor) -> Result<(), GlmError> {
        let rows = Tensor::cat(&[k, v], 1)?;
        Ok(self.cache(at)?.kv.append(&rows)?)
    }

    fn cached(&self, at: Site) -> usize {
        let layer = match at {
            Site::Trunk(i) => self.trunk.get(i),
            Site::Mtp => self.mtp.as_deref(),
        };
        layer.map_or(0, |l| l.kv.len)
    }

    fn store_index_keys(&mut self, at: Site, keys: &Tensor) -> Result<(), GlmError> {
        let buf = self.cache(at)?.idx_k.as_mut();
        let buf = buf.ok_or_else(|| GlmError::Input("no indexer cache".into()))?;
        Ok(buf.append(keys)?)
    }

    fn index_select(
        &mut self,
        at: Site,
        q: &Tensor,
        w: &Tensor,
        scale: f32,
    ) -> Result<Tensor, GlmError> {
        let n = q.dim(0)?;
        let p0 = self.p0;
        let t_len = self.cache(at)?.idx_k.as_ref().expect("keys stored").len;
        let topk = self.m.config.idx_topk;
        let score = if (2..=SMALL_BATCH).contains(&n) {
            // A verification pass's few queries one at a time, each over the keys it sees, as
            // decode computes them: the same selection as decoding, to the last bit.
            let mut rows = Vec::with_capacity(n);
            for j in 0..n {
                let (qj, wj) = (q.narrow(0, j, 1)?, w.narrow(0, j, 1)?);
                let seen = t_len + 1 + j - n;
                rows.extend(self.index_scores(at, &qj, &wj, scale, p0 + j, seen)?);
            }
            rows
        } else {
            self.index_scores(at, q, w, scale, p0, t_len)?
        };
        let m = crate::model::topk_mask(&score, p0, t_len, topk, f32::NEG_INFINITY);
        Ok(Tensor::from_vec(m, (n, t_len), &self.m.opts.device)?)
    }

    fn attend_gqa(&mut self, at: Site, q: &Tensor) -> Result<Tensor, GlmError> {
        // Few queries (decode, short batches) on the row kernels, and prefill too over an f16
        // cache, read in place: the tensor form below materializes every head's scores and a
        // converted copy of the cache (at 1024 tokens, prefill ran at ~0.5x llama.cpp's; 1.5x
        // on the row kernels). Both are as close to `transformers` (the real-file test).
        if q.dim(0)? <= SMALL_BATCH || self.cache(at)?.kv.with_f16_bits(|_, _| {}) {
            return self.attend_gqa_rows(at, q);
        }
        let c = &self.m.config;
        let g = c.gqa.expect("a dense model");
        let (kvh, hd) = (g.n_kv_head, g.head_dim);
        let group = c.n_head / kvh;
        let n = q.dim(0)?;
        let dev = self.m.opts.device.clone();
        let rows = self.cache(at)?.kv.view(&dev)?; // [T, 2·kvh·hd]
        let t_len = rows.dim(0)?;
        let mask = self.causal_mask(n, t_len)?;
        let split = |off: usize| -> Result<Tensor, GlmError> {
            Ok(rows
                .narrow(1, off, kvh * hd)?
                .reshape((t_len, kvh, hd))?
                .transpose(0, 1)?
                .contiguous()?) // [kvh, T, hd]
        };
        let (k, v) = (split(0)?, split(kvh * hd)?);
        // Query heads h·group..(h+1)·group share KV head h: [kvh, n·group, hd].
        let q = q
            .reshape((n, kvh, group, hd))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((kvh, n * group, hd))?;
        let scores = (q.matmul(&k.t()?)? * c.attn_scale() as f64)?
            .reshape((kvh, n, group, t_len))?
            .broadcast_add(&mask.reshape((1, n, 1, t_len))?)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((kvh, n * group, t_len))?;
        let o = probs.matmul(&v)?; // [kvh, n·group, hd]
        Ok(o.reshape((kvh, n, group, hd))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((n, c.n_head * hd))?)
    }

    fn attend(
        &mut self,
        at: Site,
        lw: &MlaWeights,
        q: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor, GlmError> {
        let n = q.dim(0)?;
        if n <= SMALL_BATCH {
            let (m, p0) = (self.m, self.p0);
            let kv = &self.cache(at)?.kv;
            if let Some(o) = crate::cpu_mla::absorbed_rows_f16(m, lw, q, kv, mask, p0)? {
                return Ok(o);
            }
        }
        let dev = self.m.opts.device.clone();
        let keys = self.cache(at)?.kv.view(&dev)?; // [T, kv_lora + rope]
        let t_len = keys.dim(0)?;
        let mask = match mask {
            Some(m) => m.clone(),
            None => self.causal_mask(n, t_len)?,
        };
        if (2..=SMALL_BATCH).contains(&n) {
            // As in `index_select`: each query alone over the keys it sees, as decode computes
            // it, so a verification pass attends exactly as decoding does.
            let mut outs = Vec::with_capacity(n);
            for j in 0..n {
                let seen = t_len + 1 + j - n;
                let mj = mask.narrow(0, j, 1)?.narrow(1, 0, seen)?;
                let kj = keys.narrow(0, 0, seen)?;
                outs.push(mla(self.m, lw, &q.narrow(0, j, 1)?, &kj, &mj)?);
            }
            return Ok(Tensor::cat(&outs, 0)?);
        }
        mla(self.m, lw, q, &keys, &mask)
    }

    fn moe(
        &mut self,
        at: Site,
        m: &MoeWeights,
        h: &Tensor,
        acc: Tensor,
    ) -> Result<Tensor, GlmError> {
        let (n, d) = h.dims2()?;
        let logits = linear(self.m, &m.router, h, Activations::F32)?.to_vec2::<f32>()?;
        let xs = h.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut out = vec![0f32; n * d];
        self.m
            .moe_routed(m, self.vecs(at), &logits, &xs, &mut out)?;
        Ok((acc + Tensor::from_vec(out, (n, d), &self.m.opts.device)?)?)
    }

    fn norm_pair(
        &mut self,
        (x, vx): (&Tensor, Vector),
        (y, vy): (&Tensor, Vector),
        eps: f32,
        _: &'static str,
    ) -> Result<Tensor, GlmError> {
        let x = candle_nn::ops::rms_norm(x, self.vector(vx)?, eps)?;
        let y = candle_nn::ops::rms_norm(y, self.vector(vy)?, eps)?;
        Ok(Tensor::cat(&[&x, &y], 1)?)
    }

    fn rows(&mut self, x: Tensor, first: usize, count: usize) -> Result<Tensor, GlmError> {
        Ok(x.narrow(0, first, count)?)
    }

    fn read(&mut self, xs: &[&Tensor]) -> Result<Vec<Vec<f32>>, GlmError> {
        xs.iter()
            .map(|x| Ok(x.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    fn finish(&mut self) -> Result<(), GlmError> {
        Ok(())
    }
}
