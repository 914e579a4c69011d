//! NEON row kernels for the 32-weight block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) on
//! aarch64, mat-vec and batched, for any row length: each block decoded in registers (nibbles
//! by mask and shift, Q5's fifth bits by a bit test of the broadcast `qh` bytes, IQ4_NL's
//! levels by `TBL`) and dotted with the per-16 activations (`Q8Act::q`, `d16`) two blocks at
//! a time — four group sums pairwise-added into one vector, converted once and multiplied by
//! `d_block · d16` per lane. Q4_1/Q5_1's minimum `m` meets the activations' quantized sums per
//! 32 (`Q8Act::sum32`), as the portable kernels' bias terms do. The finer per-16 grid keeps
//! these kernels on every row length (SmolLM2's rows of 576) with the portable kernels' error
//! bound.

#![cfg(target_arch = "aarch64")]

use crate::neon::{f16, pair_f32, u16_at, u32_at, Dot16};
use crate::q8::Q8Act;
use crate::GgmlType;
use std::arch::aarch64::*;

/// A decoder of `B`-byte, 32-weight blocks: weight v is `d · q[v] (+ m)`.
pub(crate) trait Decode32<const B: usize> {
    /// Whether the block has a minimum `m` (Q4_1, Q5_1).
    const MIN: bool;
    /// `d` and `m` (0 without a minimum).
    fn dm(b: &[u8; B]) -> (f32, f32);
    /// The quants of weights 0–15 and 16–31.
    fn quants(b: &[u8; B]) -> (int8x16_t, int8x16_t);
}

/// 16 bytes as a vector.
#[inline(always)]
fn load16(v: &[u8]) -> uint8x16_t {
    let (c, _) = v.as_chunks::<16>();
    // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but NEON
    // is part of every aarch64 target (this module compiles for no other); the load reads
    // exactly the 16 bytes of `c[0]`.
    #[allow(unsafe_code)]
    unsafe {
        vld1q_u8(c[0].as_ptr())
    }
}

/// Low and high nibbles of 16 bytes.
#[inline(always)]
fn nibbles(v: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        (vandq_u8(v, vdupq_n_u8(15)), vshrq_n_u8::<4>(v))
    }
}

/// Q5's fifth bits as 16s: lane i of the first vector has bit i of `qh`, of the second bit
/// 16 + i (the u32 broadcast, each byte spread over eight lanes by `TBL`, tested bit by bit).
#[inline(always)]
fn fifth_bits(qh: u32) -> (uint8x16_t, uint8x16_t) {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        let v = vreinterpretq_u8_u32(vdupq_n_u32(qh));
        let spread_lo = vcombine_u8(vdup_n_u8(0), vdup_n_u8(1));
        let spread_hi = vcombine_u8(vdup_n_u8(2), vdup_n_u8(3));
        let bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
        let sixteen = vdupq_n_u8(16);
        let lo = vandq_u8(vtstq_u8(vqtbl1q_u8(v, spread_lo), bit), sixteen);
        let hi = vandq_u8(vtstq_u8(vqtbl1q_u8(v, spread_hi), bit), sixteen);
        (lo, hi)
    }
}

/// `v − k` lane-wise, as signed quants.
#[inline(always)]
fn minus(v: uint8x16_t, k: u8) -> int8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vreinterpretq_s8_u8(vsubq_u8(v, vdupq_n_u8(k)))
    }
}

#[inline(always)]
fn signed(v: uint8x16_t) -> int8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vreinterpretq_s8_u8(v)
    }
}

#[inline(always)]
fn or(a: uint8x16_t, b: uint8x16_t) -> uint8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vorrq_u8(a, b)
    }
}

pub(crate) struct Q4_0;
impl Decode32<18> for Q4_0 {
    const MIN: bool = false;
    #[inline(always)]
    fn dm(b: &[u8; 18]) -> (f32, f32) {
        (f16(u16_at(b, 0)), 0.0)
    }
    #[inline(always)]
    fn quants(b: &[u8; 18]) -> (int8x16_t, int8x16_t) {
        let (lo, hi) = nibbles(load16(&b[2..]));
        (minus(lo, 8), minus(hi, 8))
    }
}

