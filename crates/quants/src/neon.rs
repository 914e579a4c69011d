//! NEON kernels for aarch64 (Apple Silicon, Graviton, Ampere): the int8 path's row loops
//! (mat-vec and batched) with their block dot — decoded weight quants against int8
//! activations, 16 per scale — in vector registers: `SDOT` where the CPU has FEAT_DotProd
//! (every Apple M-series chip; detected at run time), widening multiplies and pairwise adds
//! where it does not. The per-type decoders are the portable ones (`decode_i8`).
//! The integer sums are exact either way, so both give the portable kernels' group sums; the
//! float accumulation differs in order and in using fused multiply-adds.
//!
//! The `unsafe` here is of two kinds: NEON intrinsics, which Rust marks unsafe outside
//! `#[target_feature]` functions though every aarch64 target has NEON, and the `SDOT`
//! instruction written as inline assembly (its intrinsic is not stable yet).

#![cfg(target_arch = "aarch64")]

use crate::decode_i8 as di8;
use crate::dequant::{QK, QK_K};
use crate::kernels::match_int8_type;
use crate::q8::{dot_row_q8_multi_neon, dot_row_q8_neon, Q8Act};
use crate::GgmlType;
use std::arch::aarch64::*;

/// 16 int8 values as one vector.
#[inline(always)]
fn load_s8(v: &[i8; 16]) -> int8x16_t {
    // WORKAROUND: a load has no safe intrinsic; the array is exactly the 16 bytes read.
    #[allow(unsafe_code)]
    unsafe {
        vld1q_s8(v.as_ptr())
    }
}

/// 4 floats as one vector.
#[inline(always)]
fn load_f32(v: &[f32; 4]) -> float32x4_t {
    // WORKAROUND: as in `load_s8`.
    #[allow(unsafe_code)]
    unsafe {
        vld1q_f32(v.as_ptr())
    }
}

/// A scalar f16 field as f32, by the hardware's conversion (`FCVTL`, base NEON).
#[inline(always)]
pub(crate) fn f16(h: u16) -> f32 {
    let v: float32x4_t;
    // WORKAROUND: inline assembly is `unsafe`; this one reads and writes registers only.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!(
            "dup {v:v}.4h, {h:w}",
            "fcvtl {v:v}.4s, {v:v}.4h",
            h = in(reg) u32::from(h),
            v = out(vreg) v,
            options(pure, nomem, nostack, preserves_flags)
        );
        vgetq_lane_f32::<0>(v)
    }
}

// Little-endian fields read as one load each (`dequant::u32_at` assembles bytes, which LLVM
// left as byte loads in these kernels).
#[inline(always)]
pub(crate) fn u64_at<const B: usize>(b: &[u8; B], at: usize) -> u64 {
    let (v, _) = b[at..].as_chunks::<8>();
    u64::from_le_bytes(v[0])
}

#[inline(always)]
pub(crate) fn u32_at<const B: usize>(b: &[u8; B], at: usize) -> u32 {
    let (v, _) = b[at..].as_chunks::<4>();
    u32::from_le_bytes(v[0])
}

#[inline(always)]
pub(crate) fn u16_at<const B: usize>(b: &[u8; B], at: usize) -> u16 {
    let (v, _) = b[at..].as_chunks::<2>();
    u16::from_le_bytes(v[0])
}

/// A zero i32 vector.
#[inline(always)]
pub(crate) fn zero_i32() -> int32x4_t {
    // WORKAROUND: as in `Widen::dot16`: NEON is part of every aarch64 target.
    #[allow(unsafe_code)]
    unsafe {
        vdupq_n_s32(0)
    }
}

/// An empty quant vector.
#[inline(always)]
pub(crate) fn zero_q() -> int8x16_t {
    // WORKAROUND: as in `Widen::dot16`: NEON is part of every aarch64 target.
    #[allow(unsafe_code)]
    unsafe {
        vdupq_n_s8(0)
    }
}

/// `acc + isum · s` in floats.
#[inline(always)]
pub(crate) fn fma(acc: float32x4_t, isum: int32x4_t, s: f32) -> float32x4_t {
    // WORKAROUND: as in `Widen::dot16`: NEON is part of every aarch64 target.
    #[allow(unsafe_code)]
    unsafe {
        vfmaq_n_f32(acc, vcvtq_f32_s32(isum), s)
    }
}

