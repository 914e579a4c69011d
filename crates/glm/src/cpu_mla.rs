//! Multi-head latent attention (spec §B.3) on the CPU backend: absorbed through the per-head
//! `attn_k_b` / `attn_v_b` products for decode and short batches, expanded for long batches.

use crate::cache::GrowBuf;
use crate::cpu_ops::{fold_chunk, merge_parts, AttnPart, ATTN_CHUNK, ATTN_SPLIT_FROM};
use crate::model::{Model, SMALL_BATCH};
use crate::weights::{MlaWeights, QTensor};
use crate::GlmError;
use candle_core::{DType, Tensor};
use localglm_quants::{attn_rows, matmul_with, matvec_indexed_with};

/// Per-head products with a stacked `[heads][rows × cols]` weight (`attn_k_b`, `attn_v_b`):
/// `x` is `[n, heads, cols]`, the result `[n, heads, rows]`.
pub(crate) fn per_head(m: &Model, w: &QTensor, x: &Tensor) -> Result<Tensor, GlmError> {
    let (n, h, cols) = x.dims3()?;
    let mode = m.opts.activations;
    let rows = w.rows();
    if n > SMALL_BATCH {
        // Prefill: one batched product per head (its weights decoded once for all tokens).
        let per = w.ty().row_bytes(cols)? * rows;
        let bytes = w.bytes(&m.gguf);
        let xh = x.transpose(0, 1)?.contiguous()?.to_vec3::<f32>()?; // [h][n][cols]
        let mut out = vec![0f32; n * h * rows];
        let mut yh = vec![0f32; n * rows];
        for (head, xs) in xh.iter().enumerate() {
            let flat: Vec<f32> = xs.concat();
            let wh = &bytes[head * per..(head + 1) * per];
            matmul_with(mode, w.ty(), wh, rows, cols, &flat, n, &mut yh)?;
            for t in 0..n {
                out[(t * h + head) * rows..(t * h + head + 1) * rows]
                    .copy_from_slice(&yh[t * rows..(t + 1) * rows]);
            }
        }
        return Ok(Tensor::from_vec(out, (n, h, rows), &m.opts.device)?);
    }
    let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let ids: Vec<u32> = (0..n).flat_map(|_| 0..h as u32).collect();
    let mut ys = vec![0f32; n * h * rows];
    matvec_indexed_with(mode, w.stacked(&m.gguf), &ids, &xs, &mut ys)?;
    Ok(Tensor::from_vec(ys, (n, h, rows), &m.opts.device)?)
}

/// Whether a batch of `n` queries over `t_len` keys runs MLA expanded: past the size where it
/// does fewer multiply-adds than the absorbed form, and with its per-head keys and values
/// (`H·T·(nope + rope + v)` f32) within 1 GiB — the bound counts `H·T·(nope + v)` twice,
/// as when they were transposed copies, which keeps room to spare.
fn expand_mla(m: &Model, n: usize, t_len: usize) -> bool {
    let c = &m.config;
    if m.opts.mla_expand_from <= 1 {
        return n >= 2;
    }
    let absorbed = 2 * c.kv_lora + c.qk_rope;
    let expanded = c.qk_nope + c.qk_rope + c.v_head;
    if absorbed <= expanded {
        return false;
    }
    let pays_from = c.kv_lora * (c.qk_nope + c.v_head) / (absorbed - expanded) + 1;
    let bytes = c.n_head * t_len * (c.qk_nope + c.v_head) * 4 * 2;
    n >= m.opts.mla_expand_from.max(pays_from) && bytes <= 1 << 30
}

