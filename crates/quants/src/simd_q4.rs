//! AVX2 row kernels for the legacy 32-weight types Q4_0, Q4_1, Q5_0 and Q5_1 on the per-32
//! activation grid (`Q8Act::q_quads`, llama.cpp's q8_0/q8_1 granularity), and the AVX2
//! activation quantizer.
//!
//! Two blocks a 256-bit step: their 32 nibble bytes in one vector (low nibbles: each block's
//! first 16 weights, high nibbles its last 16), which is exactly how `q_quads` lays the
//! activations out (per 128 values: the first 16 of four blocks, then their last 16), so
//! the low and the high nibbles meet contiguous activations in two `maddubs`, summed in 16
//! bits, and one `madd` leaves block 0 in lanes 0–3 and block 1 in lanes 4–7. Per eight
//! blocks the row's scales (and Q4_1/Q5_1's `m`) are converted by one F16C instruction and
//! multiplied by the activation's (`quad_d`); one permute moves a pair's two to its lanes.
//! The offsets (`−8d`, `−16d`, `m`) meet the activation's per-block quantized sums
//! (`quad_s`; why quantized: `q8.rs`) in one FMA per eight blocks. The per-block kernel this replaces (per-16 grid, one block a
//! step, scales gathered behind bounds checks) ran 12.4 G weights/s on Q4_0 against
//! llama.cpp's 15.9 on one Zen 4 thread. A row's last 1–3 blocks (rows not a multiple of 128
//! weights, such as SmolLM2's 576) run one at a time on the per-16 grid.

#![cfg(target_arch = "x86_64")]

use crate::q8::Q8Act;
use crate::simd_mem::{load128, load256};
use std::arch::x86_64::*;

/// `q8::quantize_groups` for groups of a multiple of 8 values, eight at a time: the same
/// `d = max|x| / 127`, `1/d` and rounding (half away from zero, then ±127) as the scalar
/// loop, so both write the same bytes (a NaN is ignored by the maximum, as `f32::max` does;
/// the NaN value itself becomes −127 here and 0 there).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn quantize_groups(x: &[f32], group: usize, q: &mut [i8], d: &mut [f32]) {
    let sign = _mm256_set1_epi32(i32::MIN);
    let half = _mm256_castps_si256(_mm256_set1_ps(0.5));
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    for ((xg, qg), dg) in x.chunks_exact(group).zip(q.chunks_exact_mut(group)).zip(d) {
        let (vs, _) = xg.as_chunks::<8>();
        let mut amax = _mm256_setzero_ps();
        for v in vs {
            // `max_ps` returns its second operand when either is NaN: the running maximum.
            let abs = _mm256_castsi256_ps(_mm256_andnot_si256(sign, load256(v)));
            amax = _mm256_max_ps(abs, amax);
        }
        let m = _mm_max_ps(
            _mm256_castps256_ps128(amax),
            _mm256_extractf128_ps::<1>(amax),
        );
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        *dg = _mm_cvtss_f32(m) / 127.0;
        let id = _mm256_set1_ps(if *dg > 0.0 { 1.0 / *dg } else { 0.0 });
        for (v, out) in vs.iter().zip(qg.as_chunks_mut::<8>().0) {
            let r = _mm256_mul_ps(_mm256_castsi256_ps(load256(v)), id);
            let h = _mm256_or_si256(half, _mm256_and_si256(sign, _mm256_castps_si256(r)));
            let r = _mm256_add_ps(r, _mm256_castsi256_ps(h));
            let i = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(r), lo), hi);
            let w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
            let b = _mm_cvtsi128_si64(_mm_packs_epi16(w, w));
            *out = b.to_le_bytes().map(|v| v as i8);
        }
    }
}

/// Q4_0 rows (18-byte blocks: `d`, 16 nibble bytes; weight `d·(q − 8)`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows_q4_0(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows::<18, false, false>(w, row_bytes, a, y);
}

/// Q4_1 rows (20-byte blocks: `d`, `m`, 16 nibble bytes; weight `d·q + m`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows_q4_1(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows::<20, true, false>(w, row_bytes, a, y);
}

/// Q5_0 rows (22-byte blocks: `d`, 32-bit `qh`, 16 nibble bytes; weight `d·(q − 16)`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows_q5_0(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows::<22, false, true>(w, row_bytes, a, y);
}

/// Q5_1 rows (24-byte blocks: `d`, `m`, 32-bit `qh`, 16 nibble bytes; weight `d·q + m`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows_q5_1(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows::<24, true, true>(w, row_bytes, a, y);
}

