//! NEON row kernels for the 256-weight block types on aarch64 (Apple Silicon, Graviton,
//! Ampere), mat-vec and batched: a type's decoder (`neon_iq`, `neon_k`) gives each block as
//! sixteen int8 vectors with integer scales (and minimums), dotted with the per-256
//! activations (`Q8Act::q256`, llama.cpp's q8_K grid, as the x86 row kernels): the group sums
//! (`SDOT` where the CPU has FEAT_DotProd, widening multiplies where it does not, as
//! `neon.rs`) meet their integer scales in i32 lanes, four groups a multiply-add; minimums meet
//! the activations' integer sums per 16 (`Q8Act::bsum16`); one float multiply-add per block
//! takes `d · d256` (and one `−dmin · d256`). Mat-vec decodes as it goes; a batch decodes
//! each block once for all its tokens.
//!
//! Exactness: the integer sums are exact, so the only rounding beyond the activations'
//! quantization is f32's in the last multiply-adds; the error bound is the x86 row kernels'
//! (tests/kernels.rs).

#![cfg(target_arch = "aarch64")]

use crate::neon::{fma, zero_q, Dot16};
use crate::q8::Q8Act;
use crate::GgmlType;
use std::arch::aarch64::*;

/// A decoder of `B`-byte, 256-weight blocks into NEON operands: weight v is
/// `d · sc[v / GS] · q[v] − dmin · mins[v / GS]`, `GS` the scale group (16, or 32 where
/// [`Decode::PER32`]); the minimum term only where [`Decode::MINS`].
pub(crate) trait Decode<const B: usize> {
    /// Whether a scale (and minimum) covers 32 weights (lanes of `scales()[0..2]`) rather than
    /// 16 (`[0..4]`).
    const PER32: bool;
    /// Whether the format has minimums (Q2_K, Q4_K, Q5_K).
    const MINS: bool = false;
    /// The block's `d` (its f16 field times the power of two that makes `sc` integers).
    fn d(b: &[u8; B]) -> f32;
    /// The integer scales, four to a vector.
    fn scales(b: &[u8; B]) -> [int32x4_t; 4];
    /// Quants of weights `32j .. 32j + 32`, as two 16-lane vectors.
    fn pair32(b: &[u8; B], j: usize) -> (int8x16_t, int8x16_t);
    /// `dmin` and the integer minimums, laid out as the scales (formats with `MINS` only).
    #[inline(always)]
    fn mins(_b: &[u8; B]) -> (f32, [int32x4_t; 4]) {
        let z = crate::neon::zero_i32();
        (0.0, [z; 4])
    }
}

/// Sixteen i8 lanes as four i32 vectors.
#[inline(always)]
pub(crate) fn widen16_signed(v: int8x16_t) -> [int32x4_t; 4] {
    // WORKAROUND: as in `widen16`.
    #[allow(unsafe_code)]
    unsafe {
        let lo = vmovl_s8(vget_low_s8(v));
        let hi = vmovl_high_s8(v);
        [
            vmovl_s16(vget_low_s16(lo)),
            vmovl_high_s16(lo),
            vmovl_s16(vget_low_s16(hi)),
            vmovl_high_s16(hi),
        ]
    }
}

/// `Σ_g mins_g · Σ x_g` of a block from its activations' integer sums per 16 (`bs`): pairs of
/// them added for minimums per 32.
#[inline(always)]
pub(crate) fn min_isum(per32: bool, mins: &[int32x4_t; 4], bs: &[i16]) -> int32x4_t {
    let (b8, _) = bs.as_chunks::<8>();
    // WORKAROUND: as in `widen16`; the loads read exactly the 16 sums of `bs`.
    #[allow(unsafe_code)]
    unsafe {
        let (lo, hi) = (vld1q_s16(b8[0].as_ptr()), vld1q_s16(b8[1].as_ptr()));
        if per32 {
            // |sum per 32| ≤ 32·127: i16 holds it.
            let p = vpaddq_s16(lo, hi);
            let t = vmulq_s32(vmovl_s16(vget_low_s16(p)), mins[0]);
            vmlaq_s32(t, vmovl_high_s16(p), mins[1])
        } else {
            let t = vmulq_s32(vmovl_s16(vget_low_s16(lo)), mins[0]);
            let t = vmlaq_s32(t, vmovl_high_s16(lo), mins[1]);
            let t = vmlaq_s32(t, vmovl_s16(vget_low_s16(hi)), mins[2]);
            vmlaq_s32(t, vmovl_high_s16(hi), mins[3])
        }
    }
}