pub(crate) struct Q4_1;
impl Decode32<20> for Q4_1 {
    const MIN: bool = true;
    #[inline(always)]
    fn dm(b: &[u8; 20]) -> (f32, f32) {
        (f16(u16_at(b, 0)), f16(u16_at(b, 2)))
    }
    #[inline(always)]
    fn quants(b: &[u8; 20]) -> (int8x16_t, int8x16_t) {
        let (lo, hi) = nibbles(load16(&b[4..]));
        (signed(lo), signed(hi))
    }
}

pub(crate) struct Q5_0;
impl Decode32<22> for Q5_0 {
    const MIN: bool = false;
    #[inline(always)]
    fn dm(b: &[u8; 22]) -> (f32, f32) {
        (f16(u16_at(b, 0)), 0.0)
    }
    #[inline(always)]
    fn quants(b: &[u8; 22]) -> (int8x16_t, int8x16_t) {
        let (h_lo, h_hi) = fifth_bits(u32_at(b, 2));
        let (lo, hi) = nibbles(load16(&b[6..]));
        let (lo, hi) = (or(lo, h_lo), or(hi, h_hi));
        (minus(lo, 16), minus(hi, 16))
    }
}

pub(crate) struct Q5_1;
impl Decode32<24> for Q5_1 {
    const MIN: bool = true;
    #[inline(always)]
    fn dm(b: &[u8; 24]) -> (f32, f32) {
        (f16(u16_at(b, 0)), f16(u16_at(b, 2)))
    }
    #[inline(always)]
    fn quants(b: &[u8; 24]) -> (int8x16_t, int8x16_t) {
        let (h_lo, h_hi) = fifth_bits(u32_at(b, 4));
        let (lo, hi) = nibbles(load16(&b[8..]));
        let (lo, hi) = (or(lo, h_lo), or(hi, h_hi));
        (signed(lo), signed(hi))
    }
}

pub(crate) struct Q8_0;
impl Decode32<34> for Q8_0 {
    const MIN: bool = false;
    #[inline(always)]
    fn dm(b: &[u8; 34]) -> (f32, f32) {
        (f16(u16_at(b, 0)), 0.0)
    }
    #[inline(always)]
    fn quants(b: &[u8; 34]) -> (int8x16_t, int8x16_t) {
        (signed(load16(&b[2..])), signed(load16(&b[18..])))
    }
}

pub(crate) struct Iq4Nl;
impl Decode32<18> for Iq4Nl {
    const MIN: bool = false;
    #[inline(always)]
    fn dm(b: &[u8; 18]) -> (f32, f32) {
        (f16(u16_at(b, 0)), 0.0)
    }
    #[inline(always)]
    fn quants(b: &[u8; 18]) -> (int8x16_t, int8x16_t) {
        let (qs, _) = b[2..].as_chunks::<16>();
        crate::neon_iq::iq4_pair(&qs[0])
    }
}

/// One token's step over two blocks (`q`: their quants, `dv`: `[d0, d0, d1, d1]`) or, where
/// `x` has two groups, over one block (`q[2..]` and `dv[2..]` then unused): the group sums,
/// pairwise-added into one vector, times `d_block · d16` per lane.
#[inline(always)]
fn step<D: Dot16>(
    acc: float32x4_t,
    q: &[int8x16_t; 4],
    dv: float32x4_t,
    x: &[[i8; 16]],
    xd: &[f32],
) -> float32x4_t {
    // WORKAROUND: as in `load16`; the loads read exactly the 16-byte groups of `x` and the
    // scales of `xd` (four, or two with the others zero).
    #[allow(unsafe_code)]
    unsafe {
        let z = vdupq_n_s32(0);
        let a = D::dot16(z, q[0], vld1q_s8(x[0].as_ptr()));
        let b = D::dot16(z, q[1], vld1q_s8(x[1].as_ptr()));
        let (t, s) = if x.len() >= 4 {
            let c = D::dot16(z, q[2], vld1q_s8(x[2].as_ptr()));
            let d = D::dot16(z, q[3], vld1q_s8(x[3].as_ptr()));
            (
                vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d)),
                vld1q_f32(xd.as_ptr()),
            )
        } else {
            let s = vcombine_f32(vld1_f32(xd.as_ptr()), vdup_n_f32(0.0));
            (vpaddq_s32(vpaddq_s32(a, b), z), s)
        };
        vfmaq_f32(acc, vcvtq_f32_s32(t), vmulq_f32(dv, s))
    }
}

