//! The cache stores of the GPU backend (a part of `gpu_ops`): rows appended to a layer's latent
//! (or `[k ; v]`) cache or its indexer keys, and a cache row's norm, RoPE and store as one
//! dispatch (`Gpu::row_store`).

use super::{need, Act, GpuOps};
use crate::pass::{store_prepared_steps, RowNorm, RowPrep, Site};
use crate::GlmError;
use localglm_gpu::{Buffer, CacheRows, RowRope, ROW_STORE_MAX};

impl GpuOps<'_> {
    /// Cache `i` (`idx`: the indexer keys' cache) grown to hold the pass's rows: the buffer
    /// (a handle to it) and its words per row.
    fn dest(&mut self, i: usize, idx: bool) -> Result<(Buffer, usize), GlmError> {
        let (p0, t_len) = (self.p0, self.p0 + self.n);
        let dest = match idx {
            false => Some(&mut self.dkv.kv[i]),
            true => self.dkv.idx[i].as_mut(),
        };
        let dest = dest.ok_or_else(|| GlmError::Input("no indexer cache".into()))?;
        let words = dest.words;
        Ok((dest.reserve(self.g, t_len, p0)?.clone(), words))
    }

    /// RoPE at the pass's positions from column `off` of a head: the pass's table (cos rows,
    /// then sin rows), the model's `qk_rope / 2` pairs, on halves for a model whose
    /// `Gqa::neox` is set. One place for [`crate::pass::Ops::rope`] and the cache rows.
    pub(super) fn row_rope(&self, off: usize) -> RowRope<'_> {
        let c = &self.m.config;
        RowRope {
            table: &self.table,
            cos_off: 0,
            sin_off: self.sin_off,
            off,
            half: c.qk_rope / 2,
            halves: c.gqa.is_some_and(|g| g.neox),
        }
    }

    /// Appends the pass's rows to cache `i` (`idx`: the indexer keys' cache): each
    /// `(activation, word)` fills its rows from that word of each cache row on.
    pub(super) fn store(
        &mut self,
        i: usize,
        idx: bool,
        parts: &[(&Act, usize)],
    ) -> Result<(), GlmError> {
        let (p0, kv, g) = (self.p0, self.m.opts.kv_type, self.g);
        let (buf, words) = self.dest(i, idx)?;
        for (x, base) in parts {
            let w = x.width;
            g.kv_store(
                kv, &buf, *base, words, p0, &x.buf, x.off, x.stride, x.rows, w,
            )?;
        }
        Ok(())
    }

    /// [`crate::pass::Ops::store_prepared`]: one dispatch where the row fits the kernel's
    /// workgroup memory (GLM-5.x's always do), the three steps otherwise.
    pub(super) fn store_prepared_on_device(
        &mut self,
        at: Site,
        x: Act,
        p: RowPrep,
    ) -> Result<(), GlmError> {
        if x.width != p.width || p.width > ROW_STORE_MAX {
            return store_prepared_steps(self, at, x, p);
        }
        let (weights, bias_off) = match p.norm {
            RowNorm::Rms(v) => (self.vector(v)?, None),
            // The bias follows the weight in one buffer.
            RowNorm::Layer => (
                need(&self.vecs(at)?.idx_norm, "indexer norm")?,
                Some(p.width),
            ),
        };
        let (g, kv, first) = (self.g, self.m.opts.kv_type, self.p0);
        let (cache, stride) = self.dest(self.layer(at), p.index_keys)?;
        let rope = self.row_rope(p.rope_off);
        let norm = localglm_gpu::RowNorm {
            weights,
            w_off: 0,
            bias_off,
            cols: p.cols,
            eps: p.eps,
        };
        let to = CacheRows {
            kv,
            cache: &cache,
            base: 0,
            stride,
            first,
        };
        g.row_store(to, (&x.buf, x.off, x.stride), x.rows, x.width, norm, rope)?;
        Ok(())
    }
}
