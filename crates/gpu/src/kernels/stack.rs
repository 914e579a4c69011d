//! Weights of one type and width uploaded as one, so that one dispatch computes all their
//! products: per expert, the first weight's rows, then the second's, … — for a FFN's gate and
//! up projections the layout of a GGUF `ffn_gate_up_exps` tensor; for MLA's q_a, kv_a and the
//! indexer's key projection (one token's three products from the same activations) the rows
//! of the three one after another.

use super::{Chunk, QWeight};
use crate::{check_len, Gpu, GpuError};
use localglm_quants::GgmlType;
use std::sync::atomic::Ordering;

impl Gpu {
    /// Copies `parts` (each `(bytes, rows)`: `experts` stacked `[rows × cols]` matrices of type
    /// `ty`, as [`Gpu::upload_weight`] takes them) to the device as one weight of `experts`
    /// stacked `[Σ rows × cols]` matrices: expert e's rows of the first part, then its rows of
    /// the second, and so on. A product by it writes, per token or slot, each part's outputs
    /// after the previous part's.
    ///
    /// Always a copy: a device that reads weights in place from host memory (Apple unified
    /// memory) should take the parts as they are ([`Gpu::reads_weights_in_place`]), or the
    /// model would be held twice.
    pub fn upload_weight_stack(
        &self,
        name: &str,
        ty: GgmlType,
        parts: &[(&[u8], usize)],
        experts: usize,
        cols: usize,
    ) -> Result<QWeight, GpuError> {
        let row_bytes = super::weight_row_bytes(ty, cols)?;
        for (bytes, rows) in parts {
            check_len(
                "stacked weight bytes",
                experts * rows * row_bytes,
                bytes.len(),
            )?;
        }
        if row_bytes as u64 > self.max_binding {
            return Err(GpuError::Shape {
                what: "weight row bytes (above the binding limit)",
                expected: self.max_binding as usize,
                actual: row_bytes,
            });
        }
        let rows: usize = parts.iter().map(|p| p.1).sum();
        let per_chunk = ((self.max_binding / row_bytes as u64) as usize).max(1);
        let total_rows = experts * rows;
        let mut chunks = Vec::new();
        let mut g0 = 0;
        while g0 < total_rows {
            let g1 = (g0 + per_chunk).min(total_rows);
            let runs = stack_rows(parts, row_bytes, g0, g1);
            let size = (((g1 - g0) * row_bytes) as u64).next_multiple_of(4);
            let buf = self.create_buffer(name, size, wgpu::BufferUsages::STORAGE, true)?;
            {
                let mut view = buf
                    .get_mapped_range_mut(..)
                    .map_err(|e| GpuError::Lost(e.to_string()))?;
                let mut at = 0;
                for r in &runs {
                    view.slice(at..at + r.len()).copy_from_slice(r);
                    at += r.len();
                }
                view.slice(at..).fill(0);
            }
            buf.unmap();
            self.counters
                .upload_bytes
                .fetch_add(((g1 - g0) * row_bytes) as u64, Ordering::Relaxed);
            chunks.push(Chunk {
                buf,
                g0,
                g1,
                skew: 0,
            });
            g0 = g1;
        }
        Ok(QWeight {
            ty,
            experts,
            rows,
            cols,
            row_bytes,
            chunks,
            in_place: false,
            matrices: true,
        })
    }

    /// [`Gpu::upload_weight_stack`] of two weights of `rows` rows each (a FFN's gate and up).
    #[allow(clippy::too_many_arguments)]
    pub fn upload_weight_pair(
        &self,
        name: &str,
        ty: GgmlType,
        first: &[u8],
        second: &[u8],
        experts: usize,
        rows: usize,
        cols: usize,
    ) -> Result<QWeight, GpuError> {
        self.upload_weight_stack(name, ty, &[(first, rows), (second, rows)], experts, cols)
    }

    /// Whether this device reads weights in place from host memory
    /// ([`Gpu::upload_weight_in_place`] wraps rather than copies).
    pub fn reads_weights_in_place(&self) -> bool {
        self.host_pages().is_some_and(|h| h.in_place)
    }
}

/// The bytes of the stacked weight's global rows `g0..g1` (row `g`: expert `g / Σ rows`, then
/// the part its place in the expert's rows falls in), as runs of contiguous rows of the parts.
fn stack_rows<'a>(
    parts: &[(&'a [u8], usize)],
    row_bytes: usize,
    g0: usize,
    g1: usize,
) -> Vec<&'a [u8]> {
    let per_expert: usize = parts.iter().map(|p| p.1).sum();
    let mut runs = Vec::new();
    let mut g = g0;
    while g < g1 {
        let (e, mut r) = (g / per_expert, g % per_expert);
        let mut part = 0;
        while r >= parts[part].1 {
            r -= parts[part].1;
            part += 1;
        }
        let (src, rows) = parts[part];
        let n = (rows - r).min(g1 - g);
        let at = (e * rows + r) * row_bytes;
        runs.push(&src[at..at + n * row_bytes]);
        g += n;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::stack_rows;

    #[test]
    fn stacked_rows_interleave_experts_and_cut_at_any_row() {
        // 2 experts of 3 rows, 1 byte per row: first = rows 0..6, second = 10..16.
        let first: Vec<u8> = (0..6).collect();
        let second: Vec<u8> = (10..16).collect();
        let parts = [(&first[..], 3), (&second[..], 3)];
        let all: Vec<u8> = stack_rows(&parts, 1, 0, 12).concat();
        assert_eq!(all, [0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15]);
        // Three parts of 2, 1 and 3 rows (one expert), 2 bytes per row.
        let (a, b, c): (Vec<u8>, Vec<u8>, Vec<u8>) =
            ((0..4).collect(), (20..22).collect(), (40..46).collect());
        let three = [(&a[..], 2), (&b[..], 1), (&c[..], 3)];
        let whole: Vec<u8> = stack_rows(&three, 2, 0, 6).concat();
        assert_eq!(whole, [0, 1, 2, 3, 20, 21, 40, 41, 42, 43, 44, 45]);
        for (parts, rows, row_bytes, want) in
            [(&parts[..], 12, 1, &all), (&three[..], 6, 2, &whole)]
        {
            for cut in 0..=rows {
                let mut two = stack_rows(parts, row_bytes, 0, cut).concat();
                two.extend(stack_rows(parts, row_bytes, cut, rows).concat());
                assert_eq!(&two, want, "cut at {cut}");
            }
        }
    }
}
