//! The GLM-5.x forward pass (`docs/glm52-spec.md` §B), written once over [`Ops`]: embeddings,
//! RMSNorm, MLA over a latent KV cache, the DSA lightning indexer (full layers select top-k
//! keys, shared layers reuse the last full layer's selection; exactly dense while the context
//! is ≤ top-k), dense and MoE FFNs, the final norm and head — and the MTP (NextN) block, which
//! is one more such block between its own norms and projection.
//!
//! Two implementations run it: [`crate::cpu_ops::CpuOps`] (candle tensors in memory and the
//! fused quant kernels of `localglm-quants` straight from the memory map) and
//! [`crate::gpu_ops::GpuOps`] (wgpu buffers and the WGSL kernels of `localglm-gpu`, recorded
//! into one submission). A backend keeps what it needs for one pass — the RoPE tables of its
//! positions, the sequence's cache, scratch — and decides how an op runs: the CPU chooses
//! absorbed or expanded MLA by batch size, the GPU runs a MoE layer's routed experts on the CPU
//! kernels when they stay in RAM. A native CUDA or Metal kernel set would be a third
//! implementation.
//!
//! Ops take activations by value where they may work in place (`rms_norm_in`, `rope`,
//! `linear_add`, `moe`) and return them; `slot` names the scratch a new activation goes to (a
//! GPU reuses one buffer per slot from pass to pass; the CPU ignores it).

use crate::model::{Logits, Model};
use crate::weights::{
    Attention, DenseFfn, Ffn, GqaWeights, IndexerWeights, LayerWeights, MlaWeights, MoeWeights,
    MtpWeights, QTensor,
};
use crate::GlmError;

/// Epsilon of the q_a / kv_a RMSNorms (HF class default; llama.cpp uses the model's 1e-5).
const LORA_NORM_EPS: f32 = 1e-6;
/// Epsilon of the indexer key LayerNorm.
const INDEXER_LN_EPS: f32 = 1e-6;

/// Which layer's vectors and cache an op uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// Layer `i` of the trunk.
    Trunk(usize),
    /// The MTP block.
    Mtp,
}

/// A norm's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vector {
    Attn(Site),
    /// The query path's norm: MLA's q_a norm, or a dense model's per-head q norm.
    QNorm(Site),
    /// The key path's norm: MLA's kv_a norm, or a dense model's per-head k norm.
    KNorm(Site),
    /// A dense model's q (0), k (1) or v (2) bias.
    Bias(Site, usize),
    Ffn(Site),
    /// The trunk's final norm.
    Output,
    /// The MTP block's embedding, hidden-state and head norms.
    MtpE,
    MtpH,
    MtpHead,
}

/// The norm of a cache row's first columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowNorm {
    /// RMSNorm by a vector (MLA's kv_a norm).
    Rms(Vector),
    /// The indexer's LayerNorm (weight and bias) of the site.
    Layer,
}

/// How a product's output becomes cache rows: `norm` on its first `cols` columns, then RoPE at
/// the pass's positions on one head as wide as the row (`width`), from column `rope_off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RowPrep {
    pub(crate) norm: RowNorm,
    pub(crate) cols: usize,
    pub(crate) eps: f32,
    pub(crate) width: usize,
    pub(crate) rope_off: usize,
    /// The indexer's key cache, not the latent one.
    pub(crate) index_keys: bool,
}

/// [`Ops::linears`] as one product each, each output in a slot of its own.
pub(crate) fn linears_each<B: Ops + ?Sized>(
    b: &mut B,
    ws: &[&QTensor],
    x: &B::X,
) -> Result<Vec<B::X>, GlmError> {
    const SLOTS: [&str; 3] = ["lin0", "lin1", "lin2"];
    if ws.len() > SLOTS.len() {
        return Err(GlmError::Input(format!("{} products at once", ws.len())));
    }
    ws.iter()
        .zip(SLOTS)
        .map(|(w, slot)| b.linear(w, x, false, slot))
        .collect()
}

/// [`Ops::store_prepared`] as its three steps.
pub(crate) fn store_prepared_steps<B: Ops + ?Sized>(
    b: &mut B,
    at: Site,
    x: B::X,
    p: RowPrep,
) -> Result<(), GlmError> {
    let x = match p.norm {
        RowNorm::Rms(v) => b.rms_norm_in(x, v, p.cols, p.eps)?,
        RowNorm::Layer => b.layer_norm_in(x, at, p.eps)?,
    };
    let x = b.rope(x, 1, p.width, p.rope_off)?;
    match p.index_keys {
        true => b.store_index_keys(at, &x),
        false => b.store_kv(at, &x),
    }
}

