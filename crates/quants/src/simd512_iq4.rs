//! AVX-512 row kernels of IQ4_NL and IQ4_XS against the per-256 int8 activation grid (see
//! `simd512.rs` for the CPU features and helpers).
//!
//! Both store 4-bit indices into the same 16 signed levels (`IQ4NL_LEVELS`, −127..=113), a
//! 32-weight group's low nibbles its first 16 weights and its high nibbles the last 16. Per 128
//! weights (four groups, 64 index bytes in one register): the low and the high nibble planes
//! are each looked up in place by one `vpshufb` as levels + 128 (1..=241, unsigned), the
//! activations are put in the planes' order by two `vpermt2q` (fewer shuffles than putting the
//! weights in weight order), two `vpdpbusd`, then one conversion and one FMA with the four
//! groups' scales. The +128 comes back out once per 256 activations through their 32-value sums
//! (`bsum16`): a group's product is `Σ (l + 128)·x − 128·Σ x`, which spares the signed form's
//! second lookup (the magnitudes), its sign mask and its masked subtract.

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd512::load512;
use crate::simd_mem::{load128, load256};
use crate::tables::IQ4NL_LEVELS;
use std::arch::x86_64::*;

/// The levels + 128 as unsigned bytes, in every 128-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn table() -> __m512i {
    let biased: [u8; 16] = IQ4NL_LEVELS.map(|v| (i16::from(v) + 128) as u8);
    _mm512_broadcast_i32x4(load128(&biased))
}

/// The eight 32-value sums of one 256-activation block, from its sixteen 16-value sums, as
/// floats times 128 (the bias to take back out of each group's `dot128` lanes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn bias8(bsum16: &[i16; 16]) -> __m256 {
    let s32 = _mm256_madd_epi16(load256(bsum16), _mm256_set1_epi16(1));
    _mm256_mul_ps(_mm256_cvtepi32_ps(s32), _mm256_set1_ps(128.0))
}

/// `Σ (w + 128)·x` of 128 weights, four 32-weight groups whose 16 index bytes each lie one
/// after another in `idx`, as 16 i32 lanes (lanes 4g..4g + 4 group g). The low nibbles (each
/// group's first 16 weights) and the high ones (its last 16) are each looked up in place; the
/// activations are brought into the same order instead (two `vpermt2q`), which takes fewer
/// shuffles than putting the weights in order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn dot128(idx: __m512i, table: __m512i, x: &[i8; 128], sel: (__m512i, __m512i)) -> __m512i {
    let nib = _mm512_set1_epi8(15);
    let lo = _mm512_shuffle_epi8(table, _mm512_and_si512(idx, nib));
    let hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16::<4>(idx), nib));
    let ([x0, x1], _) = x.as_chunks::<64>() else {
        unreachable!()
    };
    let (x0, x1) = (load512(x0), load512(x1));
    let xlo = _mm512_permutex2var_epi64(x0, sel.0, x1);
    let xhi = _mm512_permutex2var_epi64(x0, sel.1, x1);
    _mm512_dpbusd_epi32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo),
        hi,
        xhi,
    )
}

/// The qword selectors of `dot128`: the first and the second 16 activations of each of the
/// four 32-value groups of two 64-byte registers.
#[inline]
#[target_feature(enable = "avx512f")]
fn half_pick() -> (__m512i, __m512i) {
    let first: [i64; 8] = std::array::from_fn(|i| (4 * (i / 2) + i % 2) as i64);
    let second: [i64; 8] = first.map(|q| q + 2);
    (load512(&first), load512(&second))
}

/// Lanes of the 128-weight half h of 256 weights: groups 4h..4h + 4 (`dot128`'s four lanes
/// each).
#[inline]
#[target_feature(enable = "avx512f")]
fn group_pick() -> [__m512i; 2] {
    std::array::from_fn(|h| {
        let lanes: [i32; 16] = std::array::from_fn(|i| (4 * h + i / 4) as i32);
        load512(&lanes)
    })
}

/// IQ4_NL rows (18-byte blocks: f16 `d`, 16 index bytes; weight `d·level`), eight blocks per
/// 256 activations; the eight scales converted at once by F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq4nl(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let table = table();
    let (sel, pick4) = (half_pick(), group_pick());
    let (sums, _) = a.bsum16.as_chunks::<16>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<18>();
        let (supers, _) = blocks.as_chunks::<8>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (((sb, xq), &xd), s16) in supers.iter().zip(xq).zip(&a.d256).zip(sums) {
            let h: [i16; 8] = std::array::from_fn(|j| i16::from_le_bytes([sb[j][0], sb[j][1]]));
            let d = _mm256_cvtph_ps(load128(&h));
            let d8 = _mm512_castps256_ps512(d);
            let (xs, _) = xq.as_chunks::<128>();
            // The bias, in lanes 0–7 (the upper ones zero), starts the sum negated.
            let bias = _mm512_zextps256_ps512(_mm256_mul_ps(bias8(s16), d));
            let mut f = _mm512_sub_ps(_mm512_setzero_ps(), bias);
            for (h, (x, p)) in xs.iter().zip(&pick4).enumerate() {
                let qs = |j: usize| load128(&sb[4 * h + j][2..].as_chunks::<16>().0[0]);
                let lo = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(qs(0)), qs(1));
                let hi = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(qs(2)), qs(3));
                let idx = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let p32 = dot128(idx, table, x, sel);
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p32), _mm512_permutexvar_ps(*p, d8), f);
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
    let table = table();
    let (sel, pick4) = (half_pick(), group_pick());
    let (sums, _) = a.bsum16.as_chunks::<16>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<136>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (((b, xq), &xd), s16) in blocks.iter().zip(xq).zip(&a.d256).zip(sums) {
            let high = u16::from_le_bytes([b[2], b[3]]) as i32;
            let ls: [i32; 8] = std::array::from_fn(|j| {
                let low = (b[4 + j / 2] >> (4 * (j % 2))) as i32 & 15;
                (low | ((high >> (2 * j)) & 3) << 4) - 32
            });
            let s = _mm256_cvtepi32_ps(load256(&ls));
            let s8 = _mm512_castps256_ps512(s);
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                u16::from_le_bytes([b[0], b[1]]) as i32,
            )));
            let (xs, _) = xq.as_chunks::<128>();
            let (qs, _) = b[8..].as_chunks::<64>();
            // The bias, in lanes 0–7 (the upper ones zero), starts the sum negated.
            let bias = _mm512_zextps256_ps512(_mm256_mul_ps(bias8(s16), s));
            let mut f = _mm512_sub_ps(_mm512_setzero_ps(), bias);
            for ((x, q), p) in xs.iter().zip(qs).zip(&pick4) {
                let p32 = dot128(load512(q), table, x, sel);
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p32), _mm512_permutexvar_ps(*p, s8), f);
            }
            acc = _mm512_fmadd_ps(f, _mm512_set1_ps(d * xd), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}
