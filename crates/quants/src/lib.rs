//! GGML block formats: the type table, the i-quant lookup tables and dequantization of every
//! tensor type that a GLM GGUF can hold (F32, F16, BF16, the legacy 32-weight quants, the
//! K-quants and the I-quants; see [`GgmlType::SUPPORTED`]).
//!
//! Invariant: [`dequantize_row`] and [`dequantize_block`] produce exactly the f32 values of the
//! reference dequantizer (PyPI `gguf` 0.19.0 `gguf.quants.dequantize`, the numpy mirror of
//! ggml's scalar code), bit for bit, and never panic: any length or type mismatch is a
//! [`QuantError`]. `tests/reference.rs` checks this against fixtures made by
//! `scripts/make_quant_fixtures.py`.
//!
//! Layouts and formulas follow `docs/glm52-spec.md` §E; all multi-byte fields are little-endian.

pub mod attn_rows;
pub mod bench;
pub mod decode_i8;
pub mod dequant;
mod experts;
mod gemm256;
mod gemm256_rows;
mod gemm512;
pub mod kernels;
mod kv;
mod matmul;
mod neon;
mod neon_iq;
mod neon_k;
mod neon_mmla;
mod neon_q32;
mod neon_sb;
mod prefetch;
pub mod q8;
mod rows_out;
mod simd;
mod simd512;
mod simd512_iq;
mod simd512_iq2s;
mod simd512_iq4;
mod simd512_q4;
mod simd_lowbit;
mod simd_mem;
mod simd_q4;
pub mod synth;
pub mod tables;
pub mod team;
mod types;

pub use dequant::{
    bf16_to_f32, dequantize_block, dequantize_row, dequantize_to_vec, f16_to_f32, QK, QK_K,
};
pub use experts::{matvec_indexed, matvec_indexed_with, Experts};
pub use kernels::{matvec, matvec_many_with, matvec_with, Activations, MatvecPart};
pub use kv::KvType;
pub use matmul::{matmul, matmul_batched_with, matmul_with, MATVEC_UP_TO};
pub use types::GgmlType;

/// What can go wrong when sizing or decoding GGML data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// A type id that is not (or no longer) a ggml type.
    #[error("unknown ggml type id {0}")]
    UnknownTypeId(u32),
    /// A KV-cache type name that is not f16, bf16, q8_0 or f32.
    #[error("KV-cache type `{0}`: expected f16, bf16, q8_0 or f32")]
    UnknownKvType(String),
    /// A known type this crate cannot decode (activation-only, integer or non-GLM formats).
    #[error("ggml type {0} is not supported for dequantization")]
    Unsupported(GgmlType),
    /// A weight count that does not split into whole blocks.
    #[error(
        "{n_elems} weights of type {ty} are not a whole number of {block_elems}-weight blocks"
    )]
    NotBlockMultiple {
        /// The tensor type.
        ty: GgmlType,
        /// The weight count asked for.
        n_elems: usize,
        /// Weights per block of `ty`.
        block_elems: usize,
    },
    /// A byte count too large for `usize`.
    #[error("the byte size of {n_elems} weights of type {ty} overflows usize")]
    SizeOverflow {
        /// The tensor type.
        ty: GgmlType,
        /// The weight count asked for.
        n_elems: usize,
    },
    /// Source bytes that do not match the number of weights to produce.
    #[error("{n_elems} weights of type {ty} take {expected} bytes, but {actual} were given")]
    LengthMismatch {
        /// The tensor type.
        ty: GgmlType,
        /// The weight count asked for.
        n_elems: usize,
        /// Bytes those weights occupy.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A kernel argument of the wrong length (or an out-of-range expert id).
    #[error("{what}: expected {expected}, got {actual}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The length (or bound) required.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A single-block call with slices of the wrong size.
    #[error(
        "a {ty} block is {block_bytes} bytes and {block_elems} weights, \
         but {got_bytes} bytes and room for {got_elems} weights were given"
    )]
    BlockShape {
        /// The tensor type.
        ty: GgmlType,
        /// Bytes per block of `ty`.
        block_bytes: usize,
        /// Weights per block of `ty`.
        block_elems: usize,
        /// Length of the block slice given.
        got_bytes: usize,
        /// Length of the output slice given.
        got_elems: usize,
    },
}
