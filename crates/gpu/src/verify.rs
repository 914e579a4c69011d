//! Every weight kernel of this device against the CPU's dequantizer on random blocks
//! ([`Gpu::verify`]): the check a user runs on a GPU no test has seen (`localglm gpu --check`,
//! `gpu_bench --check`), as llama.cpp's `test-backend-ops` compares a backend with its CPU one.
//! The tests (`tests/kernels.rs`) hold the kernels to the same bounds, defined here once.
//!
//! Bounds. The f32 kernels decode weights to f32 exactly as the CPU dequantizer does (same
//! formulas, same f16 fields; a GPU may fuse a multiply-add, which only rounds less) and sum
//! f32 products, so |y − ref| ≤ γ_k·Σ|wᵢxᵢ| with γ_k ≈ k·2⁻²⁴ for k terms in any order; for
//! rows of up to 2304 columns γ ≈ 1.4e-4, allowed as 2e-4·Σ|wᵢxᵢ| + 1e-6. The matrix units
//! multiply f16 copies of the decoded weights and of the activations (relative error u = 2⁻¹¹
//! each, ≤ 2u + u² per product) and sum in f32: 1.12e-3·Σ|wᵢxᵢ|, allowed as 1.2e-3; an input
//! below f16's normal range (6.1e-5) keeps an absolute error of at most 2⁻²⁵ instead, covered
//! by 2⁻²⁵·Σ(|wᵢ| + |xᵢ|)·max(|w|, |x|, 1). The reference is the f64 dot of the
//! CPU-dequantized row (bit-exact to ggml's reference, `localglm-quants` tests).

use crate::{Gpu, GpuError, GPU_TYPES};
use localglm_quants::dequantize_row;
use localglm_quants::synth::{random_blocks, random_vector};

/// The f64 dot of `row` and `x`, and Σ|rowᵢ·xᵢ| (what the bounds scale with).
pub fn reference_dot(row: &[f32], x: &[f32]) -> (f64, f64) {
    row.iter().zip(x).fold((0.0, 0.0), |(d, s), (a, b)| {
        let p = *a as f64 * *b as f64;
        (d + p, s + p.abs())
    })
}

/// The error allowed to an f32 kernel's product of `row` and `x`.
pub fn f32_bound(row: &[f32], x: &[f32]) -> f64 {
    2e-4 * reference_dot(row, x).1 + 1e-6
}

/// The error allowed to a matrix-unit product of `row` and `x` (f16 inputs, f32 sums).
pub fn matrix_bound(row: &[f32], x: &[f32]) -> f64 {
    let scale = reference_dot(row, x).1;
    let big = row.iter().chain(x).fold(1f64, |m, v| m.max(v.abs() as f64));
    let small: f64 = row.iter().chain(x).map(|v| v.abs() as f64).sum::<f64>() * big;
    1.2e-3 * scale + small / (1u64 << 25) as f64
}

/// One kernel shape of one type: its worst error as a fraction of its bound (≤ 1 passes).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verified {
    /// The weight type.
    pub ty: String,
    /// "one token" (the decode mat-vec), "11 tokens" (the prefill tile kernel), "by slot"
    /// (MoE decode: experts picked by ids), "by expert" (MoE prefill: slots grouped by expert;
    /// ", matrix units" where they run it), "matrix units" (a prompt's product on them, where
    /// the device uses them).
    pub kernel: &'static str,
    /// max |GPU − reference| ÷ bound over every output.
    pub worst: f64,
    /// `worst` ≤ 1 (and finite).
    pub passed: bool,
}

/// Experts of the by-slot and by-expert products, rows per expert, tokens of the prompt
/// products: partial tiles and row blocks everywhere (8 rows per mat-vec workgroup, 8 tokens
/// per tile, 32 × 32 on the matrix units).
const EXPERTS: usize = 3;
const ROWS: usize = 13;
const TILE_TOKENS: usize = 11;
const MATRIX_TOKENS: usize = 40;

impl Gpu {
    /// Runs every weight kernel this device uses, for every type, on random blocks and
    /// compares each output with the CPU's dequantized product (see the module's bounds).
    /// A kernel that fails to run is an error; one that runs and is wrong is a failed row.
    pub fn verify(&self) -> Result<Vec<Verified>, GpuError> {
        let mut out = Vec::new();
        for ty in GPU_TYPES {
            let cols = match ty.block_elems() {
                1 => 300, // a partial 32-column group
                32 => 800,
                _ => 512,
            };
            let rows = EXPERTS * ROWS;
            let w = random_blocks(ty, rows * cols / ty.block_elems(), 11 + cols as u64);
            let rb = ty.row_bytes(cols).map_err(|_| GpuError::Unsupported(ty))?;
            let reference: Vec<Vec<f32>> = (0..rows)
                .map(|r| {
                    let mut row = vec![0f32; cols];
                    dequantize_row(ty, &w[r * rb..(r + 1) * rb], &mut row)
                        .map(|_| row)
                        .map_err(|_| GpuError::Unsupported(ty))
                })
                .collect::<Result<_, _>>()?;
            let mut row = |kernel, worst: f64| {
                out.push(Verified {
                    ty: ty.name().to_string(),
                    kernel,
                    worst,
                    passed: worst <= 1.0,
                })
            };
            let whole = self.upload_weight("verify", ty, &w, 1, rows, cols)?;
            let stacked = self.upload_weight("verify experts", ty, &w, EXPERTS, ROWS, cols)?;
            for (kernel, n) in [("one token", 1), ("11 tokens", TILE_TOKENS)] {
                row(kernel, self.worst_plain(&whole, &reference, n, f32_bound)?);
            }
            row("by slot", self.worst_by_slot(&stacked, &reference)?);
            let (worst, on_matrices) = self.worst_by_expert(&stacked, &reference)?;
            let kernel = if on_matrices {
                "by expert, matrix units"
            } else {
                "by expert"
            };
            row(kernel, worst);
            if self.matrix_size().is_some() && ty.block_elems() > 1 {
                let before = self.counters().matrix_products;
                let worst = self.worst_plain(&whole, &reference, MATRIX_TOKENS, matrix_bound)?;
                if self.counters().matrix_products > before {
                    row("matrix units", worst);
                }
            }
        }
        Ok(out)
    }

