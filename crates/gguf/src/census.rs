//! Type census of a model: bytes per GGML type and per tensor class.
//!
//! Invariant: every tensor is counted exactly once, in one type row and one class.

use crate::TensorInfo;
use localglm_quants::GgmlType;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a tensor is, for memory planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorClass {
    /// Routed MoE experts (`*_exps`): the bulk of a MoE model, offloadable to CPU.
    RoutedExperts,
    /// Token embedding and output head.
    EmbeddingsAndHead,
    /// Norm weights, biases and other 1-D tensors.
    Norms,
    /// Every other weight (attention, shared experts, dense FFN, router).
    OtherWeights,
}

impl TensorClass {
    pub fn of(t: &TensorInfo) -> Self {
        let n = &t.name;
        if n.contains("_exps") {
            Self::RoutedExperts
        } else if n.starts_with("token_embd") || n.starts_with("output.") {
            Self::EmbeddingsAndHead
        } else if t.dims.len() == 1 || n.contains("norm") || n.ends_with(".bias") {
            Self::Norms
        } else {
            Self::OtherWeights
        }
    }
}

/// Bytes and elements of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TypeBytes {
    pub tensors: u64,
    pub elements: u64,
    pub bytes: u64,
}

impl TypeBytes {
    fn add(&mut self, t: &TensorInfo) {
        self.tensors += 1;
        self.elements += t.n_elems;
        self.bytes += t.size_bytes;
    }

    /// Average bits per weight of the group.
    pub fn bits_per_weight(&self) -> f64 {
        if self.elements == 0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / self.elements as f64
        }
    }
}

/// The census of a set of tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Census {
    /// Keyed by GGML type name.
    pub by_type: BTreeMap<String, TypeBytes>,
    pub by_class: BTreeMap<TensorClass, TypeBytes>,
    pub total: TypeBytes,
}

impl Census {
    pub fn of(tensors: &[TensorInfo]) -> Self {
        let mut c = Census::default();
        for t in tensors {
            c.by_type.entry(t.ty.name().to_string()).or_default().add(t);
            c.by_class.entry(TensorClass::of(t)).or_default().add(t);
            c.total.add(t);
        }
        c
    }

    /// The type holding most bytes (a file's "quant" at a glance), if any tensor exists.
    pub fn main_type(&self) -> Option<&str> {
        self.by_type
            .iter()
            .max_by_key(|(_, b)| b.bytes)
            .map(|(name, _)| name.as_str())
    }

    /// Bytes of one type, 0 if absent.
    pub fn bytes_of(&self, ty: GgmlType) -> u64 {
        self.by_type.get(ty.name()).map(|b| b.bytes).unwrap_or(0)
    }
}
