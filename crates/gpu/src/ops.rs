//! The non-weight operations of the forward pass on the device, so activations can stay there:
//! RMSNorm / LayerNorm, RoPE (adjacent pairs or halves), residual and bias adds, SwiGLU, MoE
//! routing (sigmoid or softmax scores, bias for selection only, top-k, normalisation, scale) and
//! the weighted sum of the experts, KV-cache stores in f32 / f16 / bf16 / q8_0, MLA attention in
//! absorbed form over that cache (flash-style: an online softmax over chunks of the keys, the
//! heads of a group sharing each cache row read, keys the indexer left out never read), a dense
//! model's causal grouped-query attention over `[k ; v]` rows, and the lightning indexer's
//! scores.
//!
//! Invariants: every op computes in f32 what the CPU path computes (same formulas, same order of
//! the norm's and the routing's steps); a cache row of `w` values takes
//! [`cache_words`]`(kv, w)` u32 words on the device (q8_0 rows padded to whole words, so rows
//! are written independently); buffers are addressed in 4-byte elements with explicit offsets.

use crate::{Buffer, Gpu, GpuError};
use localglm_quants::KvType;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Invocations per workgroup of the ops (`WG` in their shaders).
const WG: u32 = 64;

/// One op shader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Norm,
    Rope,
    Add,
    SiluMul,
    Route,
    Combine,
    Store(KvType),
    RowStore(KvType),
    Attention(KvType),
    AttentionMerge,
    AttentionGqa(KvType),
    IndexScores(KvType),
    TopK,
    Bucket,
}

mod attention;
mod row_store;
use attention::attention_consts;
pub use attention::{attention_scratch_words, AttentionArgs, GqaAttentionArgs};
pub use row_store::{CacheRows, RowNorm, RowRope, ROW_STORE_MAX};

const OPS_PRELUDE: &str = include_str!("shaders/ops/prelude.wgsl");

fn key_fn(kv: KvType) -> &'static str {
    match kv {
        KvType::F32 => include_str!("shaders/ops/key_f32.wgsl"),
        KvType::F16 => include_str!("shaders/ops/key_f16.wgsl"),
        KvType::BF16 => include_str!("shaders/ops/key_bf16.wgsl"),
        KvType::Q8_0 => include_str!("shaders/ops/key_q8_0.wgsl"),
    }
}

pub(crate) fn op_source(op: Op) -> String {
    let mut s = format!("const WG: u32 = {WG}u;\n");
    s += OPS_PRELUDE;
    s += crate::kernels::REDUCE_SHARED;
    match op {
        Op::Attention(kv) | Op::AttentionGqa(kv) | Op::IndexScores(kv) => s += key_fn(kv),
        Op::Store(KvType::F16) | Op::RowStore(KvType::F16) => {
            s += include_str!("shaders/ops/pack_f16.wgsl")
        }
        Op::Store(KvType::BF16) | Op::RowStore(KvType::BF16) => {
            s += include_str!("shaders/ops/pack_bf16.wgsl")
        }
        Op::Store(KvType::Q8_0) | Op::RowStore(KvType::Q8_0) => {
            s += include_str!("shaders/ops/q8_encode.wgsl")
        }
        _ => {}
    }
    if let Op::RowStore(kv) = op {
        s += &row_store::row_store_consts();
        s += match kv {
            KvType::F32 => include_str!("shaders/ops/put_f32.wgsl"),
            KvType::F16 | KvType::BF16 => include_str!("shaders/ops/put_half.wgsl"),
            KvType::Q8_0 => include_str!("shaders/ops/put_q8_0.wgsl"),
        };
    }
    if matches!(op, Op::Attention(_) | Op::AttentionMerge) {
        s += &attention_consts();
    }
    s += match op {
        Op::Norm => include_str!("shaders/ops/norm.wgsl"),
        Op::Rope => include_str!("shaders/ops/rope.wgsl"),
        Op::Add => include_str!("shaders/ops/add.wgsl"),
        Op::SiluMul => include_str!("shaders/ops/silu_mul.wgsl"),
        Op::Route => include_str!("shaders/ops/route.wgsl"),
        Op::Combine => include_str!("shaders/ops/combine.wgsl"),
        Op::Store(KvType::F32) => include_str!("shaders/ops/store_f32.wgsl"),
        Op::Store(KvType::F16 | KvType::BF16) => include_str!("shaders/ops/store_half.wgsl"),
        Op::Store(KvType::Q8_0) => include_str!("shaders/ops/store_q8_0.wgsl"),
        Op::RowStore(_) => include_str!("shaders/ops/row_store.wgsl"),
        Op::Attention(_) => include_str!("shaders/ops/attention.wgsl"),
        Op::AttentionMerge => include_str!("shaders/ops/attention_merge.wgsl"),
        Op::AttentionGqa(_) => include_str!("shaders/ops/attention_gqa.wgsl"),
        Op::IndexScores(_) => include_str!("shaders/ops/index_scores.wgsl"),
        Op::TopK => include_str!("shaders/ops/topk.wgsl"),
        Op::Bucket => include_str!("shaders/ops/bucket.wgsl"),
    };
    s
}

