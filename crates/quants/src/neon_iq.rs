//! The I-quants' block decoders for the NEON row kernels (`neon_sb`): IQ1_S, IQ1_M, IQ2_XXS,
//! IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S and IQ4_XS, each 256-weight block straight into sixteen int8
//! vectors and integer scales — grid entries loaded whole, signs applied as byte masks from a
//! table, IQ4's levels by one table lookup (`TBL`) per 16 weights. Until these, every aarch64
//! build decoded these types with the portable decoders into memory first (`decode_i8`):
//! 900–1,300 instructions per 256 weights for the grid types and ~7,400 for IQ4_NL/IQ4_XS,
//! whose level lookup did not vectorize (QEMU instruction counts, docs/benchmarks.md).
//!
//! Exactness: `d'·sc_g` is the reference's scale, `d'` the block's `d` times a power of two
//! (`1/8`, `1/4`) and `sc_g` an integer (`d·(0.5 + s)·0.25 = (d/8)·(2s + 1)`): both round the
//! same exact product once. `tests` checks every decoder against `decode_i8` exactly.

#![cfg(target_arch = "aarch64")]

use crate::neon::{f16, u16_at, u32_at, u64_at};
use crate::neon_sb::{widen16, Decode};
use crate::tables::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID};
use std::arch::aarch64::*;

/// `[e(0), e(1), e(2), e(3)]` written out, `l` a constant in each: closures here would be
/// left to LLVM's inlining, which dropped them once a decoder had two call sites (mat-vec
/// and batched), tripling the grid types' instruction counts.
macro_rules! four {
    (|$l:ident| $e:expr) => {
        [
            {
                let $l = 0usize;
                $e
            },
            {
                let $l = 1usize;
                $e
            },
            {
                let $l = 2usize;
                $e
            },
            {
                let $l = 3usize;
                $e
            },
        ]
    };
}

/// Byte k of `MASKS[s]` is 0xff where bit k of `s` is set: a sign byte as a lane mask.
static MASKS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut s = 0;
    while s < 256 {
        let mut k = 0;
        while k < 8 {
            if (s >> k) & 1 != 0 {
                t[s] |= 0xff << (8 * k);
            }
            k += 1;
        }
        s += 1;
    }
    t
};

/// IQ2/IQ3's 7-bit sign codes as lane masks: bit 7 is the parity of the other seven (the rule
/// `KSIGNS_IQ2XS` tabulates; checked in `tests`).
static KMASKS: [u64; 128] = {
    let mut t = [0u64; 128];
    let mut i = 0;
    while i < 128 {
        let s = i | (((i as u32).count_ones() as usize & 1) << 7);
        t[i] = MASKS[s];
        i += 1;
    }
    t
};

/// Two 8-byte groups as one vector (`lo` in lanes 0–7).
#[inline(always)]
fn pair(lo: u64, hi: u64) -> int8x16_t {
    // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but NEON
    // is part of every aarch64 target (this module compiles for no other).
    #[allow(unsafe_code)]
    unsafe {
        vcombine_s8(vcreate_s8(lo), vcreate_s8(hi))
    }
}

/// A 16-weight group of two 8-weight grid entries under two sign masks: `(g ^ m) − m`.
#[inline(always)]
fn grid16(g0: u64, g1: u64, m0: u64, m1: u64) -> int8x16_t {
    let (g, m) = (pair(g0, g1), pair(m0, m1));
    // WORKAROUND: as in `pair`.
    #[allow(unsafe_code)]
    unsafe {
        vsubq_s8(veorq_s8(g, m), m)
    }
}

/// IQ1's quants `8·g ± 1` from grid values g ∈ {−1, 0, 1}: `(g << 3) + δ` lane-wise.
#[inline(always)]
fn iq1(g0: u64, g1: u64, d0: u64, d1: u64) -> int8x16_t {
    // WORKAROUND: as in `pair`.
    #[allow(unsafe_code)]
    unsafe {
        vaddq_s8(vshlq_n_s8::<3>(pair(g0, g1)), pair(d0, d1))
    }
}

