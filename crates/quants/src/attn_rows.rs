//! Decode attention over an f16 KV cache read in place, for the `G` query heads that share
//! one KV head: their dots with many cached key rows, and their probability-weighted sums of
//! many value rows, each row `width` values of a cache laid out with `stride` values per row.
//! Each row is loaded and converted once for all `G` heads. AVX-512 (F16C conversions sixteen
//! at a time, the `G` heads' accumulators in registers) where present, `width` is a multiple
//! of 16 and `G` ≤ 8; one value at a time elsewhere.
//!
//! Rows are passed as one slice starting at the first row's first value; it must hold
//! `(rows − 1)·stride + width` values.

use crate::dequant::f16_to_f32;

/// Most query heads per KV head the vector path takes.
const MAX_HEADS: usize = 8;

/// For each of the `G = q.len() / width` queries (row-major) and each of the `n` rows:
/// `out[j·n + t] = q_j · row_t`, where `n = out.len() / G`.
pub fn dots_f16(q: &[f32], width: usize, rows: &[u16], stride: usize, out: &mut [f32]) {
    let heads = q.len() / width;
    let n = out.len() / heads;
    check(width, rows.len(), stride, n);
    #[cfg(target_arch = "x86_64")]
    if vector(width, heads) {
        // WORKAROUND: `available()` (in `vector`) checked the features the function needs.
        #[allow(unsafe_code)]
        unsafe {
            x86::dots(q, width, rows, stride, out)
        };
        return;
    }
    for (j, qj) in q.chunks_exact(width).enumerate() {
        for (t, o) in out[j * n..(j + 1) * n].iter_mut().enumerate() {
            let row = &rows[t * stride..][..width];
            *o = qj.iter().zip(row).map(|(a, &b)| a * f16_to_f32(b)).sum();
        }
    }
}

