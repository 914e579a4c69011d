//! The AVX2 IQ1_S and IQ1_M row kernels (a part of `simd_lowbit`, whose shared scale-lane
//! and activation-sum helpers they use): the grids as unsigned bytes, the grid indices,
//! IQ1_M's scales and its per-group deltas computed in vectors.

use super::{bsums, controls, controls_in_view, even_odd, f16c_at, fold, pick, scaled};
use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd::hsum;
use crate::simd_mem::load256;
use crate::tables::IQ1S_GRID;
use std::arch::x86_64::*;

/// IQ1 groups as unsigned bytes `g + 1` ∈ {0, 1, 2} (g ∈ {−1, 0, 1} the grid value), 2048 × 8
/// bytes = 16 KiB: half the offset grid, which with a wide row's activations outgrew L1.
/// The deltas (IQ1_S's one sign per 32 weights, IQ1_M's per 8) are taken out through the
/// activation sums instead.
pub(crate) fn iq1_unsigned_grid() -> &'static [u64; 2048] {
    static TABLE: std::sync::OnceLock<Box<[u64; 2048]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u64; 2048]);
        for (v, g) in t.iter_mut().zip(IQ1S_GRID.iter()) {
            *v = u64::from_le_bytes(std::array::from_fn(|k| (g[k] + 1) as u8));
        }
        t
    })
}

/// The 32 grid indices of an IQ1_S block, `qs[4j + l] | ((qh[j] >> 3l) & 7) << 8` for
/// sub-block j and group l (`qh`: 8 u16 lanes), computed in two vectors — scalar shifts,
/// masks and ors per index were most of the kernel's instructions — and handed over as an
/// array for the table loads. The 3-bit field moves to bits 8–10 by a multiply (`<< 8`,
/// `<< 5`, `<< 2`) or, for l = 3, a shift right by one. (IQ2_S's 2-bit fields the same way
/// measured 10–15 % slower than its scalar indices.)
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq1s_indices(qs: &[u8; 32], qh: __m128i) -> [u16; 32] {
    let both = _mm256_broadcastsi128_si256(qh);
    // Lanes 4j..4j + 4 take qh[j]: sub-blocks 0–3 in the first vector, 4–7 in the second.
    let rep = |f: i8| {
        let ctrl: [i8; 32] = std::array::from_fn(|k| f + 2 * (k / 8) as i8 + (k % 2) as i8);
        _mm256_shuffle_epi8(both, load256(&ctrl))
    };
    let mul = _mm256_setr_epi16(256, 32, 4, 1, 256, 32, 4, 1, 256, 32, 4, 1, 256, 32, 4, 1);
    let mask = _mm256_set1_epi16(0x700);
    let (q, _) = qs.as_chunks::<16>();
    let mut out = [0u16; 32];
    let (o, _) = out.as_chunks_mut::<16>();
    for (k, (o, q)) in o.iter_mut().zip(q).enumerate() {
        let h = rep(8 * k as i8);
        let high = _mm256_blend_epi16::<0b1000_1000>(
            _mm256_mullo_epi16(h, mul),
            _mm256_srli_epi16::<1>(h),
        );
        let low = _mm256_cvtepu8_epi16(crate::simd_mem::load128(q));
        let idx = _mm256_or_si256(low, _mm256_and_si256(high, mask));
        crate::simd_mem::store256(o, idx);
    }
    out
}