/// Constants of the pair steps.
#[derive(Clone, Copy)]
struct Consts {
    nib: __m256i,
    ones: __m256i,
    /// Lane l of pair p: the scale of block 2p + l / 4 (of eight).
    lanes: [__m256i; 4],
    /// Q5: byte i of each 128-bit lane takes `qh` byte i / 8 (weights 0–15), or 2 + i / 8
    /// (weights 16–31).
    spread: [__m256i; 2],
    /// OR-ing every bit but bit i % 8 leaves all ones exactly where bit i is set.
    others: __m256i,
    fifth: __m256i,
}

impl Consts {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new() -> Self {
        let spread = |first: usize| {
            load256(&std::array::from_fn::<u8, 32, _>(|i| {
                (first + (i % 16) / 8) as u8
            }))
        };
        Consts {
            nib: _mm256_set1_epi8(15),
            ones: _mm256_set1_epi16(1),
            lanes: std::array::from_fn(|p| {
                load256(&std::array::from_fn::<i32, 8, _>(|l| {
                    (2 * p + l / 4) as i32
                }))
            }),
            spread: [spread(0), spread(2)],
            others: _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64),
            fifth: _mm256_set1_epi8(16),
        }
    }
}

/// Blocks of `B` bytes, 16 nibble bytes at their end; `M`: the block stores its offset `m`
/// after `d` (Q4_1, Q5_1), else the offset is `−8·d` (`−16·d` with `H`); `H`: a 32-bit `qh`
/// (the fifth bits) before the nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn rows<const B: usize, const M: bool, const H: bool>(
    w: &[u8],
    row_bytes: usize,
    a: &Q8Act,
    y: &mut [f32],
) {
    let c = Consts::new();
    let blocks = row_bytes / B;
    let quads = (blocks / 4).min(a.q_quads.len() / 128);
    let (xq, _) = a.q_quads.as_chunks::<128>();
    let (xd, _) = a.quad_d.as_chunks::<4>();
    let (xs, _) = a.quad_s.as_chunks::<4>();
    let (xq, xd, xs) = (&xq[..quads], &xd[..quads], &xs[..quads]);
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (bl, _) = row.as_chunks::<B>();
        let (eights, rest) = bl[..4 * quads].as_chunks::<8>();
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut off = _mm256_setzero_ps();
        for (k, g) in eights.iter().enumerate() {
            let q = 2 * k..2 * k + 2;
            span::<B, M, H, 8>(
                g,
                &xq[q.clone()],
                &xd[q.clone()],
                &xs[q],
                c,
                &mut acc,
                &mut off,
            );
        }
        if let Some(g) = rest.as_chunks::<4>().0.first() {
            let q = quads - 1..quads;
            span::<B, M, H, 4>(
                g,
                &xq[q.clone()],
                &xd[q.clone()],
                &xs[q],
                c,
                &mut acc,
                &mut off,
            );
        }
        let total = crate::simd::hsum(_mm256_add_ps(acc[0], acc[1]));
        let off = crate::simd::hsum(off);
        let off = match (M, H) {
            (true, _) => off,
            (false, false) => -8.0 * off,
            (false, true) => -16.0 * off,
        };
        let tail = crate::simd::legacy_blocks::<B, M, H>(&bl[4 * quads..], 4 * quads, a);
        *out = total + off + tail;
    }
}