/// Rows of `T`'s blocks (each `row_bytes`) × the activations `acts` into `yt` (rows × n,
/// row-major), two blocks a step (a last odd block alone).
#[inline(always)]
fn rows_q32<D: Dot16, const B: usize, T: Decode32<B>>(
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    let n = acts.len();
    let zero = crate::neon::zero();
    let mut accs = vec![(zero, 0f32); n];
    if let [a] = acts {
        // Mat-vec: the accumulators in registers, the activations walked alongside.
        let (x64, _) = a.q.as_chunks::<64>();
        let (d4, _) = a.d16.as_chunks::<4>();
        let (s2, _) = a.sum32.as_chunks::<2>();
        for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.iter_mut()) {
            let (blocks, _) = row.as_chunks::<B>();
            let (two, _) = blocks.as_chunks::<2>();
            let (mut acc, mut bias) = (zero, 0f32);
            for ((([b0, b1], x), xd), xs) in two.iter().zip(x64).zip(d4).zip(s2) {
                let ((q0, q1), (q2, q3)) = (T::quants(b0), T::quants(b1));
                let ((d0, m0), (d1, m1)) = (T::dm(b0), T::dm(b1));
                let (x, _) = x.as_chunks::<16>();
                acc = step::<D>(acc, &[q0, q1, q2, q3], pair_f32(d0, d1), x, xd);
                if T::MIN {
                    bias += m0 * xs[0] + m1 * xs[1];
                }
            }
            if blocks.len() % 2 == 1 {
                let k = blocks.len() - 1;
                let (q0, q1) = T::quants(&blocks[k]);
                let (d, m) = T::dm(&blocks[k]);
                let (x, _) = a.q[32 * k..32 * k + 32].as_chunks::<16>();
                acc = step::<D>(
                    acc,
                    &[q0, q1, q0, q1],
                    pair_f32(d, d),
                    x,
                    &a.d16[2 * k..2 * k + 2],
                );
                if T::MIN {
                    bias += m * a.sum32[k];
                }
            }
            *out = crate::neon::hsum(acc) + bias;
        }
        return;
    }
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.chunks_exact_mut(n)) {
        let (blocks, _) = row.as_chunks::<B>();
        accs.fill((zero, 0.0));
        let (two, _) = blocks.as_chunks::<2>();
        for (p, [b0, b1]) in two.iter().enumerate() {
            let ((q0, q1), (q2, q3)) = (T::quants(b0), T::quants(b1));
            let ((d0, m0), (d1, m1)) = (T::dm(b0), T::dm(b1));
            let (q, dv) = ([q0, q1, q2, q3], pair_f32(d0, d1));
            for (a, (acc, bias)) in acts.iter().zip(accs.iter_mut()) {
                let (x, _) = a.q[64 * p..64 * p + 64].as_chunks::<16>();
                *acc = step::<D>(*acc, &q, dv, x, &a.d16[4 * p..4 * p + 4]);
                if T::MIN {
                    *bias += m0 * a.sum32[2 * p] + m1 * a.sum32[2 * p + 1];
                }
            }
        }
        if blocks.len() % 2 == 1 {
            let k = blocks.len() - 1;
            let (q0, q1) = T::quants(&blocks[k]);
            let (d, m) = T::dm(&blocks[k]);
            let (q, dv) = ([q0, q1, q0, q1], pair_f32(d, d));
            for (a, (acc, bias)) in acts.iter().zip(accs.iter_mut()) {
                let (x, _) = a.q[32 * k..32 * k + 32].as_chunks::<16>();
                *acc = step::<D>(*acc, &q, dv, x, &a.d16[2 * k..2 * k + 2]);
                if T::MIN {
                    *bias += m * a.sum32[k];
                }
            }
        }
        for (o, (acc, bias)) in out.iter_mut().zip(&accs) {
            *o = crate::neon::hsum(*acc) + bias;
        }
    }
}

