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
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.cfg.temperature;
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, z)| z.is_finite())
            .map(|(i, &z)| (i as u32, z / t))
            .collect();
        if cand.is_empty() {
            return argmax(logits);
        }
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(k) = self.cfg.top_k.filter(|&k| k > 0) {
            cand.truncate(k);
        }
        let mx = cand[0].1;
        let mut probs: Vec<f32> = cand.iter().map(|&(_, z)| (z - mx).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            cand.truncate(keep);
            let s: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= s);
        }
        if self.cfg.min_p > 0.0 {
            // Sorted descending, so the kept tokens are a prefix.
            let floor = probs[0] * self.cfg.min_p;
            let keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
            probs.truncate(keep);
            cand.truncate(keep);
            let s: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= s);
        }
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return cand[i].0;
            }
        }
        cand[cand.len() - 1].0
    }
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
