//! MLA attention in absorbed form (flash-style, see `shaders/ops/attention.wgsl`) and a dense
//! model's causal grouped-query attention: their dispatches, constants and arguments.

use super::{f, u, Binds, Op, R};
use crate::{Buffer, Gpu, GpuError};
use localglm_quants::KvType;
use std::sync::atomic::Ordering;

/// MLA attention: heads per workgroup (each cache row read serves them all). Sixteen, with
/// 128 invocations of 4 latent columns each, hold as many accumulators per invocation as
/// eight heads on 64 invocations of 8 columns did, and read each cache row half as often.
const ATTN_HEADS: usize = 16;
/// MLA attention: invocations per workgroup (and keys per tile).
const ATTN_WG: usize = 128;
/// MLA attention: latent columns per invocation, so `kv_lora` ≤ `ATTN_WG · ATTN_COLS` (512,
/// every GLM-5.x release's).
const ATTN_COLS: usize = 4;
/// MLA attention: the most chunks a query's keys are split into (the partial results merged
/// after), for parallel work when a batch has few queries (decode).
pub(crate) const ATTN_SPLITS: usize = 8;
/// MLA attention: the fewest keys in a chunk (a multiple of `ATTN_WG`).
const ATTN_CHUNK_MIN: usize = 256;

/// Scratch words [`Gpu::attention`] needs for `n` queries of `heads` heads: each chunk's
/// partial result (maximum, sum, `kv_lora` weighted values) per query and head.
pub fn attention_scratch_words(n: usize, heads: usize, kv_lora: usize) -> usize {
    n * heads * ATTN_SPLITS * (kv_lora + 2)
}

/// The constants and the chunking rule the attention shaders share: the keys a query sees
/// (`visible`) in chunks of at least `ATTN_CHUNK_MIN`, whole tiles of `ATTN_WG`, at most
/// `ATTN_SPLITS` of them.
pub(super) fn attention_consts() -> String {
    format!(
        "const HG: u32 = {ATTN_HEADS}u;\nconst CPT: u32 = {ATTN_COLS}u;\n\
         const AWG: u32 = {ATTN_WG}u;\n\
         const HG_TK: u32 = {}u;\nconst HG_CPT: u32 = {}u;\n\
         const SPLITS: u32 = {ATTN_SPLITS}u;\nconst CHUNK_MIN: u32 = {ATTN_CHUNK_MIN}u;\n\
         fn chunk_len(visible: u32) -> u32 {{\n    \
         let per = (visible + SPLITS - 1u) / SPLITS;\n    \
         return max(CHUNK_MIN, (per + AWG - 1u) / AWG * AWG);\n}}\n",
        ATTN_HEADS * ATTN_WG,
        ATTN_HEADS * ATTN_COLS
    )
}

impl Gpu {
    /// MLA attention in absorbed form for `n` queries over a `kv`-typed latent cache of `t_len`
    /// rows `[c_kv (kv_lora) ; k_pe (rope)]`: two dispatches, the chunks' partial results into
    /// the scratch, then their merge into `out`; see `shaders/ops/attention.wgsl`.
    pub fn attention(&self, a: &AttentionArgs<'_>) -> R {
        let lora_max = ATTN_WG * ATTN_COLS;
        if a.kv_lora > lora_max {
            return Err(GpuError::Shape {
                what: "MLA latent width (at most 512)",
                expected: lora_max,
                actual: a.kv_lora,
            });
        }
        let words = attention_scratch_words(a.n, a.heads, a.kv_lora);
        if a.scratch_off + words > a.scratch.len() {
            return Err(GpuError::Shape {
                what: "MLA attention scratch",
                expected: a.scratch_off + words,
                actual: a.scratch.len(),
            });
        }
        let p = [
            u(a.n),
            u(a.heads),
            u(a.t_len),
            u(a.p0),
            u(a.kv_lora),
            u(a.rope),
            u(a.qabs_off),
            u(a.qpe_off),
            u(a.qpe_token_stride),
            u(a.qpe_head_stride),
            u(a.key_base),
            u(a.key_stride),
            f(a.scale),
            u32::from(a.mask.is_some()),
            u(a.out_off),
            u(a.scratch_off),
        ];
        let binds = Binds {
            b: Some(a.qabs),
            c: Some(a.q),
            d: Some(a.cache),
            u: Some(a.scratch),
            m: a.mask,
        };
        let groups = a.heads.div_ceil(ATTN_HEADS);
        self.op(
            Op::Attention(a.kv),
            a.out,
            binds,
            p,
            (u(a.n), u(groups), ATTN_SPLITS as u32),
        )?;
        let binds = Binds {
            u: Some(a.scratch),
            ..Default::default()
        };
        self.op(Op::AttentionMerge, a.out, binds, p, (u(a.n), u(a.heads), 1))?;
        // Cache bytes the kernel loads: per head group, each key it keeps once whole (scores)
        // and its latent part again (values).
        let row = a.kv.bytes((a.kv_lora + a.rope) as u64) + a.kv.bytes(a.kv_lora as u64);
        let keys: u64 = (0..a.n)
            .map(|i| {
                let visible = (a.p0 + i + 1).min(a.t_len);
                match a.mask {
                    Some(_) => visible.min(a.selected) as u64,
                    None => visible as u64,
                }
            })
            .sum();
        self.counters
            .kv_bytes
            .fetch_add(keys * groups as u64 * row, Ordering::Relaxed);
        Ok(())
    }