/// How 16 int8 × int8 products are summed into 4 i32 lanes (the split over lanes may differ;
/// the total is the same).
///
/// Only `kernels.rs` uses these, and uses [`Sdot`] only inside functions compiled for
/// FEAT_DotProd that it enters after detecting the feature; nothing else may name `Sdot`.
pub(crate) trait Dot16 {
    fn dot16(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t;
}

/// `SDOT` (FEAT_DotProd).
pub(crate) struct Sdot;

impl Dot16 for Sdot {
    #[inline(always)]
    fn dot16(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
        // WORKAROUND: `sdot` is compiled for FEAT_DotProd; this impl is only reached from
        // functions compiled with it, entered after detecting it on this CPU (`kernels.rs`).
        #[allow(unsafe_code)]
        unsafe {
            sdot(acc, w, x)
        }
    }
}

/// `acc.4s += w.16b · x.16b` by groups of four. Written as the instruction itself: the
/// `vdotq_s32` intrinsic is not stable in Rust yet.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // WORKAROUND: inline assembly is `unsafe`; this one reads and writes registers only.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Plain NEON: widening multiplies to i16, pairwise-added into i32.
pub(crate) struct Widen;

impl Dot16 for Widen {
    #[inline(always)]
    fn dot16(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
        // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but
        // NEON is part of every aarch64 target (these run on no other).
        #[allow(unsafe_code)]
        unsafe {
            let lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
            let hi = vmull_high_s8(w, x);
            vpadalq_s16(vpadalq_s16(acc, lo), hi)
        }
    }
}

/// `acc + Σ_g s[g]·xd[g]·(q[16g..][..16] · xq[16g..][..16])` over a block's `S` groups, four
/// groups per vector step (`S` is 2 or 16).
#[inline(always)]
pub(crate) fn block_dot<D: Dot16, const N: usize, const S: usize>(
    q: &[i8; N],
    s: &[f32; S],
    xq: &[i8; N],
    xd: &[f32; S],
    acc: float32x4_t,
) -> float32x4_t {
    let (qg, _) = q.as_chunks::<16>();
    let (xg, _) = xq.as_chunks::<16>();
    let mut acc = acc;
    let mut g0 = 0;
    while g0 < S {
        let mut scale = [0f32; 4];
        // WORKAROUND: as in `Widen::dot16`: NEON is part of every aarch64 target.
        #[allow(unsafe_code)]
        unsafe {
            let mut sums = [vdupq_n_s32(0); 4];
            for k in 0..4.min(S - g0) {
                let g = g0 + k;
                sums[k] = D::dot16(sums[k], load_s8(&qg[g]), load_s8(&xg[g]));
                scale[k] = s[g] * xd[g];
            }
            // Lane k: the whole sum of group g0 + k.
            let t = vpaddq_s32(vpaddq_s32(sums[0], sums[1]), vpaddq_s32(sums[2], sums[3]));
            acc = vfmaq_f32(acc, vcvtq_f32_s32(t), load_f32(&scale));
        }
        g0 += 4;
    }
    acc
}

/// Sum of the 4 lanes.
#[inline(always)]
pub(crate) fn hsum(v: float32x4_t) -> f32 {
    // WORKAROUND: as in `Widen::dot16`.
    #[allow(unsafe_code)]
    unsafe {
        vaddvq_f32(v)
    }
}

/// A zero accumulator.
#[inline(always)]
pub(crate) fn zero() -> float32x4_t {
    // WORKAROUND: as in `Widen::dot16`.
    #[allow(unsafe_code)]
    unsafe {
        vdupq_n_f32(0.0)
    }
}

/// NEON builds of the int8 row loops, summing 16 products the `D` way: `Widen` called
/// directly, `Sdot` through the `*_sdot` functions, compiled for FEAT_DotProd.
#[inline(always)]
fn rows_int8<D: Dot16>(ty: GgmlType, w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        *out = match_int8_type!(ty, dot_row_q8_neon, [D, row, a], f32::NAN);
    }
}

#[inline(always)]
fn rows_multi_neon<D: Dot16>(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    let n = acts.len();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.chunks_exact_mut(n)) {
        match_int8_type!(
            ty,
            dot_row_q8_multi_neon,
            [D, row, acts, out],
            out.iter_mut().for_each(|o| *o = f32::NAN)
        )
    }
}

/// [`rows_int8`] with `SDOT`.
#[target_feature(enable = "neon,dotprod")]
fn rows_int8_sdot(ty: GgmlType, w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_int8::<Sdot>(ty, w, row_bytes, a, y)
}

