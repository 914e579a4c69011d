//! The K-quants' block decoders for the NEON row kernels (`neon_sb`): Q2_K, Q3_K, Q4_K, Q5_K
//! and Q6_K, each 256-weight block into sixteen int8 vectors — bit fields by shift and mask, the
//! high bits of Q3_K/Q5_K by a bit test of `hmask`/`qh` (one bit a sub-block), Q6_K's two by
//! shift — with the packed 6-bit scales and minimums unpacked four bytes at a time in general
//! registers. Minimums (Q2_K, Q4_K, Q5_K) stay integers and meet the activations' sums per 16
//! (`neon_sb::min_isum`), as the x86 row kernels do. `tests` checks every decoder against
//! `decode_i8` exactly.

#![cfg(target_arch = "aarch64")]

use crate::neon::{f16, u16_at, u32_at};
use crate::neon_sb::{widen16, widen16_signed, Decode};
use std::arch::aarch64::*;

/// 16 bytes at `at` as a vector.
#[inline(always)]
fn load16<const B: usize>(b: &[u8; B], at: usize) -> uint8x16_t {
    let (c, _) = b[at..].as_chunks::<16>();
    // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but NEON
    // is part of every aarch64 target (this module compiles for no other); the load reads
    // exactly the 16 bytes of `c[0]`.
    #[allow(unsafe_code)]
    unsafe {
        vld1q_u8(c[0].as_ptr())
    }
}

/// `(v >> shift) & mask` lane-wise, `shift` a constant once inlined.
#[inline(always)]
fn field(v: uint8x16_t, shift: usize, mask: u8) -> uint8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vandq_u8(vshlq_u8(v, vdupq_n_s8(-(shift as i8))), vdupq_n_u8(mask))
    }
}

/// `value` in the lanes of `v` whose bit `bit` is set, else 0.
#[inline(always)]
fn bit_value(v: uint8x16_t, bit: usize, value: u8) -> uint8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vandq_u8(vtstq_u8(v, vdupq_n_u8(1 << bit)), vdupq_n_u8(value))
    }
}

/// `a | b` as signed quants, minus `k`.
#[inline(always)]
fn quants(a: uint8x16_t, b: uint8x16_t, k: u8) -> int8x16_t {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    unsafe {
        vreinterpretq_s8_u8(vsubq_u8(vorrq_u8(a, b), vdupq_n_u8(k)))
    }
}

/// Eight bytes (four in `lo`, four in `hi`) as i32 lanes: scales or minimums per 32.
#[inline(always)]
fn bytes8(lo: u32, hi: u32) -> [int32x4_t; 4] {
    // WORKAROUND: as in `load16`.
    #[allow(unsafe_code)]
    let v = unsafe { vcombine_u8(vcreate_u8(lo as u64 | (hi as u64) << 32), vdup_n_u8(0)) };
    widen16(v)
}

/// Q4_K/Q5_K's eight 6-bit scales and minimums from their 12 bytes at `at`: scales 0–3 and
/// minimums 0–3 are the low six bits of bytes 0–3 and 4–7; scales and minimums 4–7 take
/// their low nibbles from bytes 8–11 and their top two bits from the top of bytes 0–3 / 4–7.
#[inline(always)]
fn k_scales_mins<const B: usize>(b: &[u8; B], at: usize) -> ([int32x4_t; 4], [int32x4_t; 4]) {
    let (a, m, c) = (u32_at(b, at), u32_at(b, at + 4), u32_at(b, at + 8));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const TOP2: u32 = 0x0303_0303;
    let sc_hi = (c & LOW4) | ((a >> 6) & TOP2) << 4;
    let m_hi = ((c >> 4) & LOW4) | ((m >> 6) & TOP2) << 4;
    (bytes8(a & LOW6, sc_hi), bytes8(m & LOW6, m_hi))
}

