//! Unaligned vector loads and stores of whole arrays for the SIMD kernels: the one place their
//! `unsafe` lives. Each takes an array whose size is exactly the vector's (checked at compile
//! time), so a load reads, and a store writes, exactly the bytes of the referenced array. Also
//! the blocks' f16 scale read (`f16c_at`) that the AVX2 and AVX-512 kernels share.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::mem::size_of;

/// Any 16-byte array as one vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn load128<T: Copy, const N: usize>(v: &[T; N]) -> __m128i {
    const { assert!(size_of::<[T; N]>() == 16) };
    // WORKAROUND: an unaligned load has no safe intrinsic; the size check above makes it read
    // exactly the referenced array.
    #[allow(unsafe_code)]
    unsafe {
        _mm_loadu_si128(v.as_ptr().cast())
    }
}

/// Any 32-byte array as one vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn load256<T: Copy, const N: usize>(v: &[T; N]) -> __m256i {
    const { assert!(size_of::<[T; N]>() == 32) };
    // WORKAROUND: as in `load128`.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_loadu_si256(v.as_ptr().cast())
    }
}

/// Any 64-byte array as one vector.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load512<T: Copy, const N: usize>(v: &[T; N]) -> __m512i {
    const { assert!(size_of::<[T; N]>() == 64) };
    // WORKAROUND: as in `load128`.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_si512(v.as_ptr().cast())
    }
}

/// One vector into any 16-byte array.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn store128<T: Copy, const N: usize>(o: &mut [T; N], v: __m128i) {
    const { assert!(size_of::<[T; N]>() == 16) };
    // WORKAROUND: as in `store256`.
    #[allow(unsafe_code)]
    unsafe {
        _mm_storeu_si128(o.as_mut_ptr().cast(), v)
    }
}

/// One vector into any 32-byte array.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn store256<T: Copy, const N: usize>(o: &mut [T; N], v: __m256i) {
    const { assert!(size_of::<[T; N]>() == 32) };
    // WORKAROUND: an unaligned store has no safe intrinsic; the size check makes it write
    // exactly the referenced array (T is a plain number type at every call site).
    #[allow(unsafe_code)]
    unsafe {
        _mm256_storeu_si256(o.as_mut_ptr().cast(), v)
    }
}

/// One vector into any 64-byte array.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn store512<T: Copy, const N: usize>(o: &mut [T; N], v: __m512i) {
    const { assert!(size_of::<[T; N]>() == 64) };
    // WORKAROUND: as in `store256`.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_storeu_si512(o.as_mut_ptr().cast(), v)
    }
}

/// The first `N` bytes of a slice as an array (the caller's chunk is at least that long).
#[inline(always)]
pub(crate) fn bytes<const N: usize>(c: &[u8]) -> &[u8; N] {
    c[..N].try_into().expect("chunk length")
}

/// Σ w·x over a float row's elements `from..` (F32, F16 or BF16 `ty`): the tail of a row
/// whose length is not a multiple of the vector kernels' step.
pub(crate) fn float_tail(ty: crate::GgmlType, row: &[u8], x: &[f32], from: usize) -> f32 {
    let width = if ty == crate::GgmlType::F32 { 4 } else { 2 };
    let weight = |k: usize| -> f32 {
        let o = width * k;
        match ty {
            crate::GgmlType::F32 => {
                f32::from_le_bytes([row[o], row[o + 1], row[o + 2], row[o + 3]])
            }
            crate::GgmlType::F16 => {
                crate::dequant::f16_to_f32(u16::from_le_bytes([row[o], row[o + 1]]))
            }
            _ => crate::dequant::bf16_to_f32(u16::from_le_bytes([row[o], row[o + 1]])),
        }
    };
    x[from..]
        .iter()
        .enumerate()
        .map(|(k, xv)| weight(from + k) * xv)
        .sum()
}

/// The f16 at byte `at` of a block as f32, by F16C (the software conversion's exponent
/// branches were a visible share of the fast kernels' per-block work).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16c_at<const B: usize>(b: &[u8; B], at: usize) -> f32 {
    let h = u16::from_le_bytes([b[at], b[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}
