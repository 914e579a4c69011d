//! Causal attention for long batches on the CPU (the expanded MLA form), and the lightning
//! indexer's scores: per head and block of
//! queries, the scores over just the keys the block's last query sees, softmax in place, then
//! the values — each (head, block) one task on one thread, its products single-threaded f32
//! GEMMs. Against candle's batched matmuls over whole `[heads, n, T]` score tensors this skips
//! the causal upper triangle past each block, never holds more than a block's scores, and keeps
//! both cores busy (candle ran the heads one after another, each product split over threads).
//! One query's indexer scores (decode) read an f16 key cache in place instead
//! ([`index_scores_f16`], the attention's row kernels on the thread team).

use localglm_quants::attn_rows::Strided;
use rayon::prelude::*;

/// Queries per block.
const BLOCK: usize = 128;

/// The operands of [`causal_attention`], all f32 and row-major.
pub(crate) struct Heads<'a> {
    /// Queries `[heads, n, dk]`.
    pub q: &'a [f32],
    /// Keys `[heads, t_len, dk]`.
    pub k: &'a [f32],
    /// Values `[heads, t_len, dv]`.
    pub v: &'a [f32],
    /// Additive mask `[n, t_len]` (0 or −∞), on top of causality.
    pub mask: &'a [f32],
    pub heads: usize,
    pub n: usize,
    pub t_len: usize,
    pub dk: usize,
    pub dv: usize,
    pub scale: f32,
}

/// `softmax(scale·q·kᵀ + mask)·v` for queries at positions `t_len − n ..`, each over the keys
/// up to its own position; returns `[n, heads, dv]`.
pub(crate) fn causal_attention(a: &Heads<'_>) -> Vec<f32> {
    let (h_n, n, t_len, dk, dv) = (a.heads, a.n, a.t_len, a.dk, a.dv);
    assert!(n <= t_len, "{n} queries over {t_len} keys");
    assert_eq!(a.q.len(), h_n * n * dk, "queries");
    assert_eq!(a.k.len(), h_n * t_len * dk, "keys");
    assert_eq!(a.v.len(), h_n * t_len * dv, "values");
    assert_eq!(a.mask.len(), n * t_len, "mask");
    let p0 = t_len - n;
    let tasks: Vec<(usize, usize)> = (0..h_n)
        .flat_map(|h| (0..n).step_by(BLOCK).map(move |b| (h, b)))
        .collect();
    let parts: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(h, b)| {
            let rows = BLOCK.min(n - b);
            let seen = p0 + b + rows;
            let q = &a.q[(h * n + b) * dk..][..rows * dk];
            let k = &a.k[h * t_len * dk..][..seen * dk];
            let v = &a.v[h * t_len * dv..][..seen * dv];
            let mut s = vec![0f32; rows * seen];
            // s = q·kᵀ: k's rows are the columns of the product.
            sgemm(rows, seen, dk, (&mut s, seen), (q, dk, 1), (k, 1, dk));
            let mut sums = vec![0f32; rows];
            for (r, (row, sum)) in s.chunks_exact_mut(seen).zip(&mut sums).enumerate() {
                // Probabilities over the keys the query sees (the mask folded in before the
                // scale: (s + m/scale)·scale), zero past its position.
                let visible = p0 + b + r + 1;
                let (seen_row, hidden) = row.split_at_mut(visible);
                let m = &a.mask[(b + r) * t_len..][..visible];
                for (x, &mv) in seen_row.iter_mut().zip(m) {
                    *x += mv / a.scale;
                }
                *sum =
                    localglm_quants::attn_rows::softmax_chunk(seen_row, a.scale, f32::NEG_INFINITY)
                        .1;
                hidden.fill(0.0);
            }
            let mut o = vec![0f32; rows * dv];
            sgemm(rows, dv, seen, (&mut o, dv), (&s, seen, 1), (v, dv, 1));
            for (row, sum) in o.chunks_exact_mut(dv).zip(&sums) {
                row.iter_mut().for_each(|x| *x /= sum);
            }
            o
        })
        .collect();
    let mut out = vec![0f32; n * h_n * dv];
    for (&(h, b), o) in tasks.iter().zip(&parts) {
        for (r, row) in o.chunks_exact(dv).enumerate() {
            out[((b + r) * h_n + h) * dv..][..dv].copy_from_slice(row);
        }
    }
    out
}

/// The operands of [`index_scores`], f32 and row-major.
pub(crate) struct Indexer<'a> {
    /// Queries `[n, heads, d]`.
    pub q: &'a [f32],
    /// Head weights `[n, heads]`, the softmax scale already applied.
    pub w: &'a [f32],
    /// Keys `[≥ t_len, d]`.
    pub keys: &'a [f32],
    pub heads: usize,
    pub n: usize,
    pub d: usize,
    pub t_len: usize,
    /// Position of the first query.
    pub p0: usize,
}

/// Keys per task of [`index_scores`] (so a single query — decode — still uses every thread).
const KEY_CHUNK: usize = 2048;