/// What a backend provides. `X` is an activation matrix of some rows (tokens) × width.
pub(crate) trait Ops {
    type X: Clone;
    /// A selection of keys per query (the indexer's); `None` in its place means causal.
    type Mask: Clone;

    /// Rows of `table` for `tokens`; with `zero_first` the first row is zero (the MTP block at
    /// position 0).
    fn embed(
        &mut self,
        table: &QTensor,
        tokens: &[u32],
        zero_first: bool,
    ) -> Result<Self::X, GlmError>;
    /// Host rows (`rows × width` floats) as an activation.
    fn upload(
        &mut self,
        values: &[f32],
        width: usize,
        slot: &'static str,
    ) -> Result<Self::X, GlmError>;
    /// `RMSNorm(x)·v` into a new activation.
    fn rms_norm(
        &mut self,
        x: &Self::X,
        v: Vector,
        eps: f32,
        slot: &'static str,
    ) -> Result<Self::X, GlmError>;
    /// The first `cols` columns of every row RMS-normed by `v`, the rest unchanged.
    fn rms_norm_in(
        &mut self,
        x: Self::X,
        v: Vector,
        cols: usize,
        eps: f32,
    ) -> Result<Self::X, GlmError>;
    /// Every `width`-wide head of every row RMS-normed by `v` (a dense model's q/k norms).
    fn rms_norm_heads(
        &mut self,
        x: Self::X,
        v: Vector,
        width: usize,
        eps: f32,
    ) -> Result<Self::X, GlmError>;
    /// `x + v` on every row (a bias).
    fn add_vector(&mut self, x: Self::X, v: Vector) -> Result<Self::X, GlmError>;
    /// LayerNorm with the indexer's weight and bias of `at`.
    fn layer_norm_in(&mut self, x: Self::X, at: Site, eps: f32) -> Result<Self::X, GlmError>;
    /// `x · Wᵀ`; `exact` asks for f32 activations (the router, the indexer's head weights).
    fn linear(
        &mut self,
        w: &QTensor,
        x: &Self::X,
        exact: bool,
        slot: &'static str,
    ) -> Result<Self::X, GlmError>;
    /// `x · Wᵀ` for each of `ws` (at most 3: one activation, several weights; a backend may
    /// run them as one product). Each output has a slot of its own.
    fn linears(&mut self, ws: &[&QTensor], x: &Self::X) -> Result<Vec<Self::X>, GlmError> {
        linears_each(self, ws, x)
    }
    /// `acc + x · Wᵀ`.
    fn linear_add(&mut self, w: &QTensor, x: &Self::X, acc: Self::X) -> Result<Self::X, GlmError>;
    /// RoPE at the pass's positions on columns `off..off + qk_rope` of each of a row's `heads`
    /// heads of `head_width` columns: on adjacent pairs (GLM-5.x, `llama`), or on the halves of
    /// the rotated span for a model whose `Gqa::neox` is set.
    fn rope(
        &mut self,
        x: Self::X,
        heads: usize,
        head_width: usize,
        off: usize,
    ) -> Result<Self::X, GlmError>;
    /// `acc + (silu(x · gateᵀ) ⊙ (x · upᵀ)) · downᵀ`: a SwiGLU FFN (a dense layer's, or the
    /// shared expert) added to the residual stream.
    fn ffn_add(&mut self, f: &DenseFfn, x: &Self::X, acc: Self::X) -> Result<Self::X, GlmError>;
    /// Appends the pass's latent cache rows (`[c_kv ; k_pe]`) to the cache of `at`.
    fn store_kv(&mut self, at: Site, rows: &Self::X) -> Result<(), GlmError>;
    /// Appends a dense model's keys and values, `[k ; v]` per row, to the cache of `at`.
    fn store_kv_pair(&mut self, at: Site, k: &Self::X, v: &Self::X) -> Result<(), GlmError>;
    /// Tokens the cache of `at` holds (this pass's included once stored).
    fn cached(&self, at: Site) -> usize;
    /// Appends the pass's indexer keys to the cache of `at`.
    fn store_index_keys(&mut self, at: Site, keys: &Self::X) -> Result<(), GlmError>;
    /// `rows` prepared by `p` (norm, RoPE) and appended to a cache of `at`: what
    /// `rms_norm_in` (or `layer_norm_in`), `rope` and `store_kv` (or `store_index_keys`) do,
    /// which a backend may do as one op.
    fn store_prepared(&mut self, at: Site, rows: Self::X, p: RowPrep) -> Result<(), GlmError> {
        store_prepared_steps(self, at, rows, p)
    }
    /// The indexer's top-k selection: scores `Σ_h w_h·relu(q_h·k)·scale` over the keys of `at`.
    fn index_select(
        &mut self,
        at: Site,
        q: &Self::X,
        w: &Self::X,
        scale: f32,
    ) -> Result<Self::Mask, GlmError>;
    /// MLA for the queries `q` (`[heads × (nope ; rope)]` per row, RoPE applied) over the
    /// cache of `at`: the heads' outputs `[heads × v_head]` per row, before the output
    /// projection.
    fn attend(
        &mut self,
        at: Site,
        a: &MlaWeights,
        q: &Self::X,
        mask: Option<&Self::Mask>,
    ) -> Result<Self::X, GlmError>;
    /// Causal grouped-query attention of a dense model for the queries `q` (`[heads × head_dim]`
    /// per row, RoPE applied) over the `[k ; v]` cache of `at`: the heads' outputs.
    fn attend_gqa(&mut self, at: Site, q: &Self::X) -> Result<Self::X, GlmError>;
    /// `acc +` the routed experts of `h` (router, selection, expert products, weighted sum;
    /// the shared expert not included).
    fn moe(
        &mut self,
        at: Site,
        m: &MoeWeights,
        h: &Self::X,
        acc: Self::X,
    ) -> Result<Self::X, GlmError>;
    /// `[RMSNorm(x)·vx ; RMSNorm(y)·vy]` per row.
    fn norm_pair(
        &mut self,
        x: (&Self::X, Vector),
        y: (&Self::X, Vector),
        eps: f32,
        slot: &'static str,
    ) -> Result<Self::X, GlmError>;
    /// Rows `first..first + count`.
    fn rows(&mut self, x: Self::X, first: usize, count: usize) -> Result<Self::X, GlmError>;
    /// The activations on the host, each as its rows after one another, read back together
    /// (one wait on a GPU).
    fn read(&mut self, xs: &[&Self::X]) -> Result<Vec<Vec<f32>>, GlmError>;
    /// Everything recorded is submitted (a pass that reads nothing back).
    fn finish(&mut self) -> Result<(), GlmError>;
}