/// Eight bytes each `−1` (`negative`) or `+1`.
#[inline(always)]
fn delta8(negative: bool) -> u64 {
    if negative {
        u64::MAX
    } else {
        0x0101_0101_0101_0101
    }
}

#[inline(always)]
fn grid_iq1(index: usize) -> u64 {
    u64::from_le_bytes(IQ1S_GRID[index].map(|v| v as u8))
}

/// The 16 nibbles of `v` (low nibble first) as `2·s + 1`, four to a vector (the reference's
/// `d·(0.5 + s)·k` scales are `(d·k/2)·(2s + 1)`; eight nibbles use the first two vectors).
#[inline(always)]
fn odd_nibbles(v: u64) -> [int32x4_t; 4] {
    // WORKAROUND: as in `pair`.
    #[allow(unsafe_code)]
    unsafe {
        let v = vcreate_u8(v);
        let z = vzip_u8(vand_u8(v, vdup_n_u8(15)), vshr_n_u8::<4>(v));
        let n = vcombine_u8(z.0, z.1);
        widen16(vorrq_u8(vshlq_n_u8::<1>(n), vdupq_n_u8(1)))
    }
}

/// 16 bytes at `at` as four little-endian u32 lanes.
#[inline(always)]
fn words4<const B: usize>(b: &[u8; B], at: usize) -> uint32x4_t {
    let (c, _) = b[at..].as_chunks::<16>();
    // WORKAROUND: as in `pair`; the load reads exactly the 16 bytes of `c[0]`.
    #[allow(unsafe_code)]
    unsafe {
        vreinterpretq_u32_u8(vld1q_u8(c[0].as_ptr()))
    }
}

/// `2·(w >> 28) + 1` of eight u32 words (`lo`, `hi`), the 4-bit scales atop IQ2_XXS's and
/// IQ3_XXS's sign words.
#[inline(always)]
fn top_nibble_scales(lo: uint32x4_t, hi: uint32x4_t) -> [int32x4_t; 4] {
    // WORKAROUND: as in `pair`.
    #[allow(unsafe_code)]
    unsafe {
        let z = vdupq_n_s32(0);
        let one = vdupq_n_u32(1);
        [
            vreinterpretq_s32_u32(vorrq_u32(vshlq_n_u32::<1>(vshrq_n_u32::<28>(lo)), one)),
            vreinterpretq_s32_u32(vorrq_u32(vshlq_n_u32::<1>(vshrq_n_u32::<28>(hi)), one)),
            z,
            z,
        ]
    }
}

pub(crate) struct Iq2Xxs;
impl Decode<66> for Iq2Xxs {
    const PER32: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 66]) -> f32 {
        f16(u16_at(b, 0)) * 0.125
    }
    #[inline(always)]
    fn scales(b: &[u8; 66]) -> [int32x4_t; 4] {
        // Words 2j + 1 of the 64 bytes at 2 (each group's second word).
        // WORKAROUND: as in `pair`.
        #[allow(unsafe_code)]
        let (lo, hi) = unsafe {
            (
                vuzp2q_u32(words4(b, 2), words4(b, 18)),
                vuzp2q_u32(words4(b, 34), words4(b, 50)),
            )
        };
        top_nibble_scales(lo, hi)
    }
    #[inline(always)]
    fn pair32(b: &[u8; 66], j: usize) -> (int8x16_t, int8x16_t) {
        let c = u64_at(b, 2 + 8 * j);
        let g = four!(|l| IQ2XXS_GRID[((c >> (8 * l)) & 255) as usize]);
        let m = four!(|l| KMASKS[((c >> (32 + 7 * l)) & 127) as usize]);
        (
            grid16(g[0], g[1], m[0], m[1]),
            grid16(g[2], g[3], m[2], m[3]),
        )
    }
}

