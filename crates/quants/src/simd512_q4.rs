//! AVX-512 row kernels for the 4-bit legacy types Q4_0 and Q4_1 (the bulk of small dense
//! models such as the default SmolLM2 Q4_1) against the per-32 int8 activation grid (the
//! per-16 one for a row's last 1–3 blocks), for any row length that is a multiple of 32
//! (SmolLM2's 576-wide rows are not a multiple of 256); and the activation quantizer.
//!
//! A block's low nibbles are its first 16 weights, its high nibbles the last 16; the offset —
//! Q4_1's `m`, Q4_0's `−8·d` — meets the sums of each 32 quantized activations (`Q8Act::quad_s`
//! and `sum32`, made once per activation; why quantized: `q8.rs`).

#![cfg(target_arch = "x86_64")]

use crate::q8::Q8Act;
use crate::simd_mem::{load128, load256, load512, store128};
use std::arch::x86_64::*;

/// `q8::quantize_groups` for groups of a multiple of 16 values, sixteen at a time: the same
/// `d = max|x| / 127`, `1/d` and rounding (half away from zero, then ±127) as the scalar loop,
/// so both write the same bytes — at a fraction of its time, which decode pays ~120 times a
/// token on SmolLM2.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
pub(crate) fn quantize_groups(x: &[f32], group: usize, q: &mut [i8], d: &mut [f32]) {
    // Sign-bit logic on the integer view (the `_ps` forms need AVX-512 DQ).
    let sign = _mm512_set1_epi32(i32::MIN);
    let half = _mm512_castps_si512(_mm512_set1_ps(0.5));
    let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
    for ((xg, qg), dg) in x.chunks_exact(group).zip(q.chunks_exact_mut(group)).zip(d) {
        let (vs, _) = xg.as_chunks::<16>();
        let mut amax = _mm512_setzero_ps();
        for v in vs {
            let abs = _mm512_andnot_si512(sign, load512(v));
            amax = _mm512_max_ps(amax, _mm512_castsi512_ps(abs));
        }
        *dg = _mm512_reduce_max_ps(amax) / 127.0;
        let id = _mm512_set1_ps(if *dg > 0.0 { 1.0 / *dg } else { 0.0 });
        for (v, out) in vs.iter().zip(qg.as_chunks_mut::<16>().0) {
            let r = _mm512_mul_ps(load512f(v), id);
            let h = _mm512_or_si512(half, _mm512_and_si512(sign, _mm512_castps_si512(r)));
            let r = _mm512_add_ps(r, _mm512_castsi512_ps(h));
            let i = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(r), lo), hi);
            store128(out, _mm512_cvtepi32_epi8(i));
        }
    }
}

/// Q4_0 rows (18-byte blocks: `d`, 16 nibble bytes; weight `d·(q − 8)`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c")]
pub(crate) fn rows_q4_0_d16(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_q4::<18, false>(w, row_bytes, a, y);
}

/// Q4_1 rows (20-byte blocks: `d`, `m`, 16 nibble bytes; weight `d·q + m`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c")]
pub(crate) fn rows_q4_1_d16(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_q4::<20, true>(w, row_bytes, a, y);
}

/// Byte `src` of a 4-block span, as an index into `vpermt2b`'s two sources: the span's
/// first 64 bytes, and its last 64 (from `4B − 64`).
const fn two_source(src: usize, b: usize) -> u8 {
    match src < 64 {
        true => src as u8,
        false => (64 + src - (4 * b - 64)) as u8,
    }
}