/// What a trunk pass returns: the logits asked for, and (when asked) the final-norm rows of
/// every position, which the MTP block reads.
pub(crate) struct PassOut {
    pub(crate) logits: Vec<Vec<f32>>,
    pub(crate) hidden: Vec<f32>,
}

/// The trunk over `tokens` (positions after what the backend's cache holds).
pub(crate) fn trunk<B: Ops>(
    b: &mut B,
    m: &Model,
    tokens: &[u32],
    want: Option<Logits>,
    hidden: bool,
) -> Result<PassOut, GlmError> {
    let c = &m.config;
    let n = tokens.len();
    let mut x = b.embed(&m.weights.token_embd, tokens, false)?;
    let mut shared = None;
    for (i, lw) in m.weights.layers.iter().enumerate() {
        x = block(b, m, Site::Trunk(i), lw, x, &mut shared)?;
    }
    let first = match (want, hidden) {
        (Some(Logits::All), _) | (_, true) => 0,
        (Some(Logits::Last), false) => n - 1,
        (None, false) => {
            b.finish()?;
            return Ok(PassOut {
                logits: Vec::new(),
                hidden: Vec::new(),
            });
        }
    };
    let x = b.rows(x, first, n - first)?;
    let y = b.rms_norm(&x, Vector::Output, c.rms_eps, "h")?;
    let head = &m.weights.output;
    let logits = match want {
        None => None,
        Some(Logits::All) => Some(b.linear(head, &y, false, "logits")?),
        Some(Logits::Last) => {
            let last = b.rows(y.clone(), n - first - 1, 1)?;
            Some(b.linear(head, &last, false, "logits")?)
        }
    };
    let mut wanted: Vec<&B::X> = logits.iter().collect();
    if hidden {
        wanted.push(&y);
    }
    let mut back = b.read(&wanted)?;
    let hidden = match hidden {
        true => back.pop().expect("read"),
        false => Vec::new(),
    };
    let logits = back.pop().map_or_else(Vec::new, |flat| {
        flat.chunks_exact(head.rows())
            .map(<[f32]>::to_vec)
            .collect()
    });
    Ok(PassOut { logits, hidden })
}

