//! AVX2 row kernels for the 256-weight formats whose decode-then-dot path ran at or near
//! llama.cpp's speed: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ1_S, IQ1_M, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S.
//! (IQ1_S and IQ1_M in `simd_lowbit_iq1.rs`.)
//!
//! Shared idea: the weights enter `maddubs` as *unsigned* bytes against the per-256 int8
//! activations, the sub-block scales ride in the widening `madd` as i16 lanes, and everything a
//! format adds or subtracts per weight (a `dmin·m` minimum, Q3_K's `−4`, IQ1's `±1/8` delta)
//! is folded in once per 16 weights through the integer activation sums `bsum16`
//! (`Σ (u − o)·x = Σ u·x − o·Σ x`). A super-block costs one or two float FMAs.
//!
//! Scale lanes: `maddubs` leaves weights 0–15 of a 32-weight chunk in the low 128-bit lane and
//! 16–31 in the high one, so chunk `c` needs scale `2c` in the low lane and `2c + 1` in the
//! high one. [`even_odd`] lays a block's 16 i16 scales out as (evens | odds) once; one byte
//! shuffle ([`pick`]) then serves each chunk.

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd::{hsum, SuperBlockSums};
use crate::simd_mem::load256;
use crate::tables::{IQ2S_GRID, IQ2XS_GRID, IQ3S_GRID, IQ3XXS_GRID};
use std::arch::x86_64::*;

/// 16 bytes widened to 16 unsigned i16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn widen_u8(b: &[u8; 16]) -> __m256i {
    let lo = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let hi = i64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    _mm256_cvtepu8_epi16(_mm_set_epi64x(hi, lo))
}

/// The 16 scales `2·n + 1` of 8 bytes of nibbles (low nibble first) as i16 lanes, in
/// vectors (the IQ2_XS / IQ2_S scale fields; per-nibble scalar code was a visible share).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn nibble_scales(b: &[u8; 8]) -> __m256i {
    let v = _mm_set_epi64x(0, i64::from_le_bytes(*b));
    let nib = _mm_set1_epi8(15);
    let lo = _mm_and_si128(v, nib);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), nib);
    let n = _mm_unpacklo_epi8(lo, hi);
    let odd = _mm_add_epi8(_mm_add_epi8(n, n), _mm_set1_epi8(1));
    _mm256_cvtepu8_epi16(odd)
}

/// Byte-shuffle controls for [`pick`]: entry `c` repeats i16 element `c` of each 128-bit lane.
/// They pass through `black_box`: with the constants in view LLVM lowers each `vpshufb` to a
/// `vpshuflw` + `vpshufd` pair, two shuffles where one does (the shuffle ports were the
/// limit of the K-quant and IQ kernels on Zen 4).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn controls() -> [__m256i; 8] {
    std::hint::black_box(controls_in_view())
}

/// [`controls`] as constants LLVM sees (IQ1_S measured 3 % faster with them).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn controls_in_view() -> [__m256i; 8] {
    std::array::from_fn(|c| _mm256_set1_epi16((((2 * c + 1) << 8) | (2 * c)) as i16))
}

pub(crate) use crate::simd_mem::f16c_at;

/// 16 natural-order i16 scales → (scales 0, 2, …, 14 | scales 1, 3, …, 15).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn even_odd(s: __m256i) -> __m256i {
    // Per 128-bit lane: even i16 elements to the low 8 bytes, odd ones to the high 8 bytes.
    let split = _mm256_set_epi8(
        15, 14, 11, 10, 7, 6, 3, 2, 13, 12, 9, 8, 5, 4, 1, 0, //
        15, 14, 11, 10, 7, 6, 3, 2, 13, 12, 9, 8, 5, 4, 1, 0,
    );
    let t = _mm256_shuffle_epi8(s, split);
    // 64-bit quarters (e0–3, o0–3, e4–7, o4–7) → (e0–3, e4–7, o0–3, o4–7).
    _mm256_permute4x64_epi64::<0b11_01_10_00>(t)
}

/// Chunk `c`'s scale lanes from an [`even_odd`] vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn pick(eo: __m256i, ctrl: __m256i) -> __m256i {
    _mm256_shuffle_epi8(eo, ctrl)
}

/// Unsigned weights × signed activations of 32 weights, scaled per 16 → 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn scaled(w: __m256i, x: &[i8; 32], scale: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(w, load256(x)), scale)
}

/// The block's activation sums as a vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn bsums(a: &Q8Act, block: usize) -> __m256i {
    let (b, _) = a.bsum16[16 * block..].as_chunks::<16>();
    load256(&b[0])
}

