//! The MTP (NextN) block GLM-5.x files carry after the trunk (spec §B.9), run as the drafter
//! of speculative decoding ([`crate::spec`]).
//!
//! Wiring (as vLLM's and llama.cpp's glm-dsa drafting; `scripts/make_glm_fixtures.py` holds the
//! reference): at position `i` the block reads the trunk's hidden state after its final norm,
//! `h_i`, and the embedding of the next token `t_{i+1}` (zeroed at position 0, vLLM's rule):
//! `u_i = eh_proj · [RMSNorm_enorm(emb(t_{i+1})) ; RMSNorm_hnorm(h_i)]`, runs one full block on
//! `u` (MLA over its own cache, its own indexer, MoE), and `head · RMSNorm_head_norm(·)`
//! predicts `t_{i+2}`. A further draft feeds the block's own output after that norm in place of
//! `h` (llama.cpp's glm-dsa drafting), one position on.
//!
//! Its cache follows the trunk's: after a pass over tokens up to position `L-1` it holds the
//! pairs `0..L-2` and the pass's last hidden rows, so drafting from the next token is one step.
//! Drafted entries are dropped again ([`Model::mtp_rewind`]) before the drafts are verified; the
//! verifying pass then fills the block's cache from the trunk's own hidden states.

use crate::cache::{GrowBuf, LayerCache};
use crate::config::GlmConfig;
use crate::cpu_ops::CpuOps;
use crate::model::{vec_tensor, KvType, LayerVecs, Model};
use crate::weights::{MtpWeights, Weights};
use crate::GlmError;
use candle_core::{Device, Tensor};
use localglm_gguf::GgufModel;

/// How many of a pass's last hidden rows a cache keeps: rolling back a verification of up to
/// this many tokens, or cutting a cache at one of its last positions, needs no recomputation.
const KEEP_ROWS: usize = 16;

/// The loaded block.
pub(crate) struct MtpBlock {
    pub(crate) w: MtpWeights,
    pub(crate) vecs: LayerVecs,
    pub(crate) enorm: Tensor,
    pub(crate) hnorm: Tensor,
    pub(crate) head_norm: Tensor,
}

impl MtpBlock {
    pub(crate) fn load(
        gguf: &GgufModel,
        c: &GlmConfig,
        dev: &Device,
    ) -> Result<Option<Self>, GlmError> {
        // A file whose MTP block is incomplete (some conversions drop it but keep the count)
        // still loads, without drafting.
        let w = match Weights::load_mtp(gguf, c) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!("MTP block not loaded, no drafting: {e}");
                return Ok(None);
            }
        };
        Ok(Some(Self {
            vecs: LayerVecs::of(&w.layer, gguf, dev)?,
            enorm: vec_tensor(&w.enorm, gguf, dev)?,
            hnorm: vec_tensor(&w.hnorm, gguf, dev)?,
            head_norm: vec_tensor(&w.head_norm, gguf, dev)?,
            w,
        }))
    }

    pub(crate) fn new_cache(&self, c: &GlmConfig, kv: KvType) -> MtpCache {
        MtpCache {
            layer: LayerCache {
                kv: GrowBuf::new(c.kv_width(), kv),
                idx_k: self
                    .w
                    .layer
                    .indexer
                    .as_ref()
                    .map(|_| GrowBuf::new(c.idx_dim, kv)),
            },
            next: Vec::new(),
            rows: Vec::new(),
            rows_from: 0,
            width: c.n_embd,
            draft: None,
            ok: true,
        }
    }
}

/// A draft in progress: where the block's cache stood before it, and the block's last output.
#[derive(Debug)]
struct Draft {
    start: usize,
    hidden: Vec<f32>,
}

/// The MTP block's part of a sequence's cache.
#[derive(Debug)]
pub(crate) struct MtpCache {
    layer: LayerCache,
    /// The token each pair was made with (`next[q]` = token `q + 1`), so that a pair made for a
    /// token that a cut dropped is not taken for one made for a different token.
    next: Vec<u32>,
    /// The trunk's last hidden rows (after its final norm), positions `rows_from..`.
    rows: Vec<f32>,
    rows_from: usize,
    width: usize,
    draft: Option<Draft>,
    /// False once the block's cache fell behind the trunk's with no way to catch up (then no
    /// drafting for this sequence).
    ok: bool,
}

