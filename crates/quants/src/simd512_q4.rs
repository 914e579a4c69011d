//! AVX-512 row kernels for the 4-bit legacy types Q4_0 and Q4_1 (the bulk of small dense
//! models such as the default SmolLM2 Q4_1) against the per-16 int8 activation grid, for any
//! row length that is a multiple of 32 (SmolLM2's 576-wide rows are not a multiple of 256).
//!
//! A block's low nibbles are its first 16 weights, its high nibbles the last 16; the offset —
//! Q4_1's `m`, Q4_0's `−8·d` — meets the activation's exact per-32 sums (`Q8Act::sum32`, made
//! once per activation).

#![cfg(target_arch = "x86_64")]

use crate::q8::Q8Act;
use crate::simd_mem::{load128, load256, load512};
use std::arch::x86_64::*;

/// Q4_0 rows (18-byte blocks: `d`, 16 nibble bytes; weight `d·(q − 8)`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_q4_0_d16(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_q4::<18, 2, false>(w, row_bytes, a, y);
}

/// Q4_1 rows (20-byte blocks: `d`, `m`, 16 nibble bytes; weight `d·q + m`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_q4_1_d16(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_q4::<20, 4, true>(w, row_bytes, a, y);
}

/// Blocks of `B` bytes whose 16 nibble bytes start at `Q`; `M`: the block stores its offset
/// `m` after `d` (Q4_1), else the offset is `−8·d` (Q4_0).
///
/// Per 16 blocks, their `d` (and `m`) are gathered and converted by F16C in one instruction
/// each, and the offsets meet the activation's per-32 sums in one FMA. Per block, 256 bits:
/// the 16 nibble bytes become the 32 quants in element order (`[low nibbles | high nibbles]`,
/// one in-lane insert), one `vpdpbusd` against the int8 activations, and one FMA with
/// `d` × the activation's per-lane scales (`Q8Act::d16x4`, loaded). A first version built
/// 64-weight pairs with cross-lane shuffles and converted the scales with per-element inserts:
/// bound by the shuffle port at ~3 weights per cycle.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
fn rows_q4<const B: usize, const Q: usize, const M: bool>(
    w: &[u8],
    row_bytes: usize,
    a: &Q8Act,
    y: &mut [f32],
) {
    let nib = _mm256_set1_epi8(15);
    let (xq, _) = a.q.as_chunks::<32>();
    let (xd, _) = a.d16x4.as_chunks::<8>();
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<B>();
        let mut acc = _mm256_setzero_ps();
        let mut off = _mm512_setzero_ps();
        for (c, chunk) in blocks.chunks(16).enumerate() {
            let mut dh = [0u16; 16];
            let mut mh = [0u16; 16];
            for (k, b) in chunk.iter().enumerate() {
                dh[k] = u16::from_le_bytes([b[0], b[1]]);
                if M {
                    mh[k] = u16::from_le_bytes([b[2], b[3]]);
                }
            }
            let d = _mm512_cvtph_ps(load256(&dh));
            let mut sums = [0f32; 16];
            let have = &a.sum32[16 * c..(16 * c + chunk.len()).min(a.sum32.len())];
            sums[..have.len()].copy_from_slice(have);
            let m = match M {
                true => _mm512_cvtph_ps(load256(&mh)),
                false => _mm512_mul_ps(d, _mm512_set1_ps(-8.0)),
            };
            off = _mm512_fmadd_ps(m, load512f(&sums), off);
            let mut ds = [0f32; 16];
            store512f(&mut ds, d);
            for (k, b) in chunk.iter().enumerate() {
                let j = 16 * c + k;
                let v = load128(&b[Q..Q + 16].as_chunks::<16>().0[0]);
                let wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(v), v), nib);
                let p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, load256(&xq[j]));
                let sc = _mm256_mul_ps(_mm256_set1_ps(ds[k]), load256f(&xd[j]));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, acc);
            }
        }
        let lo = _mm256_castps256_ps128(acc);
        let hi = _mm256_extractf128_ps::<1>(acc);
        let q = _mm_add_ps(lo, hi);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_movehdup_ps(q));
        *out = _mm_cvtss_f32(q) + _mm512_reduce_add_ps(off);
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load256f(v: &[f32; 8]) -> __m256 {
    _mm256_castsi256_ps(load256(v))
}

#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
fn load512f(v: &[f32; 16]) -> __m512 {
    _mm512_castsi512_ps(load512(v))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store512f(to: &mut [f32; 16], v: __m512) {
    // WORKAROUND: an unaligned store has no safe intrinsic; it writes exactly `to`.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_storeu_ps(to.as_mut_ptr(), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};
    use crate::GgmlType;

    /// Both kernels against the f64 dot of the dequantized row with the int8 activations they
    /// see (`q·d16`), the offsets against the exact sums: only f32 rounding may differ. Block
    /// counts on both sides of the 16-block gather, several rows.
    #[test]
    fn q4_rows_match_the_dequantized_dot_up_to_rounding() {
        if !crate::simd512::available() {
            return;
        }
        type Rows = unsafe fn(&[u8], usize, &Q8Act, &mut [f32]);
        let kernels: [(GgmlType, Rows); 2] = [
            (GgmlType::Q4_0, rows_q4_0_d16),
            (GgmlType::Q4_1, rows_q4_1_d16),
        ];
        for (ty, rows_fn) in kernels {
            for (seed, blocks) in [(1u64, 1usize), (2, 2), (3, 17), (4, 18), (5, 33)] {
                let (rows, cols) = (3, 32 * blocks);
                let w = random_blocks(ty, rows * blocks, seed);
                let x = random_vector(cols, seed + 40);
                let a = Q8Act::new(&x);
                let rb = ty.row_bytes(cols).unwrap();
                let mut y = vec![0f32; rows];
                // WORKAROUND: the features were detected by `available()` above.
                #[allow(unsafe_code)]
                unsafe {
                    rows_fn(&w, rb, &a, &mut y)
                };
                for (r, got) in y.iter().enumerate() {
                    let wv = crate::dequantize_to_vec(ty, &w[r * rb..(r + 1) * rb], cols).unwrap();
                    // `w = d·q + offset`: the d·q part meets the int8 activations, the offset
                    // the exact ones — the dequantized weight against `q·d16` differs from
                    // that only by offset·(x − q·d16), added back exactly.
                    let (mut want, mut scale) = (0f64, 0f64);
                    for (i, &wi) in wv.iter().enumerate() {
                        let xq = a.q[i] as f64 * a.d16[i / 16] as f64;
                        want += wi as f64 * xq;
                        scale += (wi as f64 * xq).abs();
                    }
                    let mut fix = 0f64;
                    for (b, blk) in w[r * rb..(r + 1) * rb]
                        .chunks_exact(rb / blocks)
                        .enumerate()
                    {
                        let d = crate::dequant::f16_at::<2>(&[blk[0], blk[1]], 0) as f64;
                        let off = match ty {
                            GgmlType::Q4_1 => {
                                crate::dequant::f16_at::<2>(&[blk[2], blk[3]], 0) as f64
                            }
                            _ => -8.0 * d,
                        };
                        for (i, &xi) in x.iter().enumerate().skip(32 * b).take(32) {
                            let xq = a.q[i] as f64 * a.d16[i / 16] as f64;
                            fix += off * (xi as f64 - xq);
                            scale += (off * xi as f64).abs();
                        }
                    }
                    let want = want + fix;
                    assert!(
                        (*got as f64 - want).abs() <= 1e-5 * scale,
                        "{ty} {blocks} blocks row {r}: got {got} want {want}"
                    );
                }
            }
        }
    }
}
