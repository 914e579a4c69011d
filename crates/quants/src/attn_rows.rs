//! Decode attention over an f16 KV cache read in place, for the `G` query heads that share
//! one KV head: their dots with many cached key rows, and their probability-weighted sums of
//! many value rows, each row `width` values of a cache laid out with `stride` values per row.
//! Each row is loaded and converted once for all `G` heads. AVX-512 (F16C conversions sixteen
//! at a time, the `G` heads' accumulators in registers) where present, `width` is a multiple
//! of 16 and `G` ≤ 8; the same on AVX2 + F16C eight at a time (`width` a multiple of 8); one
//! value at a time elsewhere.
//!
//! Rows are given as a slice of cache values and where in it each row starts ([`RowStarts`]):
//! `stride` values apart ([`Strided`]), or at a list of starts — the indexer's scattered
//! selection, read where it lies instead of gathered into a run first (the copy took 3 % of a
//! GLM decode at a 4096-token context).

use crate::dequant::f16_to_f32;

/// Where the rows of a cache slice start: row `t` is `bits[rows.start(t)..][..width]`.
pub trait RowStarts: Sync {
    /// The first value of row `t`.
    fn start(&self, t: usize) -> usize;
    /// The largest start among the first `n` rows (`n` ≥ 1).
    fn last(&self, n: usize) -> usize;
}

/// Rows this many values apart, the first at the slice's start.
#[derive(Clone, Copy, Debug)]
pub struct Strided(pub usize);

impl RowStarts for Strided {
    #[inline]
    fn start(&self, t: usize) -> usize {
        t * self.0
    }
    fn last(&self, n: usize) -> usize {
        (n - 1) * self.0
    }
}

/// Rows at the listed starts, in that order.
impl RowStarts for [usize] {
    #[inline]
    fn start(&self, t: usize) -> usize {
        self[t]
    }
    fn last(&self, n: usize) -> usize {
        self[..n].iter().copied().max().unwrap_or(0)
    }
}

/// Most query heads per KV head the vector path takes.
#[cfg(target_arch = "x86_64")]
const MAX_HEADS: usize = 8;

