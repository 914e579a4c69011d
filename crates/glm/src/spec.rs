//! Token generation, with speculative decoding by the model's own MTP block.
//!
//! [`Decoder::step`] returns the tokens that follow. Without drafting that is one forward pass
//! and one sampled token. With drafting (`draft` > 0, a model loaded with its MTP block) it
//! drafts up to `draft` tokens with the block, verifies them with one batched trunk pass, and
//! accepts by the standard rule (Leviathan et al. 2023; Chen et al. 2023): draft `d` drawn from
//! the drafter's distribution `q` is kept with probability `min(1, p(d)/q(d))`, where `p` is
//! the trunk's; at the first rejection a token is drawn from `norm(max(0, p − q))`; when every
//! draft is kept, one more is drawn from the trunk's last row. `p` and `q` are both the
//! [`Sampler`]'s final distributions (temperature, top-k, top-p, min-p and the repetition
//! penalty applied), so the output follows exactly the distribution the sampler gives without
//! drafting; at temperature 0 both are one-hot and the rule is "keep while the argmax agrees".
//! Rejected drafts are cut from the trunk's and the block's caches.

use crate::model::{KvCache, Logits, Model};
use crate::sampler::{Dist, Sampler};
use crate::GlmError;

/// Drafting figures of a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DraftStats {
    /// Verification passes run.
    pub rounds: u64,
    pub drafted: u64,
    pub accepted: u64,
}

impl DraftStats {
    /// Accepted drafts per drafted token (0 when none were drafted).
    pub fn acceptance(&self) -> f64 {
        match self.drafted {
            0 => 0.0,
            n => self.accepted as f64 / n as f64,
        }
    }
}

/// How many tokens to draft per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Drafting {
    /// As many (0 to [`MAX_AUTO_DRAFT`]) as pay on this machine: chosen each step from the
    /// acceptance measured so far and the measured cost of verifying k+1 tokens against
    /// decoding one.
    #[default]
    Auto,
    /// Exactly this many (0: no drafting).
    Fixed(usize),
}

/// The most tokens [`Drafting::Auto`] drafts (acceptance falls with the distance: llama.cpp
/// measured 0.83 / 0.65 / 0.49 at draft positions 1–3 on GLM-5.2).
pub const MAX_AUTO_DRAFT: usize = 3;

/// Tokens one round yields with `drafts` drafts when each is accepted with probability
/// `acceptance` (and only after the one before it): 1 + a + a² + … + a^k.
pub fn expected_tokens(acceptance: f64, drafts: usize) -> f64 {
    (0..=drafts).map(|j| acceptance.powi(j as i32)).sum()
}

/// The most tokens a fixed setting may draft: a verification pass of up to `SMALL_BATCH` tokens
/// gives each position exactly decode's logits (weight products as each token's mat-vec,
/// attention and indexer per query), which keeps greedy drafting's text that of no drafting.
pub const MAX_DRAFT: usize = crate::model::SMALL_BATCH - 1;

/// A `--mtp` / setting value that is not `auto`, `off` or a draft count.
#[derive(Debug, thiserror::Error)]
#[error("MTP drafts must be auto, off or 0 to {MAX_DRAFT}, not {0:?}")]
pub struct BadDrafting(pub String);

impl std::str::FromStr for Drafting {
    type Err = BadDrafting;

    fn from_str(s: &str) -> Result<Self, BadDrafting> {
        match s {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Fixed(0)),
            n => match n.parse::<usize>() {
                Ok(k) if k <= MAX_DRAFT => Ok(Self::Fixed(k)),
                _ => Err(BadDrafting(n.to_string())),
            },
        }
    }
}

impl std::fmt::Display for Drafting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(k) => write!(f, "{k}"),
        }
    }
}

/// What [`Drafting::Auto`] has measured, carried from one generation to the next
/// ([`Decoder::tuning`], [`Decoder::with_tuning`]): the time of a whole step — drafting, the
/// pass and sampling — with k drafts (index k; 0 is a plain decode step), and acceptance as
/// decayed counts of accepted drafts and of rejections (a per-draft rate that rounds whose
/// drafts were all accepted do not bias).
#[derive(Debug, Clone)]
pub struct Tuning {
    step_s: [f64; MAX_AUTO_DRAFT + 1],
    accepted: f64,
    rejected: f64,
    steps_since_draft: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        // Priors until measured: a published-like acceptance (0.7) and rounds that cost little
        // more than a decode step (decoding reads the weights once, whatever the batch).
        Self {
            step_s: [0.0; MAX_AUTO_DRAFT + 1],
            accepted: 7.0,
            rejected: 3.0,
            steps_since_draft: 0,
        }
    }
}