/// MLA in expanded form for a long batch: per head, keys `c_kv·K_b[h]` and values
/// `c_kv·V_b[h]ᵀ` from the latent cache, then causal attention (`cpu_attn`). Per
/// layer about `T·H·kv_lora·(nope + v) + n·T·H·(nope + rope + v)` multiply-adds (a little over
/// half the last term for a prompt from an empty cache) against the absorbed form's
/// `n·T·H·(2·kv_lora + rope)`. The per-head products write straight into the layouts the
/// attention reads (keys `[H, T, nope + rope]`, values `[H, T, v_head]`), from the cache rows
/// as they are: candle's narrows, transposes and concatenations here were ~5 % of a
/// 1024-token prefill. `q` is `[n, H, nope + rope]`; returns the heads' outputs `[n, H·v_head]`.
fn expanded_mla(
    m: &Model,
    lw: &MlaWeights,
    q: &Tensor,
    keys: &Tensor,
    mask: &Tensor,
) -> Result<Tensor, GlmError> {
    use crate::cpu_attn::sgemm;
    use rayon::prelude::*;
    let c = &m.config;
    let (n, nh, dk) = q.dims3()?;
    let t_len = keys.dim(0)?;
    let (lora, nope, dv, width) = (c.kv_lora, c.qk_nope, c.v_head, c.kv_width());
    debug_assert_eq!(dk, nope + c.qk_rope);
    if keys.dims2()? != (t_len, width) {
        return Err(GlmError::Input(format!("MLA keys {:?}", keys.dims())));
    }
    let heads = |w: &QTensor, len: usize| {
        localglm_quants::dequant::dequantize_to_vec(w.ty(), w.bytes(&m.gguf), len)
    };
    let k_b = heads(&lw.k_b, nh * lora * nope)?; // [H, kv_lora, nope]
    let v_b = heads(&lw.v_b, nh * dv * lora)?; // [H, v_head, kv_lora]
    let rows = keys.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?; // [T, width]
    let mut k = vec![0f32; nh * t_len * dk];
    let mut v = vec![0f32; nh * t_len * dv];
    k.par_chunks_mut(t_len * dk)
        .zip(v.par_chunks_mut(t_len * dv))
        .enumerate()
        .for_each(|(h, (kh, vh))| {
            let latent = (&rows[..], width, 1);
            // Keys [c_kv·K_b[h] ; k_pe]: the product fills each row's first `nope` values.
            let kb = &k_b[h * lora * nope..][..lora * nope];
            sgemm(t_len, nope, lora, (kh, dk), latent, (kb, nope, 1));
            for (row, src) in kh.chunks_exact_mut(dk).zip(rows.chunks_exact(width)) {
                row[nope..].copy_from_slice(&src[lora..]);
            }
            let vb = &v_b[h * dv * lora..][..dv * lora];
            sgemm(t_len, dv, lora, (vh, dv), latent, (vb, 1, lora));
        });
    // Queries per head: each head's [q_nope ; q_pe] is already contiguous in a token's row.
    let qv = q.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?; // [n, H, dk]
    let mut qh = vec![0f32; nh * n * dk];
    for (h, dst) in qh.chunks_exact_mut(n * dk).enumerate() {
        for (i, row) in dst.chunks_exact_mut(dk).enumerate() {
            row.copy_from_slice(&qv[(i * nh + h) * dk..][..dk]);
        }
    }
    let mask = mask.flatten_all()?.to_vec1::<f32>()?;
    let o = crate::cpu_attn::causal_attention(&crate::cpu_attn::Heads {
        q: &qh,
        k: &k,
        v: &v,
        mask: &mask,
        heads: nh,
        n,
        t_len,
        dk,
        dv,
        scale: c.attn_scale(),
    });
    Ok(Tensor::from_vec(o, (n, nh * dv), &m.opts.device)?)
}

/// MLA over `keys` (`[T, kv_lora + rope]`) for the queries `q` (`[n, H·(nope + rope)]`) under
/// `mask` (`[n, T]`): absorbed, or expanded for long batches.
pub(crate) fn mla(
    m: &Model,
    lw: &MlaWeights,
    q: &Tensor,
    keys: &Tensor,
    mask: &Tensor,
) -> Result<Tensor, GlmError> {
    let c = &m.config;
    let (n, nh, t_len) = (q.dim(0)?, c.n_head, keys.dim(0)?);
    let q = q.reshape((n, nh, c.qk_nope + c.qk_rope))?;
    if expand_mla(m, n, t_len) {
        return expanded_mla(m, lw, &q, keys, mask);
    }
    let q_nope = q.narrow(2, 0, c.qk_nope)?;
    let q_pe = q.narrow(2, c.qk_nope, c.qk_rope)?;
    // Absorbed MLA: q̃_h = K_b[h]·q_nope_h; scores over [c_kv ; k_pe]; values = c_kv.
    let q_abs = per_head(m, &lw.k_b, &q_nope.contiguous()?)?; // [n, H, kv_lora]
    let qf = Tensor::cat(&[&q_abs, &q_pe], 2)?.reshape((n * nh, c.kv_width()))?;
    let scores = (qf.matmul(&keys.t()?)? * c.attn_scale() as f64)?.reshape((n, nh, t_len))?;
    let scores = scores.broadcast_add(&mask.unsqueeze(1)?)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((n * nh, t_len))?;
    let values = keys.narrow(1, 0, c.kv_lora)?;
    let o_lat = probs.matmul(&values)?.reshape((n, nh, c.kv_lora))?;
    Ok(per_head(m, &lw.v_b, &o_lat)?.reshape((n, nh * c.v_head))?)
}

