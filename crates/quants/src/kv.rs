//! The element type of the KV and indexer-key caches: one type for the fit planner (how many
//! bytes a context costs) and the runtime (what it stores).
//!
//! Invariant: [`KvType::bytes`] is exactly what the runtime allocates per cache row: 4 / 2 / 2
//! bytes per value for f32 / f16 / bf16, and 34-byte q8_0 blocks per 32 values (llama.cpp's
//! `-ctk q8_0`), a row padded to whole blocks.

/// Element type of the KV and indexer-key caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvType {
    F32,
    #[default]
    F16,
    BF16,
    /// Blocks of 32 values with one f16 scale (34 bytes per 32): about half of f16.
    Q8_0,
}

impl KvType {
    /// `f16`, `bf16`, `f32` or `q8_0` (`q8` too), any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "bf16" => Some(Self::BF16),
            "q8_0" | "q8" => Some(Self::Q8_0),
            _ => None,
        }
    }

    /// The name `parse` reads (and llama.cpp's `-ctk` takes).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::Q8_0 => "q8_0",
        }
    }

    /// Bytes of one row of `elems` values (q8_0: padded to whole 32-value blocks).
    pub fn bytes(self, elems: u64) -> u64 {
        match self {
            Self::F32 => elems * 4,
            Self::F16 | Self::BF16 => elems * 2,
            Self::Q8_0 => elems.div_ceil(32) * 34,
        }
    }
}

impl std::str::FromStr for KvType {
    type Err = crate::QuantError;

    fn from_str(s: &str) -> Result<Self, crate::QuantError> {
        Self::parse(s).ok_or_else(|| crate::QuantError::UnknownKvType(s.to_string()))
    }
}

impl std::fmt::Display for KvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for KvType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::KvType;

    #[test]
    fn names_parse_back_and_sizes_match_the_cache() {
        for kv in [KvType::F32, KvType::F16, KvType::BF16, KvType::Q8_0] {
            assert_eq!(KvType::parse(kv.name()), Some(kv));
        }
        assert_eq!(KvType::parse("Q8"), Some(KvType::Q8_0));
        assert_eq!(KvType::Q8_0.bytes(576), 18 * 34);
        assert_eq!(KvType::Q8_0.bytes(33), 2 * 34);
        assert_eq!(KvType::BF16.bytes(3), 6);
        assert!("q4".parse::<KvType>().is_err());
    }
}