impl MtpCache {
    /// Pairs held (positions `0..entries`).
    pub(crate) fn entries(&self) -> usize {
        self.next.len()
    }

    fn row(&self, pos: usize) -> Option<&[f32]> {
        let i = pos.checked_sub(self.rows_from)?;
        self.rows.get(i * self.width..(i + 1) * self.width)
    }

    fn cut(&mut self, entries: usize) {
        self.next.truncate(entries);
        self.layer.kv.truncate(entries);
        if let Some(k) = &mut self.layer.idx_k {
            k.truncate(entries);
        }
    }

    /// Drops a draft's entries.
    pub(crate) fn rewind(&mut self) {
        if let Some(d) = self.draft.take() {
            self.cut(d.start);
        }
    }

    /// Whether the trunk's hidden row at `pos` is kept.
    pub(crate) fn has_row(&self, pos: usize) -> bool {
        self.row(pos).is_some()
    }

    /// Follows a cut of the trunk's cache to `main_len` tokens: at most `pairs` pairs stay,
    /// and the rows before `main_len`.
    pub(crate) fn follow(&mut self, main_len: usize, pairs: usize) {
        self.rewind();
        self.cut(self.entries().min(pairs));
        let keep = main_len
            .saturating_sub(self.rows_from)
            .min(self.rows.len() / self.width);
        self.rows.truncate(keep * self.width);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.layer.kv.bytes()
            + self.layer.idx_k.as_ref().map_or(0, GrowBuf::bytes)
            + self.rows.capacity() * 4
    }

    /// A copy that holds `entries` pairs and the rows before `rows_to`.
    pub(crate) fn fork(&self, entries: usize, rows_to: usize) -> candle_core::Result<Self> {
        let start = self.draft.as_ref().map_or(self.entries(), |d| d.start);
        let entries = entries.min(start);
        let keep = rows_to
            .saturating_sub(self.rows_from)
            .min(self.rows.len() / self.width);
        Ok(Self {
            layer: LayerCache {
                kv: self.layer.kv.fork(entries)?,
                idx_k: self
                    .layer
                    .idx_k
                    .as_ref()
                    .map(|k| k.fork(entries))
                    .transpose()?,
            },
            next: self.next[..entries.min(self.next.len())].to_vec(),
            rows: self.rows[..keep * self.width].to_vec(),
            rows_from: self.rows_from,
            width: self.width,
            draft: None,
            ok: self.ok,
        })
    }
}

impl Model {
    /// Whether this model drafts with its MTP block (loaded with `RuntimeOptions::mtp`, from a
    /// file that has one).
    pub fn has_mtp(&self) -> bool {
        self.mtp.is_some()
    }

    /// Whether a draft can start from `cache` now (its block is in step with the trunk).
    pub fn can_draft(&self, cache: &crate::KvCache) -> bool {
        match (&self.mtp, &cache.mtp) {
            (Some(_), Some(m)) => {
                m.ok && m.draft.is_none()
                    && cache.len > 0
                    && m.entries() + 1 == cache.len
                    && m.has_row(cache.len - 1)
            }
            _ => false,
        }
    }

