//! Token sampling: repetition penalty over the recent tokens, then greedy at temperature 0,
//! otherwise temperature, top-k, top-p (nucleus) and min-p over the full vocabulary, seeded for
//! reproducibility.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: Option<usize>,
    /// Keep tokens at least `min_p` × as likely as the best one; 0 = off.
    pub min_p: f32,
    /// CTRL-style penalty on tokens of the recent window (logit / p if positive, × p if
    /// negative); 1 = off.
    pub repetition_penalty: f32,
    pub seed: u64,
}

/// How many recent tokens the repetition penalty looks at (llama.cpp's default window).
pub const PENALTY_WINDOW: usize = 64;

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            min_p: 0.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

#[derive(Debug)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: StdRng,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        Self { cfg, rng }
    }

    /// Picks the next token from a logit row; `history` is the context so far (prompt and
    /// generated tokens), of which the last [`PENALTY_WINDOW`] are penalized.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let dist = self.distribution(logits, history);
        self.pick(&dist)
    }

    /// The distribution [`Sampler::sample`] draws from: (token, probability) pairs, most likely
    /// first, summing to 1 — one token with probability 1 at temperature 0.
    pub fn distribution(&self, logits: &[f32], history: &[u32]) -> Dist {
        let penalty = self.cfg.repetition_penalty;
        let penalized;
        let logits = if penalty != 1.0 && penalty > 0.0 && !history.is_empty() {
            let mut l = logits.to_vec();
            let mut seen = std::collections::HashSet::new();
            for &t in &history[history.len().saturating_sub(PENALTY_WINDOW)..] {
                if let Some(z) = l.get_mut(t as usize).filter(|_| seen.insert(t)) {
                    *z = if *z > 0.0 { *z / penalty } else { *z * penalty };
                }
            }
            penalized = l;
            &penalized[..]
        } else {
            logits
        };
        let one = || Dist(vec![(argmax(logits), 1.0)]);
        if self.cfg.temperature <= 0.0 {
            return one();
        }
        let t = self.cfg.temperature;
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, z)| z.is_finite())
            .map(|(i, &z)| (i as u32, z / t))
            .collect();
        if cand.is_empty() {
            return one();
        }
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(k) = self.cfg.top_k.filter(|&k| k > 0) {
            cand.truncate(k);
        }
        let mx = cand[0].1;
        for c in cand.iter_mut() {
            c.1 = (c.1 - mx).exp();
        }
        normalize(&mut cand);
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (i, c) in cand.iter().enumerate() {
                acc += c.1;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep);
            normalize(&mut cand);
        }
        if self.cfg.min_p > 0.0 {
            // Sorted descending, so the kept tokens are a prefix.
            let floor = cand[0].1 * self.cfg.min_p;
            let keep = cand.iter().take_while(|c| c.1 >= floor).count().max(1);
            cand.truncate(keep);
            normalize(&mut cand);
        }
        Dist(cand)
    }

    /// Draws a token from `dist` (no randomness used for a single token).
    pub fn pick(&mut self, dist: &Dist) -> u32 {
        let d = &dist.0;
        if d.len() == 1 {
            return d[0].0;
        }
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for &(t, p) in d {
            acc += p;
            if r < acc {
                return t;
            }
        }
        d[d.len() - 1].0
    }

    /// A uniform draw in [0, 1) from the sampler's seeded stream.
    pub fn uniform(&mut self) -> f32 {
        self.rng.random()
    }
}

/// A sampling distribution: (token, probability), most likely first, summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Dist(pub Vec<(u32, f32)>);

impl Dist {
    /// The probability of `token` (0 where it is not in the distribution).
    pub fn p(&self, token: u32) -> f32 {
        self.0.iter().find(|c| c.0 == token).map_or(0.0, |c| c.1)
    }
}

fn normalize(cand: &mut [(u32, f32)]) {
    let s: f32 = cand.iter().map(|c| c.1).sum();
    cand.iter_mut().for_each(|c| c.1 /= s);
}

/// Index of the largest logit (first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, z) in logits.iter().enumerate() {
        if *z > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_at_zero_temperature_and_top_k_one() {
        let l = [0.1, 3.0, 2.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 0.0,
            top_p: 1.0,
            top_k: None,
            seed: 1,
            ..Default::default()
        });
        assert_eq!(s.sample(&l, &[]), 1);
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_p: 1.0,
            top_k: Some(1),
            seed: 1,
            ..Default::default()
        });
        for _ in 0..20 {
            assert_eq!(s.sample(&l, &[]), 1);
        }
    }

    #[test]
    fn top_p_excludes_the_tail_and_seed_reproduces() {
        let l = [10.0, 9.9, -10.0, -10.0];
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_p: 0.9,
            top_k: None,
            seed: 7,
            ..Default::default()
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..50).map(|_| s.sample(&l, &[])).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..50).map(|_| s.sample(&l, &[])).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&t| t < 2));
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        // Probabilities ≈ 0.66, 0.24, 0.09, 0.01: min_p 0.2 keeps the first two only.
        let l = [3.0, 2.0, 1.0, -1.0];
        let mut s = Sampler::new(SamplerConfig {
            min_p: 0.2,
            seed: 3,
            ..Default::default()
        });
        let picks: Vec<u32> = (0..300).map(|_| s.sample(&l, &[])).collect();
        assert!(picks.iter().all(|&t| t < 2), "{picks:?}");
        assert!(picks.contains(&1));
    }

    #[test]
    fn repetition_penalty_applies_to_the_recent_window_once() {
        let l = [2.0, 1.9, -1.0];
        let greedy = |penalty: f32, history: &[u32]| {
            Sampler::new(SamplerConfig {
                temperature: 0.0,
                repetition_penalty: penalty,
                ..Default::default()
            })
            .sample(&l, history)
        };
        assert_eq!(greedy(1.0, &[0, 0]), 0);
        // 2.0 / 1.1 < 1.9: the repeated token loses; repeats in the window count once.
        assert_eq!(greedy(1.1, &[0, 0, 0]), 1);
        // Outside the window it is not penalized.
        let mut old = vec![0u32];
        old.extend(std::iter::repeat_n(2u32, PENALTY_WINDOW));
        assert_eq!(greedy(1.1, &old), 0);
    }
}