/// A K-quant block's adjacent f16 `d` and `dmin` (at byte `at`) converted by one F16C
/// instruction and scaled by the activation's `xd`: lanes 0 and 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn d_dmin<const B: usize>(b: &[u8; B], at: usize, xd: f32) -> __m128 {
    let dm = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dm as i32)), _mm_set1_ps(xd))
}

/// A K-quant block's integer sums into the accumulators with its adjacent f16 `d` and
/// `dmin` (at byte `at`), both converted by one F16C instruction and scaled by the
/// activation's `xd` (the two scalar conversions and products were a visible share of
/// Q2_K's per-block work: +8 % cache-resident).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fold_d_dmin<const B: usize>(
    b: &[u8; B],
    at: usize,
    xd: f32,
    sum: __m256i,
    m: __m256i,
    acc: __m256,
    acc_min: __m256,
) -> (__m256, __m256) {
    let dm = d_dmin(b, at, xd);
    let d = _mm256_broadcastss_ps(dm);
    let dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
    (
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc),
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), dmin, acc_min),
    )
}

/// Sum of the 8 i32 lanes as float, one FMA into `acc`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fold(v: __m256i, k: f32, acc: __m256) -> __m256 {
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(k), acc)
}

/// The 2-bit field `j` (bits 2j, 2j + 1) of every byte of `q` (`three` = 3 in every byte).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn crumb(q: __m256i, j: usize, three: __m256i) -> __m256i {
    let v = match j {
        0 => q,
        1 => _mm256_srli_epi16::<2>(q),
        2 => _mm256_srli_epi16::<4>(q),
        _ => _mm256_srli_epi16::<6>(q),
    };
    _mm256_and_si256(v, three)
}

/// Bit `from` of every byte of `v` moved to bit `to` (`mask` = 1 << `to` in every byte), the
/// rest cleared. The 16-bit shifts never bring a neighbour byte's bit into place for the
/// moves used here (bit 0–7 → bit 2 or 4: right shifts by ≤ 5 fill bit `to` of a low byte
/// from bit `to + k ≤ 7` of the same byte; left shifts by ≤ 4 fill bit `to` of a high byte
/// from lane bit `8 + to − k ≥ 8`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn move_bit(v: __m256i, from: usize, to: usize, mask: __m256i) -> __m256i {
    let m = match from as i32 - to as i32 {
        -4 => _mm256_slli_epi16::<4>(v),
        -3 => _mm256_slli_epi16::<3>(v),
        -2 => _mm256_slli_epi16::<2>(v),
        -1 => _mm256_slli_epi16::<1>(v),
        0 => v,
        1 => _mm256_srli_epi16::<1>(v),
        2 => _mm256_srli_epi16::<2>(v),
        3 => _mm256_srli_epi16::<3>(v),
        4 => _mm256_srli_epi16::<4>(v),
        _ => _mm256_srli_epi16::<5>(v),
    };
    _mm256_and_si256(m, mask)
}

/// Q2_K: `d·sc·q − dmin·m`, q ∈ 0..=3 (2 bits), 4-bit scale and min per 16.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q2k(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let three = _mm256_set1_epi8(3);
    let low4 = _mm_set1_epi8(15);
    let (blocks, _) = row.as_chunks::<84>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (sc16, _) = b.as_chunks::<16>();
        let raw = sc16[0];
        let lo = i64::from_le_bytes(std::array::from_fn(|k| raw[k]));
        let hi = i64::from_le_bytes(std::array::from_fn(|k| raw[8 + k]));
        let v = _mm_set_epi64x(hi, lo);
        let scales = _mm256_cvtepu8_epi16(_mm_and_si128(v, low4));
        let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(v), low4));
        let eo = even_odd(scales);
        let (xs, _) = xq.as_chunks::<32>();
        let (qs, _) = b[16..80].as_chunks::<32>();
        let mut sum = SuperBlockSums::new();
        for (h, q) in qs.iter().enumerate() {
            let q = load256(q);
            for j in 0..4 {
                let c = 4 * h + j;
                let w = crumb(q, j, three);
                sum.add(c, scaled(w, &xs[c], pick(eo, pick_c[c])));
            }
        }
        let m = _mm256_madd_epi16(mins, bsums(a, bi));
        (acc, acc_min) = fold_d_dmin(b, 80, xd, sum.total(), m, acc, acc_min);
    }
    hsum(acc) - hsum(acc_min)
}