/// [`rows_multi_neon`] with `SDOT`.
#[target_feature(enable = "neon,dotprod")]
fn rows_multi_sdot(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &[Q8Act], yt: &mut [f32]) {
    rows_multi_neon::<Sdot>(ty, w, row_bytes, acts, yt)
}

/// Whether this aarch64 CPU has FEAT_DotProd (and SIMD kernels are allowed).
pub(crate) fn have_dotprod() -> bool {
    use std::sync::OnceLock;
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        crate::kernels::simd_allowed() && std::arch::is_aarch64_feature_detected!("dotprod")
    })
}

/// Rows `w` (each `row_bytes`) · the int8 activation `a` into `y` in NEON (`false`: SIMD
/// kernels are off, `LOCALGLM_SIMD=off`).
pub(crate) fn rows(ty: GgmlType, w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) -> bool {
    if !crate::kernels::simd_allowed() {
        return false;
    }
    let acts = std::slice::from_ref(a);
    if crate::neon_sb::rows(ty, w, row_bytes, acts, y)
        || crate::neon_q32::rows(ty, w, row_bytes, acts, y)
    {
        return true;
    }
    if have_dotprod() {
        // WORKAROUND: calling a `#[target_feature]` function needs `unsafe`; `dotprod` was
        // detected on this CPU just above, which is the whole safety contract.
        #[allow(unsafe_code)]
        unsafe {
            rows_int8_sdot(ty, w, row_bytes, a, y)
        };
    } else {
        rows_int8::<Widen>(ty, w, row_bytes, a, y);
    }
    true
}

/// Rows × many int8 activations into `yt` (rows × n, row-major) in NEON (`false`: SIMD kernels
/// are off).
pub(crate) fn rows_multi(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    if !crate::kernels::simd_allowed() {
        return false;
    }
    if crate::neon_sb::rows(ty, w, row_bytes, acts, yt)
        || crate::neon_q32::rows(ty, w, row_bytes, acts, yt)
    {
        return true;
    }
    if have_dotprod() {
        // WORKAROUND: as in `rows`: `dotprod` was detected on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            rows_multi_sdot(ty, w, row_bytes, acts, yt)
        };
    } else {
        rows_multi_neon::<Widen>(ty, w, row_bytes, acts, yt);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `block_dot` with both ways of summing against the exact sum, for a 256-weight block (16
    /// groups) and a 32-weight one (2 groups); the `SDOT` way where this CPU has it (QEMU's
    /// `-cpu max` in CI), saying so where it does not (`-cpu cortex-a72`).
    #[test]
    fn block_dots_equal_the_exact_sums_with_and_without_sdot() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        fn check<const N: usize, const S: usize>(next: &mut impl FnMut() -> u32) {
            let mut q = [0i8; N];
            let mut xq = [0i8; N];
            q.iter_mut().for_each(|v| *v = next() as i8);
            // Activations span the full int8 range, -127 ..= 127 as quantized.
            xq.iter_mut().for_each(|v| *v = (next() % 255) as i8);
            let s: [f32; S] = std::array::from_fn(|_| (next() % 1000) as f32 / 997.0);
            let xd: [f32; S] = std::array::from_fn(|_| (next() % 1000) as f32 / 991.0 - 0.5);
            let exact: f64 = (0..S)
                .map(|g| {
                    let t: i32 = (0..16)
                        .map(|i| q[16 * g + i] as i32 * xq[16 * g + i] as i32)
                        .sum();
                    s[g] as f64 * xd[g] as f64 * t as f64
                })
                .sum();
            let scale: f64 = (0..N).map(|v| (q[v] as f64 * xq[v] as f64).abs()).sum();
            let widen = hsum(block_dot::<Widen, N, S>(&q, &s, &xq, &xd, zero())) as f64;
            assert!((widen - exact).abs() <= 1e-6 * scale, "{widen} vs {exact}");
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                let sdot = hsum(block_dot::<Sdot, N, S>(&q, &s, &xq, &xd, zero())) as f64;
                assert!((sdot - exact).abs() <= 1e-6 * scale, "{sdot} vs {exact}");
            }
        }
        for _ in 0..64 {
            check::<256, 16>(&mut next);
            check::<32, 2>(&mut next);
        }
        match std::arch::is_aarch64_feature_detected!("dotprod") {
            true => eprintln!("SDOT and plain NEON block dots checked"),
            false => eprintln!("this CPU has no SDOT: plain NEON block dots checked"),
        }
    }
}
