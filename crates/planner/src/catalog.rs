//! The GLM-5.x quants Unsloth publishes (`unsloth/GLM-5.1-GGUF`, `unsloth/GLM-5.2-GGUF`,
//! `unsloth/GLM-5.3-GGUF`), smallest first, with what is known of each: size, shard count, how the
//! size is known, and quality where measured. Sizes are 10^9-byte GB. Exact sizes come from the
//! files' headers (`localglm fit URL`, the picker's "exact plan"); these figures are for the picker
//! before anything is fetched.

use localglm_gguf::glm_dsa;
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

/// GLM-5.1 quants (GLM-5.1 has GLM-5.2's tensor shapes, spec §A.2). Unsloth's GLM-5.1 page
/// gives 1-bit 200 GB, 2-bit 220 GB, UD-IQ2_M 236 GB and 8-bit 805 GB (memory); the rest are
/// GLM-5.2's sizes for the same label, kept in order.
pub const GLM51_QUANTS: &[CatalogQuant] = &[
    q("UD-IQ1_S", 1, 200, Documented, None, 206, None),
    q("UD-IQ1_M", 1, 210, Estimated, None, 216, None),
    q("UD-IQ2_XXS", 2, 220, Documented, None, 226, None),
    q("UD-IQ2_M", 2, 236, Documented, None, 242, None),
    q("UD-Q2_K_XL", 2, 245, Estimated, None, 251, None),
    q("UD-IQ3_XXS", 3, 290, Estimated, None, 296, None),
    q("UD-IQ3_S", 3, 325, Estimated, None, 331, None),
    q("UD-Q3_K_M", 3, 355, Estimated, None, 360, None),
    q("UD-IQ4_XS", 4, 365, Estimated, None, 372, None),
    q("UD-IQ4_NL", 4, 373, Estimated, None, 380, None),
    q("UD-Q4_K_S", 4, 410, Estimated, None, 420, None),
    q("UD-Q4_K_M", 4, 465, Estimated, None, 475, None),
    q("UD-Q5_K_M", 5, 560, Estimated, None, 570, None),
    q("UD-Q6_K", 6, 619, Estimated, None, 630, None),
    q("Q8_0", 8, 801, Estimated, None, 805, None),
    q("BF16", 16, 1508, Estimated, None, 1520, None),
];

/// One GLM-5.x release in the picker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// `GLM-5.1`, `GLM-5.2`, `GLM-5.3`.
    pub name: &'static str,
    /// Its Hugging Face repository.
    pub repo: &'static str,
    pub quants: &'static [CatalogQuant],
    /// Training context (`context_length`): 202,752 for GLM-5.1, 1 M for GLM-5.2 and 5.3. It
    /// also decides the indexer layout, as for a file without `indexer.types`.
    pub context: u64,
    /// Sizes taken from another release's files (same architecture and tensor shapes): every
    /// figure is then an estimate until the headers are read.
    pub sizes_from: Option<&'static str>,
}

/// The releases the picker offers, oldest first.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "GLM-5.1",
        repo: "unsloth/GLM-5.1-GGUF",
        quants: GLM51_QUANTS,
        context: glm_dsa::DEFAULT_CTX,
        sizes_from: None,
    },
    Family {
        name: "GLM-5.2",
        repo: "unsloth/GLM-5.2-GGUF",
        quants: GLM52_QUANTS,
        context: glm_dsa::GLM52_CTX,
        sizes_from: None,
    },
    // GLM-5.3: GLM-5.2's architecture and size (753 B, 1 M context, rope 8e6); no sizes of its
    // own are documented.
    Family {
        name: "GLM-5.3",
        repo: "unsloth/GLM-5.3-GGUF",
        quants: GLM52_QUANTS,
        context: glm_dsa::GLM52_CTX,
        sizes_from: Some("GLM-5.2"),
    },
];

/// The family the picker opens with.
pub const DEFAULT_FAMILY: &str = "GLM-5.2";

/// A family by name (`None`: the default).
pub fn family(name: Option<&str>) -> Option<&'static Family> {
    let name = name.unwrap_or(DEFAULT_FAMILY);
    FAMILIES.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