    /// The worst error ÷ bound of `n` tokens by `w` (rows `reference`).
    fn worst_plain(
        &self,
        w: &crate::QWeight,
        reference: &[Vec<f32>],
        n: usize,
        bound: fn(&[f32], &[f32]) -> f64,
    ) -> Result<f64, GpuError> {
        let (rows, cols) = (reference.len(), w.cols());
        let xs = random_vector(n * cols, 5 + n as u64);
        let x = self.upload_f32(&xs)?;
        let y = self.zeros(n * rows)?;
        self.matmul(w, &x, 0, n, &y, 0)?;
        let got = self.read_f32(&y)?;
        let mut worst = 0f64;
        for t in 0..n {
            let xt = &xs[t * cols..(t + 1) * cols];
            for (r, row) in reference.iter().enumerate() {
                worst = worst.max(ratio(got[t * rows + r], row, xt, bound));
            }
        }
        Ok(worst)
    }

    /// MoE decode: 5 slots with their own activations, experts picked by ids on the device.
    fn worst_by_slot(&self, w: &crate::QWeight, reference: &[Vec<f32>]) -> Result<f64, GpuError> {
        let ids_v = [2u32, 0, 2, 1, 0];
        let cols = w.cols();
        let xs = random_vector(ids_v.len() * cols, 17);
        let (ids, x) = (self.upload_u32(&ids_v)?, self.upload_f32(&xs)?);
        let y = self.zeros(ids_v.len() * ROWS)?;
        self.matvec_indexed(w, &ids, ids_v.len(), &x, 0, true, &y, 0)?;
        let got = self.read_f32(&y)?;
        Ok(worst_by_ids(&got, &xs, &ids_v, reference, f32_bound))
    }

    /// MoE prefill: 24 slots grouped by expert on the device (expert 2 with 12 of them, more
    /// than a tile), on the matrix units where they run it.
    fn worst_by_expert(
        &self,
        w: &crate::QWeight,
        reference: &[Vec<f32>],
    ) -> Result<(f64, bool), GpuError> {
        let ids_v: Vec<u32> = (0..24u32).map(|s| [2, 0, 2, 1][s as usize % 4]).collect();
        let cols = w.cols();
        let xs = random_vector(ids_v.len() * cols, 19);
        let (ids, x) = (self.upload_u32(&ids_v)?, self.upload_f32(&xs)?);
        let groups = self.zeros(EXPERTS + 1 + ids_v.len())?;
        self.bucket(&ids, ids_v.len(), EXPERTS, &groups)?;
        let y = self.zeros(ids_v.len() * ROWS)?;
        let before = self.counters().matrix_products;
        self.matvec_by_expert(w, &groups, ids_v.len(), &x, 0, cols, 1, &y, 0)?;
        let got = self.read_f32(&y)?;
        let on_matrices = self.counters().matrix_products > before;
        let bound = if on_matrices { matrix_bound } else { f32_bound };
        Ok((
            worst_by_ids(&got, &xs, &ids_v, reference, bound),
            on_matrices,
        ))
    }
}

/// The worst error ÷ bound of a MoE product: slot s (its own activations in `xs`) by expert
/// `ids[s]`'s `ROWS` rows of `reference`.
fn worst_by_ids(
    got: &[f32],
    xs: &[f32],
    ids: &[u32],
    reference: &[Vec<f32>],
    bound: fn(&[f32], &[f32]) -> f64,
) -> f64 {
    let cols = xs.len() / ids.len();
    let mut worst = 0f64;
    for (s, &e) in ids.iter().enumerate() {
        let x = &xs[s * cols..(s + 1) * cols];
        for r in 0..ROWS {
            let row = &reference[e as usize * ROWS + r];
            worst = worst.max(ratio(got[s * ROWS + r], row, x, bound));
        }
    }
    worst
}

/// |got − reference| ÷ bound (infinite for a NaN).
fn ratio(got: f32, row: &[f32], x: &[f32], bound: fn(&[f32], &[f32]) -> f64) -> f64 {
    let err = (got as f64 - reference_dot(row, x).0).abs();
    if err.is_nan() {
        return f64::INFINITY;
    }
    err / bound(row, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_off_by_more_than_its_bound_fails_and_nan_never_passes() {
        let row = [0.5f32, -1.25, 2.0, 0.75];
        let x = [1.0f32, 0.5, -0.25, 2.0];
        let (want, _) = reference_dot(&row, &x);
        let exact = want as f32;
        assert!(ratio(exact, &row, &x, f32_bound) < 1e-3);
        let off = (want + 2.0 * f32_bound(&row, &x)) as f32;
        assert!(ratio(off, &row, &x, f32_bound) > 1.0);
        assert!(
            ratio(off, &row, &x, matrix_bound) < 1.0,
            "the f16 bound is wider"
        );
        assert_eq!(ratio(f32::NAN, &row, &x, f32_bound), f64::INFINITY);
    }
}