/// Absorbed MLA for a few queries (decode, a verification pass) over an f16 latent cache read
/// in place: per query, group of up to 8 heads and split of the keys it sees (two past
/// `ATTN_SPLIT_FROM`), each cache row converted once for the group's heads, the scores folded
/// into an online softmax chunk by chunk; with the indexer's mask only its selected rows are
/// read. A query's result depends only on the keys it sees and its mask row, never on the
/// batch. `None` for any other cache type (the tensor path then runs).
pub(crate) fn absorbed_rows_f16(
    m: &Model,
    lw: &MlaWeights,
    q: &Tensor,
    kv: &GrowBuf,
    mask: Option<&Tensor>,
    p0: usize,
) -> Result<Option<Tensor>, GlmError> {
    let c = &m.config;
    let (n, nh, lora, width) = (q.dim(0)?, c.n_head, c.kv_lora, c.kv_width());
    let t_len = kv.len;
    if !kv.with_f16_bits(|_, _| {}) || n == 0 || p0 + n != t_len {
        return Ok(None);
    }
    let q = q.reshape((n, nh, c.qk_nope + c.qk_rope))?;
    let q_abs = per_head(m, &lw.k_b, &q.narrow(2, 0, c.qk_nope)?.contiguous()?)?;
    // [n, H, kv_lora + rope]: q̃ then q_pe, as a cache row holds c_kv then k_pe.
    let qf = Tensor::cat(&[&q_abs, &q.narrow(2, c.qk_nope, c.qk_rope)?], 2)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mask = match mask {
        Some(t) => Some(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let scale = c.attn_scale();
    const G: usize = 8;
    let groups = nh.div_ceil(G);
    // (query, head group, split, first key, end of keys)
    let mut tasks = Vec::new();
    for i in 0..n {
        let visible = p0 + i + 1;
        let splits = if visible >= ATTN_SPLIT_FROM { 2 } else { 1 };
        let per = visible.div_ceil(splits).next_multiple_of(ATTN_CHUNK);
        for g in 0..groups {
            for s in 0..splits {
                let end = ((s + 1) * per).min(visible);
                tasks.push((i, g, s * per, end));
            }
        }
    }
    let mut parts: Vec<AttnPart> = tasks
        .iter()
        .map(|&(_, g, _, _)| {
            let heads = G.min(nh - g * G);
            AttnPart {
                top: vec![f32::NEG_INFINITY; heads],
                sum: vec![0f32; heads],
                out: vec![0f32; heads * lora],
                err: None,
            }
        })
        .collect();
    kv.with_f16_bits(|bits, stride| {
        let work: Vec<_> = tasks.iter().zip(parts.iter_mut()).collect();
        localglm_quants::team::for_each(work, |(&(i, g, t0, t1), part)| {
            let heads = part.top.len();
            let qg = &qf[(i * nh + g * G) * width..][..heads * width];
            let row_mask = mask.as_ref().map(|mk| &mk[i * t_len..][..t_len]);
            // The rows to read: all of [t0, t1), or the ones the indexer kept.
            let rows: Vec<usize> = match row_mask {
                None => (t0..t1).collect(),
                Some(mk) => (t0..t1).filter(|&t| mk[t] > f32::NEG_INFINITY).collect(),
            };
            let mut scores = vec![0f32; heads * ATTN_CHUNK];
            // Where each of a chunk's rows starts: the indexer's scattered rows are read in place.
            let mut starts = Vec::with_capacity(ATTN_CHUNK);
            for chunk in rows.chunks(ATTN_CHUNK) {
                let t_n = chunk.len();
                let s = &mut scores[..heads * t_n];
                starts.clear();
                starts.extend(chunk.iter().map(|&t| t * stride));
                attn_rows::dots_f16(qg, width, bits, &starts[..], s);
                if let Some(mk) = row_mask {
                    // Folded in before the scale (the softmax scales): (s + m/scale)·scale.
                    for sj in s.chunks_exact_mut(t_n) {
                        for (x, &t) in sj.iter_mut().zip(chunk) {
                            *x += mk[t] / scale;
                        }
                    }
                }
                for (j, sj) in s.chunks_exact_mut(t_n).enumerate() {
                    fold_chunk(part, j, lora, scale, sj, |_, _| {});
                }
                attn_rows::axpys_f16(s, bits, &starts[..], lora, &mut part.out);
            }
        });
    });
    // Merge each (query, head)'s splits in order.
    let mut o_lat = vec![0f32; n * nh * lora];
    for (k, &(i, g, t0, _)) in tasks.iter().enumerate() {
        if t0 != 0 {
            continue;
        }
        let mine = tasks[k..]
            .iter()
            .zip(&parts[k..])
            .take_while(|(t, _)| t.0 == i && t.1 == g)
            .map(|(_, p)| p);
        let heads = parts[k].top.len();
        merge_parts(
            mine,
            lora,
            &mut o_lat[(i * nh + g * G) * lora..][..heads * lora],
        );
    }
    let o_lat = Tensor::from_vec(o_lat, (n, nh, lora), &m.opts.device)?;
    Ok(Some(
        per_head(m, &lw.v_b, &o_lat)?.reshape((n, nh * c.v_head))?,
    ))
}
