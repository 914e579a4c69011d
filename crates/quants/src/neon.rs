//! NEON for aarch64 (Apple Silicon, Graviton, Ampere): the entry to the row kernels (mat-vec
//! and batched: `neon_sb` for the 256-weight types with the decoders of `neon_iq` and
//! `neon_k`, `neon_q32` for the 32-weight ones) and what they share — how 16 int8 products
//! are summed (`SDOT` where the CPU has FEAT_DotProd, every Apple M-series chip, detected at
//! run time; widening multiplies and pairwise adds where it does not: the integer sums are
//! exact either way), f16 fields converted by the hardware, single-load fields.
//!
//! The `unsafe` here is of two kinds: NEON intrinsics, which Rust marks unsafe outside
//! `#[target_feature]` functions though every aarch64 target has NEON, and the `SDOT`
//! instruction written as inline assembly (its intrinsic is not stable yet).

#![cfg(target_arch = "aarch64")]

use crate::q8::Q8Act;
use crate::GgmlType;
use std::arch::aarch64::*;

/// 16 int8 values as one vector.
#[cfg(test)]
#[inline(always)]
fn load_s8(v: &[i8; 16]) -> int8x16_t {
    // WORKAROUND: a load has no safe intrinsic; the array is exactly the 16 bytes read.
    #[allow(unsafe_code)]
    unsafe {
        vld1q_s8(v.as_ptr())
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

/// Whether this aarch64 CPU has FEAT_DotProd (and SIMD kernels are allowed).
pub(crate) fn have_dotprod() -> bool {
    use std::sync::OnceLock;
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        crate::kernels::simd_allowed() && std::arch::is_aarch64_feature_detected!("dotprod")
    })
}

/// Rows `w` (each `row_bytes`) · the int8 activation `a` into `y` in NEON (`false`: SIMD
/// kernels are off, `LOCALGLM_SIMD=off`, or — not expected — no kernel takes `ty`).
pub(crate) fn rows(ty: GgmlType, w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) -> bool {
    rows_multi(ty, w, row_bytes, std::slice::from_ref(a), y)
}

/// Rows × many int8 activations into `yt` (rows × n, row-major) in NEON: the 256-weight types
/// in `neon_sb` (decoders in `neon_iq`, `neon_k`; batches on `SMMLA` in `neon_mmla` where the
/// CPU has FEAT_I8MM), the 32-weight ones in `neon_q32` (`false` as [`rows`]).
pub(crate) fn rows_multi(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    crate::kernels::simd_allowed()
        && !acts.is_empty()
        && (crate::neon_mmla::rows(ty, w, row_bytes, acts, yt)
            || rows_dot(ty, w, row_bytes, acts, yt))
}

/// [`rows_multi`] without `SMMLA`: the kernels summing 16 products the `D` way.
#[inline(always)]
fn rows_with<D: Dot16>(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    crate::neon_sb::rows_typed::<D>(ty, w, row_bytes, acts, yt)
        || crate::neon_q32::rows_typed::<D>(ty, w, row_bytes, acts, yt)
}

/// [`rows_with`] with `SDOT`.
#[target_feature(enable = "neon,dotprod")]
fn rows_sdot(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &[Q8Act], yt: &mut [f32]) -> bool {
    rows_with::<Sdot>(ty, w, row_bytes, acts, yt)
}

/// [`rows_multi`] on `SDOT` where the CPU has it, widening multiplies where it does not —
/// never `SMMLA`.
pub(crate) fn rows_dot(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    if have_dotprod() {
        // WORKAROUND: calling a `#[target_feature]` function needs `unsafe`; `dotprod` was
        // detected on this CPU just above, which is the whole safety contract.
        #[allow(unsafe_code)]
        unsafe {
            rows_sdot(ty, w, row_bytes, acts, yt)
        }
    } else {
        rows_with::<Widen>(ty, w, row_bytes, acts, yt)
    }
}

/// `[a, a, b, b]`.
#[inline(always)]
pub(crate) fn pair_f32(a: f32, b: f32) -> float32x4_t {
    // WORKAROUND: as in `Widen::dot16`: NEON is part of every aarch64 target.
    #[allow(unsafe_code)]
    unsafe {
        vcombine_f32(vdup_n_f32(a), vdup_n_f32(b))
    }
}

/// The 16 lanes of a vector (tests).
#[cfg(test)]
pub(crate) fn lanes(v: int8x16_t) -> [i8; 16] {
    let mut out = [0i8; 16];
    // WORKAROUND: a store has no safe intrinsic; `out` is exactly the 16 bytes written.
    #[allow(unsafe_code)]
    unsafe {
        vst1q_s8(out.as_mut_ptr(), v)
    };
    out
}

