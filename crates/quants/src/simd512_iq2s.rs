//! The AVX-512 IQ2_S mat-vec rows, two super-blocks at a time with the activations in the
//! grid's order.
//!
//! A block has 32 grid indices (10 bits: 1024 entries of eight weights from {8, 25, 43}), and
//! a code-plane lookup (`Iq2sRegs::codes`: eight `vpermi2b` a plane, two µops each on the
//! shuffle port) fills 64 lanes — so one lookup serves two blocks, half the shuffle work of
//! decoding them one by one (`decode_iq2s`, which the prefill GEMM keeps). The planes hold
//! each group's weights 0–3 (low) and 4–7 (high), two bits a weight; instead of moving them
//! into weight order (a `vpermt2b`, a `vpmultishiftqb` and a `vpermb` per 64 weights), each
//! weight position `v` of all 64 groups comes out by one `vpermb` of a 64-entry code → value
//! table, and the activations are taken in that order: `Q8Act::q256_by8` holds, per two
//! blocks, value `v` of every 8-value group in run `v` (built once per activation vector).
//! The sign bytes are bit-per-weight in the same layout (`vptestmb` per run), and `maddubs`
//! pairs lanes 2m and 2m + 1 — the two groups of 16-weight scale group m — so one vector of
//! 32 scales (both blocks') serves all eight runs in `vpdpwssd`.

#![cfg(target_arch = "x86_64")]

use crate::q8::Q8Act;
use crate::simd512::{dpwssd, iq2s_high_bits, load32_pair, load512, Iq2sRegs, IQ2XXS_VALUES};
use crate::simd_mem::f16c_at;
use std::arch::x86_64::*;

/// IQ2_S block bytes: `d`, the 32 index bytes, the 32 sign bytes, `qh`, the scales.
const QS: usize = 2;
const SIGNS: usize = 34;
const QH: usize = 66;
const SCALES: usize = 74;

/// IQ2_S rows · per-256 int8 activation (see the module docs), into `y`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,bmi2,f16c")]
pub(crate) fn rows_iq2s(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = Iq2sRegs::load();
    // Code byte (weights at bits 0–1, 2–3, 4–5) → the value of weight 0, 1 or 2; weight 3's
    // bits reach table 2's place by a 16-bit shift by 2 (`vpermb` reads 6 index bits only).
    let value: [__m512i; 3] = std::array::from_fn(|k| {
        let t: [u8; 64] = std::array::from_fn(|e| IQ2XXS_VALUES[(e >> (2 * k)) & 3]);
        load512(&t)
    });
    let (xp, _) = a.q256_by8().as_chunks::<512>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<82>();
        let mut acc = _mm512_setzero_ps();
        for (t, x) in xp.iter().enumerate() {
            let b0 = &blocks[2 * t];
            // An odd last block pairs with itself and a zero factor (its activations: zeros).
            let (b1, f1) = match blocks.get(2 * t + 1) {
                Some(b1) => (b1, f16c_at(b1, 0) * 0.125 * a.d256[2 * t + 1]),
                None => (b0, 0.0),
            };
            let f0 = f16c_at(b0, 0) * 0.125 * a.d256[2 * t];
            let sums = pair_dot(&r, &value, b0, b1, x);
            let f = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(f0), _mm512_set1_ps(f1));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), f, acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// Two blocks against their 512 activations in `q256_by8` order: the i32 sums of scale-group
/// pairs, the first block's in lanes 0..8, the second's in 8..16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,bmi2")]
fn pair_dot(
    r: &Iq2sRegs,
    value: &[__m512i; 3],
    b0: &[u8; 82],
    b1: &[u8; 82],
    x: &[i8; 512],
) -> __m512i {
    fn part(b: &[u8; 82], at: usize) -> &[u8; 32] {
        b[at..at + 32].try_into().expect("32 bytes")
    }
    let q = load32_pair(part(b0, QS), part(b1, QS));
    let high = |b: &[u8; 82]| iq2s_high_bits(b[QH..QH + 8].try_into().expect("8 qh bytes"));
    let ((l8, l9), (h8, h9)) = (high(b0), high(b1));
    let (lo, hi) = r.codes(q, l8 | h8 << 32, l9 | h9 << 32);
    let signs = load32_pair(part(b0, SIGNS), part(b1, SIGNS));
    let sc = scales32(
        b0[SCALES..SCALES + 8].try_into().expect("8 scale bytes"),
        b1[SCALES..SCALES + 8].try_into().expect("8 scale bytes"),
    );
    let (xs, _) = x.as_chunks::<64>();
    let zero = _mm512_setzero_si512();
    let mut s = [zero; 2];
    for (v, xv) in xs.iter().enumerate() {
        let plane = if v < 4 { lo } else { hi };
        let grid = match v % 4 {
            3 => _mm512_permutexvar_epi8(_mm512_srli_epi16::<2>(plane), value[2]),
            k => _mm512_permutexvar_epi8(plane, value[k]),
        };
        let neg = _mm512_test_epi8_mask(signs, _mm512_set1_epi8((1u8 << v) as i8));
        let xv = load512(xv);
        let signed = _mm512_mask_sub_epi8(xv, neg, zero, xv);
        let p = _mm512_maddubs_epi16(grid, signed);
        s[v % 2] = dpwssd(s[v % 2], p, sc);
    }
    _mm512_add_epi32(s[0], s[1])
}

/// The two blocks' 4-bit scales (8 bytes each, low nibble first, one per 16 weights) as
/// `2·s + 1` in i16 lanes 0..16 (first block) and 16..32 (second).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn scales32(s0: &[u8; 8], s1: &[u8; 8]) -> __m512i {
    let v = _mm_set_epi64x(
        u64::from_le_bytes(*s1) as i64,
        u64::from_le_bytes(*s0) as i64,
    );
    let nib = _mm_set1_epi8(15);
    let (lo, hi) = (
        _mm_and_si128(v, nib),
        _mm_and_si128(_mm_srli_epi16::<4>(v), nib),
    );
    let natural = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    _mm512_or_si512(
        _mm512_slli_epi16::<1>(_mm512_cvtepu8_epi16(natural)),
        _mm512_set1_epi16(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};
    use crate::GgmlType;

    /// `q256_by8` is per quantized vector: a `Q8Act` quantized again gives the rows of the new
    /// vector (odd and even block counts), exactly as a fresh one does.
    #[test]
    fn a_requantized_activation_gets_its_own_order() {
        if !crate::simd512::available() {
            return;
        }
        for cols in [1280usize, 1536] {
            let rows = 3;
            let w = random_blocks(GgmlType::IQ2_S, rows * cols / 256, 5);
            let run = |a: &Q8Act| {
                let mut y = vec![0f32; rows];
                // WORKAROUND: the features were detected by `available()` above.
                #[allow(unsafe_code)]
                unsafe {
                    rows_iq2s(&w, w.len() / rows, a, &mut y)
                };
                y
            };
            let (x1, x2) = (random_vector(cols, 1), random_vector(cols, 2));
            let mut a = Q8Act::new(&x1);
            let first = run(&a);
            a.quantize(&x2);
            assert_eq!(run(&a), run(&Q8Act::new(&x2)), "{cols} columns");
            assert_ne!(run(&a), first, "{cols} columns");
        }
    }
}