/// Q3_K's 16 signed scales `S − 32` (6 bits each: low nibbles in scale bytes 0–7, the high
/// two bits in bytes 8–11) as i16 lanes, in weight order.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn q3k_scales(b: &[u8; 110]) -> __m256i {
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let (a0, a1, a2) = (u32_at(96), u32_at(100), u32_at(104));
    let (l4, h2) = (0x0f0f_0f0f, 0x0303_0303);
    let packed = _mm_set_epi32(
        ((a1 >> 4 & l4) | (a2 >> 6 & h2) << 4) as i32,
        ((a0 >> 4 & l4) | (a2 >> 4 & h2) << 4) as i32,
        ((a1 & l4) | (a2 >> 2 & h2) << 4) as i32,
        ((a0 & l4) | (a2 & h2) << 4) as i32,
    );
    _mm256_sub_epi16(_mm256_cvtepu8_epi16(packed), _mm256_set1_epi16(32))
}

/// Q3_K: `d·S·(u − 4)` with u = q2 | hbit·4 ∈ 0..=7 and signed 6-bit scales per 16.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q3k(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let three = _mm256_set1_epi8(3);
    let four = _mm256_set1_epi8(4);
    let (blocks, _) = row.as_chunks::<110>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let scales = q3k_scales(b);
        let eo = even_odd(scales);
        let (xs, _) = xq.as_chunks::<32>();
        let (hm, _) = b[..32].as_chunks::<32>();
        let hm = load256(&hm[0]);
        let (qs, _) = b[32..96].as_chunks::<32>();
        let mut sum = SuperBlockSums::new();
        for (h, q) in qs.iter().enumerate() {
            let q = load256(q);
            for j in 0..4 {
                let c = 4 * h + j;
                let u = _mm256_or_si256(crumb(q, j, three), move_bit(hm, c, 2, four));
                sum.add(c, scaled(u, &xs[c], pick(eo, pick_c[c])));
            }
        }
        // Σ S·(u − 4)·x = Σ S·u·x − 4·Σ S·bsum.
        let off = _mm256_slli_epi32::<2>(_mm256_madd_epi16(scales, bsums(a, bi)));
        let total = _mm256_sub_epi32(sum.total(), off);
        acc = fold(total, f16c_at(b, 108) * xd, acc);
    }
    hsum(acc)
}

/// Q6_K: `d·sc·(u − 32)`, u = 4 bits of `ql` | 2 bits of `qh` ∈ 0..=63, signed 8-bit scale
/// per 16. Each 128-weight half is one 32-byte `qh` load and two `ql` loads: chunk 4n + k
/// takes the low (k = 0, 1) or high (k = 2, 3) nibbles of `ql` load k % 2 and `qh` bits
/// 2k, 2k + 1, moved to bits 4–5 by one 16-bit shift and a mask.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q6k(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let low4 = _mm256_set1_epi8(15);
    let hi2 = _mm256_set1_epi8(0x30);
    let (blocks, _) = row.as_chunks::<210>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (sc, _) = b[192..208].as_chunks::<16>();
        let scales = _mm256_cvtepi8_epi16(crate::simd_mem::load128(&sc[0]));
        let eo = even_odd(scales);
        let (xs, _) = xq.as_chunks::<32>();
        let (ql, _) = b[..128].as_chunks::<32>();
        let (qh, _) = b[128..192].as_chunks::<32>();
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        for n in 0..2 {
            let h = load256(&qh[n]);
            let (l0, l1) = (load256(&ql[2 * n]), load256(&ql[2 * n + 1]));
            let bits = |v: __m256i| _mm256_and_si256(v, hi2);
            let u = [
                _mm256_or_si256(_mm256_and_si256(l0, low4), bits(_mm256_slli_epi16::<4>(h))),
                _mm256_or_si256(_mm256_and_si256(l1, low4), bits(_mm256_slli_epi16::<2>(h))),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(l0), low4), bits(h)),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l1), low4),
                    bits(_mm256_srli_epi16::<2>(h)),
                ),
            ];
            let c = 4 * n;
            let p = |k: usize| scaled(u[k], &xs[c + k], pick(eo, pick_c[c + k]));
            s0 = _mm256_add_epi32(s0, _mm256_add_epi32(p(0), p(2)));
            s1 = _mm256_add_epi32(s1, _mm256_add_epi32(p(1), p(3)));
        }
        // Σ sc·(u − 32)·x = Σ sc·u·x − 32·Σ sc·bsum.
        let off = _mm256_slli_epi32::<5>(_mm256_madd_epi16(scales, bsums(a, bi)));
        let total = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), off);
        acc = fold(total, f16c_at(b, 208) * xd, acc);
    }
    hsum(acc)
}