/// 16 weights of a float row (F32: 64 bytes, F16/BF16: 32) as four f32 vectors; `KIND` 0 is
/// F32, 1 F16 (`FCVTL`, base NEON), 2 BF16 (a 16-bit left shift).
#[inline(always)]
fn widen_float<const KIND: u8>(c: &[u8]) -> [float32x4_t; 4] {
    // WORKAROUND: as in `Widen::dot16`; each load reads 16 of the bytes `as_chunks` checked
    // are there, and the assembly reads and writes registers only.
    #[allow(unsafe_code)]
    unsafe {
        if KIND == 0 {
            let (v, _) = c.as_chunks::<16>();
            return std::array::from_fn(|k| vreinterpretq_f32_u8(vld1q_u8(v[k].as_ptr())));
        }
        let (v, _) = c.as_chunks::<16>();
        let (a, b) = (
            vld1q_u16(v[0].as_ptr().cast()),
            vld1q_u16(v[1].as_ptr().cast()),
        );
        if KIND == 2 {
            let f = |h| vreinterpretq_f32_u32(h);
            return [
                f(vshll_n_u16::<16>(vget_low_u16(a))),
                f(vshll_high_n_u16::<16>(a)),
                f(vshll_n_u16::<16>(vget_low_u16(b))),
                f(vshll_high_n_u16::<16>(b)),
            ];
        }
        let (mut r0, mut r1, mut r2, mut r3): (float32x4_t, float32x4_t, float32x4_t, float32x4_t);
        std::arch::asm!(
            "fcvtl {r0:v}.4s, {a:v}.4h",
            "fcvtl2 {r1:v}.4s, {a:v}.8h",
            "fcvtl {r2:v}.4s, {b:v}.4h",
            "fcvtl2 {r3:v}.4s, {b:v}.8h",
            a = in(vreg) a,
            b = in(vreg) b,
            r0 = out(vreg) r0,
            r1 = out(vreg) r1,
            r2 = out(vreg) r2,
            r3 = out(vreg) r3,
            options(pure, nomem, nostack, preserves_flags)
        );
        [r0, r1, r2, r3]
    }
}

/// Float rows · f32 `x`, four rows a step sharing each load of `x`, four accumulators a row.
#[inline(always)]
fn rows_float_as<const KIND: u8>(w: &[u8], row_bytes: usize, x: &[f32], y: &mut [f32]) {
    let bytes = if KIND == 0 { 4 } else { 2 };
    let step = 16 * bytes;
    let (xc, _) = x.as_chunks::<16>();
    let done = xc.len() * 16;
    for (rows, ys) in w.chunks(4 * row_bytes).zip(y.chunks_mut(4)) {
        let n = ys.len();
        let r: [&[u8]; 4] = std::array::from_fn(|k| &rows[row_bytes * k.min(n - 1)..][..row_bytes]);
        let mut acc = [[zero(); 4]; 4];
        for (i, xv) in xc.iter().enumerate() {
            let (x4, _) = xv.as_chunks::<4>();
            // WORKAROUND: as in `Widen::dot16`; the loads read exactly the lanes of `x4`.
            #[allow(unsafe_code)]
            let xs: [float32x4_t; 4] =
                std::array::from_fn(|v| unsafe { vld1q_f32(x4[v].as_ptr()) });
            for (a, row) in acc.iter_mut().zip(&r) {
                let wv = widen_float::<KIND>(&row[i * step..(i + 1) * step]);
                for v in 0..4 {
                    // WORKAROUND: as in `Widen::dot16`.
                    #[allow(unsafe_code)]
                    unsafe {
                        a[v] = vfmaq_f32(a[v], wv[v], xs[v]);
                    }
                }
            }
        }
        for ((out, a), row) in ys.iter_mut().zip(&acc).zip(&r) {
            // WORKAROUND: as in `Widen::dot16`.
            #[allow(unsafe_code)]
            let sum = unsafe { vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3])) };
            let tail: f32 = (done..x.len())
                .map(|i| {
                    let v = match KIND {
                        0 => f32::from_le_bytes([
                            row[4 * i],
                            row[4 * i + 1],
                            row[4 * i + 2],
                            row[4 * i + 3],
                        ]),
                        1 => crate::f16_to_f32(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])),
                        _ => crate::bf16_to_f32(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])),
                    };
                    v * x[i]
                })
                .sum();
            *out = hsum(sum) + tail;
        }
    }
}

/// F32 / F16 / BF16 rows (each `row_bytes`) · f32 `x` into `y` in NEON (`false`: another type,
/// or SIMD kernels are off).
pub(crate) fn rows_float(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    y: &mut [f32],
) -> bool {
    if !crate::kernels::simd_allowed() {
        return false;
    }
    match ty {
        GgmlType::F32 => rows_float_as::<0>(w, row_bytes, x, y),
        GgmlType::F16 => rows_float_as::<1>(w, row_bytes, x, y),
        GgmlType::BF16 => rows_float_as::<2>(w, row_bytes, x, y),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dot16` both ways against the exact sum of 16 products over the full int8 range; the
    /// `SDOT` way where this CPU has it (QEMU's `-cpu max` in CI), saying so where it does not
    /// (`-cpu cortex-a72`). The kernels' own checks are tests/kernels.rs.
    #[test]
    fn dot16_sums_exactly_with_and_without_sdot() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let lanes = |v: int32x4_t| {
            let mut out = [0i32; 4];
            // WORKAROUND: a store has no safe intrinsic; `out` is exactly the lanes written.
            #[allow(unsafe_code)]
            unsafe {
                vst1q_s32(out.as_mut_ptr(), v)
            };
            out.iter().sum::<i32>()
        };
        let sdot = std::arch::is_aarch64_feature_detected!("dotprod");
        for _ in 0..256 {
            let w: [i8; 16] = std::array::from_fn(|_| next() as i8);
            let x: [i8; 16] = std::array::from_fn(|_| next() as i8);
            let exact: i32 = w.iter().zip(&x).map(|(a, b)| *a as i32 * *b as i32).sum();
            let (wv, xv) = (load_s8(&w), load_s8(&x));
            assert_eq!(lanes(Widen::dot16(zero_i32(), wv, xv)), exact);
            if sdot {
                assert_eq!(lanes(Sdot::dot16(zero_i32(), wv, xv)), exact);
            }
        }
        match sdot {
            true => eprintln!("SDOT and plain NEON dots checked"),
            false => eprintln!("this CPU has no SDOT: plain NEON dots checked"),
        }
    }
}