pub(crate) struct Iq2Xs;
impl Decode<74> for Iq2Xs {
    const PER32: bool = false;
    #[inline(always)]
    fn d(b: &[u8; 74]) -> f32 {
        f16(u16_at(b, 0)) * 0.125
    }
    #[inline(always)]
    fn scales(b: &[u8; 74]) -> [int32x4_t; 4] {
        odd_nibbles(u64_at(b, 66))
    }
    #[inline(always)]
    fn pair32(b: &[u8; 74], j: usize) -> (int8x16_t, int8x16_t) {
        let c = u64_at(b, 2 + 8 * j);
        let g = four!(|l| IQ2XS_GRID[((c >> (16 * l)) & 511) as usize]);
        let m = four!(|l| KMASKS[((c >> (16 * l + 9)) & 127) as usize]);
        (
            grid16(g[0], g[1], m[0], m[1]),
            grid16(g[2], g[3], m[2], m[3]),
        )
    }
}

pub(crate) struct Iq2S;
impl Decode<82> for Iq2S {
    const PER32: bool = false;
    #[inline(always)]
    fn d(b: &[u8; 82]) -> f32 {
        f16(u16_at(b, 0)) * 0.125
    }
    #[inline(always)]
    fn scales(b: &[u8; 82]) -> [int32x4_t; 4] {
        odd_nibbles(u64_at(b, 74))
    }
    #[inline(always)]
    fn pair32(b: &[u8; 82], j: usize) -> (int8x16_t, int8x16_t) {
        let qs = u32_at(b, 2 + 4 * j) as usize;
        let signs = u32_at(b, 34 + 4 * j) as usize;
        let qh = b[66 + j] as usize;
        let g = four!(|l| IQ2S_GRID[((qs >> (8 * l)) & 255) | ((qh >> (2 * l)) & 3) << 8]);
        let m = four!(|l| MASKS[(signs >> (8 * l)) & 255]);
        (
            grid16(g[0], g[1], m[0], m[1]),
            grid16(g[2], g[3], m[2], m[3]),
        )
    }
}

pub(crate) struct Iq3Xxs;
impl Decode<98> for Iq3Xxs {
    const PER32: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 98]) -> f32 {
        // d·(0.5 + s)·0.5 = (d/4)·(2s + 1).
        f16(u16_at(b, 0)) * 0.25
    }
    #[inline(always)]
    fn scales(b: &[u8; 98]) -> [int32x4_t; 4] {
        top_nibble_scales(words4(b, 66), words4(b, 82))
    }
    #[inline(always)]
    fn pair32(b: &[u8; 98], j: usize) -> (int8x16_t, int8x16_t) {
        let qs = u64_at(b, 2 + 8 * j);
        let a = u32_at(b, 66 + 4 * j);
        let g = four!(|l| {
            let lo = IQ3XXS_GRID[((qs >> (16 * l)) & 255) as usize] as u64;
            lo | (IQ3XXS_GRID[((qs >> (16 * l + 8)) & 255) as usize] as u64) << 32
        });
        let m = four!(|l| KMASKS[((a >> (7 * l)) & 127) as usize]);
        (
            grid16(g[0], g[1], m[0], m[1]),
            grid16(g[2], g[3], m[2], m[3]),
        )
    }
}