/// `N` (4 or 8) blocks against their quads of activations (`xd`, `xs`: the blocks' scales and
/// sums, four a quad), two blocks a step; `off` gathers `offset_scale · s` (Q4_0/Q5_0: `d`,
/// scaled by −8 / −16 by the caller).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
fn span<const B: usize, const M: bool, const H: bool, const N: usize>(
    g: &[[u8; B]; N],
    xq: &[[i8; 128]],
    xd: &[[f32; 4]],
    xs: &[[f32; 4]],
    c: Consts,
    acc: &mut [__m256; 2],
    off: &mut __m256,
) {
    let half = |k: usize, at: usize| match k < N {
        true => u16::from_le_bytes([g[k][at], g[k][at + 1]]),
        false => 0,
    };
    let act = |v: &[[f32; 4]]| match N == 8 {
        true => _mm256_set_m128(load4f(&v[1]), load4f(&v[0])),
        false => _mm256_zextps128_ps256(load4f(&v[0])),
    };
    let d8 = _mm256_cvtph_ps(load128(&std::array::from_fn::<u16, 8, _>(|k| half(k, 0))));
    let m8 = match M {
        true => _mm256_cvtph_ps(load128(&std::array::from_fn::<u16, 8, _>(|k| half(k, 2)))),
        false => d8,
    };
    let sc8 = _mm256_mul_ps(d8, act(xd));
    *off = _mm256_fmadd_ps(m8, act(xs), *off);
    for p in 0..N / 2 {
        let (q_lo, q_hi) = nibbles::<B, H>(&g[2 * p], &g[2 * p + 1], c);
        let (x, h) = (&xq[p / 2], 32 * (p % 2));
        let xl = load256(&x[h..h + 32].as_chunks::<32>().0[0]);
        let xh = load256(&x[64 + h..64 + h + 32].as_chunks::<32>().0[0]);
        // |sum| ≤ 4·31·127 = 15 748: the halves add in 16 bits.
        let p16 = _mm256_add_epi16(
            _mm256_maddubs_epi16(q_lo, xl),
            _mm256_maddubs_epi16(q_hi, xh),
        );
        let p32 = _mm256_madd_epi16(p16, c.ones);
        let sc = _mm256_permutevar8x32_ps(sc8, c.lanes[p]);
        acc[p % 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), sc, acc[p % 2]);
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn load4f(v: &[f32; 4]) -> __m128 {
    _mm_castsi128_ps(load128(v))
}

/// Two blocks' nibbles (with their fifth bits for Q5) as the unsigned quants of weights
/// 0–15 (low nibbles) and 16–31 (high), block 0 in the low 128-bit lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn nibbles<const B: usize, const H: bool>(
    b0: &[u8; B],
    b1: &[u8; B],
    c: Consts,
) -> (__m256i, __m256i) {
    let qs_at = B - 16;
    let l0 = load128(&b0[qs_at..].as_chunks::<16>().0[0]);
    let l1 = load128(&b1[qs_at..].as_chunks::<16>().0[0]);
    let qs = _mm256_set_m128i(l1, l0);
    let mut lo = _mm256_and_si256(qs, c.nib);
    let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(qs), c.nib);
    if H {
        let at = qs_at - 4;
        let qh = |b: &[u8; B]| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let v = _mm256_set_m128i(_mm_cvtsi32_si128(qh(b1)), _mm_cvtsi32_si128(qh(b0)));
        let bits = |spread: __m256i| {
            let bytes = _mm256_shuffle_epi8(v, spread);
            let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, c.others), _mm256_set1_epi8(-1));
            _mm256_and_si256(set, c.fifth)
        };
        lo = _mm256_or_si256(lo, bits(c.spread[0]));
        hi = _mm256_or_si256(hi, bits(c.spread[1]));
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::random_vector;
    use crate::GgmlType;

    /// The AVX2 quantizer writes exactly the scalar loop's bytes and scales (ties, zeros, a
    /// zero group, large and tiny values; a NaN's group scale), for groups of 8, 16, 32 and
    /// 256.
    #[test]
    fn the_quantizer_matches_the_scalar_loop() {
        if !crate::kernels::have_avx2() {
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
        x[300] = f32::NAN;
        for group in [8, 16, 32, 256] {
            let (mut qa, mut da) = (vec![0i8; 512], vec![0f32; 512 / group]);
            let (mut qb, mut db) = (qa.clone(), da.clone());
            // WORKAROUND: the features were detected by `have_avx2()` above.
            #[allow(unsafe_code)]
            unsafe {
                quantize_groups(&x, group, &mut qa, &mut da)
            };
            crate::q8::quantize_scalar(&x, group, &mut qb, &mut db);
            (qa[300], qb[300]) = (0, 0);
            assert_eq!(qa, qb, "groups of {group}");
            assert_eq!(
                da.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                db.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "groups of {group}"
            );
        }
    }

    /// The four kernels against the f64 dot of the dequantized row with the int8 activations
    /// they see (`simd512_q4`'s checker: block counts around the 4- and 8-block steps).
    #[test]
    fn legacy_rows_match_the_dequantized_dot_up_to_rounding() {
        if !(crate::kernels::have_avx2() && crate::kernels::have_f16c()) {
            return;
        }
        type Rows = unsafe fn(&[u8], usize, &Q8Act, &mut [f32]);
        let kernels: [(GgmlType, Rows); 4] = [
            (GgmlType::Q4_0, rows_q4_0),
            (GgmlType::Q4_1, rows_q4_1),
            (GgmlType::Q5_0, rows_q5_0),
            (GgmlType::Q5_1, rows_q5_1),
        ];
        for (ty, rows_fn) in kernels {
            crate::simd512_q4::tests::assert_rows_match(ty, |w, rb, a, y| {
                // WORKAROUND: the features were detected above.
                #[allow(unsafe_code)]
                unsafe {
                    rows_fn(w, rb, a, y)
                }
            });
        }
    }
}
