//! Two weights of one type and shape uploaded as one (a FFN's gate and up projections), so
//! that one dispatch computes both products: per expert, the first weight's rows, then the
//! second's — the layout of a GGUF `ffn_gate_up_exps` tensor.

use super::{Chunk, QWeight};
use crate::{check_len, Gpu, GpuError};
use localglm_quants::GgmlType;
use std::sync::atomic::Ordering;

impl Gpu {
    /// Copies `first` and `second` (each `experts` stacked `[rows × cols]` matrices of type
    /// `ty`, as [`Gpu::upload_weight`] takes them) to the device as one weight of `experts`
    /// stacked `[2·rows × cols]` matrices: expert e's rows of `first`, then its rows of
    /// `second`. A product by it writes, per token or slot, the first weight's `rows` outputs
    /// and then the second's.
    ///
    /// Always a copy: a device that reads weights in place from host memory (Apple unified
    /// memory) should take the two as they are ([`Gpu::reads_weights_in_place`]), or the
    /// model would be held twice.
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
        let row_bytes = super::weight_row_bytes(ty, cols)?;
        check_len(
            "first weight bytes",
            experts * rows * row_bytes,
            first.len(),
        )?;
        check_len(
            "second weight bytes",
            experts * rows * row_bytes,
            second.len(),
        )?;
        if row_bytes as u64 > self.max_binding {
            return Err(GpuError::Shape {
                what: "weight row bytes (above the binding limit)",
                expected: self.max_binding as usize,
                actual: row_bytes,
            });
        }
        let per_chunk = ((self.max_binding / row_bytes as u64) as usize).max(1);
        let total_rows = experts * 2 * rows;
        let mut chunks = Vec::new();
        let mut g0 = 0;
        while g0 < total_rows {
            let g1 = (g0 + per_chunk).min(total_rows);
            let parts = pair_rows(first, second, rows, row_bytes, g0, g1);
            let size = (((g1 - g0) * row_bytes) as u64).next_multiple_of(4);
            let buf = self.create_buffer(name, size, wgpu::BufferUsages::STORAGE, true)?;
            {
                let mut view = buf
                    .get_mapped_range_mut(..)
                    .map_err(|e| GpuError::Lost(e.to_string()))?;
                let mut at = 0;
                for p in &parts {
                    view.slice(at..at + p.len()).copy_from_slice(p);
                    at += p.len();
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
            rows: 2 * rows,
            cols,
            row_bytes,
            chunks,
            in_place: false,
        })
    }

    /// Whether this device reads weights in place from host memory
    /// ([`Gpu::upload_weight_in_place`] wraps rather than copies).
    pub fn reads_weights_in_place(&self) -> bool {
        self.host_pages().is_some_and(|h| h.in_place)
    }
}

/// The bytes of the paired weight's global rows `g0..g1` (row `g`: expert `g / 2·rows`, then
/// `first`'s row or `second`'s), as runs of contiguous rows of the two sources.
fn pair_rows<'a>(
    first: &'a [u8],
    second: &'a [u8],
    rows: usize,
    row_bytes: usize,
    g0: usize,
    g1: usize,
) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut g = g0;
    while g < g1 {
        let (e, r) = (g / (2 * rows), g % (2 * rows));
        let (src, r) = if r < rows {
            (first, r)
        } else {
            (second, r - rows)
        };
        let n = (rows - r).min(g1 - g);
        let at = (e * rows + r) * row_bytes;
        parts.push(&src[at..at + n * row_bytes]);
        g += n;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::pair_rows;

    #[test]
    fn pair_rows_interleave_experts_and_cut_at_any_row() {
        // 2 experts of 3 rows, 1 byte per row: first = rows 0..6, second = 10..16.
        let first: Vec<u8> = (0..6).collect();
        let second: Vec<u8> = (10..16).collect();
        let all: Vec<u8> = pair_rows(&first, &second, 3, 1, 0, 12).concat();
        assert_eq!(all, [0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15]);
        for cut in 0..=12 {
            let mut two = pair_rows(&first, &second, 3, 1, 0, cut).concat();
            two.extend(pair_rows(&first, &second, 3, 1, cut, 12).concat());
            assert_eq!(two, all, "cut at {cut}");
        }
    }
}
