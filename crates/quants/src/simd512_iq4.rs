//! AVX-512 row kernels of IQ4_NL and IQ4_XS against the per-256 int8 activation grid (see
//! `simd512.rs` for the CPU features and helpers).
//!
//! Both store 4-bit indices into the same 16 signed levels (`IQ4NL_LEVELS`, −127..=113), a
//! 32-weight group's low nibbles its first 16 weights and its high nibbles the last 16. Per 64
//! weights: one 256-bit load of the two groups' 32 index bytes, both nibble planes put in
//! weight order (one 128-bit lane shuffle), the levels looked up by one `vpshufb` (and their
//! magnitudes by another), the signs moved onto the activations by one masked subtract (AVX-512
//! has no `vpsignb`), one `vpdpbusd`, then one conversion and one FMA with the two groups'
//! scales — the Q8_0 kernel's arithmetic with a table lookup in front.

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd512::load512;
use crate::simd_mem::{load128, load256};
use crate::tables::IQ4NL_LEVELS;
use std::arch::x86_64::*;

/// The 64 weights of two 32-weight groups whose 16 index bytes each are `lo` and `hi`, as
/// (levels, |levels|) bytes in weight order: `levels` and `mags` are the 16 levels and their
/// magnitudes in every 128-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn weights64(pair: __m256i, levels: __m512i, mags: __m512i) -> (__m512i, __m512i) {
    let nib = _mm256_set1_epi8(15);
    let lo = _mm256_and_si256(pair, nib);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(pair), nib);
    // [lo A, lo B, hi A, hi B] -> [lo A, hi A, lo B, hi B] (128-bit lanes 0, 2, 1, 3).
    let z = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
    let idx = _mm512_shuffle_i64x2::<0b11_01_10_00>(z, z);
    (
        _mm512_shuffle_epi8(levels, idx),
        _mm512_shuffle_epi8(mags, idx),
    )
}

/// `Σ w·x` of 64 weights as 16 i32 lanes (lanes 0–7 the first group, 8–15 the second): the
/// magnitudes against the activations negated where the level is negative.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn dot64(w: (__m512i, __m512i), x: &[i8; 64]) -> __m512i {
    let zero = _mm512_setzero_si512();
    let x = load512(x);
    let xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w.0), zero, x);
    _mm512_dpbusd_epi32(zero, w.1, xs)
}

/// The level table and its magnitudes, in every 128-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn tables() -> (__m512i, __m512i) {
    let mags: [i8; 16] = IQ4NL_LEVELS.map(|v| v.unsigned_abs() as i8);
    (
        _mm512_broadcast_i32x4(load128(&IQ4NL_LEVELS)),
        _mm512_broadcast_i32x4(load128(&mags)),
    )
}

/// Lanes of the 64-weight quarter g: groups 2g (lanes 0–7) and 2g + 1 (lanes 8–15).
#[inline]
#[target_feature(enable = "avx512f")]
fn group_pick() -> [__m512i; 4] {
    std::array::from_fn(|g| {
        let lanes: [i32; 16] = std::array::from_fn(|i| (2 * g + i / 8) as i32);
        load512(&lanes)
    })
}

/// IQ4_NL rows (18-byte blocks: f16 `d`, 16 index bytes; weight `d·level`), eight blocks per
/// 256 activations; the eight scales converted at once by F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq4nl(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let (levels, mags) = tables();
    let pick = group_pick();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<18>();
        let (supers, _) = blocks.as_chunks::<8>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for ((sb, xq), &xd) in supers.iter().zip(xq).zip(&a.d256) {
            let h: [i16; 8] = std::array::from_fn(|j| i16::from_le_bytes([sb[j][0], sb[j][1]]));
            let d8 = _mm512_castps256_ps512(_mm256_cvtph_ps(load128(&h)));
            let (xs, _) = xq.as_chunks::<64>();
            let mut f = _mm512_setzero_ps();
            for (g, x) in xs.iter().enumerate() {
                let qs = |j: usize| load128(&sb[j][2..].as_chunks::<16>().0[0]);
                let pair =
                    _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(qs(2 * g)), qs(2 * g + 1));
                let p = dot64(weights64(pair, levels, mags), x);
                let sc = _mm512_permutexvar_ps(pick[g], d8);
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, f);
            }
            acc = _mm512_fmadd_ps(f, _mm512_set1_ps(xd), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// IQ4_XS rows (136-byte blocks of 256: f16 `d`, the 6-bit scales' high bits, their low
/// nibbles, 128 index bytes; weight `d·(ls − 32)·level` per 32 weights).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq4xs(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let (levels, mags) = tables();
    let pick = group_pick();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<136>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for ((b, xq), &xd) in blocks.iter().zip(xq).zip(&a.d256) {
            let high = u16::from_le_bytes([b[2], b[3]]) as i32;
            let ls: [i32; 8] = std::array::from_fn(|j| {
                let low = (b[4 + j / 2] >> (4 * (j % 2))) as i32 & 15;
                (low | ((high >> (2 * j)) & 3) << 4) - 32
            });
            let s8 = _mm512_castps256_ps512(_mm256_cvtepi32_ps(load256(&ls)));
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                u16::from_le_bytes([b[0], b[1]]) as i32,
            )));
            let (xs, _) = xq.as_chunks::<64>();
            let (qs, _) = b[8..].as_chunks::<32>();
            let mut f = _mm512_setzero_ps();
            for ((x, q), p) in xs.iter().zip(qs).zip(&pick) {
                let p32 = dot64(weights64(load256(q), levels, mags), x);
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p32), _mm512_permutexvar_ps(*p, s8), f);
            }
            acc = _mm512_fmadd_ps(f, _mm512_set1_ps(d * xd), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}