/// Every op shader (each cache type's where it has one).
pub(crate) fn all_ops() -> Vec<Op> {
    let mut ops = vec![
        Op::Norm,
        Op::Rope,
        Op::Add,
        Op::SiluMul,
        Op::Route,
        Op::Combine,
        Op::TopK,
        Op::Bucket,
        Op::AttentionMerge,
    ];
    for kv in [KvType::F32, KvType::F16, KvType::BF16, KvType::Q8_0] {
        ops.extend([
            Op::Store(kv),
            Op::RowStore(kv),
            Op::Attention(kv),
            Op::AttentionGqa(kv),
            Op::IndexScores(kv),
        ]);
    }
    ops
}

/// u32 words one cache row of `w` values takes on the device.
pub fn cache_words(kv: KvType, w: usize) -> usize {
    match kv {
        KvType::F32 => w,
        KvType::F16 | KvType::BF16 => w.div_ceil(2),
        KvType::Q8_0 => (w.div_ceil(32) * 34).div_ceil(4),
    }
}

/// The buffers of one op dispatch (unused ones are bound to dummies).
#[derive(Default)]
struct Binds<'a> {
    b: Option<&'a Buffer>,
    c: Option<&'a Buffer>,
    d: Option<&'a Buffer>,
    u: Option<&'a Buffer>,
    m: Option<&'a Buffer>,
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn u(v: usize) -> u32 {
    v as u32
}