pub(crate) struct Q2K;
impl Decode<84> for Q2K {
    const PER32: bool = false;
    const MINS: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 84]) -> f32 {
        f16(u16_at(b, 80))
    }
    #[inline(always)]
    fn scales(b: &[u8; 84]) -> [int32x4_t; 4] {
        widen16(field(load16(b, 0), 0, 15))
    }
    #[inline(always)]
    fn mins(b: &[u8; 84]) -> (f32, [int32x4_t; 4]) {
        (f16(u16_at(b, 82)), widen16(field(load16(b, 0), 4, 15)))
    }
    #[inline(always)]
    fn pair32(b: &[u8; 84], j: usize) -> (int8x16_t, int8x16_t) {
        // Weights 128h + 32s + l: bit pair s of qs[32h + l] (j = 4h + s).
        let (h, s) = (j / 4, j % 4);
        let lo = field(load16(b, 16 + 32 * h), 2 * s, 3);
        let hi = field(load16(b, 32 + 32 * h), 2 * s, 3);
        // WORKAROUND: as in `load16`.
        #[allow(unsafe_code)]
        unsafe {
            (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
        }
    }
}

pub(crate) struct Q3K;
impl Decode<110> for Q3K {
    const PER32: bool = false;
    #[inline(always)]
    fn d(b: &[u8; 110]) -> f32 {
        f16(u16_at(b, 108))
    }
    #[inline(always)]
    fn scales(b: &[u8; 110]) -> [int32x4_t; 4] {
        // Scale i: low nibble from byte i (i < 8) or the high nibble of byte i − 8, top two
        // bits from byte 8 + i % 4 at bit 2·(i / 4); minus 32.
        let (a0, a1, t) = (u32_at(b, 96), u32_at(b, 100), u32_at(b, 104));
        const LOW4: u32 = 0x0f0f_0f0f;
        const TOP2: u32 = 0x0303_0303;
        let w = [
            (a0 & LOW4) | (t & TOP2) << 4,
            (a1 & LOW4) | ((t >> 2) & TOP2) << 4,
            ((a0 >> 4) & LOW4) | ((t >> 4) & TOP2) << 4,
            ((a1 >> 4) & LOW4) | ((t >> 6) & TOP2) << 4,
        ];
        // WORKAROUND: as in `load16`.
        #[allow(unsafe_code)]
        unsafe {
            let lo = vcreate_u8(w[0] as u64 | (w[1] as u64) << 32);
            let hi = vcreate_u8(w[2] as u64 | (w[3] as u64) << 32);
            let v = vsubq_u8(vcombine_u8(lo, hi), vdupq_n_u8(32));
            widen16_signed(vreinterpretq_s8_u8(v))
        }
    }
    #[inline(always)]
    fn pair32(b: &[u8; 110], j: usize) -> (int8x16_t, int8x16_t) {
        // Weights 128h + 32s + l: bit pair s of qs[32h + l], high bit j of hmask[l]
        // (j = 4h + s); q = q2 − 4 + 4·hb.
        let (h, s) = (j / 4, j % 4);
        let lo = field(load16(b, 32 + 32 * h), 2 * s, 3);
        let hi = field(load16(b, 48 + 32 * h), 2 * s, 3);
        let hb_lo = bit_value(load16(b, 0), j, 4);
        let hb_hi = bit_value(load16(b, 16), j, 4);
        (quants(lo, hb_lo, 4), quants(hi, hb_hi, 4))
    }
}

pub(crate) struct Q4K;
impl Decode<144> for Q4K {
    const PER32: bool = true;
    const MINS: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 144]) -> f32 {
        f16(u16_at(b, 0))
    }
    #[inline(always)]
    fn scales(b: &[u8; 144]) -> [int32x4_t; 4] {
        k_scales_mins(b, 4).0
    }
    #[inline(always)]
    fn mins(b: &[u8; 144]) -> (f32, [int32x4_t; 4]) {
        (f16(u16_at(b, 2)), k_scales_mins(b, 4).1)
    }
    #[inline(always)]
    fn pair32(b: &[u8; 144], j: usize) -> (int8x16_t, int8x16_t) {
        // Byte chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high ones.
        let at = 16 + 32 * (j / 2);
        let shift = 4 * (j % 2);
        let lo = field(load16(b, at), shift, 15);
        let hi = field(load16(b, at + 16), shift, 15);
        // WORKAROUND: as in `load16`.
        #[allow(unsafe_code)]
        unsafe {
            (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
        }
    }
}