pub(crate) struct Iq3S;
impl Decode<110> for Iq3S {
    const PER32: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 110]) -> f32 {
        f16(u16_at(b, 0))
    }
    #[inline(always)]
    fn scales(b: &[u8; 110]) -> [int32x4_t; 4] {
        // d·(1 + 2s): the same odd numbers of the eight nibbles at 106.
        odd_nibbles(u32_at(b, 106) as u64)
    }
    #[inline(always)]
    fn pair32(b: &[u8; 110], j: usize) -> (int8x16_t, int8x16_t) {
        // The eight 9-bit grid indices built in one vector (low bytes interleaved with the qh
        // bits as 0/1 high bytes), then looked up from memory: per index one load instead of
        // the shifts and masks of its qh bit.
        let mut idx = [0u16; 8];
        let (qs, _) = b[2 + 8 * j..].as_chunks::<8>();
        // WORKAROUND: as in `pair`; the load reads exactly the 8 bytes of `qs`, the store
        // writes exactly the 16 bytes of `idx`.
        #[allow(unsafe_code)]
        unsafe {
            let bits = vcreate_u8(0x8040_2010_0804_0201);
            let high = vand_u8(vtst_u8(vdup_n_u8(b[66 + j]), bits), vdup_n_u8(1));
            let z = vzip_u8(vld1_u8(qs[0].as_ptr()), high);
            vst1q_u8(idx.as_mut_ptr().cast(), vcombine_u8(z.0, z.1));
        }
        let signs = u32_at(b, 74 + 4 * j) as usize;
        let g = four!(|l| {
            IQ3S_GRID[idx[2 * l] as usize] as u64
                | (IQ3S_GRID[idx[2 * l + 1] as usize] as u64) << 32
        });
        let m = four!(|l| MASKS[(signs >> (8 * l)) & 255]);
        (
            grid16(g[0], g[1], m[0], m[1]),
            grid16(g[2], g[3], m[2], m[3]),
        )
    }
}

pub(crate) struct Iq1S;
impl Decode<50> for Iq1S {
    const PER32: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 50]) -> f32 {
        // dl·(g ± 1/8) with dl = d·(2s + 1): (d/8)·(2s + 1)·(8g ± 1).
        f16(u16_at(b, 0)) * 0.125
    }
    #[inline(always)]
    fn scales(b: &[u8; 50]) -> [int32x4_t; 4] {
        let (h, _) = b[34..].as_chunks::<16>();
        // WORKAROUND: as in `pair`; the load reads exactly the 16 bytes of `h`.
        #[allow(unsafe_code)]
        unsafe {
            let h = vreinterpretq_u16_u8(vld1q_u8(h[0].as_ptr()));
            let s = vorrq_u16(
                vshlq_n_u16::<1>(vandq_u16(vshrq_n_u16::<12>(h), vdupq_n_u16(7))),
                vdupq_n_u16(1),
            );
            let z = vdupq_n_s32(0);
            [
                vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(s))),
                vreinterpretq_s32_u32(vmovl_high_u16(s)),
                z,
                z,
            ]
        }
    }
    #[inline(always)]
    fn pair32(b: &[u8; 50], j: usize) -> (int8x16_t, int8x16_t) {
        let qs = u32_at(b, 2 + 4 * j) as usize;
        let h = u16_at(b, 34 + 2 * j) as usize;
        let d = delta8(h & 0x8000 != 0);
        let g = four!(|l| grid_iq1(((qs >> (8 * l)) & 255) | ((h >> (3 * l)) & 7) << 8));
        (iq1(g[0], g[1], d, d), iq1(g[2], g[3], d, d))
    }
}

pub(crate) struct Iq1M;
impl Decode<56> for Iq1M {
    const PER32: bool = false;
    #[inline(always)]
    fn d(b: &[u8; 56]) -> f32 {
        let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
        let d =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        f16(d) * 0.125
    }
    #[inline(always)]
    fn scales(b: &[u8; 56]) -> [int32x4_t; 4] {
        let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
        std::array::from_fn(|k| {
            let v: [i32; 4] = std::array::from_fn(|i| 2 * ((sc[k] >> (3 * i)) & 7) as i32 + 1);
            // WORKAROUND: as in `pair`; the load reads exactly the four lanes of `v`.
            #[allow(unsafe_code)]
            unsafe {
                vld1q_s32(v.as_ptr())
            }
        })
    }
    #[inline(always)]
    fn pair32(b: &[u8; 56], j: usize) -> (int8x16_t, int8x16_t) {
        let qs = u32_at(b, 4 * j) as usize;
        let n = u16_at(b, 32 + 2 * j) as usize;
        // Weights 8l .. 8l + 8: index bits and the delta sign in nibble l of `n`.
        let g = four!(|l| grid_iq1(((qs >> (8 * l)) & 255) | ((n >> (4 * l)) & 7) << 8));
        let d = four!(|l| delta8((n >> (4 * l + 3)) & 1 != 0));
        (iq1(g[0], g[1], d[0], d[1]), iq1(g[2], g[3], d[2], d[3]))
    }
}