impl Family {
    /// The family of a model file (by name, else by training context).
    pub fn of(name: &str, context: u64) -> &'static Family {
        let name = glm_dsa::family(Some(name), context);
        family(Some(name)).expect("glm_dsa::family names a catalog family")
    }

    /// A quant as the picker shows it: a size borrowed from another release is an estimate.
    pub fn quant(&self, label: &str) -> Option<CatalogQuant> {
        let q = *self.quants.iter().find(|q| q.label == label)?;
        Some(match self.sizes_from {
            Some(_) => CatalogQuant {
                size_confidence: Estimated,
                shards: None,
                quality: None,
                ..q
            },
            None => q,
        })
    }

    /// Its quants, smallest first.
    pub fn rows(&self) -> impl Iterator<Item = CatalogQuant> + '_ {
        self.quants.iter().filter_map(|q| self.quant(q.label))
    }
}

/// An estimated spec of a catalog quant, for planning before its headers are fetched: the
/// GLM-5.x shape (75 MoE layers, MLA + indexer KV) with the family's context and indexer layout,
/// the routed experts taking what the quant's size leaves after the non-expert weights (19.7 GB
/// at ≤ 8 bits as in the Unsloth files, 37.2 GB at BF16) and the 1.0 GB embedding table.
pub fn estimated_spec(f: &Family, q: &CatalogQuant) -> crate::ModelSpec {
    use crate::{Kind, KvSpec, ModelSpec, TensorSpec};
    let embd = 1_011_056_640;
    let other: u64 = if q.bits >= 16 {
        37_200_000_000
    } else {
        19_670_455_296
    };
    let experts = q.size_bytes.saturating_sub(other + embd);
    let per_layer = experts / 75;
    let full_indexer_layers = glm_dsa::indexer_types(None, 78, f.context)
        .expect("the fallback layout is valid")
        .iter()
        .filter(|&&full| full)
        .count() as u64;
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
        name: format!("{}-{}", f.name, q.label),
        architecture: "glm-dsa".into(),
        tensors,
        kv: KvSpec {
            attn: 78 * 576,
            indexer: full_indexer_layers * 128,
            // The MTP block's latent cache and indexer keys (its weights are in the size).
            mtp: 576 + 128,
        },
        context_max: f.context,
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
        for f in FAMILIES {
            let rows: Vec<CatalogQuant> = f.rows().collect();
            assert_eq!(rows.len(), f.quants.len(), "{}", f.name);
            for w in rows.windows(2) {
                assert!(w[0].size_bytes <= w[1].size_bytes, "{w:?}");
            }
            for q in &rows {
                assert!(q.memory_guidance >= q.size_bytes, "{q:?}");
            }
        }
    }

    #[test]
    fn families_differ_where_the_releases_do() {
        let (f51, f52, f53) = (
            &FAMILIES[0],
            family(None).unwrap(),
            family(Some("glm-5.3")).unwrap(),
        );
        assert_eq!(f52.name, "GLM-5.2");
        let spec = |f: &Family| estimated_spec(f, &f.quant("UD-IQ2_M").unwrap());
        // GLM-5.1: 202,752 tokens and an indexer in all 78 layers; GLM-5.2/5.3: 1 M, 21 of 78.
        assert_eq!(
            (spec(f51).context_max, spec(f51).kv.indexer),
            (202_752, 78 * 128)
        );
        assert_eq!(
            (spec(f52).context_max, spec(f52).kv.indexer),
            (1_048_576, 21 * 128)
        );
        assert_eq!(spec(f53).kv, spec(f52).kv);
        assert_eq!(spec(f51).name, "GLM-5.1-UD-IQ2_M");
        // GLM-5.3 borrows GLM-5.2's sizes, so none is more than an estimate.
        assert!(f53
            .rows()
            .all(|q| q.size_confidence == Estimated && q.quality.is_none()));
        assert_eq!(f52.quant("UD-IQ4_NL").unwrap().size_confidence, Measured);
        assert_eq!(
            Family::of("GLM-5.1-UD-IQ2_M-00001-of-00006", 202_752).name,
            "GLM-5.1"
        );
        assert_eq!(Family::of("tiny", 1_048_576).name, "GLM-5.2");
        assert!(family(Some("GLM-4.7")).is_none());
    }
}