/// Blocks of `B` bytes, 16 nibble bytes at their end; `M`: the block stores its offset `m`
/// after `d` (Q4_1), else the offset is `−8·d` (Q4_0).
///
/// Four blocks at a time, from two 64-byte loads of the span: one `vpermt2b` gathers their
/// 64 nibble bytes, another their `d` (and `m`) as 16-bit lanes already spread over the
/// lanes they scale; the low and the high nibbles meet `Q8Act::q_quads` (laid out to match,
/// one activation scale per block) in two chained `vpdpbusd`s summing in the same lanes, the
/// scales in one F16C conversion each, the offsets the activation's per-block sums
/// (`quad_s`) in one FMA; the activation's scales and sums are read once per block and
/// spread to their lanes by one permute each (four copies per block, read from memory, made
/// a wide row's activations twice the bytes and outgrow L1). Up to three last blocks run one at a
/// time in 256 bits. Earlier versions gathered the scales of 16 blocks with `vpgatherdd`
/// (slow on this machine's Xeon: the gather and its wait took ~46 % of the kernel's
/// samples), ran one block per 256-bit step with scalar scale gathers, or built pairs with
/// cross-lane shuffles.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c")]
fn rows_q4<const B: usize, const M: bool>(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let q = B - 16;
    let nib = _mm512_set1_epi8(15);
    let zero = _mm512_setzero_si512();
    // Byte i of the quants: block i/16's nibble byte i%16.
    let pick_q = load512(&std::array::from_fn::<u8, 64, _>(|i| {
        two_source((i / 16) * B + q + i % 16, B)
    }));
    // 16-bit lane l < 16: `d` of block l/4 (the lanes its weights' dots land in); l ≥ 16:
    // `m` of block (l − 16)/4 (Q4_0: `d` again, unused).
    let pick_h = load512(&std::array::from_fn::<u8, 64, _>(|i| {
        let (lane, byte) = (i / 2, i % 2);
        let field = if M && lane >= 16 { 2 } else { 0 };
        two_source(((lane % 16) / 4) * B + field + byte, B)
    }));
    let blocks = row_bytes / B;
    let quads = blocks / 4;
    let (xq, _) = a.q_quads.as_chunks::<128>();
    let (xd, _) = a.quad_d.as_chunks::<4>();
    let (xs, _) = a.quad_s.as_chunks::<4>();
    // Lane l takes block l / 4's activation scale and sum.
    let spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    let lanes = |v: &[f32; 4]| _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(load4f(v)));
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut off = _mm512_setzero_ps();
        for (j, span) in row.chunks_exact(4 * B).take(quads).enumerate() {
            let va = load512(&span[..64].as_chunks::<64>().0[0]);
            let vb = load512(&span[4 * B - 64..].as_chunks::<64>().0[0]);
            let qs = _mm512_permutex2var_epi8(va, pick_q, vb);
            let hs = _mm512_permutex2var_epi8(va, pick_h, vb);
            let d = _mm512_cvtph_ps(_mm512_castsi512_si256(hs));
            let (x, xdj) = (&xq[j], &xd[j]);
            let lo = _mm512_and_si512(qs, nib);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(qs), nib);
            let dot = _mm512_dpbusd_epi32(zero, lo, load512(&x[..64].as_chunks::<64>().0[0]));
            let dot = _mm512_dpbusd_epi32(dot, hi, load512(&x[64..].as_chunks::<64>().0[0]));
            let sc = _mm512_mul_ps(d, lanes(xdj));
            acc[j % 2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[j % 2]);
            let m = match M {
                true => _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(hs)),
                false => d,
            };
            off = _mm512_fmadd_ps(m, lanes(&xs[j]), off);
        }
        let mut total = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        // Each block's sum sat on its four lanes: a quarter of the lanes' total (exact).
        let off = 0.25 * _mm512_reduce_add_ps(off);
        total += if M { off } else { -8.0 * off };
        // The last blocks (fewer than four), on the activation's natural order.
        for k in 4 * quads..blocks {
            let b = &row[k * B..(k + 1) * B];
            let v = load128(&b[q..].as_chunks::<16>().0[0]);
            let wv = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16::<4>(v), v),
                _mm256_set1_epi8(15),
            );
            let x = &a.q[32 * k..].as_chunks::<32>().0[0];
            let p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, load256(x));
            let xs = &a.d16x4[8 * k..].as_chunks::<8>().0[0];
            let dk = crate::simd_mem::f16c_at::<2>(&[b[0], b[1]], 0);
            let t = _mm256_mul_ps(_mm256_cvtepi32_ps(p), load256f(xs));
            let t = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t));
            let t = _mm_add_ps(t, _mm_movehl_ps(t, t));
            let t = _mm_add_ss(t, _mm_movehdup_ps(t));
            let offset = match M {
                true => crate::simd_mem::f16c_at::<2>(&[b[2], b[3]], 0),
                false => -8.0 * dk,
            };
            total += dk * _mm_cvtss_f32(t) + offset * a.sum32[k];
        }
        *out = total;
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load256f(v: &[f32; 8]) -> __m256 {
    _mm256_castsi256_ps(load256(v))
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load512f(v: &[f32; 16]) -> __m512 {
    _mm512_castsi512_ps(load512(v))
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load4f(v: &[f32; 4]) -> __m128 {
    _mm_castsi128_ps(load128(v))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};
    use crate::GgmlType;

    /// The AVX-512 quantizer writes exactly the scalar loop's bytes and scales (ties, zeros,
    /// a zero group, large and tiny values), for groups of 16, 32 and 256.
    #[test]
    fn the_quantizer_matches_the_scalar_loop() {
        if !crate::simd512::available() {
            return;
        }
        let mut x = random_vector(512, 9);
        x[..16].fill(0.0);
        x[16] = 127.0;
        x[17] = 0.5;
        x[18] = -0.5;
        x[19] = -127.0;
        x[40] = 1e30;
        x[41] = -1e-30;
        for group in [16, 32, 256] {
            let (mut qa, mut da) = (vec![0i8; 512], vec![0f32; 512 / group]);
            let (mut qb, mut db) = (qa.clone(), da.clone());
            // WORKAROUND: the features were detected by `available()` above.
            #[allow(unsafe_code)]
            unsafe {
                quantize_groups(&x, group, &mut qa, &mut da)
            };
            crate::q8::quantize_scalar(&x, group, &mut qb, &mut db);
            assert_eq!((qa, da), (qb, db), "groups of {group}");
        }
    }

    /// Both kernels against the f64 dot of the dequantized row with the int8 activations they
    /// see ([`assert_rows_match`]).
    #[test]
    fn q4_rows_match_the_dequantized_dot_up_to_rounding() {
        if !crate::simd512::available() {
            return;
        }
        type Rows = unsafe fn(&[u8], usize, &Q8Act, &mut [f32]);
        let kernels: [(GgmlType, Rows); 2] = [
            (GgmlType::Q4_0, rows_q4_0_d16),
            (GgmlType::Q4_1, rows_q4_1_d16),
        ];
        for (ty, rows_fn) in kernels {
            assert_rows_match(ty, |w, rb, a, y| {
                // WORKAROUND: the features were detected by `available()` above.
                #[allow(unsafe_code)]
                unsafe {
                    rows_fn(w, rb, a, y)
                }
            });
        }
    }

    /// A legacy-type row kernel (`rows(w, row_bytes, act, y)`) against the f64 dot of the
    /// dequantized row with the int8 activations it sees (the four-block steps the per-32
    /// grid of `q_quads`, the last blocks `q·d16`), the offsets included: only f32 rounding
    /// may differ. Block counts around the 4- and 8-block steps (1–3 left over) and beyond 16
    /// blocks, several rows.
    pub(crate) fn assert_rows_match(
        ty: GgmlType,
        rows_fn: impl Fn(&[u8], usize, &Q8Act, &mut [f32]),
    ) {
        for (seed, blocks) in [
            (1u64, 1usize),
            (2, 2),
            (3, 17),
            (4, 18),
            (5, 33),
            (6, 16),
            (7, 48),
            (8, 4),
            (9, 7),
            (10, 12),
            (11, 8),
        ] {
            let (rows, cols) = (3, 32 * blocks);
            let w = random_blocks(ty, rows * blocks, seed);
            let x = random_vector(cols, seed + 40);
            let a = Q8Act::new(&x);
            let rb = ty.row_bytes(cols).unwrap();
            let (mut q32, mut d32) = (vec![0i8; cols], vec![0f32; cols / 32]);
            crate::q8::quantize_groups(&x, 32, &mut q32, &mut d32);
            let in_quads = cols / 128 * 128;
            let seen = |i: usize| match i < in_quads {
                true => q32[i] as f64 * d32[i / 32] as f64,
                false => a.q[i] as f64 * a.d16[i / 16] as f64,
            };
            let mut y = vec![0f32; rows];
            rows_fn(&w, rb, &a, &mut y);
            for (r, got) in y.iter().enumerate() {
                let wv = crate::dequantize_to_vec(ty, &w[r * rb..(r + 1) * rb], cols).unwrap();
                // `w = d·q + offset` as a whole meets the int8 activations (the offset
                // through their quantized sums).
                let (mut want, mut scale) = (0f64, 0f64);
                for (i, &wi) in wv.iter().enumerate() {
                    let xq = seen(i);
                    want += wi as f64 * xq;
                    scale += (wi as f64 * xq).abs();
                }
                assert!(
                    (*got as f64 - want).abs() <= 1e-5 * scale,
                    "{ty} {blocks} blocks row {r}: got {got} want {want}"
                );
            }
        }
    }
}