/// The MTP block on `m` pairs at the backend's positions: the trunk's (or a draft's) hidden
/// rows and the next tokens. With `logits`, returns the last position's output after the head
/// norm and its logits (read back together); without, only fills the block's cache.
pub(crate) fn mtp_block<B: Ops>(
    b: &mut B,
    m: &Model,
    w: &MtpWeights,
    hidden: &[f32],
    next: &[u32],
    first_position: bool,
    logits: bool,
) -> Result<(Vec<f32>, Option<Vec<f32>>), GlmError> {
    let c = &m.config;
    let n = next.len();
    let table = w.embed.as_ref().unwrap_or(&m.weights.token_embd);
    let e = b.embed(table, next, first_position)?;
    let h = b.upload(hidden, c.n_embd, "mtp_h")?;
    let eh = b.norm_pair((&e, Vector::MtpE), (&h, Vector::MtpH), c.rms_eps, "mtp_eh")?;
    let u = b.linear(&w.eh_proj, &eh, false, "x")?;
    let x = block(b, m, Site::Mtp, &w.layer, u, &mut None)?;
    let x = b.rows(x, n - 1, 1)?;
    let out = b.rms_norm(&x, Vector::MtpHead, c.rms_eps, "h")?;
    if !logits {
        // Catching up with the trunk: only the block's cache is wanted.
        b.finish()?;
        return Ok((Vec::new(), None));
    }
    let head = w.head.as_ref().unwrap_or(&m.weights.output);
    let logits = b.linear(head, &out, false, "logits")?;
    let mut back = b.read(&[&out, &logits])?;
    let logits = back.pop().expect("read");
    Ok((back.pop().expect("read"), Some(logits)))
}

/// One transformer block on the residual stream `x`: attention over the cache of `at`, then
/// the dense or MoE FFN. `shared` carries the last full indexer layer's selection to the
/// shared layers after it.
fn block<B: Ops>(
    b: &mut B,
    m: &Model,
    at: Site,
    lw: &LayerWeights,
    x: B::X,
    shared: &mut Option<B::Mask>,
) -> Result<B::X, GlmError> {
    let eps = m.config.rms_eps;
    let h = b.rms_norm(&x, Vector::Attn(at), eps, "h")?;
    let o = attention(b, m, at, lw, &h, shared)?;
    let x = b.linear_add(&lw.out, &o, x)?;
    let h = b.rms_norm(&x, Vector::Ffn(at), eps, "h")?;
    match &lw.ffn {
        Ffn::Dense(f) => dense(b, f, &h, x),
        Ffn::Moe(moe) => {
            let x = b.moe(at, moe, &h, x)?;
            match &moe.shared {
                Some(f) => dense(b, f, &h, x),
                None => Ok(x),
            }
        }
    }
}

/// `acc +` the SwiGLU FFN of `h` (a dense layer's, or the shared expert).
fn dense<B: Ops>(b: &mut B, f: &DenseFfn, h: &B::X, acc: B::X) -> Result<B::X, GlmError> {
    b.ffn_add(f, h, acc)
}

/// Attention: MLA for GLM-5.x, GQA for a dense model. Returns the heads' outputs.
fn attention<B: Ops>(
    b: &mut B,
    m: &Model,
    at: Site,
    lw: &LayerWeights,
    h: &B::X,
    shared: &mut Option<B::Mask>,
) -> Result<B::X, GlmError> {
    match &lw.attn {
        Attention::Mla(a) => mla(b, m, at, lw, a, h, shared),
        Attention::Gqa(a) => gqa(b, m, at, a, h),
    }
}

/// A dense model's attention: `q, k, v = W h (+ bias)`, per-head q/k RMSNorm where the model
/// has it, RoPE on q and k, the `[k ; v]` row stored, causal GQA.
fn gqa<B: Ops>(b: &mut B, m: &Model, at: Site, a: &GqaWeights, h: &B::X) -> Result<B::X, GlmError> {
    let c = &m.config;
    let g = c.gqa.expect("a dense model");
    let mut qkv = Vec::with_capacity(3);
    let biases = [&a.q_bias, &a.k_bias, &a.v_bias];
    for (i, x) in b.linears(&[&a.q, &a.k, &a.v], h)?.into_iter().enumerate() {
        qkv.push(match biases[i] {
            Some(_) => b.add_vector(x, Vector::Bias(at, i))?,
            None => x,
        });
    }
    let [q, k, v]: [B::X; 3] = qkv
        .try_into()
        .map_err(|_| GlmError::Input("q/k/v".into()))?;
    let (q, k) = match (&a.q_norm, &a.k_norm) {
        (Some(_), Some(_)) => (
            b.rms_norm_heads(q, Vector::QNorm(at), g.head_dim, c.rms_eps)?,
            b.rms_norm_heads(k, Vector::KNorm(at), g.head_dim, c.rms_eps)?,
        ),
        _ => (q, k),
    };
    let q = b.rope(q, c.n_head, g.head_dim, 0)?;
    let k = b.rope(k, g.n_kv_head, g.head_dim, 0)?;
    b.store_kv_pair(at, &k, &v)?;
    b.attend_gqa(at, &q)
}

