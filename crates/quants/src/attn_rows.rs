//! Decode attention over an f16 KV cache read in place: a query's dot with many cached key
//! rows, and the probability-weighted sum of many value rows, each row `width` values of a
//! cache laid out with `stride` values per row. AVX-512 (F16C conversions sixteen at a time,
//! the query or the output kept in registers) where present, one value at a time elsewhere.
//!
//! Rows are passed as one slice starting at the first row's first value; it must hold
//! `(rows − 1)·stride + width` values.

use crate::dequant::f16_to_f32;

/// `out[t] = q · row_t` for `out.len()` rows of `q.len()` f16 values (raw bits).
pub fn dots_f16(q: &[f32], rows: &[u16], stride: usize, out: &mut [f32]) {
    check(q.len(), rows.len(), stride, out.len());
    #[cfg(target_arch = "x86_64")]
    if q.len().is_multiple_of(16) && crate::simd512::available() {
        // WORKAROUND: `available()` checked the features the function is built for.
        #[allow(unsafe_code)]
        unsafe {
            x86::dots(q, rows, stride, out)
        };
        return;
    }
    for (t, o) in out.iter_mut().enumerate() {
        let row = &rows[t * stride..][..q.len()];
        *o = q.iter().zip(row).map(|(a, &b)| a * f16_to_f32(b)).sum();
    }
}

/// `acc += Σ_t p[t] · row_t` for `p.len()` rows of `acc.len()` f16 values (raw bits).
pub fn axpys_f16(p: &[f32], rows: &[u16], stride: usize, acc: &mut [f32]) {
    check(acc.len(), rows.len(), stride, p.len());
    #[cfg(target_arch = "x86_64")]
    if acc.len().is_multiple_of(16) && crate::simd512::available() {
        // WORKAROUND: as in `dots_f16`.
        #[allow(unsafe_code)]
        unsafe {
            x86::axpys(p, rows, stride, acc)
        };
        return;
    }
    for (t, &pt) in p.iter().enumerate() {
        let row = &rows[t * stride..][..acc.len()];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += pt * f16_to_f32(v);
        }
    }
}

fn check(width: usize, have: usize, stride: usize, rows: usize) {
    assert!(
        rows == 0 || have >= (rows - 1) * stride + width,
        "{rows} rows of {width} at stride {stride} need more than {have} values"
    );
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::simd_mem::{load256, load512};
    use std::arch::x86_64::*;

    /// Sixteen f16 values at `v[..16]` as f32.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn half16(v: &[u16]) -> __m512 {
        _mm512_cvtph_ps(load256(&v[..16].as_chunks::<16>().0[0]))
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) fn dots(q: &[f32], rows: &[u16], stride: usize, out: &mut [f32]) {
        let (qs, _) = q.as_chunks::<16>();
        for (t, o) in out.iter_mut().enumerate() {
            let row = &rows[t * stride..][..q.len()];
            let mut acc = _mm512_setzero_ps();
            for (k, qk) in qs.iter().enumerate() {
                let qv = _mm512_castsi512_ps(load512(qk));
                acc = _mm512_fmadd_ps(qv, half16(&row[16 * k..]), acc);
            }
            *o = _mm512_reduce_add_ps(acc);
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) fn axpys(p: &[f32], rows: &[u16], stride: usize, acc: &mut [f32]) {
        let width = acc.len();
        for (k, a) in acc.as_chunks_mut::<16>().0.iter_mut().enumerate() {
            let mut sum = _mm512_castsi512_ps(load512(a));
            for (t, &pt) in p.iter().enumerate() {
                let row = &rows[t * stride..][..width];
                sum = _mm512_fmadd_ps(_mm512_set1_ps(pt), half16(&row[16 * k..]), sum);
            }
            crate::simd_mem::store512(a, _mm512_castps_si512(sum));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite f16 bits of magnitude 2⁻⁵…2³, either sign, from a small LCG.
    fn half_bits(n: usize, seed: u64) -> Vec<u16> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (s >> 33) as u16;
                (r & 0x83FF) | ((10 + (r >> 10) % 8) << 10)
            })
            .collect()
    }

    /// Both kernels equal the f64 sums of the same f16 values, at widths 16–128 and strides
    /// past the width (other heads' values between rows left out).
    #[test]
    fn dots_and_weighted_sums_over_strided_f16_rows() {
        for (width, stride, rows) in [(64, 384, 7), (16, 16, 3), (128, 130, 5), (48, 96, 1)] {
            let q = crate::synth::random_vector(width, 3);
            let bits = half_bits((rows - 1) * stride + width, 4);
            let bits = &bits;
            let row = |t: usize| (0..width).map(move |i| f16_to_f32(bits[t * stride + i]) as f64);
            let mut out = vec![0f32; rows];
            dots_f16(&q, bits, stride, &mut out);
            for (t, &got) in out.iter().enumerate() {
                let want: f64 = row(t).zip(&q).map(|(a, &b)| a * b as f64).sum();
                assert!((got as f64 - want).abs() < 1e-4, "{width}/{stride} row {t}");
            }
            let p: Vec<f32> = (0..rows).map(|t| 0.1 + t as f32 * 0.2).collect();
            let mut acc = vec![1f32; width];
            axpys_f16(&p, bits, stride, &mut acc);
            for (i, &got) in acc.iter().enumerate() {
                let want: f64 = 1.0
                    + (0..rows)
                        .map(|t| p[t] as f64 * f16_to_f32(bits[t * stride + i]) as f64)
                        .sum::<f64>();
                assert!(
                    (got as f64 - want).abs() < 1e-4,
                    "{width}/{stride} value {i}"
                );
            }
        }
    }
}