/// The 6-bit (scale, min) pairs of a Q4_K/Q5_K 12-byte field, as (8 scales, 8 mins) bytes.
#[inline(always)]
pub(crate) fn k_scales_mins(f: &[u8]) -> ([u8; 8], [u8; 8]) {
    let w = |o: usize| u32::from_le_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let (u0, u1, u2) = (w(0), w(4), w(8));
    let (l6, l4, h2) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let sc = [u0 & l6, (u2 & l4) | (u0 >> 6 & h2) << 4];
    let mn = [u1 & l6, (u2 >> 4 & l4) | (u1 >> 6 & h2) << 4];
    let bytes = |v: [u32; 2]| {
        let (a, b) = (v[0].to_le_bytes(), v[1].to_le_bytes());
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    };
    (bytes(sc), bytes(mn))
}

/// Q4_K: `d·sc·q − dmin·m`, q = nibble ∈ 0..=15, 6-bit scale and min per 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q4k(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let nib = _mm256_set1_epi8(15);
    let (blocks, _) = row.as_chunks::<144>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (sc, mn) = k_scales_mins(&b[4..16]);
        let (eo, mins) = k_scale_lanes(sc, mn);
        let (xs, _) = xq.as_chunks::<32>();
        let (qs, _) = b[16..144].as_chunks::<32>();
        let mut sum = SuperBlockSums::new();
        for (jj, q) in qs.iter().enumerate() {
            let q = load256(q);
            let lo = _mm256_and_si256(q, nib);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), nib);
            sum.add(0, scaled(lo, &xs[2 * jj], pick(eo, pick_c[2 * jj])));
            sum.add(1, scaled(hi, &xs[2 * jj + 1], pick(eo, pick_c[2 * jj + 1])));
        }
        let m = _mm256_madd_epi16(mins, bsums(a, bi));
        (acc, acc_min) = fold_d_dmin(b, 0, xd, sum.total(), m, acc, acc_min);
    }
    hsum(acc) - hsum(acc_min)
}

/// Q4_K/Q5_K per-32 scales as [`even_odd`] lanes (each scale serves both halves of its
/// chunk) and the mins in natural per-16 order (for the `bsum16` madd).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn k_scale_lanes(sc: [u8; 8], mn: [u8; 8]) -> (__m256i, __m256i) {
    let eo = widen_u8(&std::array::from_fn(|k| sc[k % 8]));
    let mins = widen_u8(&std::array::from_fn(|k| mn[k / 2]));
    (eo, mins)
}

/// Q5_K: `d·sc·q − dmin·m`, q = nibble | hbit·16 ∈ 0..=31, 6-bit scale and min per 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q5k(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let nib = _mm256_set1_epi8(15);
    let sixteen = _mm256_set1_epi8(16);
    let (blocks, _) = row.as_chunks::<176>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (sc, mn) = k_scales_mins(&b[4..16]);
        let (eo, mins) = k_scale_lanes(sc, mn);
        let (xs, _) = xq.as_chunks::<32>();
        let (qh, _) = b[16..48].as_chunks::<32>();
        let qh = load256(&qh[0]);
        let (qs, _) = b[48..176].as_chunks::<32>();
        let mut sum = SuperBlockSums::new();
        for (jj, q) in qs.iter().enumerate() {
            let q = load256(q);
            for half in 0..2 {
                let j = 2 * jj + half;
                let n = if half == 0 {
                    _mm256_and_si256(q, nib)
                } else {
                    _mm256_and_si256(_mm256_srli_epi16::<4>(q), nib)
                };
                let w = _mm256_or_si256(n, move_bit(qh, j, 4, sixteen));
                sum.add(j, scaled(w, &xs[j], pick(eo, pick_c[j])));
            }
        }
        let m = _mm256_madd_epi16(mins, bsums(a, bi));
        (acc, acc_min) = fold_d_dmin(b, 0, xd, sum.total(), m, acc, acc_min);
    }
    hsum(acc) - hsum(acc_min)
}

