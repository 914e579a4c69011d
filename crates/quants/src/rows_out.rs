//! The output of a batched product, shared by its parallel tasks: `ys` is `n × rows`
//! (token-major, as every caller wants it), and each task owns a block of rows — the same
//! columns of every token's row. The GEMMs write their 16-row × 16-token results straight into
//! it, 16 consecutive floats (a cache line) per token, instead of into a rows × n scratch that
//! was then transposed (that scratch's zeroing, page faults and transposition were ~8 % of a
//! 1024-token prefill). The multi-vector row kernels (aarch64, the float types) fill a small
//! rows × n block per task and [`RowsOut::put_transposed`] writes it while it is in cache.

use std::marker::PhantomData;

/// Rows `r0 .. r0 + rows` of an `n × stride` row-major output.
pub(crate) struct RowsOut<'a> {
    ptr: *mut f32,
    n: usize,
    stride: usize,
    r0: usize,
    rows: usize,
    _out: PhantomData<&'a mut [f32]>,
}

// SAFETY: a block writes only its own rows (`put` checks every index against them), and the
// blocks `split` makes from one exclusive borrow are disjoint, so blocks moved to different
// threads never touch the same element.
#[allow(unsafe_code)]
unsafe impl Send for RowsOut<'_> {}

impl<'a> RowsOut<'a> {
    /// `ys` (`n × stride`) as blocks of `per` rows (the last one shorter).
    pub(crate) fn split(ys: &'a mut [f32], stride: usize, per: usize) -> Vec<RowsOut<'a>> {
        assert!(
            stride > 0 && per > 0 && ys.len().is_multiple_of(stride),
            "output shape"
        );
        let (ptr, n) = (ys.as_mut_ptr(), ys.len() / stride);
        (0..stride)
            .step_by(per)
            .map(|r0| RowsOut {
                ptr,
                n,
                stride,
                r0,
                rows: per.min(stride - r0),
                _out: PhantomData,
            })
            .collect()
    }

    /// The number of rows this block owns.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Writes `yt[r·n + t]` (this block's rows × every token, row-major) as row `r` of token
    /// `t`.
    pub(crate) fn put_transposed(&mut self, yt: &[f32]) {
        assert_eq!(yt.len(), self.rows * self.n, "a rows × n block");
        for t in 0..self.n {
            let at = t * self.stride + self.r0;
            // SAFETY: `at + rows <= t * stride + stride <= n * stride` (`split` made
            // `r0 + rows <= stride`), within the borrowed slice; these rows are this block's
            // alone.
            #[allow(unsafe_code)]
            let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), self.rows) };
            for (d, v) in dst.iter_mut().zip(yt[t..].iter().step_by(self.n)) {
                *d = *v;
            }
        }
    }

    /// Writes `block[r][t]` as row `r0 + r` of token `t0 + t`, for `r < rows`, `t < tokens`
    /// (`r0` relative to this block's first row).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn put(
        &mut self,
        r0: usize,
        t0: usize,
        block: &[[f32; 16]; 16],
        rows: usize,
        tokens: usize,
    ) {
        assert!(rows <= 16 && tokens <= 16, "a 16 × 16 block");
        // Subtractions, not sums: no index can wrap (overflow checks are off in this crate).
        assert!(
            r0 <= self.rows && rows <= self.rows - r0 && t0 <= self.n && tokens <= self.n - t0,
            "outside the block"
        );
        for t in 0..tokens {
            let at = (t0 + t) * self.stride + self.r0 + r0;
            // SAFETY: `at + rows <= (t0 + t) * stride + self.r0 + self.rows <= n * stride`
            // (checked above), within the borrowed slice; these rows are this block's alone.
            #[allow(unsafe_code)]
            let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), rows) };
            for (d, row) in dst.iter_mut().zip(block) {
                *d = row[t];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_write_their_rows_of_every_token() {
        let (n, stride) = (3usize, 37usize);
        let mut ys = vec![-1f32; n * stride];
        let mut block = [[0f32; 16]; 16];
        for (r, row) in block.iter_mut().enumerate() {
            for (t, v) in row.iter_mut().enumerate() {
                *v = (100 * r + t) as f32;
            }
        }
        for (b, mut out) in RowsOut::split(&mut ys, stride, 16).into_iter().enumerate() {
            let rows = out.rows;
            out.put(0, 0, &block, rows.min(16), n);
            assert_eq!(out.r0, 16 * b);
        }
        for t in 0..n {
            for r in 0..stride {
                assert_eq!(ys[t * stride + r], (100 * (r % 16) + t) as f32, "{r} {t}");
            }
        }
    }

    #[test]
    fn transposed_blocks_land_in_token_major_order() {
        let (n, stride) = (5usize, 37usize);
        let mut ys = vec![-1f32; n * stride];
        for mut out in RowsOut::split(&mut ys, stride, 16) {
            let (r0, rows) = (out.r0, out.rows());
            let yt: Vec<f32> = (0..rows * n)
                .map(|i| (100 * (r0 + i / n) + i % n) as f32)
                .collect();
            out.put_transposed(&yt);
        }
        for t in 0..n {
            for r in 0..stride {
                assert_eq!(ys[t * stride + r], (100 * r + t) as f32, "{r} {t}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "a rows × n block")]
    fn a_transposed_block_must_be_whole() {
        let mut ys = vec![0f32; 2 * 20];
        let mut blocks = RowsOut::split(&mut ys, 20, 16);
        blocks[1].put_transposed(&[0.0; 16]);
    }

    #[test]
    #[should_panic(expected = "outside the block")]
    fn a_block_never_writes_past_its_rows() {
        let mut ys = vec![0f32; 2 * 20];
        let mut blocks = RowsOut::split(&mut ys, 20, 16);
        blocks[1].put(0, 0, &[[0f32; 16]; 16], 5, 2);
    }

    #[test]
    #[should_panic(expected = "outside the block")]
    fn an_offset_cannot_wrap_past_the_check() {
        let mut ys = vec![0f32; 2 * 20];
        let mut blocks = RowsOut::split(&mut ys, 20, 16);
        blocks[0].put(usize::MAX, 0, &[[0f32; 16]; 16], 1, 1);
    }
}