/// For each of the `G = q.len() / width` queries (row-major) and each of the `n` rows:
/// `out[j·n + t] = q_j · row_t`, where `n = out.len() / G`.
pub fn dots_f16<R: RowStarts + ?Sized>(
    q: &[f32],
    width: usize,
    bits: &[u16],
    rows: &R,
    out: &mut [f32],
) {
    let heads = q.len() / width;
    let n = out.len() / heads;
    check(width, bits.len(), rows, n);
    #[cfg(target_arch = "x86_64")]
    if vector(width, heads) {
        // WORKAROUND: `available()` (in `vector`) checked the features the function needs.
        #[allow(unsafe_code)]
        unsafe {
            x86::dots(q, width, bits, rows, out)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if vector_avx2(width, heads) {
        // WORKAROUND: `vector_avx2` checked the features the function needs.
        #[allow(unsafe_code)]
        unsafe {
            avx2::dots(q, width, bits, rows, out)
        };
        return;
    }
    for (j, qj) in q.chunks_exact(width).enumerate() {
        for (t, o) in out[j * n..(j + 1) * n].iter_mut().enumerate() {
            let row = &bits[rows.start(t)..][..width];
            *o = qj.iter().zip(row).map(|(a, &b)| a * f16_to_f32(b)).sum();
        }
    }
}

/// For each of the `G = acc.len() / width` heads: `acc_j += Σ_t p[j·n + t] · row_t` over the
/// `n = p.len() / G` rows.
pub fn axpys_f16<R: RowStarts + ?Sized>(
    p: &[f32],
    bits: &[u16],
    rows: &R,
    width: usize,
    acc: &mut [f32],
) {
    let heads = acc.len() / width;
    let n = p.len() / heads;
    check(width, bits.len(), rows, n);
    #[cfg(target_arch = "x86_64")]
    if vector(width, heads) {
        // WORKAROUND: as in `dots_f16`.
        #[allow(unsafe_code)]
        unsafe {
            x86::axpys(p, bits, rows, width, acc)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if vector_avx2(width, heads) {
        // WORKAROUND: as above.
        #[allow(unsafe_code)]
        unsafe {
            avx2::axpys(p, bits, rows, width, acc)
        };
        return;
    }
    for (j, accj) in acc.chunks_exact_mut(width).enumerate() {
        for (t, &pt) in p[j * n..(j + 1) * n].iter().enumerate() {
            let row = &bits[rows.start(t)..][..width];
            for (a, &v) in accj.iter_mut().zip(row) {
                *a += pt * f16_to_f32(v);
            }
        }
    }
}

/// One chunk of online softmax: scales `scores`, takes the maximum `m` of them and `top`, and
/// replaces each score `s` by `exp(s − m)`; returns `(m, Σ exp(s − m))`. AVX-512 with a
/// polynomial `exp` (within ~2 ulp of `f32::exp`) where present.
pub fn softmax_chunk(scores: &mut [f32], scale: f32, top: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd512::available() {
        // WORKAROUND: as in `dots_f16`.
        #[allow(unsafe_code)]
        return unsafe { x86::softmax_chunk(scores, scale, top) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::have_avx2() {
        // WORKAROUND: `have_avx2()` checked AVX2 and FMA, all the function needs.
        #[allow(unsafe_code)]
        return unsafe { avx2::softmax_chunk(scores, scale, top) };
    }
    let mut m = top;
    for s in scores.iter_mut() {
        *s *= scale;
        m = m.max(*s);
    }
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - m).exp();
        sum += *s;
    }
    (m, sum)
}

#[cfg(target_arch = "x86_64")]
fn vector(width: usize, heads: usize) -> bool {
    width.is_multiple_of(16) && (1..=MAX_HEADS).contains(&heads) && crate::simd512::available()
}

#[cfg(target_arch = "x86_64")]
fn vector_avx2(width: usize, heads: usize) -> bool {
    width.is_multiple_of(8)
        && (1..=MAX_HEADS).contains(&heads)
        && crate::kernels::have_avx2()
        && crate::kernels::have_f16c()
}

fn check<R: RowStarts + ?Sized>(width: usize, have: usize, rows: &R, n: usize) {
    assert!(
        n == 0 || have >= rows.last(n) + width,
        "{n} rows of {width} need more than {have} values"
    );
}

/// Runs `$f::<G>` for the runtime head count, in both vector modules (the accumulators of
/// `G` heads then live in registers; a runtime-sized array of them would live in memory).
#[cfg(target_arch = "x86_64")]
macro_rules! by_heads {
    ($heads:expr, $f:ident($($arg:expr),*)) => {
        match $heads {
            1 => $f::<1, _>($($arg),*),
            2 => $f::<2, _>($($arg),*),
            3 => $f::<3, _>($($arg),*),
            4 => $f::<4, _>($($arg),*),
            5 => $f::<5, _>($($arg),*),
            6 => $f::<6, _>($($arg),*),
            7 => $f::<7, _>($($arg),*),
            _ => $f::<8, _>($($arg),*),
        }
    };
}

/// A vector module's two entry points, compiled for its `features`: the runtime head count
/// dispatched by [`by_heads`] to its `dots_g` and `axpys_g`.
#[cfg(target_arch = "x86_64")]
macro_rules! entry_points {
    ($features:literal) => {
        #[target_feature(enable = $features)]
        pub(super) fn dots<R: RowStarts + ?Sized>(
            q: &[f32],
            width: usize,
            bits: &[u16],
            rows: &R,
            out: &mut [f32],
        ) {
            by_heads!(q.len() / width, dots_g(q, width, bits, rows, out))
        }

        #[target_feature(enable = $features)]
        pub(super) fn axpys<R: RowStarts + ?Sized>(
            p: &[f32],
            bits: &[u16],
            rows: &R,
            width: usize,
            acc: &mut [f32],
        ) {
            by_heads!(acc.len() / width, axpys_g(p, bits, rows, width, acc))
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::RowStarts;
    use crate::simd_mem::{load256, load512, store512};
    use std::arch::x86_64::*;

    entry_points!("avx512f,avx2,fma,f16c");

    /// Sixteen f16 values at `v[..16]` as f32.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn half16(v: &[u16]) -> __m512 {
        _mm512_cvtph_ps(load256(&v[..16].as_chunks::<16>().0[0]))
    }

    /// `exp(x)` of sixteen values ≤ 0: `2^k · p(r)` with `k = round(x·log₂e)`, `r = x − k·ln 2`
    /// (two-part ln 2) and `p` the degree-6 Taylor polynomial (|r| ≤ 0.35: error ~1e-7);
    /// `vscalefps` makes values below −87 come out as 0.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn exp16(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-104.0));
        let k = _mm512_roundscale_ps::<0x08>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, k)
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) fn softmax_chunk(scores: &mut [f32], scale: f32, top: f32) -> (f32, f32) {
        let (body, tail) = scores.as_chunks_mut::<16>();
        let sc = _mm512_set1_ps(scale);
        let mut m = top;
        for v in body.iter_mut() {
            let x = _mm512_mul_ps(_mm512_castsi512_ps(load512(v)), sc);
            store512(v, _mm512_castps_si512(x));
            m = m.max(_mm512_reduce_max_ps(x));
        }
        for s in tail.iter_mut() {
            *s *= scale;
            m = m.max(*s);
        }
        let mv = _mm512_set1_ps(m);
        let mut sum = _mm512_setzero_ps();
        for v in body.iter_mut() {
            let e = exp16(_mm512_sub_ps(_mm512_castsi512_ps(load512(v)), mv));
            store512(v, _mm512_castps_si512(e));
            sum = _mm512_add_ps(sum, e);
        }
        let mut total = _mm512_reduce_add_ps(sum);
        for s in tail.iter_mut() {
            *s = (*s - m).exp();
            total += *s;
        }
        (m, total)
    }

    /// Lane `r` of the result: the sum of the sixteen lanes of `v[r]` (a 16×16 transpose
    /// folded into adds: 15 shuffles and 15 adds for sixteen sums, where sixteen
    /// `reduce_add`s take ~4 times that).
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn sums16(v: &[__m512; 16]) -> __m512 {
        // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] for each pair of rows.
        let p: [__m512; 8] = std::array::from_fn(|r| {
            let (a, b) = (v[2 * r], v[2 * r + 1]);
            _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b))
        });
        // Per 128-bit lane: the lane's partial sums of four rows.
        let f: [__m512; 4] = std::array::from_fn(|r| {
            let (c, d) = (p[2 * r], p[2 * r + 1]);
            _mm512_add_ps(
                _mm512_shuffle_ps::<0x44>(c, d),
                _mm512_shuffle_ps::<0xEE>(c, d),
            )
        });
        // Block g of the result: rows 4g..4g + 4, summed over the four 128-bit lanes.
        let s01 = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(f[0], f[1]),
            _mm512_shuffle_f32x4::<0xEE>(f[0], f[1]),
        );
        let s23 = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(f[2], f[3]),
            _mm512_shuffle_f32x4::<0xEE>(f[2], f[3]),
        );
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(s01, s23),
            _mm512_shuffle_f32x4::<0xDD>(s01, s23),
        )
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn dots_g<const G: usize, R: RowStarts + ?Sized>(
        q: &[f32],
        width: usize,
        bits: &[u16],
        rows: &R,
        out: &mut [f32],
    ) {
        let chunks = width / 16;
        let n = out.len() / G;
        let (qs, _) = q.as_chunks::<16>();
        // Sixteen rows at a time: converted once into `k` (L1), then per head sixteen
        // accumulators summed by one transpose.
        let blocks = n / 16;
        let mut k = vec![_mm512_setzero_ps(); if blocks > 0 { 16 * chunks } else { 0 }];
        for b in 0..blocks {
            // The next block's rows asked for now, as in the AVX2 kernel.
            for t in 16 * (b + 1)..(16 * (b + 2)).min(n) {
                crate::prefetch::lines(bits, rows.start(t), width);
            }
            for r in 0..16 {
                let row = &bits[rows.start(16 * b + r)..][..width];
                for c in 0..chunks {
                    k[r * chunks + c] = half16(&row[16 * c..]);
                }
            }
            for j in 0..G {
                let mut acc = [_mm512_setzero_ps(); 16];
                for c in 0..chunks {
                    let qv = _mm512_castsi512_ps(load512(&qs[j * chunks + c]));
                    for (r, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(qv, k[r * chunks + c], *a);
                    }
                }
                let o = &mut out[j * n + 16 * b..][..16];
                let sums = _mm512_castps_si512(sums16(&acc));
                store512(
                    o.as_chunks_mut::<16>().0.first_mut().expect("16 lanes"),
                    sums,
                );
            }
        }
        for t in 16 * blocks..n {
            let row = &bits[rows.start(t)..][..width];
            let mut acc = [_mm512_setzero_ps(); G];
            for c in 0..chunks {
                let k = half16(&row[16 * c..]);
                for (j, a) in acc.iter_mut().enumerate() {
                    let qv = _mm512_castsi512_ps(load512(&qs[j * chunks + c]));
                    *a = _mm512_fmadd_ps(qv, k, *a);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                out[j * n + t] = _mm512_reduce_add_ps(*a);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn axpys_g<const G: usize, R: RowStarts + ?Sized>(
        p: &[f32],
        bits: &[u16],
        rows: &R,
        width: usize,
        acc: &mut [f32],
    ) {
        let chunks = width / 16;
        let n = p.len() / G;
        let (accs, _) = acc.as_chunks_mut::<16>();
        for c in 0..chunks {
            let mut sums: [__m512; G] =
                std::array::from_fn(|j| _mm512_castsi512_ps(load512(&accs[j * chunks + c])));
            for t in 0..n {
                let v = half16(&bits[rows.start(t) + 16 * c..]);
                for (j, s) in sums.iter_mut().enumerate() {
                    *s = _mm512_fmadd_ps(_mm512_set1_ps(p[j * n + t]), v, *s);
                }
            }
            for (j, s) in sums.iter().enumerate() {
                store512(&mut accs[j * chunks + c], _mm512_castps_si512(*s));
            }
        }
    }
}

/// The AVX2 + F16C kernels (desktop CPUs without AVX-512; the decode attention of a GLM mix on
/// AVX2 had its score dots as a scalar loop, 4 % of decode at a short context).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::RowStarts;
    use crate::simd_mem::{load128, load256, store256};
    use std::arch::x86_64::*;

    entry_points!("avx2,fma,f16c");

    /// Eight f16 values at `v[..8]` as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn half8(v: &[u16]) -> __m256 {
        _mm256_cvtph_ps(load128(&v[..8].as_chunks::<8>().0[0]))
    }

    /// Eight floats.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn floats(v: &[f32; 8]) -> __m256 {
        _mm256_castsi256_ps(load256(v))
    }

    /// Lane `r`: the sum of the eight lanes of `v[r]` (pairwise adds across the eight).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sums8(v: &[__m256; 8]) -> __m256 {
        let ab = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        let cd = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
        // ab: rows 0–3 over lanes 0–3 | the same over lanes 4–7; cd likewise for rows 4–7.
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(ab, cd),
            _mm256_permute2f128_ps::<0x31>(ab, cd),
        )
    }

    /// The sum of the eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// Eight rows at a time, converted once into `k` in chunk-major order (`k[c]` = chunk `c`
    /// of the eight rows), so the inner loop reads every key through one pointer with no index
    /// checks: with `k` row-major each of a chunk's eight keys had its own bounds check and
    /// pointer, three scalar instructions per FMA, and the loop ran at a third of the FMA rate.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dots_g<const G: usize, R: RowStarts + ?Sized>(
        q: &[f32],
        width: usize,
        bits: &[u16],
        rows: &R,
        out: &mut [f32],
    ) {
        let chunks = width / 8;
        let n = out.len() / G;
        let (qs, _) = q.as_chunks::<8>();
        let blocks = n / 8;
        let mut k = vec![[_mm256_setzero_ps(); 8]; if blocks > 0 { chunks } else { 0 }];
        for b in 0..blocks {
            // The next block's rows asked for now (scattered rows escape the prefetchers).
            for t in 8 * (b + 1)..(8 * (b + 2)).min(n) {
                crate::prefetch::lines(bits, rows.start(t), width);
            }
            for r in 0..8 {
                let (row, _) = bits[rows.start(8 * b + r)..][..width].as_chunks::<8>();
                for (kc, h) in k.iter_mut().zip(row) {
                    kc[r] = _mm256_cvtph_ps(load128(h));
                }
            }
            for j in 0..G {
                let mut acc = [_mm256_setzero_ps(); 8];
                for (qc, kc) in qs[j * chunks..][..chunks].iter().zip(&k) {
                    let qv = floats(qc);
                    for (a, kr) in acc.iter_mut().zip(kc) {
                        *a = _mm256_fmadd_ps(qv, *kr, *a);
                    }
                }
                let o = &mut out[j * n + 8 * b..][..8];
                let o: &mut [f32; 8] = o.try_into().expect("8 lanes");
                store256(o, _mm256_castps_si256(sums8(&acc)));
            }
        }
        for t in 8 * blocks..n {
            let (row, _) = bits[rows.start(t)..][..width].as_chunks::<8>();
            let mut acc = [_mm256_setzero_ps(); G];
            for (c, h) in row.iter().enumerate() {
                let k = _mm256_cvtph_ps(load128(h));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(floats(&qs[j * chunks + c]), k, *a);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                out[j * n + t] = hsum(*a);
            }
        }
    }

    /// Per chunk of eight values, the `G` heads' sums in registers over all `n` rows. The
    /// weights are first transposed row-major (`pt[t]` = row `t`'s `G` weights) so one pointer
    /// serves a row's `G` broadcasts: indexed as `p[j·n + t]` each broadcast had its own bounds
    /// check and pointer (reloaded from the stack), and the loop ran well below the FMA rate.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn axpys_g<const G: usize, R: RowStarts + ?Sized>(
        p: &[f32],
        bits: &[u16],
        rows: &R,
        width: usize,
        acc: &mut [f32],
    ) {
        let chunks = width / 8;
        let n = p.len() / G;
        let pt: Vec<[f32; G]> = (0..n)
            .map(|t| std::array::from_fn(|j| p[j * n + t]))
            .collect();
        let (accs, _) = acc.as_chunks_mut::<8>();
        for c in 0..chunks {
            let mut sums: [__m256; G] = std::array::from_fn(|j| floats(&accs[j * chunks + c]));
            for (t, pv) in pt.iter().enumerate() {
                let v = half8(&bits[rows.start(t) + 8 * c..]);
                for (s, &w) in sums.iter_mut().zip(pv) {
                    *s = _mm256_fmadd_ps(_mm256_set1_ps(w), v, *s);
                }
            }
            for (j, s) in sums.iter().enumerate() {
                store256(&mut accs[j * chunks + c], _mm256_castps_si256(*s));
            }
        }
    }

    /// `exp(x)` of eight values ≤ 0, the AVX-512 `exp16`'s polynomial with `2^k` built in the
    /// exponent bits; inputs below −87 are taken as −87 (about 1.6e-38, where `f32::exp` gives
    /// a subnormal or 0: nothing next to a softmax's largest term, exp(0) = 1).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let k = _mm256_round_ps::<0x08>(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)));
        let r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm256_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let two_k = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(k),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(p, _mm256_castsi256_ps(two_k))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn softmax_chunk(scores: &mut [f32], scale: f32, top: f32) -> (f32, f32) {
        let (body, tail) = scores.as_chunks_mut::<8>();
        let sc = _mm256_set1_ps(scale);
        let mut mv = _mm256_set1_ps(top);
        for v in body.iter_mut() {
            let x = _mm256_mul_ps(floats(v), sc);
            store256(v, _mm256_castps_si256(x));
            mv = _mm256_max_ps(mv, x);
        }
        let mut lanes = [0f32; 8];
        store256(&mut lanes, _mm256_castps_si256(mv));
        let mut m = lanes.iter().fold(top, |a, &b| a.max(b));
        for s in tail.iter_mut() {
            *s *= scale;
            m = m.max(*s);
        }
        let mv = _mm256_set1_ps(m);
        let mut sum = _mm256_setzero_ps();
        for v in body.iter_mut() {
            let e = exp8(_mm256_sub_ps(floats(v), mv));
            store256(v, _mm256_castps_si256(e));
            sum = _mm256_add_ps(sum, e);
        }
        let mut total = hsum(sum);
        for s in tail.iter_mut() {
            *s = (*s - m).exp();
            total += *s;
        }
        (m, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Softmax = fn(&mut [f32], f32, f32) -> (f32, f32);
    type Dots = fn(&[f32], usize, &[u16], &[usize], &mut [f32]);
    type Axpys = fn(&[f32], &[u16], &[usize], usize, &mut [f32]);

    /// Whether this CPU runs the AVX2 kernels (tested directly: an AVX-512 CPU takes the
    /// AVX-512 ones through the public functions).
    #[cfg(target_arch = "x86_64")]
    fn avx2_here() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }

    /// The chunk softmax against `f32::exp` over the range decode meets (0 down to −100).
    #[test]
    fn softmax_chunk_matches_the_scalar_exp() {
        check_softmax(softmax_chunk);
        #[cfg(target_arch = "x86_64")]
        if avx2_here() {
            // WORKAROUND: the features were detected just above.
            #[allow(unsafe_code)]
            check_softmax(|s, scale, top| unsafe { avx2::softmax_chunk(s, scale, top) });
        }
    }

    fn check_softmax(softmax_chunk: Softmax) {
        let raw: Vec<f32> = (0..37).map(|i| 3.0 - i as f32 * 2.9).collect();
        let mut got = raw.clone();
        let (m, sum) = softmax_chunk(&mut got, 0.5, 1.0);
        assert_eq!(m, 1.5);
        let mut want_sum = 0f64;
        for (g, r) in got.iter().zip(&raw) {
            let want = ((r * 0.5 - m) as f64).exp();
            want_sum += want;
            assert!(
                (*g as f64 - want).abs() <= 3e-7 * want + 1e-38,
                "{r}: {g} vs {want}"
            );
        }
        assert!((sum as f64 - want_sum).abs() <= 1e-6 * want_sum);
        // A maximum carried in from earlier chunks.
        let mut low = vec![-1.0f32; 20];
        let (m, sum) = softmax_chunk(&mut low, 1.0, 0.0);
        assert_eq!(m, 0.0);
        assert!((sum - 20.0 * (-1f32).exp()).abs() < 1e-5);
    }

    /// Finite f16 bits of magnitude 2⁻⁵…2³, either sign, from a small LCG.
    fn half_bits(n: usize, seed: u64) -> Vec<u16> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (s >> 33) as u16;
                (r & 0x83FF) | ((10 + (r >> 10) % 8) << 10)
            })
            .collect()
    }

    /// Both kernels equal the f64 sums of the same f16 values, at widths 16–128, strides past
    /// the width (other heads' values between rows left out), rows in order and scattered,
    /// and 1–8 heads per KV head; strided rows give the same bits as their list of starts.
    #[test]
    fn dots_and_weighted_sums_over_strided_and_scattered_f16_rows() {
        check_dots_and_sums(dots_f16::<[usize]>, axpys_f16::<[usize]>);
        #[cfg(target_arch = "x86_64")]
        if avx2_here() {
            // WORKAROUND (both): the features were detected just above.
            #[allow(unsafe_code)]
            check_dots_and_sums(
                |q, w, b, r, o| unsafe { avx2::dots(q, w, b, r, o) },
                |p, b, r, w, a| unsafe { avx2::axpys(p, b, r, w, a) },
            );
        }
        let (width, stride, rows, heads) = (64, 80, 21, 3);
        let q = crate::synth::random_vector(width * heads, 5);
        let bits = half_bits((rows - 1) * stride + width, 6);
        let starts: Vec<usize> = (0..rows).map(|t| t * stride).collect();
        let (mut a, mut b) = (vec![0f32; rows * heads], vec![0f32; rows * heads]);
        dots_f16(&q, width, &bits, &Strided(stride), &mut a);
        dots_f16(&q, width, &bits, &starts[..], &mut b);
        assert_eq!(a, b);
        let p = crate::synth::random_vector(rows * heads, 7);
        let (mut a, mut b) = (vec![0f32; width * heads], vec![0f32; width * heads]);
        axpys_f16(&p, &bits, &Strided(stride), width, &mut a);
        axpys_f16(&p, &bits, &starts[..], width, &mut b);
        assert_eq!(a, b);
    }

    fn check_dots_and_sums(dots_f16: Dots, axpys_f16: Axpys) {
        for scattered in [false, true] {
            check_rows(dots_f16, axpys_f16, scattered);
        }
    }

    fn check_rows(dots_f16: Dots, axpys_f16: Axpys, scattered: bool) {
        let cases = [
            (64, 384, 7, 3),
            (16, 16, 3, 1),
            (128, 130, 5, 2),
            (48, 96, 1, 3),
            (32, 64, 4, 8),
            (64, 384, 37, 3),
            (16, 32, 16, 2),
            (24, 40, 9, 4),
        ];
        for (width, stride, rows, heads) in cases {
            let q = crate::synth::random_vector(width * heads, 3);
            // Scattered: every other row of twice as many, from the last backwards.
            let (held, step) = if scattered { (2 * rows, 2) } else { (rows, 1) };
            let bits = half_bits((held - 1) * stride + width, 4);
            let starts: Vec<usize> = (0..rows)
                .map(|t| match scattered {
                    true => (held - 1 - step * t) * stride,
                    false => t * stride,
                })
                .collect();
            let value = |t: usize, i: usize| f16_to_f32(bits[starts[t] + i]) as f64;
            let mut out = vec![0f32; rows * heads];
            dots_f16(&q, width, &bits, &starts, &mut out);
            for (k, &got) in out.iter().enumerate() {
                let (j, t) = (k / rows, k % rows);
                let want: f64 = (0..width)
                    .map(|i| value(t, i) * q[j * width + i] as f64)
                    .sum();
                // f32 sums: a few units in the last place of the larger terms.
                assert!(
                    (got as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
                    "{width}/{stride} head {j} row {t}"
                );
            }
            let p: Vec<f32> = (0..rows * heads).map(|k| 0.1 + k as f32 * 0.2).collect();
            let mut acc = vec![1f32; width * heads];
            axpys_f16(&p, &bits, &starts, width, &mut acc);
            for (k, &got) in acc.iter().enumerate() {
                let (j, i) = (k / width, k % width);
                let sum: f64 = (0..rows)
                    .map(|t| p[j * rows + t] as f64 * value(t, i))
                    .sum();
                assert!(
                    (got as f64 - 1.0 - sum).abs() < 1e-4 * (1.0 + sum).abs().max(1.0),
                    "{width}/{stride} value {k}: {got} vs {}",
                    1.0 + sum
                );
            }
        }
    }
}
