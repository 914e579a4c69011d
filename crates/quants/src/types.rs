//! The GGML tensor type table: ids, block geometry and names.
//!
//! Invariant: every variant's numeric discriminant is its ggml type id as written in GGUF tensor
//! infos, and `block_elems`/`block_bytes` are the sizes ggml itself uses for that id (the C
//! struct sizes; for `Q8_1` that is 36 bytes, not the 40 that gguf-py lists).

use crate::QuantError;

/// A GGML tensor element type, with its ggml type id as discriminant.
///
/// Variant names follow ggml's own spelling (`Q4_K`, `IQ2_XXS`, ...) so they read the same as the
/// GGUF specification, llama.cpp and quant labels. Only the types for which
/// [`GgmlType::is_supported`] is true can be dequantized; the others are known so that a file
/// containing them gets a precise error instead of "unknown type id".
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum GgmlType {
    /// IEEE binary32.
    F32 = 0,
    /// IEEE binary16.
    F16 = 1,
    /// 32 weights: f16 scale, 4-bit quants, offset −8.
    Q4_0 = 2,
    /// 32 weights: f16 scale and min, 4-bit quants.
    Q4_1 = 3,
    /// 32 weights: f16 scale, 5-bit quants, offset −16.
    Q5_0 = 6,
    /// 32 weights: f16 scale and min, 5-bit quants.
    Q5_1 = 7,
    /// 32 weights: f16 scale, signed 8-bit quants.
    Q8_0 = 8,
    /// 32 weights: f16 scale and sum, 8-bit quants (activations only).
    Q8_1 = 9,
    /// 256-weight super-block, 2-bit quants with 4-bit scales and mins.
    Q2_K = 10,
    /// 256-weight super-block, 3-bit quants with 6-bit signed scales.
    Q3_K = 11,
    /// 256-weight super-block, 4-bit quants with 6-bit scales and mins.
    Q4_K = 12,
    /// 256-weight super-block, 5-bit quants with 6-bit scales and mins.
    Q5_K = 13,
    /// 256-weight super-block, 6-bit quants with 8-bit scales.
    Q6_K = 14,
    /// 256-weight super-block, f32 scale and 8-bit quants (activations only).
    Q8_K = 15,
    /// 2.0625 bpw lattice quant (`iq2xxs_grid`).
    IQ2_XXS = 16,
    /// 2.3125 bpw lattice quant (`iq2xs_grid`).
    IQ2_XS = 17,
    /// 3.0625 bpw lattice quant (`iq3xxs_grid`).
    IQ3_XXS = 18,
    /// 1.5625 bpw ternary-codebook quant (`iq1s_grid`).
    IQ1_S = 19,
    /// 32 weights: f16 scale, 4-bit indices into the non-linear `kvalues_iq4nl`.
    IQ4_NL = 20,
    /// 3.4375 bpw lattice quant (`iq3s_grid`).
    IQ3_S = 21,
    /// 2.5625 bpw lattice quant (`iq2s_grid`).
    IQ2_S = 22,
    /// 256-weight super-block of `IQ4_NL`-style quants with 6-bit sub-block scales.
    IQ4_XS = 23,
    /// Signed 8-bit integer.
    I8 = 24,
    /// Signed 16-bit integer.
    I16 = 25,
    /// Signed 32-bit integer.
    I32 = 26,
    /// Signed 64-bit integer.
    I64 = 27,
    /// IEEE binary64.
    F64 = 28,
    /// 1.75 bpw ternary-codebook quant (`iq1s_grid`); super-scale split over four nibbles.
    IQ1_M = 29,
    /// bfloat16.
    BF16 = 30,
    /// Ternary, base-3 packed.
    TQ1_0 = 34,
    /// Ternary, 2-bit packed.
    TQ2_0 = 35,
    /// OCP microscaling FP4 (e2m1 values, e8m0 shared scale).
    MXFP4 = 39,
}