    /// One draft step: the block on the next token `token` (the first step: the token that
    /// follows the cache; later steps: the previous step's draft). Returns the logits of the
    /// token after it. [`Model::mtp_rewind`] drops the steps again.
    pub fn mtp_step(&self, cache: &mut crate::KvCache, token: u32) -> Result<Vec<f32>, GlmError> {
        let block = self
            .mtp
            .as_ref()
            .ok_or_else(|| GlmError::Input("this model has no MTP block loaded".into()))?;
        if token as usize >= self.config.vocab {
            return Err(GlmError::Input(format!(
                "token id {token} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        let first = cache.mtp.as_ref().is_some_and(|m| m.draft.is_none());
        if first && !self.can_draft(cache) {
            return Err(GlmError::Input(
                "the MTP cache is not in step with the trunk".into(),
            ));
        }
        let len = cache.len;
        let mc = cache.mtp.as_mut().expect("checked above");
        let pos = mc.entries();
        if pos + 1 > self.max_context() {
            return Err(GlmError::ContextFull {
                needed: pos + 1,
                limit: self.max_context(),
            });
        }
        let hidden = match &mc.draft {
            Some(d) => d.hidden.clone(),
            None => mc.row(len - 1).expect("checked above").to_vec(),
        };
        let mut out = None;
        rayon::scope(|_| out = Some(self.mtp_block(block, cache, &hidden, &[token], pos, true)));
        let (rows, logits) = out.expect("scope ran the block")?;
        let mc = cache.mtp.as_mut().expect("checked above");
        let start = mc.draft.as_ref().map_or(pos, |d| d.start);
        mc.draft = Some(Draft {
            start,
            hidden: rows,
        });
        Ok(logits.expect("asked for logits"))
    }

    /// Drops the entries of the draft in progress, if any.
    pub fn mtp_rewind(&self, cache: &mut crate::KvCache) {
        if let Some(m) = &mut cache.mtp {
            m.rewind();
        }
    }

    /// After a trunk pass over `tokens` (positions `p0..`, final-norm rows `ys`): runs the block
    /// over the pairs that became complete and keeps the pass's last rows.
    pub(crate) fn mtp_catch_up(
        &self,
        cache: &mut crate::KvCache,
        tokens: &[u32],
        p0: usize,
        ys: &[f32],
    ) -> Result<(), GlmError> {
        let (Some(block), Some(mc)) = (&self.mtp, cache.mtp.as_mut()) else {
            return Ok(());
        };
        mc.rewind();
        let n = tokens.len();
        let d = self.config.n_embd;
        let e = mc.entries();
        if e > p0 {
            // Pairs past the pass's start are stale (they were made for other tokens).
            mc.cut(p0);
        }
        if p0 > 0 && mc.entries() == p0 && mc.next.get(p0 - 1) != Some(&tokens[0]) {
            // The pair before the pass was made for another token than the pass's first.
            mc.cut(p0 - 1);
        }
        let e = mc.entries();
        if e + 1 < p0 || (e + 1 == p0 && !mc.has_row(p0 - 1)) {
            mc.ok = false;
        }
        if mc.ok && p0 + n >= e + 2 {
            // Pairs q = e ..= p0+n-2: (h_q, t_{q+1}).
            let last = p0 + n - 2;
            let mut hidden = Vec::with_capacity((last + 1 - e) * d);
            let mut next = Vec::with_capacity(last + 1 - e);
            for q in e..=last {
                match q.checked_sub(p0) {
                    Some(i) => hidden.extend_from_slice(&ys[i * d..(i + 1) * d]),
                    None => hidden.extend_from_slice(mc.row(q).expect("checked above")),
                }
                next.push(tokens[q + 1 - p0]);
            }
            self.mtp_block(block, cache, &hidden, &next, e, false)?;
        }
        let mc = cache.mtp.as_mut().expect("checked above");
        // The last KEEP_ROWS rows, this pass's after the earlier ones where they join up.
        if mc.rows_from + mc.rows.len() / d != p0 {
            mc.rows.clear();
            mc.rows_from = p0;
        }
        mc.rows.extend_from_slice(ys);
        let have = mc.rows.len() / d;
        if have > KEEP_ROWS {
            mc.rows.drain(..(have - KEEP_ROWS) * d);
            mc.rows_from += have - KEEP_ROWS;
        }
        Ok(())
    }

    /// The block on `m` pairs at positions `q0..`: trunk (or draft) hidden rows and next
    /// tokens. With `logits`, returns the last output after the head norm (`n_embd` floats)
    /// and its logits; without, nothing (the block's cache filled only).
    fn mtp_block(
        &self,
        block: &MtpBlock,
        cache: &mut crate::KvCache,
        hidden: &[f32],
        next: &[u32],
        q0: usize,
        logits: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>), GlmError> {
        let (w, first) = (&block.w, q0 == 0);
        let mc = cache.mtp.as_mut().expect("the block has its cache");
        let out = match (&self.gpu, cache.device.as_mut()) {
            (Some(gw), Some(dkv)) => {
                let mut ops = crate::gpu_ops::GpuOps::new(self, gw, dkv, q0, next.len())?;
                crate::pass::mtp_block(&mut ops, self, w, hidden, next, first, logits)?
            }
            _ => {
                let layer = Some(&mut mc.layer);
                let mut ops = CpuOps::new(self, &mut [], layer, q0, next.len())?;
                crate::pass::mtp_block(&mut ops, self, w, hidden, next, first, logits)?
            }
        };
        mc.next.extend_from_slice(next);
        Ok(out)
    }
}
