//! Tests of the AVX2 row kernels (`simd_lowbit.rs`).

use super::*;

/// The computed IQ2_XS sign bytes are the `KSIGNS_IQ2XS` table's, for every 7-bit index.
#[test]
fn iq2xs_sign_bytes_match_the_table() {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return;
    }
    for start in (0..128u16).step_by(16) {
        // Codes with every sign index and arbitrary grid bits below them.
        let codes: [u16; 16] =
            std::array::from_fn(|k| (start + k as u16) << 9 | (k as u16 * 37) & 511);
        // WORKAROUND: AVX2 and FMA were detected above.
        #[allow(unsafe_code)]
        let got = unsafe { iq2xs_sign_bytes(load256(&codes)) };
        let mut lanes = [0u16; 16];
        // WORKAROUND: as above.
        #[allow(unsafe_code)]
        unsafe {
            crate::simd_mem::store256(&mut lanes, got)
        };
        for (k, v) in lanes.iter().enumerate() {
            let want = crate::tables::KSIGNS_IQ2XS[start as usize + k] as u16;
            assert_eq!(*v, want, "sign index {}", start as usize + k);
        }
    }
}
/// IQ3_XXS's computed sign bytes are the `KSIGNS_IQ2XS` table's for every 7-bit index in
/// every field of a sub-block's word, in the documented layout, and its scales are `2s + 1`.
#[test]
fn iq3xxs_signs_and_scales_match_the_table() {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return;
    }
    for field in 0..4 {
        for start in (0..128u32).step_by(8) {
            // Sub-block k: index start + k in `field`, other fields and the scale varied.
            let words: [u32; 8] = std::array::from_fn(|k| {
                let other = (k as u32 * 37 + start) & 127;
                let fields = (0..4).fold(0, |w, l| {
                    let v = if l == field {
                        start + k as u32
                    } else {
                        (other + l) & 127
                    };
                    w | v << (7 * l)
                });
                fields | ((k as u32 + start / 8) & 15) << 28
            });
            let bytes: [u8; 32] = std::array::from_fn(|i| words[i / 4].to_le_bytes()[i % 4]);
            // WORKAROUND: AVX2 and FMA were detected above.
            #[allow(unsafe_code)]
            let (signs, scales) = unsafe { iq3xxs_signs_scales(load256(&bytes)) };
            let (mut sb, mut sc) = ([0u8; 32], [0i16; 16]);
            // WORKAROUND: as above.
            #[allow(unsafe_code)]
            unsafe {
                crate::simd_mem::store256(&mut sb, signs);
                crate::simd_mem::store256(&mut sc, scales);
            }
            for (k, w) in words.iter().enumerate() {
                for l in 0..4 {
                    let want = crate::tables::KSIGNS_IQ2XS[(w >> (7 * l) & 127) as usize];
                    let at = 16 * (l / 2) + 2 * k + l % 2;
                    assert_eq!(sb[at], want, "sub-block {k} field {l} word {w:#x}");
                }
                let s = (2 * (w >> 28) + 1) as i16;
                assert_eq!((sc[k], sc[8 + k]), (s, s), "sub-block {k} scale");
            }
        }
    }
}

use crate::synth::{random_blocks, random_vector};
use crate::GgmlType;

/// Each kernel against the f64 dot of the dequantized row with the int8 activations it
/// actually sees (`q256·d256`): only f32 rounding may differ.
#[test]
fn row_kernels_match_the_dequantized_dot_exactly_up_to_rounding() {
    if !(is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c"))
    {
        return;
    }
    type Kernel = fn(&[u8], &Q8Act) -> f32;
    let kernels: [(GgmlType, Kernel); 12] = [
        (GgmlType::IQ2_XXS, |r, a| {
            unsafe_call(crate::simd::dot_iq2xxs, r, a)
        }),
        (GgmlType::Q6_K, |r, a| unsafe_call(dot_q6k, r, a)),
        (GgmlType::Q2_K, |r, a| unsafe_call(dot_q2k, r, a)),
        (GgmlType::Q3_K, |r, a| unsafe_call(dot_q3k, r, a)),
        (GgmlType::Q4_K, |r, a| unsafe_call(dot_q4k, r, a)),
        (GgmlType::Q5_K, |r, a| unsafe_call(dot_q5k, r, a)),
        (GgmlType::IQ1_S, |r, a| unsafe_call(dot_iq1s, r, a)),
        (GgmlType::IQ1_M, |r, a| unsafe_call(dot_iq1m, r, a)),
        (GgmlType::IQ2_S, |r, a| unsafe_call(dot_iq2s, r, a)),
        (GgmlType::IQ3_XXS, |r, a| unsafe_call(dot_iq3xxs, r, a)),
        (GgmlType::IQ3_S, |r, a| unsafe_call(dot_iq3s, r, a)),
        (GgmlType::IQ2_XS, |r, a| unsafe_call(dot_iq2xs, r, a)),
    ];
    for (ty, kernel) in kernels {
        for (seed, cols) in [(1u64, 256usize), (2, 768), (3, 4096)] {
            let row = random_blocks(ty, cols / 256, seed);
            let x = random_vector(cols, seed + 10);
            let a = Q8Act::new(&x);
            let (want, scale) = crate::synth::q256_reference_dot(ty, &row, &a);
            let got = kernel(&row, &a) as f64;
            assert!(
                (got - want).abs() <= 1e-5 * scale,
                "{ty} {cols}: got {got} want {want} (Σ|w·x| {scale})"
            );
        }
    }
}

/// Calls an AVX2 kernel (the caller checked the CPU).
fn unsafe_call(k: unsafe fn(&[u8], &Q8Act) -> f32, r: &[u8], a: &Q8Act) -> f32 {
    // WORKAROUND: AVX2 and FMA were detected at the top of the test.
    #[allow(unsafe_code)]
    unsafe {
        k(r, a)
    }
}
