//! The GLM-5.2 quants Unsloth publishes (`unsloth/GLM-5.2-GGUF`), smallest first, with what is
//! known of each: size, shard count, how the size is known, and quality where measured.
//! Sizes are 10^9-byte GB. Exact sizes come from the files' headers (`localglm fit URL`); these
//! figures are for the picker before anything is fetched.

use serde::Serialize;

/// How a catalog figure is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Measured on the real files.
    Measured,
    /// Stated in Unsloth's documentation.
    Documented,
    /// Estimated from the type mix or the docs' memory ranges.
    Estimated,
}

/// One quant of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CatalogQuant {
    /// Folder / file label in the repository.
    pub label: &'static str,
    /// Nominal bits per weight class (1, 2, 3, 4, 5, 6, 8, 16).
    pub bits: u8,
    pub size_bytes: u64,
    pub size_confidence: Confidence,
    /// Number of shards, where known.
    pub shards: Option<u32>,
    /// Unsloth's memory guidance (RAM + VRAM), bytes.
    pub memory_guidance: u64,
    /// Top-1 token agreement with BF16, where published, with its source.
    pub quality: Option<&'static str>,
}

const GB: u64 = 1_000_000_000;

const fn q(
    label: &'static str,
    bits: u8,
    size_gb: u64,
    size_confidence: Confidence,
    shards: Option<u32>,
    guidance_gb: u64,
    quality: Option<&'static str>,
) -> CatalogQuant {
    CatalogQuant {
        label,
        bits,
        size_bytes: size_gb * GB,
        size_confidence,
        shards,
        memory_guidance: guidance_gb * GB,
        quality,
    }
}

use Confidence::*;

/// GLM-5.2 quants, smallest first (see `shared/docs/glm52-spec.md` §F for sources).
pub const GLM52_QUANTS: &[CatalogQuant] = &[
    q(
        "UD-IQ1_S",
        1,
        217,
        Documented,
        None,
        223,
        Some("≈ 76 % top-1 agreement with BF16 (Unsloth)"),
    ),
    q("UD-IQ1_M", 1, 222, Estimated, None, 228, None),
    q("UD-IQ2_XXS", 2, 230, Estimated, None, 236, None),
    q(
        "UD-IQ2_M",
        2,
        239,
        Documented,
        None,
        245,
        Some("≈ 82 % top-1 agreement with BF16 for 2-bit (Unsloth)"),
    ),
    q("UD-Q2_K_XL", 2, 245, Estimated, None, 251, None),
    q("UD-IQ3_XXS", 3, 290, Estimated, None, 296, None),
    q("UD-IQ3_S", 3, 325, Estimated, None, 331, None),
    q("UD-Q3_K_M", 3, 355, Estimated, None, 360, None),
    q("UD-IQ4_XS", 4, 365, Estimated, None, 372, None),
    q("UD-IQ4_NL", 4, 373, Measured, Some(9), 380, None),
    q("UD-Q4_K_S", 4, 410, Estimated, None, 420, None),
    q("UD-Q4_K_M", 4, 465, Estimated, None, 475, None),
    q("UD-Q5_K_M", 5, 560, Estimated, None, 570, None),
    q("UD-Q6_K", 6, 619, Estimated, None, 630, None),
    q("Q8_0", 8, 801, Estimated, None, 810, None),
    q("BF16", 16, 1508, Estimated, Some(33), 1520, None),
];

/// The Hugging Face repository of the catalog.
pub const GLM52_REPO: &str = "unsloth/GLM-5.2-GGUF";

/// An estimated spec of a catalog quant, for planning before its headers are fetched: GLM-5.2's
/// shape (75 MoE layers, MLA + indexer KV, 1 M context) with the routed experts taking what the
/// quant's size leaves after the non-expert weights (19.7 GB at ≤ 8 bits as in the Unsloth
/// files, 37.2 GB at BF16) and the 1.0 GB embedding table.
pub fn estimated_spec(q: &CatalogQuant) -> crate::ModelSpec {
    use crate::{Kind, KvSpec, ModelSpec, TensorSpec};
    let embd = 1_011_056_640;
    let other: u64 = if q.bits >= 16 {
        37_200_000_000
    } else {
        19_670_455_296
    };
    let experts = q.size_bytes.saturating_sub(other + embd);
    let per_layer = experts / 75;
    let mut tensors = vec![
        TensorSpec {
            name: "token_embd.weight".into(),
            bytes: embd,
            layer: None,
            kind: Kind::TokenEmbd,
        },
        TensorSpec {
            name: "non-expert weights".into(),
            bytes: other,
            layer: None,
            kind: Kind::Other,
        },
    ];
    for l in 3..78u32 {
        tensors.push(TensorSpec {
            name: format!("blk.{l}.ffn_*_exps"),
            bytes: per_layer,
            layer: Some(l),
            kind: Kind::Expert,
        });
    }
    ModelSpec {
        name: format!("GLM-5.2-{}", q.label),
        architecture: "glm-dsa".into(),
        tensors,
        kv: KvSpec {
            attn: 78 * 576,
            indexer: 21 * 128,
            // The MTP block's latent cache and indexer keys (its weights are in the size).
            mtp: 576 + 128,
        },
        context_max: 1_048_576,
        n_embd: 6144,
        vocab: 154_880,
        moe_layers: (3..78).collect(),
        mtp: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_first_and_guidance_above_size() {
        for w in GLM52_QUANTS.windows(2) {
            assert!(w[0].size_bytes <= w[1].size_bytes, "{w:?}");
        }
        for q in GLM52_QUANTS {
            assert!(q.memory_guidance >= q.size_bytes, "{q:?}");
        }
    }
}