/// The lightning indexer's scores `Σ_h w_h·relu(q_h·k_t)` of each query over the `t_len` keys,
/// −∞ past its own position: per block of queries and chunk of the keys the block sees, one
/// single-threaded GEMM and one pass folding the heads, in parallel tasks.
pub(crate) fn index_scores(a: &Indexer<'_>) -> Vec<Vec<f32>> {
    let (nih, n, d, t_len) = (a.heads, a.n, a.d, a.t_len);
    assert_eq!(a.q.len(), n * nih * d, "indexer queries");
    assert_eq!(a.w.len(), n * nih, "indexer weights");
    assert!(a.keys.len() >= t_len * d, "indexer keys");
    let tasks: Vec<(usize, usize, usize)> = (0..n)
        .step_by(BLOCK)
        .flat_map(|b| {
            let seen = (a.p0 + b + BLOCK.min(n - b)).min(t_len);
            (0..seen)
                .step_by(KEY_CHUNK)
                .map(move |c0| (b, c0, (c0 + KEY_CHUNK).min(seen)))
        })
        .collect();
    let parts: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(b, c0, c1)| {
            let (rows, width) = (BLOCK.min(n - b), c1 - c0);
            let mut s = vec![0f32; rows * nih * width];
            let q = &a.q[b * nih * d..][..rows * nih * d];
            sgemm(
                rows * nih,
                width,
                d,
                (&mut s, width),
                (q, d, 1),
                (&a.keys[c0 * d..c1 * d], 1, d),
            );
            let mut out = vec![0f32; rows * width];
            for (r, o) in out.chunks_exact_mut(width).enumerate() {
                let w = &a.w[(b + r) * nih..][..nih];
                for (h, &wh) in w.iter().enumerate() {
                    let sh = &s[(r * nih + h) * width..][..width];
                    for (x, &v) in o.iter_mut().zip(sh) {
                        *x += wh * v.max(0.0);
                    }
                }
                let visible = (a.p0 + b + r + 1).min(t_len);
                o.iter_mut()
                    .skip(visible.saturating_sub(c0))
                    .for_each(|x| *x = f32::NEG_INFINITY);
            }
            out
        })
        .collect();
    let mut rows = vec![vec![f32::NEG_INFINITY; t_len]; n];
    for (&(b, c0, c1), part) in tasks.iter().zip(&parts) {
        for (r, src) in part.chunks_exact(c1 - c0).enumerate() {
            rows[b + r][c0..c1].copy_from_slice(src);
        }
    }
    rows
}

/// Keys per task of [`index_scores_f16`].
const KEY_TASK: usize = 512;

/// The indexer's scores `Σ_h w_h·relu(q_h·k_t)` of one query (decode, or one query of a
/// verification pass) over the first `t_len` rows of an f16 key cache read in place (`bits`,
/// `stride` values a row, the key in its first `d`), on the thread team in tasks of
/// [`KEY_TASK`] keys, each key row converted once per group of up to eight heads. Through
/// [`index_scores`] every token converted the whole key cache to f32, copied it and ran the
/// products on rayon, all but the products on the calling thread: at a 4096-token context that
/// serial part left the other thread idle for about a sixth of decode.
pub(crate) fn index_scores_f16(
    q: &[f32],
    w: &[f32],
    d: usize,
    (bits, stride): (&[u16], usize),
    t_len: usize,
) -> Vec<f32> {
    const G: usize = 8;
    let heads = w.len();
    assert_eq!(q.len(), heads * d, "indexer query");
    assert!(
        d <= stride && (t_len == 0 || bits.len() >= (t_len - 1) * stride + d),
        "indexer keys"
    );
    let mut out = vec![0f32; t_len];
    let work: Vec<(usize, &mut [f32])> = out
        .chunks_mut(KEY_TASK)
        .enumerate()
        .map(|(i, o)| (i * KEY_TASK, o))
        .collect();
    localglm_quants::team::for_each(work, |(t0, o)| {
        let mut s = [0f32; G * KEY_TASK];
        let rows = &bits[t0 * stride..];
        for (qg, wg) in q.chunks(G * d).zip(w.chunks(G)) {
            let s = &mut s[..wg.len() * o.len()];
            localglm_quants::attn_rows::dots_f16(qg, d, rows, &Strided(stride), s);
            for (&wh, sh) in wg.iter().zip(s.chunks_exact(o.len())) {
                for (x, &v) in o.iter_mut().zip(sh) {
                    *x += wh * v.max(0.0);
                }
            }
        }
    });
    out
}