impl GgmlType {
    /// Every type this crate knows, in id order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// The 22 types that [`crate::dequantize_row`] decodes: every type a GLM GGUF may hold.
    pub const SUPPORTED: [GgmlType; 22] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ1_S,
        GgmlType::IQ1_M,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ2_S,
        GgmlType::IQ3_XXS,
        GgmlType::IQ3_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
    ];

    /// The type with ggml id `id`, or `None` for ids that are unassigned or removed
    /// (31–33 and 36–38 were repacked layouts that no longer exist in files).
    pub const fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            16 => GgmlType::IQ2_XXS,
            17 => GgmlType::IQ2_XS,
            18 => GgmlType::IQ3_XXS,
            19 => GgmlType::IQ1_S,
            20 => GgmlType::IQ4_NL,
            21 => GgmlType::IQ3_S,
            22 => GgmlType::IQ2_S,
            23 => GgmlType::IQ4_XS,
            24 => GgmlType::I8,
            25 => GgmlType::I16,
            26 => GgmlType::I32,
            27 => GgmlType::I64,
            28 => GgmlType::F64,
            29 => GgmlType::IQ1_M,
            30 => GgmlType::BF16,
            34 => GgmlType::TQ1_0,
            35 => GgmlType::TQ2_0,
            39 => GgmlType::MXFP4,
            _ => return None,
        })
    }

    /// The ggml type id, as stored in GGUF tensor infos.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The ggml name of the type (`"F32"`, `"Q4_K"`, `"IQ2_XXS"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::Q8_K => "Q8_K",
            GgmlType::IQ2_XXS => "IQ2_XXS",
            GgmlType::IQ2_XS => "IQ2_XS",
            GgmlType::IQ3_XXS => "IQ3_XXS",
            GgmlType::IQ1_S => "IQ1_S",
            GgmlType::IQ4_NL => "IQ4_NL",
            GgmlType::IQ3_S => "IQ3_S",
            GgmlType::IQ2_S => "IQ2_S",
            GgmlType::IQ4_XS => "IQ4_XS",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
            GgmlType::IQ1_M => "IQ1_M",
            GgmlType::BF16 => "BF16",
            GgmlType::TQ1_0 => "TQ1_0",
            GgmlType::TQ2_0 => "TQ2_0",
            GgmlType::MXFP4 => "MXFP4",
        }
    }

    /// The type whose [`name`](Self::name) is `name` (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Number of weights one block covers (1 for plain scalar types).
    pub const fn block_elems(self) -> usize {
        match self {
            GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64
            | GgmlType::F64 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1
            | GgmlType::IQ4_NL
            | GgmlType::MXFP4 => 32,
            GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::Q8_K
            | GgmlType::IQ2_XXS
            | GgmlType::IQ2_XS
            | GgmlType::IQ3_XXS
            | GgmlType::IQ1_S
            | GgmlType::IQ3_S
            | GgmlType::IQ2_S
            | GgmlType::IQ4_XS
            | GgmlType::IQ1_M
            | GgmlType::TQ1_0
            | GgmlType::TQ2_0 => 256,
        }
    }

    /// Bytes one block occupies in a file.
    pub const fn block_bytes(self) -> usize {
        match self {
            GgmlType::I8 => 1,
            GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => 2,
            GgmlType::F32 | GgmlType::I32 => 4,
            GgmlType::I64 | GgmlType::F64 => 8,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q8_1 => 36,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
            GgmlType::Q8_K => 292,
            GgmlType::IQ2_XXS => 66,
            GgmlType::IQ2_XS => 74,
            GgmlType::IQ3_XXS => 98,
            GgmlType::IQ1_S => 50,
            GgmlType::IQ4_NL => 18,
            GgmlType::IQ3_S => 110,
            GgmlType::IQ2_S => 82,
            GgmlType::IQ4_XS => 136,
            GgmlType::IQ1_M => 56,
            GgmlType::TQ1_0 => 54,
            GgmlType::TQ2_0 => 66,
            GgmlType::MXFP4 => 17,
        }
    }

    /// Storage cost per weight: `8 · block_bytes / block_elems`.
    pub fn bits_per_weight(self) -> f64 {
        (self.block_bytes() * 8) as f64 / self.block_elems() as f64
    }

    /// Whether [`crate::dequantize_row`] and [`crate::dequantize_block`] decode this type.
    pub const fn is_supported(self) -> bool {
        !matches!(
            self,
            GgmlType::Q8_1
                | GgmlType::Q8_K
                | GgmlType::I8
                | GgmlType::I16
                | GgmlType::I32
                | GgmlType::I64
                | GgmlType::F64
                | GgmlType::TQ1_0
                | GgmlType::TQ2_0
                | GgmlType::MXFP4
        )
    }

    /// Bytes needed to store `n_elems` consecutive weights of this type (one row, or any run of
    /// whole blocks).
    ///
    /// # Errors
    /// [`QuantError::NotBlockMultiple`] if `n_elems` is not a multiple of
    /// [`block_elems`](Self::block_elems); [`QuantError::SizeOverflow`] if the byte count does not
    /// fit in `usize`.
    pub fn row_bytes(self, n_elems: usize) -> Result<usize, QuantError> {
        let block_elems = self.block_elems();
        if !n_elems.is_multiple_of(block_elems) {
            return Err(QuantError::NotBlockMultiple {
                ty: self,
                n_elems,
                block_elems,
            });
        }
        (n_elems / block_elems)
            .checked_mul(self.block_bytes())
            .ok_or(QuantError::SizeOverflow { ty: self, n_elems })
    }
}