/// Sixteen u8 lanes as four i32 vectors.
#[inline(always)]
pub(crate) fn widen16(v: uint8x16_t) -> [int32x4_t; 4] {
    // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but NEON
    // is part of every aarch64 target (this module compiles for no other).
    #[allow(unsafe_code)]
    unsafe {
        let lo = vmovl_u8(vget_low_u8(v));
        let hi = vmovl_high_u8(v);
        [
            vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo))),
            vreinterpretq_s32_u32(vmovl_high_u16(lo)),
            vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi))),
            vreinterpretq_s32_u32(vmovl_high_u16(hi)),
        ]
    }
}

/// Where a kernel takes a block's quants from: decoded from its bytes as they are needed
/// (mat-vec), or from a block decoded once for many tokens (batched).
trait Quants {
    fn pair32(&self, j: usize) -> (int8x16_t, int8x16_t);
}

struct Fresh<'a, const B: usize, T>(&'a [u8; B], std::marker::PhantomData<T>);
impl<const B: usize, T: Decode<B>> Quants for Fresh<'_, B, T> {
    #[inline(always)]
    fn pair32(&self, j: usize) -> (int8x16_t, int8x16_t) {
        T::pair32(self.0, j)
    }
}

/// A block's quants decoded once.
struct Decoded([int8x16_t; 16]);
impl Quants for Decoded {
    #[inline(always)]
    fn pair32(&self, j: usize) -> (int8x16_t, int8x16_t) {
        (self.0[2 * j], self.0[2 * j + 1])
    }
}

/// The dots of weights `32j .. 32j + 32` with their activations, one per 16-weight half.
#[inline(always)]
fn dots32<D: Dot16, Q: Quants>(q: &Q, xg: &[[i8; 16]], j: usize) -> (int32x4_t, int32x4_t) {
    let (q0, q1) = q.pair32(j);
    // WORKAROUND: as in `widen16`; the loads read exactly two 16-byte groups of `xg`.
    #[allow(unsafe_code)]
    unsafe {
        let z = vdupq_n_s32(0);
        let a = D::dot16(z, q0, vld1q_s8(xg[2 * j].as_ptr()));
        let b = D::dot16(z, q1, vld1q_s8(xg[2 * j + 1].as_ptr()));
        (a, b)
    }
}

/// The dot of weights `32j .. 32j + 32` with their activations, in one chain.
#[inline(always)]
fn dot32<D: Dot16, Q: Quants>(q: &Q, xg: &[[i8; 16]], j: usize) -> int32x4_t {
    let (q0, q1) = q.pair32(j);
    // WORKAROUND: as in `dots32`.
    #[allow(unsafe_code)]
    unsafe {
        let a = D::dot16(vdupq_n_s32(0), q0, vld1q_s8(xg[2 * j].as_ptr()));
        D::dot16(a, q1, vld1q_s8(xg[2 * j + 1].as_ptr()))
    }
}

/// Groups `4k .. 4k + 4`'s sums, lane i that of group 4k + i: scale groups of 16 weights
/// (`per32`: of 32, groups `4k .. 4k + 4` of those).
#[inline(always)]
fn quad<D: Dot16, Q: Quants>(q: &Q, per32: bool, xg: &[[i8; 16]], k: usize) -> int32x4_t {
    // WORKAROUND: as in `widen16`.
    #[allow(unsafe_code)]
    unsafe {
        let (a, b, c, d) = if per32 {
            let a = dot32::<D, Q>(q, xg, 4 * k);
            let b = dot32::<D, Q>(q, xg, 4 * k + 1);
            let c = dot32::<D, Q>(q, xg, 4 * k + 2);
            (a, b, c, dot32::<D, Q>(q, xg, 4 * k + 3))
        } else {
            let (a, b) = dots32::<D, Q>(q, xg, 2 * k);
            let (c, d) = dots32::<D, Q>(q, xg, 2 * k + 1);
            (a, b, c, d)
        };
        vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d))
    }
}

