//! Unit tests of the int8 block decoders against the f32 dequantizers.

use super::*;
use crate::dequant::dequantize_block;
use crate::synth::random_blocks;

/// The value range of `q` for each type.
fn q_range(ty: GgmlType) -> (i8, i8) {
    match ty {
        GgmlType::Q4_0 => (-8, 7),
        GgmlType::Q4_1 | GgmlType::Q4_K => (0, 15),
        GgmlType::Q5_0 => (-16, 15),
        GgmlType::Q5_1 | GgmlType::Q5_K => (0, 31),
        GgmlType::Q8_0 => (i8::MIN, i8::MAX),
        GgmlType::IQ4_NL | GgmlType::IQ4_XS => (-127, 113),
        GgmlType::Q2_K => (0, 3),
        GgmlType::Q3_K => (-4, 3),
        GgmlType::Q6_K => (-32, 31),
        GgmlType::IQ2_XXS | GgmlType::IQ2_XS | GgmlType::IQ2_S => (-43, 43),
        GgmlType::IQ3_XXS => (-62, 62),
        GgmlType::IQ3_S => (-15, 15),
        GgmlType::IQ1_S | GgmlType::IQ1_M => (-9, 9),
        _ => unreachable!("{ty} has no int8 form"),
    }
}

#[test]
fn int8_form_reproduces_dequant_bit_for_bit() {
    let types: Vec<GgmlType> = GgmlType::SUPPORTED
        .into_iter()
        .filter(|&t| supports(t))
        .collect();
    assert_eq!(types.len(), 19);
    for ty in types {
        let (n, bb) = (ty.block_elems(), ty.block_bytes());
        let blocks = random_blocks(ty, 64, 0xd1ce);
        let (lo, hi) = q_range(ty);
        for block in blocks.chunks_exact(bb) {
            let mut want = vec![0f32; n];
            dequantize_block(ty, block, &mut want).unwrap();
            let (mut q, mut s) = (vec![0i8; n], vec![0f32; n / 16]);
            let mut bias = vec![f32::NAN; n / 8];
            let written = decode_block(ty, block, &mut q, &mut s, &mut bias).unwrap();
            assert_eq!(written, has_bias(ty), "{ty}");
            for v in 0..n {
                assert!((lo..=hi).contains(&q[v]), "{ty} weight {v}: q = {}", q[v]);
                let mut got = s[v / 16] * q[v] as f32;
                if written {
                    got += bias[v / 8];
                } else {
                    assert!(bias[v / 8].is_nan(), "{ty}: bias written");
                }
                // Without a bias, `s·q` may be −0.0 where the reference has +0.0 or back.
                let same = got.to_bits() == want[v].to_bits() || (got == 0.0 && want[v] == 0.0);
                assert!(same, "{ty} weight {v}: {got} vs {}", want[v]);
            }
        }
    }
}

#[test]
fn supports_exactly_the_quantized_types() {
    for ty in GgmlType::ALL {
        let float = matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
        assert_eq!(supports(ty), ty.is_supported() && !float, "{ty}");
        assert!(!has_bias(ty) || supports(ty), "{ty}");
    }
}

#[test]
fn signed_groups_negate_exactly_the_flagged_bytes() {
    let mags = u64::from_le_bytes([1, 8, 25, 43, 62, 127, 4, 15]);
    for signs in 0..=255u8 {
        let got = signed_group(mags, signs);
        for (k, &m) in mags.to_le_bytes().iter().enumerate() {
            let want = if signs >> k & 1 != 0 {
                -(m as i8)
            } else {
                m as i8
            };
            assert_eq!(got[k], want, "signs {signs:#010b}, byte {k}");
        }
    }
}

#[test]
fn checked_entry_point_rejects_bad_shapes() {
    let (mut q, mut s, mut bias) = ([0i8; 256], [0f32; 16], [0f32; 32]);
    assert!(matches!(
        decode_block(
            GgmlType::F16,
            &[0; 2],
            &mut q[..1],
            &mut s[..0],
            &mut bias[..0]
        ),
        Err(QuantError::Unsupported(GgmlType::F16))
    ));
    assert!(matches!(
        decode_block(GgmlType::Q4_K, &[0; 143], &mut q, &mut s, &mut bias),
        Err(QuantError::BlockShape { .. })
    ));
    assert!(matches!(
        decode_block(
            GgmlType::Q8_0,
            &[0; 34],
            &mut q[..32],
            &mut s,
            &mut bias[..4]
        ),
        Err(QuantError::Shape {
            what: "scales",
            expected: 2,
            actual: 16
        })
    ));
    assert_eq!(
        decode_block(GgmlType::Q4_K, &[0; 144], &mut q, &mut s, &mut bias),
        Ok(true)
    );
}
