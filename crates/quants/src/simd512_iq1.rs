//! AVX-512 kernels of IQ1_S and IQ1_M (see `simd512.rs` for the CPU features and helpers).
//!
//! Their 2048-entry grid is too large for the shuffle lookup of `simd512_iq.rs` (16 `vpermi2b`
//! per code plane), and `vpgatherdq` measured slower than scalar loads on Zen 4: the indices are
//! computed in vectors, the 32 KiB offset grid (`simd_lowbit::iq1_offset_grid`: per weight
//! `8·g ± 1 + 9`, unsigned) is read by scalar loads, scales ride in `vpdpwssd`, and the `−9`
//! offset comes out once per block through the activation's 16-value sums.

#![cfg(target_arch = "x86_64")]

use crate::dequant::{f16_at, QK_K};
use crate::q8::Q8Act;
use crate::simd512::{dpwssd, load256, load512, word_pick};
use std::arch::x86_64::*;

/// The 256 weights of an IQ1 block from the offset grid (`simd_lowbit::iq1_offset_grid`: per
/// weight `8·g ± 1 + 9`, unsigned), 64 per vector: indices computed in vectors, grid words
/// fetched by scalar loads (measured faster than `vpgatherdq` on this CPU).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn iq1_gather(grid: &[u64; 4096], idx: [__m512i; 2]) -> [__m512i; 4] {
    let mut at = [0u32; 32];
    let (halves, _) = at.as_chunks_mut::<16>();
    for (h, v) in halves.iter_mut().zip(idx) {
        // WORKAROUND: an unaligned store has no safe intrinsic; writes exactly 16 u32.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(h.as_mut_ptr().cast(), v)
        };
    }
    std::array::from_fn(|q| {
        let g = |k: usize| grid[at[8 * q + k] as usize & 4095] as i64;
        _mm512_set_epi64(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0))
    })
}

/// `Σ_q maddubs(u_q, x_q) · scale_q − 9·Σ_m coef_m·bsum16_m` as 16 i32 lanes: the IQ1 block sum
/// in units of `d/8` (the `−9` undoes the table's offset over each scale group).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn iq1_block_sum(
    u: &[__m512i; 4],
    scale: &[__m512i; 4],
    coef: __m256i,
    xq: &[i8; QK_K],
    a: &Q8Act,
    bi: usize,
) -> __m512i {
    let (xs, _) = xq.as_chunks::<64>();
    let mut s0 = _mm512_setzero_si512();
    let mut s1 = _mm512_setzero_si512();
    for k in (0..4).step_by(2) {
        s0 = dpwssd(s0, _mm512_maddubs_epi16(u[k], load512(&xs[k])), scale[k]);
        s1 = dpwssd(
            s1,
            _mm512_maddubs_epi16(u[k + 1], load512(&xs[k + 1])),
            scale[k + 1],
        );
    }
    let off = _mm256_madd_epi16(coef, crate::simd_lowbit::bsums(a, bi));
    let off9 = _mm256_add_epi32(_mm256_slli_epi32::<3>(off), off);
    _mm512_mask_sub_epi32(
        _mm512_add_epi32(s0, s1),
        0x00ff,
        _mm512_add_epi32(s0, s1),
        _mm512_castsi256_si512(off9),
    )
}