impl Tuning {
    /// Acceptance per drafted token measured so far.
    pub fn acceptance(&self) -> f64 {
        self.accepted / (self.accepted + self.rejected).max(1e-9)
    }

    /// Drafts per step that maximise expected tokens per second (0 when drafting does not
    /// pay; then one step in 16 drafts one token to keep measuring — one in 256 once the
    /// measured costs say it could not pay even at 90 % acceptance).
    fn choose(&mut self) -> usize {
        let one = self.step_s[0];
        if one <= 0.0 {
            return 0;
        }
        let cost = |k: usize| match self.step_s[k] {
            0.0 => one * (1.0 + 0.15 * k as f64),
            t => t,
        };
        let tokens = expected_tokens;
        let a = self.acceptance();
        let mut best = (1.0 / one, 0);
        for k in 1..=MAX_AUTO_DRAFT {
            let rate = tokens(a, k) / cost(k);
            if rate > best.0 * 1.02 {
                best = (rate, k);
            }
        }
        if best.1 > 0 {
            return best.1;
        }
        let hopeless = (1..=MAX_AUTO_DRAFT).all(|k| tokens(0.9, k) / cost(k) < 1.0 / one);
        self.steps_since_draft += 1;
        if self.steps_since_draft >= if hopeless { 256 } else { 16 } {
            self.steps_since_draft = 0;
            return 1;
        }
        0
    }

    fn time(&mut self, k: usize, secs: f64) {
        if let Some(t) = self.step_s.get_mut(k) {
            *t = if *t == 0.0 {
                secs
            } else {
                0.8 * *t + 0.2 * secs
            };
        }
    }

    fn count(&mut self, accepted: usize, rejected: bool) {
        self.accepted = 0.9 * self.accepted + accepted as f64;
        self.rejected = 0.9 * self.rejected + if rejected { 1.0 } else { 0.0 };
    }
}

/// Generates tokens for one sequence.
pub struct Decoder<'m> {
    model: &'m Model,
    pub sampler: Sampler,
    drafting: Drafting,
    tuning: Tuning,
    pub stats: DraftStats,
}

impl<'m> Decoder<'m> {
    /// A model without its MTP block loaded decodes one token per pass whatever `drafting`.
    pub fn new(model: &'m Model, sampler: Sampler, drafting: Drafting) -> Self {
        let drafting = if model.has_mtp() {
            drafting
        } else {
            Drafting::Fixed(0)
        };
        Self {
            model,
            sampler,
            drafting,
            tuning: Tuning::default(),
            stats: DraftStats::default(),
        }
    }

    /// Starts from what earlier generations measured (Auto).
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// What Auto has measured so far, to carry to the next generation.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Whether this decoder drafts at all.
    pub fn drafts(&self) -> bool {
        self.drafting != Drafting::Fixed(0)
    }