/// IQ1_S: per 32 weights a 3-bit scale `2ls + 1` and one delta sign; weights `dl·(g + δ)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq1s(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls_in_view();
    let grid = iq1_unsigned_grid();
    let (blocks, _) = row.as_chunks::<50>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    // Each block's indices and scales are worked out a block ahead (see `dot_iq3xxs`;
    // 12.4 → 13.7 G weights/s, one Zen 3 thread at 512×14336).
    let setup = |b: &[u8; 50]| {
        let qh = crate::simd_mem::load128(&b[34..50].as_chunks::<16>().0[0]);
        // Per sub-block as i16 lanes: ls = 2·s + 1, and its delta coefficient (below).
        let ls = _mm_add_epi16(
            _mm_slli_epi16::<1>(_mm_and_si128(_mm_srli_epi16::<12>(qh), _mm_set1_epi16(7))),
            _mm_set1_epi16(1),
        );
        // 8·w = 8·u − 8 ± 1 with u = g + 1 from the grid: the products carry 8·ls, the
        // activation sums ls·(8 ∓ 1) (9 where the sign bit makes the delta negative).
        let eo = _mm256_broadcastsi128_si256(_mm_slli_epi16::<3>(ls));
        let nine = _mm_sub_epi16(
            _mm_set1_epi16(7),
            _mm_slli_epi16::<1>(_mm_srai_epi16::<15>(qh)),
        );
        let c = _mm_mullo_epi16(ls, nine);
        let coef = _mm256_set_m128i(_mm_unpackhi_epi16(c, c), _mm_unpacklo_epi16(c, c));
        let idx = iq1s_indices(&b[2..34].as_chunks::<32>().0[0], qh);
        (idx, eo, coef)
    };
    let zero = _mm256_setzero_si256();
    let mut next = blocks.first().map_or(([0; 32], zero, zero), setup);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (idx, eo, coef) = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let sum = grid_sums(grid, &idx, xq, eo, &pick_c, |_, w| w);
        let off = _mm256_madd_epi16(coef, bsums(a, bi));
        let total = _mm256_sub_epi32(sum, off);
        acc = fold(total, f16c_at(b, 0) * 0.125 * xd, acc);
    }
    hsum(acc)
}

/// The 32 grid indices of an IQ1_M block, `qs[i] | field_i << 8` with field i the 4-bit
/// field i % 2 of `qh[i / 2]` (3 index bits and, as bit 11, the group's delta sign, which the
/// 2048-entry grid's mask drops), computed in vectors (scalar shifts and masks per index were
/// most of the kernel's instructions, as in IQ1_S); and per group a byte 2 where the delta is
/// positive, 0 where negative (groups 0–15, 16–31).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq1m_indices(qs: &[u8; 32], qh: &[u8; 16]) -> ([u16; 32], [__m128i; 2]) {
    let h = crate::simd_mem::load128(qh);
    let nib = _mm_set1_epi8(15);
    let lo = _mm_and_si128(h, nib);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(h), nib);
    let fields = [_mm_unpacklo_epi8(lo, hi), _mm_unpackhi_epi8(lo, hi)];
    // (!field & 8) >> 2: the 16-bit shift moves no set bit across bytes (bits 0–2 are clear).
    let delta = fields.map(|f| _mm_srli_epi16::<2>(_mm_andnot_si128(f, _mm_set1_epi8(8))));
    let (q, _) = qs.as_chunks::<16>();
    let mut out = [0u16; 32];
    let (o, _) = out.as_chunks_mut::<16>();
    for ((o, q), f) in o.iter_mut().zip(q).zip(fields) {
        let high = _mm256_slli_epi16::<8>(_mm256_cvtepu8_epi16(f));
        let low = _mm256_cvtepu8_epi16(crate::simd_mem::load128(q));
        crate::simd_mem::store256(o, _mm256_or_si256(low, high));
    }
    (out, delta)
}

/// IQ1_M's 16 scales `2s + 1` (3-bit fields, four to a 16-bit word of `sc`: field k is bits
/// 3(k % 4).. of word k / 4) as i16 lanes: each word spread over its four lanes by one
/// shuffle, each lane's field moved to the top by a multiply and down by one shift.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq1m_scales(sc: &[u8; 8]) -> __m256i {
    let v = _mm256_set1_epi64x(i64::from_le_bytes(*sc));
    // Lane k = 4q + p takes word q (every 128-bit lane holds all four words: bytes 2q, 2q + 1).
    let spread = _mm256_setr_epi8(
        0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, //
        4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7,
    );
    let w = _mm256_shuffle_epi8(v, spread);
    let up = _mm256_setr_epi16(
        1 << 13,
        1 << 10,
        1 << 7,
        1 << 4,
        1 << 13,
        1 << 10,
        1 << 7,
        1 << 4, //
        1 << 13,
        1 << 10,
        1 << 7,
        1 << 4,
        1 << 13,
        1 << 10,
        1 << 7,
        1 << 4,
    );
    let s = _mm256_srli_epi16::<13>(_mm256_mullo_epi16(w, up));
    _mm256_add_epi16(_mm256_add_epi16(s, s), _mm256_set1_epi16(1))
}