/// IQ1_S rows · per-256 int8 activation: 11-bit grid index and the sub-block's delta sign
/// gathered from the 32 KiB offset grid (four 8-qword gathers per block), 3-bit scales per 32
/// in `vpdpwssd`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq1s(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let grid = crate::simd_lowbit::iq1_offset_grid();
    // Quarter g, lane k: sub-block 2g + k/16 (its scale is word 2j of the i32 lanes).
    let pick = word_pick(|g, k| 2 * (2 * g + k / 16));
    // Lane i of each 16-index half: sub-block 4h + i/4, field shift 3·(i mod 4).
    let sub: [__m512i; 2] = std::array::from_fn(|h| {
        load512(&std::array::from_fn::<i32, 16, _>(|i| {
            (4 * h + i / 4) as i32
        }))
    });
    let shift = load512(&std::array::from_fn::<i32, 16, _>(|i| (3 * (i % 4)) as i32));
    let coef_pick = load256(&std::array::from_fn::<i16, 16, _>(|m| (2 * (m / 2)) as i16));
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<50>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let h = _mm512_cvtepu16_epi32(_mm256_castsi128_si256(crate::simd_mem::load128(
                &b[34..50].as_chunks::<16>().0[0],
            )));
            let idx: [__m512i; 2] = std::array::from_fn(|half| {
                let q = _mm512_cvtepu8_epi32(crate::simd_mem::load128(
                    &b[2 + 16 * half..18 + 16 * half].as_chunks::<16>().0[0],
                ));
                let hj = _mm512_permutexvar_epi32(sub[half], h);
                let hi3 = _mm512_and_si512(_mm512_srlv_epi32(hj, shift), _mm512_set1_epi32(7));
                let neg = _mm512_srli_epi32::<15>(hj);
                _mm512_or_si512(
                    q,
                    _mm512_or_si512(_mm512_slli_epi32::<8>(hi3), _mm512_slli_epi32::<11>(neg)),
                )
            });
            let u = iq1_gather(grid, idx);
            // 2·s + 1 per sub-block, in the low word of each i32 lane.
            let odd = _mm512_or_si512(
                _mm512_slli_epi32::<1>(_mm512_and_si512(
                    _mm512_srli_epi32::<12>(h),
                    _mm512_set1_epi32(7),
                )),
                _mm512_set1_epi32(1),
            );
            let scale = pick.map(|p| _mm512_permutexvar_epi16(p, odd));
            let coef = _mm256_permutexvar_epi16(coef_pick, _mm512_castsi512_si256(odd));
            let sum = iq1_block_sum(&u, &scale, coef, xq, a, bi);
            let d = f16_at(b, 0) * 0.125 * xd;
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// IQ1_M rows · per-256 int8 activation: per 8 weights a 4-bit field (3 index bits, the delta
/// sign) that, shifted by 8, is exactly the offset grid's upper index bits; 3-bit scales per 16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq1m(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let grid = crate::simd_lowbit::iq1_offset_grid();
    // Quarter g, lane k: 16-weight group 4g + k/8.
    let pick = word_pick(|g, k| 4 * g + k / 8);
    // The scale words are bytes 48..56, i.e. words 4..8 of the 16 bytes at 40.
    let word_of = load256(&std::array::from_fn::<i16, 16, _>(|k| (4 + k / 4) as i16));
    let shift3 = load256(&std::array::from_fn::<i16, 16, _>(|k| (3 * (k % 4)) as i16));
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<56>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let qh = crate::simd_mem::load128(&b[32..48].as_chunks::<16>().0[0]);
            // Nibble i (low first) of the 16 qh bytes belongs to group i.
            let nib = _mm_set1_epi8(15);
            let lo = _mm_and_si128(qh, nib);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(qh), nib);
            let fields = [_mm_unpacklo_epi8(lo, hi), _mm_unpackhi_epi8(lo, hi)];
            let idx: [__m512i; 2] = std::array::from_fn(|half| {
                let q = _mm512_cvtepu8_epi32(crate::simd_mem::load128(
                    &b[16 * half..16 * half + 16].as_chunks::<16>().0[0],
                ));
                _mm512_or_si512(
                    q,
                    _mm512_slli_epi32::<8>(_mm512_cvtepu8_epi32(fields[half])),
                )
            });
            let u = iq1_gather(grid, idx);
            let sc: [u16; 4] =
                std::array::from_fn(|k| u16::from_le_bytes([b[48 + 2 * k], b[49 + 2 * k]]));
            let d = crate::dequant::f16_to_f32(
                (sc[0] >> 12)
                    | ((sc[1] >> 8) & 0x00f0)
                    | ((sc[2] >> 4) & 0x0f00)
                    | (sc[3] & 0xf000),
            );
            // Scale of 16-weight group k: 3 bits at 3·(k mod 4) of word k / 4, as 2·s + 1.
            let words =
                _mm256_castsi128_si256(crate::simd_mem::load128(&b[40..56].as_chunks::<16>().0[0]));
            let fields = _mm256_srlv_epi16(_mm256_permutexvar_epi16(word_of, words), shift3);
            let s16 = _mm256_or_si256(
                _mm256_slli_epi16::<1>(_mm256_and_si256(fields, _mm256_set1_epi16(7))),
                _mm256_set1_epi16(1),
            );
            let scale = pick.map(|p| _mm512_permutexvar_epi16(p, _mm512_castsi256_si512(s16)));
            let sum = iq1_block_sum(&u, &scale, s16, xq, a, bi);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * 0.125 * xd), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}