/// IQ2_S: 10-bit grid index (unsigned magnitudes), an explicit sign byte per 8 weights and a
/// 4-bit scale `2n + 1` per 16; weights `d·(2n + 1)/8 · (±mag)`. The signs go onto the
/// activations: the block's 32 sign bytes are laid out by one load and two shuffles a block
/// ahead ([`sign_layout`], as IQ3_XXS's computed ones), then a sub-block's take one shuffle,
/// one AND and one compare (each sub-block's four bytes broadcast from the row before: 12.6
/// → 13.8 G weights/s, one Zen 3 thread at 4096×14336).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq2s(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let (blocks, _) = row.as_chunks::<82>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let sign_c = sign_controls();
    let setup = |b: &[u8; 82]| sign_layout(load256(&b[34..66].as_chunks::<32>().0[0]));
    let mut next = blocks.first().map_or(_mm256_setzero_si256(), setup);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let signs = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let eo = even_odd(nibble_scales(&b[74..82].as_chunks::<8>().0[0]));
        // Two sub-blocks a step into two accumulators, index bytes from memory (the 32
        // indices computed in vectors, as IQ1_S's are, measured 10–15 % slower here).
        let (qs, _) = b[2..34].as_chunks::<8>();
        let (his, _) = b[66..74].as_chunks::<2>();
        let (xs, _) = xq.as_chunks::<64>();
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        let steps = qs.iter().zip(his).zip(xs).enumerate();
        for (k, ((q, hi), x)) in steps {
            let (q, _) = q.as_chunks::<4>();
            let (x, _) = x.as_chunks::<32>();
            let sub = |j: usize, q: &[u8; 4], hi: u8, x: &[i8; 32]| {
                let hi = hi as usize;
                let g = |l: usize| IQ2S_GRID[q[l] as usize | (hi >> (2 * l) & 3) << 8] as i64;
                let w = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
                let neg = iq3xxs_negative(signs, sign_c[j]);
                let xsg = _mm256_sub_epi8(_mm256_xor_si256(load256(x), neg), neg);
                _mm256_madd_epi16(_mm256_maddubs_epi16(w, xsg), pick(eo, pick_c[j]))
            };
            let p0 = sub(2 * k, &q[0], hi[0], &x[0]);
            let p1 = sub(2 * k + 1, &q[1], hi[1], &x[1]);
            s0 = _mm256_add_epi32(s0, p0);
            s1 = _mm256_add_epi32(s1, p1);
        }
        acc = fold(_mm256_add_epi32(s0, s1), f16c_at(b, 0) * 0.125 * xd, acc);
    }
    hsum(acc)
}

/// IQ3_XXS's (and IQ2_XXS's) eight 32-bit sub-block words, in order (four 7-bit sign fields
/// and a 4-bit scale each) as two vectors, computed once per block: the 32 full sign bytes
/// (the parity bit added as IQ2_XS's) laid out for [`iq3xxs_negative`] ([`sign_layout`]: the
/// low lane holds bytes 0, 1 of each sub-block, its weights 0–15, the high lane bytes 2, 3)
/// and the eight scales `2s + 1` as i16 lanes (0–7 in both 128-bit lanes) for [`pick`].
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq3xxs_signs_scales(a: __m256i) -> (__m256i, __m256i) {
    let m = |v: i32| _mm256_set1_epi32(v);
    // Field l of each word to byte l (bit 7 of each byte clear).
    let s7 = _mm256_or_si256(
        _mm256_or_si256(
            _mm256_and_si256(a, m(0x7f)),
            _mm256_and_si256(_mm256_slli_epi32::<1>(a), m(0x7f00)),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_slli_epi32::<2>(a), m(0x7f_0000)),
            _mm256_and_si256(_mm256_slli_epi32::<3>(a), m(0x7f00_0000)),
        ),
    );
    let fold = _mm256_and_si256(
        _mm256_xor_si256(s7, _mm256_srli_epi16::<4>(s7)),
        _mm256_set1_epi8(15),
    );
    let odd = _mm256_broadcastsi128_si256(_mm_setr_epi8(
        0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0,
    ));
    let full = _mm256_or_si256(s7, _mm256_shuffle_epi8(odd, fold));
    let signs = sign_layout(full);
    let ls = _mm256_or_si256(_mm256_slli_epi32::<1>(_mm256_srli_epi32::<28>(a)), m(1));
    let scales = _mm256_permute4x64_epi64::<0b10_00_10_00>(_mm256_packs_epi32(ls, ls));
    (signs, scales)
}

/// Eight sub-blocks' four sign bytes (sub-block k in 32-bit word k) in the layout of
/// [`iq3xxs_negative`]: per 128-bit lane bytes 0, 1 of its four words, then bytes 2, 3; then
/// the 64-bit quarters regrouped, so the low lane holds bytes 0, 1 of every sub-block.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sign_layout(full: __m256i) -> __m256i {
    let split = _mm256_broadcastsi128_si256(_mm_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
    ));
    _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(full, split))
}

