//! A cache row's last steps as one dispatch (`shaders/ops/row_store.wgsl`): the norm of its
//! first columns, RoPE on one head, and the store in the cache's type — the MLA latent row
//! (`[RMSNorm(c_kv) ; RoPE(k_pe)]`) and the indexer's keys (LayerNorm, then RoPE), which
//! would otherwise take three dispatches each.

use super::{f, u, Binds, Op, R};
use crate::{Buffer, Gpu, GpuError};
use localglm_quants::KvType;

/// The widest row [`Gpu::row_store`] takes (its row lives in workgroup memory): GLM-5.x's
/// latent rows are 576 wide, its indexer keys 128.
pub const ROW_STORE_MAX: usize = 1024;

/// The WGSL constant of [`ROW_STORE_MAX`].
pub(super) fn row_store_consts() -> String {
    format!("const ROW_MAX: u32 = {ROW_STORE_MAX}u;\n")
}

/// Where a cache's rows go: `base` word, `stride` words per row ([`super::cache_words`]),
/// the pass's rows from row `first`.
#[derive(Clone, Copy)]
pub struct CacheRows<'a> {
    pub kv: KvType,
    pub cache: &'a Buffer,
    pub base: usize,
    pub stride: usize,
    pub first: usize,
}

/// The norm of a row's first `cols` values: RMSNorm by the weights at `weights[w_off..]`, or
/// with `bias_off` a LayerNorm whose bias is at `weights[bias_off..]`.
#[derive(Clone, Copy)]
pub struct RowNorm<'a> {
    pub weights: &'a Buffer,
    pub w_off: usize,
    pub bias_off: Option<usize>,
    pub cols: usize,
    pub eps: f32,
}

/// RoPE on one head of a row: the `half` pairs from column `off` (adjacent, or with `halves`
/// `(j, j + half)`), row `r` of the pass rotated by `table[cos_off + r·half ..]` and
/// `table[sin_off + r·half ..]`.
#[derive(Clone, Copy)]
pub struct RowRope<'a> {
    pub table: &'a Buffer,
    pub cos_off: usize,
    pub sin_off: usize,
    pub off: usize,
    pub half: usize,
    pub halves: bool,
}

impl Gpu {
    /// `n` rows of width `w` from `src` (offset, row stride), normed by `norm`, rotated by
    /// `rope` and written to `to`: what [`Gpu::rms_norm`] (or [`Gpu::layer_norm`]),
    /// [`Gpu::rope`] and [`Gpu::kv_store`] do one after another, in one dispatch.
    /// `w ≤` [`ROW_STORE_MAX`], `norm.cols ≤ w`, the rotated span inside the row.
    pub fn row_store(
        &self,
        to: CacheRows<'_>,
        src: (&Buffer, usize, usize),
        n: usize,
        w: usize,
        norm: RowNorm<'_>,
        rope: RowRope<'_>,
    ) -> R {
        let widest = w.max(norm.cols).max(rope.off + 2 * rope.half);
        if widest > w.min(ROW_STORE_MAX) {
            return Err(GpuError::Shape {
                what: "row_store: a row's width, its norm and RoPE spans",
                expected: w.min(ROW_STORE_MAX),
                actual: widest,
            });
        }
        if n == 0 {
            return Ok(());
        }
        let flags = u32::from(norm.bias_off.is_some()) | (u32::from(rope.halves) << 1);
        let p = [
            u(n),
            u(w),
            u(src.1),
            u(src.2),
            u(to.base),
            u(to.stride),
            u(to.first),
            f(norm.eps),
            u(norm.cols),
            flags,
            u(norm.w_off),
            u(norm.bias_off.unwrap_or(0)),
            u(rope.off),
            u(rope.half),
            u(rope.cos_off),
            u(rope.sin_off),
        ];
        let binds = Binds {
            b: Some(src.0),
            c: Some(norm.weights),
            u: Some(to.cache),
            m: Some(rope.table),
            ..Default::default()
        };
        let rows = n as u32;
        let gx = rows.min(65535);
        // A is not written; the dummy output stands there.
        self.op(
            Op::RowStore(to.kv),
            &self.dummy_out,
            binds,
            p,
            (gx, rows.div_ceil(gx), 1),
        )
    }
}
