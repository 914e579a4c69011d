//! Wall-clock generation statistics, measured the same way for every backend.
//!
//! Invariant: rates are 0 (never NaN/inf) when their interval or token count is empty.

use localglm_protocol::GenerationStats;
use std::time::Instant;

/// Measures one generation: start, first token, each token, end.
#[derive(Debug, Clone)]
pub struct StatsClock {
    start: Instant,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    tokens: u32,
    reasoning: Option<u32>,
    prompt_tokens: u32,
    cached: Option<u32>,
    drafts: Option<(u32, u32)>,
}

impl StatsClock {
    /// Starts the clock when the request is submitted.
    pub fn start(prompt_tokens: u32) -> Self {
        Self {
            start: Instant::now(),
            first_token: None,
            last_token: None,
            tokens: 0,
            reasoning: None,
            prompt_tokens,
            cached: None,
            drafts: None,
        }
    }

    pub fn set_prompt_tokens(&mut self, n: u32) {
        self.prompt_tokens = n;
    }

    /// Records `n` generated tokens arriving now.
    pub fn tokens(&mut self, n: u32) {
        let now = Instant::now();
        if self.first_token.is_none() {
            self.first_token = Some(now);
        }
        self.last_token = Some(now);
        self.tokens += n;
    }

    /// Records that `n` of the tokens just counted were reasoning (the backend can tell).
    pub fn reasoning_tokens(&mut self, n: u32) {
        *self.reasoning.get_or_insert(0) += n;
    }

    /// Marks reasoning as tracked even when none was produced (so the count reads 0, not
    /// unknown).
    pub fn track_reasoning(&mut self) {
        self.reasoning.get_or_insert(0);
    }

    /// Records that `n` prompt tokens came from a kept KV cache (prefill computed the rest).
    pub fn cached_tokens(&mut self, n: u32) {
        self.cached = Some(n);
    }

    /// Records speculative decoding's totals: tokens drafted and accepted.
    pub fn drafts(&mut self, drafted: u32, accepted: u32) {
        self.drafts = Some((drafted, accepted));
    }

    pub fn generated(&self) -> u32 {
        self.tokens
    }

    /// The numbers so far. `generated_override` replaces the counted tokens when the backend
    /// reports an exact count.
    pub fn finish(
        &self,
        generated_override: Option<u32>,
        context_length: Option<u32>,
    ) -> GenerationStats {
        let end = Instant::now();
        let generated = generated_override.unwrap_or(self.tokens);
        let ttft = self
            .first_token
            .map(|t| t.duration_since(self.start).as_secs_f64());
        let decode_secs = match (self.first_token, self.last_token) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let rate = |n: f64, secs: f64| if secs > 0.0 && n > 0.0 { n / secs } else { 0.0 };
        GenerationStats {
            prompt_tokens: self.prompt_tokens,
            generated_tokens: generated,
            ttft_ms: ttft.map(|s| s * 1000.0).unwrap_or(0.0),
            // Over the tokens prefill computed: cached ones cost nothing.
            prefill_tokens_per_s: rate(
                self.prompt_tokens.saturating_sub(self.cached.unwrap_or(0)) as f64,
                ttft.unwrap_or(0.0),
            ),
            decode_tokens_per_s: rate(generated.saturating_sub(1) as f64, decode_secs),
            total_ms: end.duration_since(self.start).as_secs_f64() * 1000.0,
            context_length,
            reasoning_tokens: self.reasoning,
            cached_tokens: self.cached,
            drafted_tokens: self.drafts.map(|d| d.0),
            accepted_tokens: self.drafts.map(|d| d.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_generation_has_zero_rates() {
        let c = StatsClock::start(0);
        let s = c.finish(None, None);
        assert_eq!(s.generated_tokens, 0);
        assert_eq!(s.ttft_ms, 0.0);
        assert_eq!(s.decode_tokens_per_s, 0.0);
        assert_eq!(s.prefill_tokens_per_s, 0.0);
    }

    #[test]
    fn rates_follow_the_clock() {
        let mut c = StatsClock::start(10);
        std::thread::sleep(Duration::from_millis(20));
        c.tokens(1);
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(10));
            c.tokens(1);
        }
        let s = c.finish(None, Some(2048));
        assert_eq!(s.generated_tokens, 5);
        assert!(s.ttft_ms >= 20.0, "{s:?}");
        assert!(
            s.decode_tokens_per_s > 0.0 && s.decode_tokens_per_s <= 4.0 / 0.040 + 1e-9,
            "{s:?}"
        );
        assert!(s.prefill_tokens_per_s > 0.0 && s.prefill_tokens_per_s <= 10.0 / 0.020 + 1e-9);
        assert!(s.total_ms >= s.ttft_ms);
        assert_eq!(s.context_length, Some(2048));
        assert_eq!(c.finish(Some(7), None).generated_tokens, 7);
    }
}