/// 32 weights of IQ4 nibbles (16 bytes: low nibbles first) as levels.
#[inline(always)]
pub(crate) fn iq4_pair(qs: &[u8; 16]) -> (int8x16_t, int8x16_t) {
    // WORKAROUND: as in `pair`; the loads read exactly the 16 levels and the 16 bytes of `qs`.
    #[allow(unsafe_code)]
    unsafe {
        let table = vld1q_s8(crate::tables::IQ4NL_LEVELS.as_ptr());
        let v = vld1q_u8(qs.as_ptr());
        let lo = vqtbl1q_s8(table, vandq_u8(v, vdupq_n_u8(15)));
        let hi = vqtbl1q_s8(table, vshrq_n_u8::<4>(v));
        (lo, hi)
    }
}

pub(crate) struct Iq4Xs;
impl Decode<136> for Iq4Xs {
    const PER32: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 136]) -> f32 {
        f16(u16_at(b, 0))
    }
    #[inline(always)]
    fn scales(b: &[u8; 136]) -> [int32x4_t; 4] {
        let scales_h = u16_at(b, 2);
        let v: [i32; 8] = std::array::from_fn(|j| {
            let low = (b[4 + j / 2] >> (4 * (j % 2))) & 15;
            let high = ((scales_h >> (2 * j)) & 3) as u8;
            (low | high << 4) as i32 - 32
        });
        // WORKAROUND: as in `pair`; the loads read exactly the eight lanes of `v`.
        #[allow(unsafe_code)]
        unsafe {
            let z = vdupq_n_s32(0);
            [vld1q_s32(v.as_ptr()), vld1q_s32(v[4..].as_ptr()), z, z]
        }
    }
    #[inline(always)]
    fn pair32(b: &[u8; 136], j: usize) -> (int8x16_t, int8x16_t) {
        let (qs, _) = b[8 + 16 * j..].as_chunks::<16>();
        iq4_pair(&qs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_i8 as di8;
    use crate::neon_sb::check::same_as_decode_i8;
    use crate::GgmlType;

    #[test]
    fn sign_code_masks_follow_the_ksigns_table() {
        for (i, &s) in crate::tables::KSIGNS_IQ2XS.iter().enumerate() {
            assert_eq!(KMASKS[i], MASKS[s as usize], "{i}");
        }
        assert_eq!(MASKS[0b1000_0001], 0xff00_0000_0000_00ff);
    }

    #[test]
    fn decoders_equal_the_portable_ones() {
        same_as_decode_i8::<66, Iq2Xxs>(GgmlType::IQ2_XXS, di8::iq2_xxs);
        same_as_decode_i8::<74, Iq2Xs>(GgmlType::IQ2_XS, di8::iq2_xs);
        same_as_decode_i8::<82, Iq2S>(GgmlType::IQ2_S, di8::iq2_s);
        same_as_decode_i8::<98, Iq3Xxs>(GgmlType::IQ3_XXS, di8::iq3_xxs);
        same_as_decode_i8::<110, Iq3S>(GgmlType::IQ3_S, di8::iq3_s);
        same_as_decode_i8::<50, Iq1S>(GgmlType::IQ1_S, di8::iq1_s);
        same_as_decode_i8::<56, Iq1M>(GgmlType::IQ1_M, di8::iq1_m);
        same_as_decode_i8::<136, Iq4Xs>(GgmlType::IQ4_XS, di8::iq4_xs);
    }
}