/// MLA attention (§B.3): the query path `c_q = RMSNorm(W_qa h)`, `q = W_qb c_q` (RoPE on
/// each head's rope part); the cache row `[RMSNorm(c_kv) ; RoPE(k_pe)]`; the keys each query
/// sees (causal ∩ the indexer's selection); MLA.
fn mla<B: Ops>(
    b: &mut B,
    m: &Model,
    at: Site,
    lw: &LayerWeights,
    a: &MlaWeights,
    h: &B::X,
    shared: &mut Option<B::Mask>,
) -> Result<B::X, GlmError> {
    let c = &m.config;
    // q_a, kv_a and the indexer's key projection all multiply `h`: asked for together.
    let mut products = b
        .linears(&a.input_products(lw.indexer.as_ref()), h)?
        .into_iter();
    let mut next = || {
        products
            .next()
            .ok_or_else(|| GlmError::Input("products".into()))
    };
    let (cq, kv) = (next()?, next()?);
    let idx_k = lw.indexer.as_ref().map(|_| next()).transpose()?;
    let cq = b.rms_norm_in(cq, Vector::QNorm(at), c.q_lora, LORA_NORM_EPS)?;
    let q = b.linear(&a.q_b, &cq, false, "q")?;
    let q = b.rope(q, c.n_head, c.qk_nope + c.qk_rope, c.qk_nope)?;
    let row = RowPrep {
        norm: RowNorm::Rms(Vector::KNorm(at)),
        cols: c.kv_lora,
        eps: LORA_NORM_EPS,
        width: c.kv_width(),
        rope_off: c.kv_lora,
        index_keys: false,
    };
    b.store_prepared(at, kv, row)?;
    // A shared layer reuses the last full layer's selection (the MTP block, past the trunk's
    // table, has its own indexer or none).
    let full = match at {
        Site::Trunk(i) => c.indexer_full.get(i).copied().unwrap_or(true),
        Site::Mtp => true,
    };
    let mask = match (&lw.indexer, idx_k) {
        (Some(ix), Some(k)) => {
            let sel = indexer(b, m, at, ix, k, h, &cq)?;
            *shared = sel.clone();
            sel
        }
        _ if c.has_indexer() && !full => shared.clone(),
        _ => None,
    };
    b.attend(at, a, &q, mask.as_ref())
}

/// The lightning indexer of a full layer (§B.4): stores the pass's keys (`LayerNorm(k)` of
/// `k = W_k h`, computed with the layer's other products of `h`; RoPE on the first rope dims) and, once the context passes top-k, selects per query the
/// top-k keys by `Σ_h w_h·relu(q_h·k)` with `q = W_qb c_q` (RoPE per head) and head weights
/// `w = W_proj h`, both scales folded in as `1/√(d·heads)`. `None`: every causal key.
fn indexer<B: Ops>(
    b: &mut B,
    m: &Model,
    at: Site,
    ix: &IndexerWeights,
    k: B::X,
    h: &B::X,
    cq: &B::X,
) -> Result<Option<B::Mask>, GlmError> {
    let c = &m.config;
    let (heads, d) = (c.idx_heads, c.idx_dim);
    let row = RowPrep {
        norm: RowNorm::Layer,
        cols: d,
        eps: INDEXER_LN_EPS,
        width: d,
        rope_off: 0,
        index_keys: true,
    };
    b.store_prepared(at, k, row)?;
    if b.cached(at) <= c.idx_topk {
        return Ok(None);
    }
    let q = b.linear(&ix.q_b, cq, false, "idx_qb")?;
    let q = b.rope(q, heads, d, 0)?;
    let w = b.linear(&ix.proj, h, true, "idx_wb")?;
    let scale = 1.0 / ((d * heads) as f32).sqrt();
    Ok(Some(b.index_select(at, &q, &w, scale)?))
}