/// `Σ_g sc_g · (q_g · x_g)` of a block against 256 activation quants, in 4 i32 lanes: the
/// group sums of four scales at a time pairwise-added into one vector and multiplied by
/// theirs. The quads are written out, not looped, so that every field's shift is a constant
/// (a loop LLVM kept rolled cost Q6_K a third more instructions).
#[inline(always)]
fn block_isum<D: Dot16, Q: Quants>(
    q: &Q,
    per32: bool,
    sc: &[int32x4_t; 4],
    x: &[i8; 256],
) -> int32x4_t {
    let (xg, _) = x.as_chunks::<16>();
    // WORKAROUND: as in `widen16`.
    #[allow(unsafe_code)]
    unsafe {
        let isum = vmulq_s32(quad::<D, Q>(q, per32, xg, 0), sc[0]);
        let isum = vmlaq_s32(isum, quad::<D, Q>(q, per32, xg, 1), sc[1]);
        if per32 {
            return isum;
        }
        let isum = vmlaq_s32(isum, quad::<D, Q>(q, per32, xg, 2), sc[2]);
        vmlaq_s32(isum, quad::<D, Q>(q, per32, xg, 3), sc[3])
    }
}

/// A block's scales and minimums, unpacked once for all its tokens.
pub(crate) struct Scales {
    pub(crate) sc: [int32x4_t; 4],
    pub(crate) d: f32,
    pub(crate) mins: [int32x4_t; 4],
    pub(crate) dmin: f32,
}

impl Scales {
    #[inline(always)]
    pub(crate) fn of<const B: usize, T: Decode<B>>(blk: &[u8; B]) -> Self {
        let (dmin, mins) = T::mins(blk);
        Scales {
            sc: T::scales(blk),
            d: T::d(blk),
            mins,
            dmin,
        }
    }
}

/// A block's `Σ w·x` added to `acc`: its scaled group sums times `d · d256`, its minimums'
/// sums (formats with `MINS`) times `−dmin · d256`.
#[inline(always)]
fn block<D: Dot16, const B: usize, T: Decode<B>, Q: Quants>(
    acc: float32x4_t,
    q: &Q,
    s: &Scales,
    x: &[i8; 256],
    bs: &[i16],
    xd: f32,
) -> float32x4_t {
    let isum = block_isum::<D, Q>(q, T::PER32, &s.sc, x);
    let acc = fma(acc, isum, s.d * xd);
    if !T::MINS {
        return acc;
    }
    fma(acc, min_isum(T::PER32, &s.mins, bs), -s.dmin * xd)
}

/// Rows of `T`'s blocks (each `row_bytes`) × the per-256 activations `acts` into `yt` (rows ×
/// n, row-major): mat-vec decodes each block as it goes, its accumulator in a register; a
/// batch decodes each block once for all its tokens.
#[inline(always)]
fn rows_sb<D: Dot16, const B: usize, T: Decode<B>>(
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    let zero = crate::neon::zero();
    if let [a] = acts {
        let (x256, _) = a.q256.as_chunks::<256>();
        let (bs16, _) = a.bsum16.as_chunks::<16>();
        for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.iter_mut()) {
            let (blocks, _) = row.as_chunks::<B>();
            let mut acc = zero;
            for (((blk, x), bs), xd) in blocks.iter().zip(x256).zip(bs16).zip(&a.d256) {
                let fresh = Fresh::<B, T>(blk, std::marker::PhantomData);
                acc = block::<D, B, T, _>(acc, &fresh, &Scales::of::<B, T>(blk), x, bs, *xd);
            }
            *out = crate::neon::hsum(acc);
        }
        return;
    }
    let n = acts.len();
    let mut accs = vec![zero; n];
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.chunks_exact_mut(n)) {
        let (blocks, _) = row.as_chunks::<B>();
        accs.fill(zero);
        for (bi, blk) in blocks.iter().enumerate() {
            let scales = Scales::of::<B, T>(blk);
            let mut q = Decoded([zero_q(); 16]);
            for j in 0..8 {
                (q.0[2 * j], q.0[2 * j + 1]) = T::pair32(blk, j);
            }
            for (a, acc) in acts.iter().zip(accs.iter_mut()) {
                let (x, _) = a.q256[256 * bi..].as_chunks::<256>();
                let bs = &a.bsum16[16 * bi..16 * bi + 16];
                *acc = block::<D, B, T, _>(*acc, &q, &scales, &x[0], bs, a.d256[bi]);
            }
        }
        for (o, acc) in out.iter_mut().zip(&accs) {
            *o = crate::neon::hsum(*acc);
        }
    }
}