    /// Feeds `pending` — the tokens of `history` (the whole context so far, `pending` last)
    /// that `cache` has not seen — and returns the tokens that follow: one, or with drafting up
    /// to `draft + 1`. Afterwards the cache holds `history` and every returned token but the
    /// last (which the next call feeds).
    pub fn step(
        &mut self,
        cache: &mut KvCache,
        history: &[u32],
        pending: &[u32],
    ) -> Result<Vec<u32>, GlmError> {
        let model = self.model;
        let want = match self.drafting {
            Drafting::Fixed(k) => k,
            Drafting::Auto => self.tuning.choose(),
        };
        let room = model.max_context().saturating_sub(cache.len() + 1);
        let k = want.min(room);
        let t0 = std::time::Instant::now();
        if k == 0 || pending.len() != 1 || !model.can_draft(cache) {
            let rows = model.forward(pending, cache, Logits::Last)?;
            let next = self.sampler.sample(&rows[0], history);
            if pending.len() == 1 {
                self.tuning.time(0, t0.elapsed().as_secs_f64());
            }
            return Ok(vec![next]);
        }
        // Draft k tokens with the MTP block, each from its own distribution.
        let mut ctx = history.to_vec();
        let mut drafts = Vec::with_capacity(k);
        let mut qs: Vec<Dist> = Vec::with_capacity(k);
        let mut tok = pending[0];
        for _ in 0..k {
            let logits = match model.mtp_step(cache, tok) {
                Ok(l) => l,
                Err(e) => {
                    model.mtp_rewind(cache);
                    return Err(e);
                }
            };
            let q = self.sampler.distribution(&logits, &ctx);
            tok = self.sampler.pick(&q);
            ctx.push(tok);
            drafts.push(tok);
            qs.push(q);
        }
        model.mtp_rewind(cache);

        // Verify: one trunk pass over the pending token and the drafts.
        let base = cache.len();
        let mut batch = Vec::with_capacity(k + 1);
        batch.push(pending[0]);
        batch.extend_from_slice(&drafts);
        let rows = model.forward(&batch, cache, Logits::All)?;
        let mut out = Vec::with_capacity(k + 1);
        let mut ctx = history.to_vec();
        let mut accepted = 0;
        for (i, (&d, q)) in drafts.iter().zip(&qs).enumerate() {
            let p = self.sampler.distribution(&rows[i], &ctx);
            let (pd, qd) = (p.p(d), q.p(d));
            if qd > 0.0 && self.sampler.uniform() < (pd / qd).min(1.0) {
                out.push(d);
                ctx.push(d);
                accepted += 1;
                continue;
            }
            out.push(self.sampler.pick(&residual(&p, q)));
            break;
        }
        let all = accepted == k;
        if all {
            let p = self.sampler.distribution(&rows[k], &ctx);
            out.push(self.sampler.pick(&p));
        } else {
            // Keep the pending token and the accepted drafts; the last token is fed next.
            cache.truncate(base + 1 + accepted);
        }
        self.stats.rounds += 1;
        self.stats.drafted += k as u64;
        self.stats.accepted += accepted as u64;
        self.tuning.time(k, t0.elapsed().as_secs_f64());
        self.tuning.count(accepted, !all);
        Ok(out)
    }
}

/// `norm(max(0, p − q))`: what to draw from after a rejection (`p` itself where `q` covers it
/// nowhere less, which a rejection rules out up to rounding).
fn residual(p: &Dist, q: &Dist) -> Dist {
    // q by token (a full-vocabulary distribution would make a search per token quadratic).
    let qs: std::collections::HashMap<u32, f32> = q.0.iter().copied().collect();
    let mut r: Vec<(u32, f32)> =
        p.0.iter()
            .map(|&(t, pt)| (t, (pt - qs.get(&t).copied().unwrap_or(0.0)).max(0.0)))
            .filter(|c| c.1 > 0.0)
            .collect();
    if r.is_empty() {
        return p.clone();
    }
    let s: f32 = r.iter().map(|c| c.1).sum();
    r.iter_mut().for_each(|c| c.1 /= s);
    r.sort_by(|a, b| b.1.total_cmp(&a.1));
    Dist(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::SamplerConfig;

    /// The accept/reject rule alone, on fixed p and q: the first emitted token follows p.
    #[test]
    fn the_acceptance_rule_leaves_the_target_distribution() {
        let p = Dist(vec![(0, 0.5), (1, 0.3), (2, 0.15), (3, 0.05)]);
        for q in [
            Dist(vec![(3, 0.6), (2, 0.3), (0, 0.1)]),
            p.clone(),
            Dist(vec![(1, 1.0)]),
        ] {
            let mut s = Sampler::new(SamplerConfig {
                seed: 11,
                ..Default::default()
            });
            let n = 200_000;
            let mut counts = [0usize; 4];
            for _ in 0..n {
                let d = s.pick(&q);
                let (pd, qd) = (p.p(d), q.p(d));
                let t = if s.uniform() < (pd / qd).min(1.0) {
                    d
                } else {
                    s.pick(&residual(&p, &q))
                };
                counts[t as usize] += 1;
            }
            for (t, &c) in counts.iter().enumerate() {
                let want = p.p(t as u32) as f64;
                let got = c as f64 / n as f64;
                // 5 standard deviations of a binomial proportion.
                let sd = (want * (1.0 - want) / n as f64).sqrt();
                assert!(
                    (got - want).abs() < 5.0 * sd + 1e-9,
                    "token {t}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_residual_is_the_positive_part_normalised() {
        let p = Dist(vec![(0, 0.5), (1, 0.5)]);
        let q = Dist(vec![(0, 0.9), (1, 0.1)]);
        let r = residual(&p, &q);
        assert_eq!(r.0.len(), 1);
        assert_eq!(r.0[0].0, 1);
        assert!((r.0[0].1 - 1.0).abs() < 1e-6);
    }
}