/// `dst[m × n] = lhs[m × k] · rhs[k × n]` on the calling thread; `dst` is given with its row
/// stride, each input with its row and column strides (elements). Panics if a stride reaches
/// past its slice.
pub(crate) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    (dst, dst_rs): (&mut [f32], usize),
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs + 1
    };
    assert!(
        dst_rs >= n && dst.len() >= last(m, n, dst_rs, 1),
        "GEMM output"
    );
    assert!(lhs.0.len() >= last(m, k, lhs.1, lhs.2), "GEMM left operand");
    assert!(
        rhs.0.len() >= last(k, n, rhs.1, rhs.2),
        "GEMM right operand"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every element the product reads or writes lies within the slices (checked
    // above); `dst` is exclusively borrowed and does not alias the inputs.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexer's scores against the rule, over more keys than one task takes.
    #[test]
    fn index_scores_match_the_rule() {
        let (heads, n, d, t_len) = (4, 130, 16, 2600);
        let mut seed = 3u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let q: Vec<f32> = (0..n * heads * d).map(|_| next()).collect();
        let w: Vec<f32> = (0..n * heads).map(|_| next()).collect();
        let keys: Vec<f32> = (0..t_len * d).map(|_| next()).collect();
        let p0 = t_len - n;
        let got = index_scores(&Indexer {
            q: &q,
            w: &w,
            keys: &keys,
            heads,
            n,
            d,
            t_len,
            p0,
        });
        for (i, row) in got.iter().enumerate() {
            for (t, &g) in row.iter().enumerate() {
                let want = if t > p0 + i {
                    f32::NEG_INFINITY
                } else {
                    (0..heads)
                        .map(|h| {
                            let qh = &q[(i * heads + h) * d..][..d];
                            let dot: f32 =
                                qh.iter().zip(&keys[t * d..][..d]).map(|(a, b)| a * b).sum();
                            w[i * heads + h] * dot.max(0.0)
                        })
                        .sum()
                };
                assert!(
                    g == want || (g - want).abs() < 1e-5,
                    "i {i} t {t}: {g} vs {want}"
                );
            }
        }
    }

    /// One query's scores over an f16 cache in place against the rule: twelve heads (a group
    /// of eight and one of four), keys in wider rows, more keys than a task takes and a tail.
    #[test]
    fn one_query_over_f16_keys_matches_the_rule() {
        use localglm_quants::dequant::f16_to_f32;
        let (heads, d, stride, t_len) = (12, 32, 40, 2 * KEY_TASK + 77);
        let mut seed = 5u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let q: Vec<f32> = (0..heads * d).map(|_| next()).collect();
        let w: Vec<f32> = (0..heads).map(|_| next()).collect();
        let bits: Vec<u16> = (0..t_len * stride)
            .map(|_| half::f16::from_f32(next()).to_bits())
            .collect();
        let got = index_scores_f16(&q, &w, d, (&bits, stride), t_len);
        assert_eq!(got.len(), t_len);
        for (t, &g) in got.iter().enumerate() {
            let want: f32 = (0..heads)
                .map(|h| {
                    let key = bits[t * stride..][..d].iter().map(|&b| f16_to_f32(b));
                    let dot: f32 = q[h * d..][..d].iter().zip(key).map(|(a, b)| a * b).sum();
                    w[h] * dot.max(0.0)
                })
                .sum();
            assert!((g - want).abs() < 1e-5, "t {t}: {g} vs {want}");
        }
    }

    /// Against the rule written out, with a block boundary, a sparse mask and a cache longer
    /// than the batch.
    #[test]
    fn matches_the_rule() {
        let (heads, n, t_len, dk, dv) = (3, 150, 170, 20, 12);
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let q: Vec<f32> = (0..heads * n * dk).map(|_| next()).collect();
        let k: Vec<f32> = (0..heads * t_len * dk).map(|_| next()).collect();
        let v: Vec<f32> = (0..heads * t_len * dv).map(|_| next()).collect();
        let mask: Vec<f32> = (0..n * t_len)
            .map(|i| if i % 7 == 3 { f32::NEG_INFINITY } else { 0.0 })
            .collect();
        let got = causal_attention(&Heads {
            q: &q,
            k: &k,
            v: &v,
            mask: &mask,
            heads,
            n,
            t_len,
            dk,
            dv,
            scale: 0.3,
        });
        let p0 = t_len - n;
        for i in 0..n {
            for h in 0..heads {
                let qi = &q[(h * n + i) * dk..][..dk];
                let s: Vec<f32> = (0..=p0 + i)
                    .map(|t| {
                        let kt = &k[(h * t_len + t) * dk..][..dk];
                        0.3 * qi.iter().zip(kt).map(|(a, b)| a * b).sum::<f32>()
                            + mask[i * t_len + t]
                    })
                    .collect();
                let mx = s.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let e: Vec<f32> = s.iter().map(|x| (x - mx).exp()).collect();
                let sum: f32 = e.iter().sum();
                for c in 0..dv {
                    let want: f32 = e
                        .iter()
                        .enumerate()
                        .map(|(t, p)| p * v[(h * t_len + t) * dv + c])
                        .sum::<f32>()
                        / sum;
                    let g = got[(i * heads + h) * dv + c];
                    assert!((g - want).abs() < 1e-5, "i {i} h {h} c {c}: {g} vs {want}");
                }
            }
        }
    }
}