impl TryFrom<u32> for GgmlType {
    type Error = QuantError;

    fn try_from(id: u32) -> Result<Self, QuantError> {
        GgmlType::from_id(id).ok_or(QuantError::UnknownTypeId(id))
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::GgmlType;
    use crate::QuantError;

    #[test]
    fn ids_round_trip_and_holes_are_unknown() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 40, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
            assert!(matches!(GgmlType::try_from(id), Err(QuantError::UnknownTypeId(i)) if i == id));
        }
    }

    #[test]
    fn table_matches_spec() {
        // (type, id, block elems, block bytes, bits per weight) from spec §E.1.
        let rows: [(GgmlType, u32, usize, usize, f64); 32] = [
            (GgmlType::F32, 0, 1, 4, 32.0),
            (GgmlType::F16, 1, 1, 2, 16.0),
            (GgmlType::Q4_0, 2, 32, 18, 4.5),
            (GgmlType::Q4_1, 3, 32, 20, 5.0),
            (GgmlType::Q5_0, 6, 32, 22, 5.5),
            (GgmlType::Q5_1, 7, 32, 24, 6.0),
            (GgmlType::Q8_0, 8, 32, 34, 8.5),
            (GgmlType::Q8_1, 9, 32, 36, 9.0),
            (GgmlType::Q2_K, 10, 256, 84, 2.625),
            (GgmlType::Q3_K, 11, 256, 110, 3.4375),
            (GgmlType::Q4_K, 12, 256, 144, 4.5),
            (GgmlType::Q5_K, 13, 256, 176, 5.5),
            (GgmlType::Q6_K, 14, 256, 210, 6.5625),
            (GgmlType::Q8_K, 15, 256, 292, 9.125),
            (GgmlType::IQ2_XXS, 16, 256, 66, 2.0625),
            (GgmlType::IQ2_XS, 17, 256, 74, 2.3125),
            (GgmlType::IQ3_XXS, 18, 256, 98, 3.0625),
            (GgmlType::IQ1_S, 19, 256, 50, 1.5625),
            (GgmlType::IQ4_NL, 20, 32, 18, 4.5),
            (GgmlType::IQ3_S, 21, 256, 110, 3.4375),
            (GgmlType::IQ2_S, 22, 256, 82, 2.5625),
            (GgmlType::IQ4_XS, 23, 256, 136, 4.25),
            (GgmlType::I8, 24, 1, 1, 8.0),
            (GgmlType::I16, 25, 1, 2, 16.0),
            (GgmlType::I32, 26, 1, 4, 32.0),
            (GgmlType::I64, 27, 1, 8, 64.0),
            (GgmlType::F64, 28, 1, 8, 64.0),
            (GgmlType::IQ1_M, 29, 256, 56, 1.75),
            (GgmlType::BF16, 30, 1, 2, 16.0),
            (GgmlType::TQ1_0, 34, 256, 54, 1.6875),
            (GgmlType::TQ2_0, 35, 256, 66, 2.0625),
            (GgmlType::MXFP4, 39, 32, 17, 4.25),
        ];
        for (t, id, elems, bytes, bpw) in rows {
            assert_eq!(t.id(), id, "{t}");
            assert_eq!(t.block_elems(), elems, "{t}");
            assert_eq!(t.block_bytes(), bytes, "{t}");
            assert_eq!(t.bits_per_weight(), bpw, "{t}");
        }
        assert_eq!(
            GgmlType::ALL.iter().filter(|t| t.is_supported()).count(),
            22
        );
        for t in GgmlType::SUPPORTED {
            assert!(t.is_supported(), "{t}");
        }
    }

    #[test]
    fn row_bytes_checks_blocks_and_overflow() {
        assert_eq!(GgmlType::Q4_K.row_bytes(6144).unwrap(), 24 * 144);
        assert_eq!(GgmlType::F32.row_bytes(3).unwrap(), 12);
        assert_eq!(GgmlType::Q8_0.row_bytes(0).unwrap(), 0);
        assert!(matches!(
            GgmlType::Q4_K.row_bytes(192),
            Err(QuantError::NotBlockMultiple {
                block_elems: 256,
                n_elems: 192,
                ..
            })
        ));
        assert!(matches!(
            GgmlType::F64.row_bytes(usize::MAX),
            Err(QuantError::SizeOverflow { .. })
        ));
        assert!(matches!(
            GgmlType::Q8_0.row_bytes(usize::MAX / 32 * 32),
            Err(QuantError::SizeOverflow { .. })
        ));
    }
}