pub(crate) struct Q5K;
impl Decode<176> for Q5K {
    const PER32: bool = true;
    const MINS: bool = true;
    #[inline(always)]
    fn d(b: &[u8; 176]) -> f32 {
        f16(u16_at(b, 0))
    }
    #[inline(always)]
    fn scales(b: &[u8; 176]) -> [int32x4_t; 4] {
        k_scales_mins(b, 4).0
    }
    #[inline(always)]
    fn mins(b: &[u8; 176]) -> (f32, [int32x4_t; 4]) {
        (f16(u16_at(b, 2)), k_scales_mins(b, 4).1)
    }
    #[inline(always)]
    fn pair32(b: &[u8; 176], j: usize) -> (int8x16_t, int8x16_t) {
        // As Q4_K; weight l of sub-block j takes bit j of qh[l] as its fifth bit.
        let at = 48 + 32 * (j / 2);
        let shift = 4 * (j % 2);
        let lo = field(load16(b, at), shift, 15);
        let hi = field(load16(b, at + 16), shift, 15);
        let hb_lo = bit_value(load16(b, 16), j, 16);
        let hb_hi = bit_value(load16(b, 32), j, 16);
        (quants(lo, hb_lo, 0), quants(hi, hb_hi, 0))
    }
}

pub(crate) struct Q6K;
impl Decode<210> for Q6K {
    const PER32: bool = false;
    #[inline(always)]
    fn d(b: &[u8; 210]) -> f32 {
        f16(u16_at(b, 208))
    }
    #[inline(always)]
    fn scales(b: &[u8; 210]) -> [int32x4_t; 4] {
        // WORKAROUND: as in `load16`.
        #[allow(unsafe_code)]
        unsafe {
            widen16_signed(vreinterpretq_s8_u8(load16(b, 192)))
        }
    }
    #[inline(always)]
    fn pair32(b: &[u8; 210], j: usize) -> (int8x16_t, int8x16_t) {
        // Weights 128h + 32s + l (j = 4h + s): nibble s / 2 of ql[64h + 32·(s % 2) + l],
        // bits 2s.. of qh[32h + l]; q = that − 32.
        let (h, s) = (j / 4, j % 4);
        let at = 64 * h + 32 * (s % 2);
        let lo = field(load16(b, at), 4 * (s / 2), 15);
        let hi = field(load16(b, at + 16), 4 * (s / 2), 15);
        let hb_lo = field(load16(b, 128 + 32 * h), 2 * s, 3);
        let hb_hi = field(load16(b, 144 + 32 * h), 2 * s, 3);
        // WORKAROUND: as in `load16`.
        #[allow(unsafe_code)]
        let (hb_lo, hb_hi) = unsafe { (vshlq_n_u8::<4>(hb_lo), vshlq_n_u8::<4>(hb_hi)) };
        (quants(lo, hb_lo, 32), quants(hi, hb_hi, 32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_i8 as di8;
    use crate::neon_sb::check::same_as_decode_i8;
    use crate::GgmlType;

    #[test]
    fn decoders_equal_the_portable_ones() {
        same_as_decode_i8::<84, Q2K>(GgmlType::Q2_K, di8::q2_k);
        same_as_decode_i8::<110, Q3K>(GgmlType::Q3_K, di8::q3_k);
        same_as_decode_i8::<144, Q4K>(GgmlType::Q4_K, di8::q4_k);
        same_as_decode_i8::<176, Q5K>(GgmlType::Q5_K, di8::q5_k);
        same_as_decode_i8::<210, Q6K>(GgmlType::Q6_K, di8::q6_k);
    }
}