/// Controls for [`iq3xxs_negative`]: for sub-block `k`, bytes 0–7 of each lane read byte
/// `2k`, bytes 8–15 byte `2k + 1`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq3xxs_sign_control(k: usize) -> __m256i {
    let lo = i64::from_le_bytes([2 * k as u8; 8]);
    let hi = i64::from_le_bytes([2 * k as u8 + 1; 8]);
    _mm256_set_epi64x(hi, lo, hi, lo)
}

/// [`iq3xxs_sign_control`] of the eight sub-blocks, through `black_box` as [`controls`].
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn sign_controls() -> [__m256i; 8] {
    std::hint::black_box(std::array::from_fn(|k| iq3xxs_sign_control(k)))
}

/// −1 in the bytes of sub-block `k`'s weights that its sign bytes (in the
/// [`iq3xxs_signs_scales`] layout; `ctrl` its [`iq3xxs_sign_control`]) negate, 0 elsewhere.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq3xxs_negative(signs: __m256i, ctrl: __m256i) -> __m256i {
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(signs, ctrl), bit), bit)
}

/// IQ3_XXS: 8-bit indices into a grid of 4 magnitudes, 7-bit sign indices (4 per 32 weights,
/// as IQ2_XXS) and a 4-bit scale per 32; weights `d·(2s + 1)/4 · (±mag)`. The signs and
/// scales of all eight sub-blocks come out of one load of their words
/// ([`iq3xxs_signs_scales`]); a sub-block then takes one shuffle for each (four sign-mask
/// table loads, their index arithmetic and three shuffles per 32 weights before).
///
/// Each block's signs and scales are worked out while the block before it is multiplied: the
/// row kernels measured here are bound less by their instruction count than by how soon a
/// block's first products can start (about one block's instructions fit the out-of-order
/// window). Computed at the top of their own block, the vector signs were *slower* than the
/// table (8.9 → 8.2 G weights/s, one Zen 3 thread); a block ahead, 8.9 → 10.7.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq3xxs(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let sign_c = sign_controls();
    let (blocks, _) = row.as_chunks::<98>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let ss = |b: &[u8; 98]| iq3xxs_signs_scales(load256(&b[66..98].as_chunks::<32>().0[0]));
    let zero = _mm256_setzero_si256();
    let mut next = blocks.first().map_or((zero, zero), ss);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (signs, scales) = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = ss(nb);
        }
        // Two sub-blocks (64 weights) a step into two accumulators.
        let (qs, _) = b[2..66].as_chunks::<16>();
        let (xs, _) = xq.as_chunks::<64>();
        let sub = |k: usize, q: &[u8; 8], x: &[i8; 32]| {
            // A table load per index byte, the byte loaded from memory (extracting eight
            // bytes from one word cost two instructions each), and no gather (slower).
            let g = |l: usize| IQ3XXS_GRID[q[l] as usize] as i32;
            let w = _mm256_set_epi32(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0));
            let neg = iq3xxs_negative(signs, sign_c[k]);
            let xs = _mm256_sub_epi8(_mm256_xor_si256(load256(x), neg), neg);
            let p16 = _mm256_maddubs_epi16(w, xs);
            _mm256_madd_epi16(p16, pick(scales, pick_c[k]))
        };
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        for (j, (q, x)) in qs.iter().zip(xs).enumerate() {
            let (q, _) = q.as_chunks::<8>();
            let (x, _) = x.as_chunks::<32>();
            s0 = _mm256_add_epi32(s0, sub(2 * j, &q[0], &x[0]));
            s1 = _mm256_add_epi32(s1, sub(2 * j + 1, &q[1], &x[1]));
        }
        acc = fold(_mm256_add_epi32(s0, s1), f16c_at(b, 0) * 0.25 * xd, acc);
    }
    hsum(acc)
}

/// 32 bytes negated where their sign bit (byte k: bit k % 8 of `signs[k / 8]`) is set (the
/// IQ2_S sign bytes, on the weights in the GEMM's decoder; the mat-vecs lay a block's signs
/// out once, [`sign_layout`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn negate_by_sign_bytes(v: __m256i, signs: [u8; 4]) -> __m256i {
    // Byte k of the vector reads sign byte k / 8 (the u32 is in both lanes) and tests bit k % 8.
    let spread = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let s = _mm256_set1_epi32(i32::from_le_bytes(signs));
    let sel = _mm256_and_si256(_mm256_shuffle_epi8(s, spread), bit);
    let neg = _mm256_cmpeq_epi8(sel, bit);
    _mm256_sub_epi8(_mm256_xor_si256(v, neg), neg)
}