/// `match ty` over the 256-weight types of this module, `$go!(block bytes, decoder)` for each
/// and `return false` for the rest: the one table of which decoder serves which type, for these
/// kernels and `neon_mmla`'s.
macro_rules! sb_types {
    ($ty:expr, $go:ident) => {
        match $ty {
            GgmlType::IQ2_XXS => $go!(66, $crate::neon_iq::Iq2Xxs),
            GgmlType::IQ2_XS => $go!(74, $crate::neon_iq::Iq2Xs),
            GgmlType::IQ2_S => $go!(82, $crate::neon_iq::Iq2S),
            GgmlType::IQ3_XXS => $go!(98, $crate::neon_iq::Iq3Xxs),
            GgmlType::IQ3_S => $go!(110, $crate::neon_iq::Iq3S),
            GgmlType::IQ1_S => $go!(50, $crate::neon_iq::Iq1S),
            GgmlType::IQ1_M => $go!(56, $crate::neon_iq::Iq1M),
            GgmlType::IQ4_XS => $go!(136, $crate::neon_iq::Iq4Xs),
            GgmlType::Q2_K => $go!(84, $crate::neon_k::Q2K),
            GgmlType::Q3_K => $go!(110, $crate::neon_k::Q3K),
            GgmlType::Q4_K => $go!(144, $crate::neon_k::Q4K),
            GgmlType::Q5_K => $go!(176, $crate::neon_k::Q5K),
            GgmlType::Q6_K => $go!(210, $crate::neon_k::Q6K),
            _ => return false,
        }
    };
}
pub(crate) use sb_types;

/// Rows `w` (each `row_bytes`) × the activations `acts` into `yt` (rows × n, row-major; one
/// activation is a mat-vec) summing 16 products the `D` way, where this module has `ty`'s
/// kernel and every activation has its per-256 quants; `false` (nothing written) otherwise.
#[inline(always)]
pub(crate) fn rows_typed<D: Dot16>(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    if acts.iter().any(|a| a.q256.is_empty()) {
        return false;
    }
    macro_rules! go {
        ($B:literal, $T:ty) => {
            rows_sb::<D, $B, $T>(w, row_bytes, acts, yt)
        };
    }
    sb_types!(ty, go);
    true
}

/// The decoders' exactness check, shared by `neon_iq`'s and `neon_k`'s tests.
#[cfg(test)]
pub(crate) mod check {
    use super::*;
    use crate::neon::lanes;
    use crate::synth::random_blocks;

    /// A portable decoder of `decode_i8`.
    pub(crate) type Portable<const B: usize> =
        fn(&[u8; B], &mut [i8; 256], &mut [f32; 16], &mut [f32; 32]) -> bool;

    fn i32s(v: [int32x4_t; 4]) -> [i32; 16] {
        let mut out = [0i32; 16];
        for (k, x) in v.into_iter().enumerate() {
            // WORKAROUND: a store has no safe intrinsic; four lanes written into `out`.
            #[allow(unsafe_code)]
            unsafe {
                vst1q_s32(out[4 * k..].as_mut_ptr(), x)
            };
        }
        out
    }

    /// `T` gives `portable`'s quants, `d·sc` its scales and `−dmin·m` its biases, exactly, on
    /// random blocks of `ty` (finite f16 fields, as `random_blocks` makes them).
    pub(crate) fn same_as_decode_i8<const B: usize, T: Decode<B>>(
        ty: GgmlType,
        portable: Portable<B>,
    ) {
        let data = random_blocks(ty, 64, 5);
        let (blocks, _) = data.as_chunks::<B>();
        for blk in blocks {
            let (mut q, mut s, mut bias) = ([0i8; 256], [0f32; 16], [0f32; 32]);
            assert_eq!(portable(blk, &mut q, &mut s, &mut bias), T::MINS, "{ty}");
            for j in 0..8 {
                let (q0, q1) = T::pair32(blk, j);
                assert_eq!(lanes(q0), q[32 * j..32 * j + 16], "{ty} weights {}", 32 * j);
                assert_eq!(
                    lanes(q1),
                    q[32 * j + 16..32 * j + 32],
                    "{ty} weights {}",
                    32 * j + 16
                );
            }
            let sc = i32s(T::scales(blk));
            let (dmin, mins) = T::mins(blk);
            let mins = i32s(mins);
            for g in 0..16 {
                let k = if T::PER32 { g / 2 } else { g };
                assert_eq!(T::d(blk) * sc[k] as f32, s[g], "{ty} scale {g}");
                if T::MINS {
                    assert_eq!(-(dmin * mins[k] as f32), bias[2 * g], "{ty} minimum {g}");
                }
            }
        }
    }
}