/// `match ty` over the 32-weight types, `$go!(block bytes, decoder)` for each and `return
/// false` for the rest: the one table of which decoder serves which type, for these kernels
/// and `neon_mmla`'s.
macro_rules! q32_types {
    ($ty:expr, $go:ident) => {
        match $ty {
            GgmlType::Q4_0 => $go!(18, $crate::neon_q32::Q4_0),
            GgmlType::Q4_1 => $go!(20, $crate::neon_q32::Q4_1),
            GgmlType::Q5_0 => $go!(22, $crate::neon_q32::Q5_0),
            GgmlType::Q5_1 => $go!(24, $crate::neon_q32::Q5_1),
            GgmlType::Q8_0 => $go!(34, $crate::neon_q32::Q8_0),
            GgmlType::IQ4_NL => $go!(18, $crate::neon_q32::Iq4Nl),
            _ => return false,
        }
    };
}
pub(crate) use q32_types;

/// Rows `w` (each `row_bytes`) × the activations `acts` into `yt` (rows × n, row-major; one
/// activation is a mat-vec) summing 16 products the `D` way, where this module has `ty`'s
/// kernel; `false` (nothing written) otherwise.
#[inline(always)]
pub(crate) fn rows_typed<D: Dot16>(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    macro_rules! go {
        ($B:literal, $T:ty) => {
            rows_q32::<D, $B, $T>(w, row_bytes, acts, yt)
        };
    }
    q32_types!(ty, go);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_i8 as di8;
    use crate::neon::lanes;
    use crate::synth::random_blocks;

    type Portable<const B: usize> =
        fn(&[u8; B], &mut [i8; 32], &mut [f32; 2], &mut [f32; 4]) -> bool;

    /// Every decoder gives `decode_i8`'s quants, scale and bias exactly on random blocks.
    fn same_as_decode_i8<const B: usize, T: Decode32<B>>(ty: GgmlType, portable: Portable<B>) {
        let data = random_blocks(ty, 256, 9);
        let (blocks, _) = data.as_chunks::<B>();
        for blk in blocks {
            let (mut q, mut s, mut bias) = ([0i8; 32], [0f32; 2], [0f32; 4]);
            assert_eq!(portable(blk, &mut q, &mut s, &mut bias), T::MIN, "{ty}");
            let (q0, q1) = T::quants(blk);
            assert_eq!(lanes(q0), q[..16], "{ty}");
            assert_eq!(lanes(q1), q[16..], "{ty}");
            let (d, m) = T::dm(blk);
            assert_eq!([d, d], s, "{ty}");
            if T::MIN {
                assert_eq!([m; 4], bias, "{ty}");
            }
        }
    }

    #[test]
    fn decoders_equal_the_portable_ones() {
        same_as_decode_i8::<18, Q4_0>(GgmlType::Q4_0, di8::q4_0);
        same_as_decode_i8::<20, Q4_1>(GgmlType::Q4_1, di8::q4_1);
        same_as_decode_i8::<22, Q5_0>(GgmlType::Q5_0, di8::q5_0);
        same_as_decode_i8::<24, Q5_1>(GgmlType::Q5_1, di8::q5_1);
        same_as_decode_i8::<34, Q8_0>(GgmlType::Q8_0, di8::q8_0);
        same_as_decode_i8::<18, Iq4Nl>(GgmlType::IQ4_NL, di8::iq4_nl);
    }
}