/// IQ3_S's 64 grid indices, `qs[i] | bit (i % 8) of qh[i / 8] << 8`, computed in vectors
/// sixteen at a time (the scalar 9-bit assembly was the bottleneck on an Intel Xeon, and the
/// `vpgatherdd` that replaced it is slow on Zen 4).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq3s_indices(qs: &[u8; 64], qh: &[u8; 8]) -> [u16; 64] {
    let bit = _mm256_setr_epi16(
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768,
    );
    let nine = _mm256_set1_epi16(256);
    let (q, _) = qs.as_chunks::<16>();
    let (h, _) = qh.as_chunks::<2>();
    let mut out = [0u16; 64];
    let (o, _) = out.as_chunks_mut::<16>();
    for ((o, q), h) in o.iter_mut().zip(q).zip(h) {
        let word = _mm256_set1_epi16(i16::from_le_bytes(*h));
        let set = _mm256_cmpeq_epi16(_mm256_and_si256(word, bit), bit);
        let low = _mm256_cvtepu8_epi16(crate::simd_mem::load128(q));
        crate::simd_mem::store256(o, _mm256_or_si256(low, _mm256_and_si256(set, nine)));
    }
    out
}

/// IQ3_S: 9-bit indices (8 bits in `qs`, 1 in `qh`) into a grid of 4 magnitudes, an explicit
/// sign byte per 8 weights and a 4-bit scale per 32; weights `d·(1 + 2s) · (±mag)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq3s(row: &[u8], a: &Q8Act) -> f32 {
    let sign_c = sign_controls();
    let (blocks, _) = row.as_chunks::<110>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    // The sign bytes a block ahead, in the layout IQ3_XXS's computed ones take.
    let setup = |b: &[u8; 110]| sign_layout(load256(&b[74..106].as_chunks::<32>().0[0]));
    let mut next = blocks.first().map_or(_mm256_setzero_si256(), setup);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let signs = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let idx = iq3s_indices(
            &b[2..66].as_chunks::<64>().0[0],
            &b[66..74].as_chunks::<8>().0[0],
        );
        let (idx, _) = idx.as_chunks::<16>();
        let (xs, _) = xq.as_chunks::<64>();
        let sub = |j: usize, i: &[u16], x: &[i8; 32], s: u8| {
            // (9-bit indices: the mask drops the bounds checks.)
            let g = |k: usize| IQ3S_GRID[i[k] as usize & 511] as i32;
            let w = _mm256_setr_epi32(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
            let neg = iq3xxs_negative(signs, sign_c[j]);
            let xsg = _mm256_sub_epi8(_mm256_xor_si256(load256(x), neg), neg);
            let ls = _mm256_set1_epi16((2 * s + 1) as i16);
            _mm256_madd_epi16(_mm256_maddubs_epi16(w, xsg), ls)
        };
        // Two sub-blocks a step into two accumulators.
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        for (k, (i, x)) in idx.iter().zip(xs).enumerate() {
            let (x, _) = x.as_chunks::<32>();
            let sc = b[106 + k];
            s0 = _mm256_add_epi32(s0, sub(2 * k, &i[..8], &x[0], sc & 15));
            s1 = _mm256_add_epi32(s1, sub(2 * k + 1, &i[8..], &x[1], sc >> 4));
        }
        acc = fold(_mm256_add_epi32(s0, s1), f16c_at(b, 0) * xd, acc);
    }
    hsum(acc)
}

/// IQ2_XS's sign patterns are 7 stored bits and an eighth that makes the count of negatives
/// even (`KSIGNS_IQ2XS[k] = k | parity(k) << 7`, tested): for 16 codes (one 32-byte load) the
/// full sign byte in the low byte of each u16 lane, by a nibble-parity `vpshufb`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq2xs_sign_bytes(codes: __m256i) -> __m256i {
    let s7 = _mm256_srli_epi16::<9>(codes);
    // Bits 0–3 of the fold have the parity of the 7 bits; its bit 7 is clear, as `vpshufb`
    // needs, and the high byte of each lane is zero (table entry 0 is 0).
    let fold = _mm256_xor_si256(s7, _mm256_srli_epi16::<4>(s7));
    let odd = _mm256_broadcastsi128_si256(_mm_setr_epi8(
        0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0,
    ));
    _mm256_or_si256(s7, _mm256_shuffle_epi8(odd, fold))
}