impl Gpu {
    fn op_pipeline(&self, op: Op) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let mut cache = self.op_pipelines.lock().expect("op pipelines");
        if let Some(p) = cache.get(&op) {
            return Ok(p.clone());
        }
        let what = format!("{op:?}");
        let p = self.compile(
            &what,
            op_source(op),
            &self.op_pipeline_layout,
            wgpu::ShaderRuntimeChecks::checked(),
        )?;
        cache.insert(op, p.clone());
        Ok(p)
    }

    /// Compiles every op now (tests).
    pub fn compile_ops(&self) -> Result<(), GpuError> {
        for op in all_ops() {
            self.op_pipeline(op)?;
        }
        Ok(())
    }

    /// A dispatch over `count` invocations of a one-invocation-per-element op.
    fn flat(&self, op: Op, a: &Buffer, binds: Binds<'_>, p: [u32; 16], count: usize) -> R {
        let groups = (count as u32).div_ceil(WG).max(1);
        let x = groups.min(self.max_wg_dim);
        self.op(op, a, binds, p, (x, groups.div_ceil(x), 1))
    }

    fn op(&self, op: Op, a: &Buffer, binds: Binds<'_>, p: [u32; 16], grid: (u32, u32, u32)) -> R {
        let pipeline = self.op_pipeline(op)?;
        let bytes: Vec<u8> = p.iter().flat_map(|v| v.to_le_bytes()).collect();
        let d = &self.dummy_ids;
        let (b, c, dd, m) = (
            binds.b.map_or(d, |x| &x.buf),
            binds.c.map_or(d, |x| &x.buf),
            binds.d.map_or(d, |x| &x.buf),
            binds.m.map_or(d, |x| &x.buf),
        );
        let rw = binds.u.map_or(&self.dummy_rw, |x| &x.buf);
        self.record(
            &pipeline,
            &self.op_layout,
            &[&a.buf, b, c, dd, rw, m],
            &bytes,
            grid,
        );
        Ok(())
    }

    /// RMSNorm of `rows` rows of width `d`: `y = x·rsqrt(mean(x²) + eps)·w`. `x` and `y` may be
    /// the same buffer (in place).
    #[allow(clippy::too_many_arguments)]
    pub fn rms_norm(
        &self,
        x: (&Buffer, usize, usize),
        y: (&Buffer, usize, usize),
        w: (&Buffer, usize),
        rows: usize,
        d: usize,
        eps: f32,
    ) -> R {
        self.norm(x, y, w, None, rows, d, eps)
    }

    /// LayerNorm: `y = (x − mean)·rsqrt(var + eps)·w + b`, `w` and `b` in one buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm(
        &self,
        x: (&Buffer, usize, usize),
        y: (&Buffer, usize, usize),
        w: (&Buffer, usize),
        b_off: usize,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> R {
        self.norm(x, y, w, Some(b_off), rows, d, eps)
    }

    /// `(buffer, offset, row stride)` for x and y, `(buffer, offset)` for the weights.
    #[allow(clippy::too_many_arguments)]
    fn norm(
        &self,
        x: (&Buffer, usize, usize),
        y: (&Buffer, usize, usize),
        w: (&Buffer, usize),
        b_off: Option<usize>,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> R {
        if rows == 0 {
            return Ok(());
        }
        let in_place = std::ptr::eq(x.0, y.0);
        let p = [
            u(rows),
            u(d),
            u(x.1),
            u(x.2),
            u(y.1),
            u(y.2),
            u(w.1),
            f(eps),
            u32::from(in_place),
            u32::from(b_off.is_some()),
            u(b_off.unwrap_or(0)),
            0,
            0,
            0,
            0,
            0,
        ];
        let binds = Binds {
            b: (!in_place).then_some(x.0),
            c: Some(w.0),
            ..Default::default()
        };
        let rows = rows as u32;
        let gx = rows.min(65535);
        self.op(Op::Norm, y.0, binds, p, (gx, rows.div_ceil(gx), 1))
    }

    /// RoPE in place: for token `i < n` and head `h < heads`, the `2·half` values at
    /// `off + i·row_stride + h·head_stride` rotate by `cos[cos_off + i·half ..]`,
    /// `sin[sin_off + i·half ..]` (both in `table`) — as adjacent pairs, or with `halves` as
    /// the pairs `(j, j + half)` (GPT-NeoX's layout, qwen's).
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        x: &Buffer,
        off: usize,
        n: usize,
        heads: usize,
        half: usize,
        row_stride: usize,
        head_stride: usize,
        table: &Buffer,
        cos_off: usize,
        sin_off: usize,
        halves: bool,
    ) -> R {
        let p = [
            u(n),
            u(heads),
            u(half),
            u(off),
            u(row_stride),
            u(head_stride),
            u(cos_off),
            u(sin_off),
            u32::from(halves),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let binds = Binds {
            b: Some(table),
            c: Some(table),
            ..Default::default()
        };
        self.flat(Op::Rope, x, binds, p, n * heads * half)
    }

    /// `a[a_off..][..len] += b[b_off..][..len]`.
    pub fn add(&self, a: &Buffer, a_off: usize, b: &Buffer, b_off: usize, len: usize) -> R {
        self.add_periodic(a, a_off, b, b_off, len, len)
    }

    /// `rows` rows of `width` at `a[a_off..]` each `+= b[b_off..][..width]` (a bias).
    pub fn add_rows(
        &self,
        a: &Buffer,
        a_off: usize,
        rows: usize,
        width: usize,
        b: &Buffer,
        b_off: usize,
    ) -> R {
        self.add_periodic(a, a_off, b, b_off, rows * width, width)
    }

    /// `a[a_off + i] += b[b_off + i % period]` for `i < len`.
    fn add_periodic(
        &self,
        a: &Buffer,
        a_off: usize,
        b: &Buffer,
        b_off: usize,
        len: usize,
        period: usize,
    ) -> R {
        if len == 0 {
            return Ok(());
        }
        let mut p = [0u32; 16];
        p[..4].copy_from_slice(&[u(len), u(a_off), u(b_off), u(period)]);
        let binds = Binds {
            b: Some(b),
            ..Default::default()
        };
        self.flat(Op::Add, a, binds, p, len)
    }

    /// SwiGLU over `rows × cols`: `out[out_off + r·cols + c] = silu(g)·u`, gate at
    /// `g_off + r·stride + c` and up at `u_off + r·stride + c` of `src`.
    #[allow(clippy::too_many_arguments)]
    pub fn silu_mul(
        &self,
        out: &Buffer,
        out_off: usize,
        src: &Buffer,
        g_off: usize,
        u_off: usize,
        stride: usize,
        rows: usize,
        cols: usize,
    ) -> R {
        let mut p = [0u32; 16];
        p[..6].copy_from_slice(&[u(rows), u(cols), u(g_off), u(u_off), u(stride), u(out_off)]);
        let binds = Binds {
            b: Some(src),
            ..Default::default()
        };
        self.flat(Op::SiluMul, out, binds, p, rows * cols)
    }

    /// MoE routing of `n` tokens over `experts` router logits each (at `logits_off`): the `k`
    /// expert ids to `ids` and their weights to `weights` (both `[n, k]` from offset 0).
    #[allow(clippy::too_many_arguments)]
    pub fn route(
        &self,
        logits: &Buffer,
        logits_off: usize,
        bias: Option<&Buffer>,
        n: usize,
        experts: usize,
        k: usize,
        sigmoid: bool,
        normalize: bool,
        scale: f32,
        ids: &Buffer,
        weights: &Buffer,
    ) -> R {
        if experts > 1024 {
            return Err(GpuError::Shape {
                what: "experts for GPU routing",
                expected: 1024,
                actual: experts,
            });
        }
        let p = [
            u(n),
            u(experts),
            u(k),
            u(logits_off),
            u32::from(bias.is_some()),
            u32::from(sigmoid),
            u32::from(normalize),
            f(scale),
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let binds = Binds {
            b: Some(logits),
            c: bias,
            u: Some(ids),
            ..Default::default()
        };
        let groups = (n as u32).div_ceil(64).max(1);
        self.op(Op::Route, weights, binds, p, (groups, 1, 1))
    }

    /// Groups `slots` expert ids (`ids[..slots]`, each below `experts`) by expert for
    /// [`Gpu::matvec_by_expert`]: `groups[..=experts]` the offsets, then the slots in expert
    /// order (`groups` holds at least `experts + 1 + slots` values). Ids outside `0..experts`
    /// leave their slot out.
    pub fn bucket(&self, ids: &Buffer, slots: usize, experts: usize, groups: &Buffer) -> R {
        if experts > 1024 {
            return Err(GpuError::Shape {
                what: "experts for GPU grouping",
                expected: 1024,
                actual: experts,
            });
        }
        crate::fits_in("ids", ids.len(), slots)?;
        crate::fits_in("expert groups", groups.len(), experts + 1 + slots)?;
        let mut p = [0u32; 16];
        p[..4].copy_from_slice(&[u(slots), u(experts), 0, 0]);
        let binds = Binds {
            d: Some(ids),
            u: Some(groups),
            ..Default::default()
        };
        self.op(Op::Bucket, &self.dummy_out, binds, p, (1, 1, 1))
    }

    /// `x[x_off + t·d ..] += Σ_j w[w_off + t·k + j] · y[y_off + (t·k + j)·d ..]` for `n` tokens.
    #[allow(clippy::too_many_arguments)]
    pub fn combine(
        &self,
        x: &Buffer,
        x_off: usize,
        y: &Buffer,
        y_off: usize,
        w: &Buffer,
        w_off: usize,
        n: usize,
        d: usize,
        k: usize,
    ) -> R {
        let mut p = [0u32; 16];
        p[..6].copy_from_slice(&[u(n), u(d), u(k), u(x_off), u(y_off), u(w_off)]);
        let binds = Binds {
            b: Some(y),
            c: Some(w),
            ..Default::default()
        };
        self.flat(Op::Combine, x, binds, p, n * d)
    }

    /// Writes `n` rows of width `w` from `src` (offset, row stride) into a `kv`-typed cache
    /// (`base` word, `stride` = [`cache_words`] per row) at rows `first..first + n`.
    #[allow(clippy::too_many_arguments)]
    pub fn kv_store(
        &self,
        kv: KvType,
        cache: &Buffer,
        base: usize,
        stride: usize,
        first: usize,
        src: &Buffer,
        src_off: usize,
        src_stride: usize,
        n: usize,
        w: usize,
    ) -> R {
        let mut p = [0u32; 16];
        p[..7].copy_from_slice(&[
            u(n),
            u(w),
            u(src_off),
            u(src_stride),
            u(base),
            u(stride),
            u(first),
        ]);
        let binds = Binds {
            b: Some(src),
            u: Some(cache),
            ..Default::default()
        };
        let count = match kv {
            KvType::F32 => n * w,
            KvType::F16 | KvType::BF16 => n * w.div_ceil(2),
            KvType::Q8_0 => n,
        };
        // A is not written by the store shaders; bind the source there too (read-only use).
        let out = &self.dummy_out;
        let groups = match kv {
            KvType::Q8_0 => (count as u32).div_ceil(64).max(1),
            _ => (count as u32).div_ceil(WG).max(1),
        };
        let x = groups.min(self.max_wg_dim);
        self.op(Op::Store(kv), out, binds, p, (x, groups.div_ceil(x), 1))
    }

    /// The lightning indexer's scores `[n, t_len]` (masked positions very negative).
    #[allow(clippy::too_many_arguments)]
    pub fn index_scores(
        &self,
        kv: KvType,
        out: &Buffer,
        out_off: usize,
        q: &Buffer,
        q_off: usize,
        w: &Buffer,
        w_off: usize,
        cache: &Buffer,
        key_base: usize,
        key_stride: usize,
        n: usize,
        heads: usize,
        d: usize,
        t_len: usize,
        p0: usize,
        scale: f32,
    ) -> R {
        if heads > 64 {
            return Err(GpuError::Shape {
                what: "indexer heads (at most 64)",
                expected: 64,
                actual: heads,
            });
        }
        let p = [
            u(n),
            u(heads),
            u(d),
            u(t_len),
            u(q_off),
            u(w_off),
            u(key_base),
            u(key_stride),
            u(out_off),
            u(p0),
            f(scale),
            0,
            0,
            0,
            0,
            0,
        ];
        let binds = Binds {
            b: Some(q),
            c: Some(w),
            d: Some(cache),
            ..Default::default()
        };
        self.flat(Op::IndexScores(kv), out, binds, p, n * t_len)?;
        self.counters.kv_bytes.fetch_add(
            visible_keys(n, t_len, p0) * kv.bytes(d as u64),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// The indexer's selection for `n` queries from their scores `[n, t_len]` (at
    /// `scores_off`): an additive mask `[n, t_len]` at `mask_off`, 0 for the `topk` highest
    /// visible keys of each query (ties at the k-th taken in key order) and `hidden` elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn topk_mask(
        &self,
        scores: &Buffer,
        scores_off: usize,
        mask: &Buffer,
        mask_off: usize,
        n: usize,
        t_len: usize,
        p0: usize,
        topk: usize,
        hidden: f32,
    ) -> R {
        let mut p = [0u32; 16];
        p[..7].copy_from_slice(&[
            u(n),
            u(t_len),
            u(p0),
            u(topk),
            u(scores_off),
            u(mask_off),
            f(hidden),
        ]);
        let binds = Binds {
            b: Some(scores),
            ..Default::default()
        };
        let rows = n as u32;
        let gx = rows.min(65535);
        self.op(Op::TopK, mask, binds, p, (gx, rows.div_ceil(gx), 1))
    }

    /// Records a copy of `len` f32 from `src[src_off..]` to `dst[dst_off..]`.
    pub fn copy(
        &self,
        src: &Buffer,
        src_off: usize,
        dst: &Buffer,
        dst_off: usize,
        len: usize,
    ) -> R {
        if len == 0 {
            return Ok(());
        }
        if src_off + len > src.len() || dst_off + len > dst.len() {
            return Err(GpuError::Shape {
                what: "copy range",
                expected: src.len().min(dst.len()),
                actual: (src_off + len).max(dst_off + len),
            });
        }
        let mut pending = self.pending.lock().expect("pending lock");
        let enc = self.encoder(&mut pending);
        enc.copy_buffer_to_buffer(
            &src.buf,
            (src_off * 4) as u64,
            &dst.buf,
            (dst_off * 4) as u64,
            (len * 4) as u64,
        );
        Ok(())
    }
}

type R = Result<(), GpuError>;

/// Keys `n` causal queries from position `p0` see in a cache of `t_len` rows, summed.
fn visible_keys(n: usize, t_len: usize, p0: usize) -> u64 {
    (0..n).map(|i| (p0 + i + 1).min(t_len) as u64).sum()
}