/// IQ1_M: a 3-bit scale `2s + 1` per 16 weights, a delta sign per 8, the f16 super-scale in the
/// top nibbles of the four scale words. As IQ1_S: the unsigned grid `g + 1` in the products,
/// each delta through its group's activation sum (`bsum8`, times `ls·(8 ∓ 1)`), and the
/// block's indices worked out a block ahead. One Zen 3 thread at 4096×14336: 12.5 → 13.9 G
/// weights/s (llama.cpp's 12.8). Before, the delta was OR-ed into the grid bytes `8(g + 1)`
/// (a shuffle and an OR per 32 weights, at the start of each sub-block's work), and taking
/// the indices a block ahead then gained nothing; a 32 KiB grid with the delta folded in
/// filled Zen 3's 32 KiB L1 with the activations beside it (session 34).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq1m(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let grid = iq1_unsigned_grid();
    let (blocks, _) = row.as_chunks::<56>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let (sums8, _) = a.bsum8.as_chunks::<32>();
    let mut acc = _mm256_setzero_ps();
    let setup = |b: &[u8; 56]| {
        iq1m_indices(
            &b[..32].as_chunks::<32>().0[0],
            &b[32..48].as_chunks::<16>().0[0],
        )
    };
    let mut next = blocks
        .first()
        .map_or(([0; 32], [_mm_setzero_si128(); 2]), setup);
    for (bi, (((b, xq), &xd), s8)) in blocks.iter().zip(xq).zip(&a.d256).zip(sums8).enumerate() {
        let (idx, delta) = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let sc = &b[48..56].as_chunks::<8>().0[0];
        let w: [u16; 4] = std::array::from_fn(|k| u16::from_le_bytes([sc[2 * k], sc[2 * k + 1]]));
        let d16 = (w[0] >> 12) | ((w[1] >> 8) & 0x00f0) | ((w[2] >> 4) & 0x0f00) | (w[3] & 0xf000);
        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(d16 as i32)));
        let scales = iq1m_scales(sc);
        // 8·w = 8·u − 8 ± 1 with u = g + 1 from the grid: the products carry 8·ls, each group
        // of 8 its activation sum times ls·(8 ∓ 1) (9 where its delta is negative: 9 − the
        // delta byte, 2 or 0).
        let sum = grid_sums(
            grid,
            &idx,
            xq,
            even_odd(_mm256_slli_epi16::<3>(scales)),
            &pick_c,
            |_, w| w,
        );
        let (lo, hi) = (
            _mm256_unpacklo_epi16(scales, scales),
            _mm256_unpackhi_epi16(scales, scales),
        );
        let ls = [
            _mm256_permute2x128_si256::<0x20>(lo, hi),
            _mm256_permute2x128_si256::<0x31>(lo, hi),
        ];
        let (s8, _) = s8.as_chunks::<16>();
        let off = std::array::from_fn::<_, 2, _>(|h| {
            let m = _mm256_sub_epi16(_mm256_set1_epi16(9), _mm256_cvtepu8_epi16(delta[h]));
            _mm256_madd_epi16(_mm256_mullo_epi16(ls[h], m), load256(&s8[h]))
        });
        let total = _mm256_sub_epi32(sum, _mm256_add_epi32(off[0], off[1]));
        acc = fold(total, d * 0.125 * xd, acc);
    }
    hsum(acc)
}

/// A block's integer sums over its 8 sub-blocks of 32 weights: four grid entries (8 unsigned
/// bytes each) per sub-block, picked by `idx`, times the activations, scaled per 16 by the
/// lanes of `eo`; two sub-blocks a step into two accumulators; `mix(j, w)` gives sub-block
/// j's weight bytes from its grid bytes `w` (IQ1_M ORs in its deltas; IQ1_S takes `w`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn grid_sums<const N: usize>(
    grid: &[u64; N],
    idx: &[u16; 32],
    xq: &[i8; QK_K],
    eo: __m256i,
    pick_c: &[__m256i; 8],
    mix: impl Fn(usize, __m256i) -> __m256i,
) -> __m256i {
    let (idx, _) = idx.as_chunks::<4>();
    let (xs, _) = xq.as_chunks::<32>();
    let mut s = [_mm256_setzero_si256(); 2];
    for (j, (i, x)) in idx.iter().zip(xs).enumerate() {
        // (N is a power of two: the mask drops the bounds checks.)
        let g = i.map(|k| grid[k as usize & (N - 1)] as i64);
        let w = mix(j, _mm256_set_epi64x(g[3], g[2], g[1], g[0]));
        s[j % 2] = _mm256_add_epi32(s[j % 2], scaled(w, x, pick(eo, pick_c[j])));
    }
    _mm256_add_epi32(s[0], s[1])
}