/// For each of the `G = acc.len() / width` heads: `acc_j += Σ_t p[j·n + t] · row_t` over the
/// `n = p.len() / G` rows.
pub fn axpys_f16(p: &[f32], rows: &[u16], stride: usize, width: usize, acc: &mut [f32]) {
    let heads = acc.len() / width;
    let n = p.len() / heads;
    check(width, rows.len(), stride, n);
    #[cfg(target_arch = "x86_64")]
    if vector(width, heads) {
        // WORKAROUND: as in `dots_f16`.
        #[allow(unsafe_code)]
        unsafe {
            x86::axpys(p, rows, stride, width, acc)
        };
        return;
    }
    for (j, accj) in acc.chunks_exact_mut(width).enumerate() {
        for (t, &pt) in p[j * n..(j + 1) * n].iter().enumerate() {
            let row = &rows[t * stride..][..width];
            for (a, &v) in accj.iter_mut().zip(row) {
                *a += pt * f16_to_f32(v);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn vector(width: usize, heads: usize) -> bool {
    width.is_multiple_of(16) && (1..=MAX_HEADS).contains(&heads) && crate::simd512::available()
}

fn check(width: usize, have: usize, stride: usize, rows: usize) {
    assert!(
        rows == 0 || have >= (rows - 1) * stride + width,
        "{rows} rows of {width} at stride {stride} need more than {have} values"
    );
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::simd_mem::{load256, load512, store512};
    use std::arch::x86_64::*;

    /// Sixteen f16 values at `v[..16]` as f32.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn half16(v: &[u16]) -> __m512 {
        _mm512_cvtph_ps(load256(&v[..16].as_chunks::<16>().0[0]))
    }

    /// Runs `$f::<G>` for the runtime head count (the accumulators of `G` heads then live in
    /// registers; a runtime-sized array of them would live in memory).
    macro_rules! by_heads {
        ($heads:expr, $f:ident($($arg:expr),*)) => {
            match $heads {
                1 => $f::<1>($($arg),*),
                2 => $f::<2>($($arg),*),
                3 => $f::<3>($($arg),*),
                4 => $f::<4>($($arg),*),
                5 => $f::<5>($($arg),*),
                6 => $f::<6>($($arg),*),
                7 => $f::<7>($($arg),*),
                _ => $f::<8>($($arg),*),
            }
        };
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) fn dots(q: &[f32], width: usize, rows: &[u16], stride: usize, out: &mut [f32]) {
        by_heads!(q.len() / width, dots_g(q, width, rows, stride, out))
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn dots_g<const G: usize>(
        q: &[f32],
        width: usize,
        rows: &[u16],
        stride: usize,
        out: &mut [f32],
    ) {
        let chunks = width / 16;
        let n = out.len() / G;
        let (qs, _) = q.as_chunks::<16>();
        for t in 0..n {
            let row = &rows[t * stride..][..width];
            let mut acc = [_mm512_setzero_ps(); G];
            for c in 0..chunks {
                let k = half16(&row[16 * c..]);
                for (j, a) in acc.iter_mut().enumerate() {
                    let qv = _mm512_castsi512_ps(load512(&qs[j * chunks + c]));
                    *a = _mm512_fmadd_ps(qv, k, *a);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                out[j * n + t] = _mm512_reduce_add_ps(*a);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) fn axpys(p: &[f32], rows: &[u16], stride: usize, width: usize, acc: &mut [f32]) {
        by_heads!(acc.len() / width, axpys_g(p, rows, stride, width, acc))
    }

    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn axpys_g<const G: usize>(
        p: &[f32],
        rows: &[u16],
        stride: usize,
        width: usize,
        acc: &mut [f32],
    ) {
        let chunks = width / 16;
        let n = p.len() / G;
        let (accs, _) = acc.as_chunks_mut::<16>();
        for c in 0..chunks {
            let mut sums: [__m512; G] =
                std::array::from_fn(|j| _mm512_castsi512_ps(load512(&accs[j * chunks + c])));
            for t in 0..n {
                let v = half16(&rows[t * stride + 16 * c..]);
                for (j, s) in sums.iter_mut().enumerate() {
                    *s = _mm512_fmadd_ps(_mm512_set1_ps(p[j * n + t]), v, *s);
                }
            }
            for (j, s) in sums.iter().enumerate() {
                store512(&mut accs[j * chunks + c], _mm512_castps_si512(*s));
            }
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

    /// Both kernels equal the f64 sums of the same f16 values, at widths 16–128, strides past
    /// the width (other heads' values between rows left out) and 1–8 heads per KV head.
    #[test]
    fn dots_and_weighted_sums_over_strided_f16_rows() {
        let cases = [
            (64, 384, 7, 3),
            (16, 16, 3, 1),
            (128, 130, 5, 2),
            (48, 96, 1, 3),
            (32, 64, 4, 8),
        ];
        for (width, stride, rows, heads) in cases {
            let q = crate::synth::random_vector(width * heads, 3);
            let bits = half_bits((rows - 1) * stride + width, 4);
            let value = |t: usize, i: usize| f16_to_f32(bits[t * stride + i]) as f64;
            let mut out = vec![0f32; rows * heads];
            dots_f16(&q, width, &bits, stride, &mut out);
            for (k, &got) in out.iter().enumerate() {
                let (j, t) = (k / rows, k % rows);
                let want: f64 = (0..width)
                    .map(|i| value(t, i) * q[j * width + i] as f64)
                    .sum();
                assert!(
                    (got as f64 - want).abs() < 1e-4,
                    "{width}/{stride} head {j} row {t}"
                );
            }
            let p: Vec<f32> = (0..rows * heads).map(|k| 0.1 + k as f32 * 0.2).collect();
            let mut acc = vec![1f32; width * heads];
            axpys_f16(&p, &bits, stride, width, &mut acc);
            for (k, &got) in acc.iter().enumerate() {
                let (j, i) = (k / width, k % width);
                let sum: f64 = (0..rows)
                    .map(|t| p[j * rows + t] as f64 * value(t, i))
                    .sum();
                assert!(
                    (got as f64 - 1.0 - sum).abs() < 1e-4,
                    "{width}/{stride} value {k}"
                );
            }
        }
    }
}