/// The two byte shuffles of [`signs_of_codes`]: byte k reads code k / 8 (even j) or 4 + k / 8
/// (odd j) of a 128-bit lane of sign bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn code_sign_controls() -> [__m256i; 2] {
    let c = |base: i8| {
        let v: [i8; 32] = std::array::from_fn(|k| base + 2 * (k / 8) as i8);
        load256(&v)
    };
    [c(0), c(8)]
}

/// ±1 bytes for the 32 weights of codes 4j..4j + 4 of a [`iq2xs_sign_bytes`] vector (`half`
/// holds its 128-bit lane j / 2 in both lanes; `ctrl` the [`code_sign_controls`] of j % 2):
/// byte k tests bit k % 8 of code 4j + k / 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn signs_of_codes(half: __m256i, ctrl: __m256i) -> __m256i {
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let sel = _mm256_and_si256(_mm256_shuffle_epi8(half, ctrl), bit);
    _mm256_or_si256(_mm256_cmpeq_epi8(sel, bit), _mm256_set1_epi8(1))
}

/// IQ2_XS: 16-bit codes (9-bit grid index, 7-bit sign index) and a 4-bit scale `2s + 1` per
/// 16 weights; weights `d·(2s + 1)/8 · (±mag)`. Per 128 weights the 16 codes are one load:
/// grid indices masked in a vector and read back as an array, sign bytes computed (not looked
/// up) and spread over the activations by shuffles. (A 512 KiB table pre-signed by the raw
/// code was 15–25 % slower than the 1 KiB sign-mask table this replaced.)
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_iq2xs(row: &[u8], a: &Q8Act) -> f32 {
    let pick_c = controls();
    let sign_c = code_sign_controls();
    let m511 = _mm256_set1_epi16(511);
    let (blocks, _) = row.as_chunks::<74>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    // The sign bytes a block ahead (12.5 → 13.1 G weights/s, one Zen 3 thread at 4096×14336;
    // taking the grid indices ahead too was slower).
    let setup = |b: &[u8; 74]| {
        let (codes, _) = b[2..66].as_chunks::<32>();
        [
            iq2xs_sign_bytes(load256(&codes[0])),
            iq2xs_sign_bytes(load256(&codes[1])),
        ]
    };
    let mut next = blocks.first().map_or([_mm256_setzero_si256(); 2], setup);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let fulls = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let eo = even_odd(nibble_scales(&b[66..74].as_chunks::<8>().0[0]));
        let (codes, _) = b[2..66].as_chunks::<32>();
        let (xs, _) = xq.as_chunks::<128>();
        let mut sum = [_mm256_setzero_si256(); 2];
        for (h, ((c, x), full)) in codes.iter().zip(xs).zip(fulls).enumerate() {
            let cv = load256(c);
            let mut gidx = [0u16; 16];
            crate::simd_mem::store256(&mut gidx, _mm256_and_si256(cv, m511));
            let halves = [
                _mm256_permute2x128_si256::<0x00>(full, full),
                _mm256_permute2x128_si256::<0x11>(full, full),
            ];
            let (gidx, _) = gidx.as_chunks::<4>();
            let (x, _) = x.as_chunks::<32>();
            for (j, (gi, x)) in gidx.iter().zip(x).enumerate() {
                let g = gi.map(|i| IQ2XS_GRID[i as usize] as i64);
                let w = _mm256_set_epi64x(g[3], g[2], g[1], g[0]);
                let sg = signs_of_codes(halves[j / 2], sign_c[j % 2]);
                let p16 = _mm256_maddubs_epi16(w, _mm256_sign_epi8(load256(x), sg));
                let p = _mm256_madd_epi16(p16, pick(eo, pick_c[4 * h + j]));
                sum[j % 2] = _mm256_add_epi32(sum[j % 2], p);
            }
        }
        acc = fold(
            _mm256_add_epi32(sum[0], sum[1]),
            crate::dequant::f16_at(b, 0) * 0.125 * xd,
            acc,
        );
    }
    hsum(acc)
}

#[path = "simd_lowbit_iq1.rs"]
mod iq1;
pub(crate) use iq1::{dot_iq1m, dot_iq1s, iq1_unsigned_grid, iq1s_indices};
#[cfg(test)]
#[path = "simd_lowbit_tests.rs"]
mod tests;