    /// Causal grouped-query attention for `n` queries over a `kv`-typed cache of `t_len`
    /// `[k ; v]` rows; see `shaders/ops/attention_gqa.wgsl` for the layout.
    pub fn attention_gqa(&self, a: &GqaAttentionArgs<'_>) -> R {
        if a.kv_heads == 0 || !a.heads.is_multiple_of(a.kv_heads) {
            return Err(GpuError::Shape {
                what: "query heads per KV head",
                expected: a.kv_heads,
                actual: a.heads,
            });
        }
        let mut p = [0u32; 16];
        p[..13].copy_from_slice(&[
            u(a.n),
            u(a.heads),
            u(a.t_len),
            u(a.p0),
            u(a.head_dim),
            u(a.heads / a.kv_heads),
            u(a.q_off),
            u(a.v_base),
            u(a.key_base),
            u(a.key_stride),
            f(a.scale),
            u(a.out_off),
            u(a.scratch_off),
        ]);
        let binds = Binds {
            b: Some(a.q),
            d: Some(a.cache),
            u: Some(a.scratch),
            ..Default::default()
        };
        self.op(
            Op::AttentionGqa(a.kv),
            a.out,
            binds,
            p,
            (u(a.n), u(a.heads), 1),
        )
    }
}

/// Arguments of [`Gpu::attention`].
pub struct AttentionArgs<'a> {
    pub kv: KvType,
    /// Output `[n, heads, kv_lora]` at `out_off`.
    pub out: &'a Buffer,
    pub out_off: usize,
    /// Absorbed queries `[n, heads, kv_lora]` at `qabs_off`.
    pub qabs: &'a Buffer,
    pub qabs_off: usize,
    /// The rope part of the queries at `qpe_off + i·qpe_token_stride + h·qpe_head_stride`.
    pub q: &'a Buffer,
    pub qpe_off: usize,
    pub qpe_token_stride: usize,
    pub qpe_head_stride: usize,
    /// The latent cache and where its rows start (words) and their stride.
    pub cache: &'a Buffer,
    pub key_base: usize,
    pub key_stride: usize,
    /// Scratch of [`attention_scratch_words`] words at `scratch_off`.
    pub scratch: &'a Buffer,
    pub scratch_off: usize,
    /// Additive mask `[n, t_len]` (indexer selection: 0 kept, below -1e29 left out), else
    /// causal only.
    pub mask: Option<&'a Buffer>,
    /// Keys the mask keeps per query (the indexer's top-k), for the count of cache bytes read.
    pub selected: usize,
    pub n: usize,
    pub heads: usize,
    pub t_len: usize,
    /// Position of the first query.
    pub p0: usize,
    pub kv_lora: usize,
    pub rope: usize,
    pub scale: f32,
}

/// Arguments of [`Gpu::attention_gqa`].
pub struct GqaAttentionArgs<'a> {
    pub kv: KvType,
    /// Output `[n, heads, head_dim]` at `out_off`.
    pub out: &'a Buffer,
    pub out_off: usize,
    /// Queries `[n, heads, head_dim]` at `q_off`, RoPE applied.
    pub q: &'a Buffer,
    pub q_off: usize,
    /// The cache, where its rows start (words), their stride, and where in a row the values
    /// start (words; the keys `[kv_heads, head_dim]` come first).
    pub cache: &'a Buffer,
    pub key_base: usize,
    pub key_stride: usize,
    pub v_base: usize,
    /// Scratch of `n·heads·t_len` words at `scratch_off`.
    pub scratch: &'a Buffer,
    pub scratch_off: usize,
    pub n: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub t_len: usize,
    /// Position of the first query.
    pub p0: usize,
    pub scale: f32,
}
