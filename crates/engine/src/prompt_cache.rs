//! Prompt-prefix reuse across requests: the KV caches of the last few conversations, within a
//! memory budget.
//!
//! A coding agent resends its whole growing conversation with every request, and a chat app
//! interleaves conversations; recomputing a 50k-token prompt each time costs minutes on a
//! desktop. Each request starts from the kept cache that shares the longest token prefix with
//! its prompt:
//!
//! * a cache whose tokens are all a prefix of the prompt (the agent's next turn) is taken and
//!   extended;
//! * a cache that diverges later (another conversation with the same system prompt and tools,
//!   or a regenerated reply) is *forked*: its shared prefix is copied into a new cache and the
//!   kept one stays for its own conversation — unless there is no room for both and most of
//!   it is shared (the same conversation, its reply regenerated), when it is cut back in place;
//! * before a request runs, least recently used caches are dropped until the kept ones and
//!   this request's cache (estimated at the prompt's length) fit the budget, so the budget
//!   bounds the memory of kept and running caches together (the reply's own tokens aside);
//! * at least one prompt token is always computed (its logits start the reply).
//!
//! After the reply the cache goes back as the most recently used; the least recently used are
//! dropped while the kept caches together hold more than the budget (the one just used is
//! always kept) or more than [`MAX_ENTRIES`] are kept.

use crate::EngineError;

/// What the store needs of a cache.
pub trait Reusable: Sized {
    /// Tokens held.
    fn tokens(&self) -> usize;
    /// Bytes held (what keeping it costs).
    fn bytes(&self) -> usize;
    /// Drops everything after the first `len` tokens (it may keep fewer: [`Reusable::tokens`]
    /// says how many).
    fn truncate(&mut self, len: usize);
    /// A new cache holding a copy of the first `len` tokens (or fewer, as for `truncate`).
    fn fork(&self, len: usize) -> Result<Self, EngineError>;
}

/// The most conversations kept, whatever the budget.
pub const MAX_ENTRIES: usize = 16;

struct Entry<C> {
    tokens: Vec<u32>,
    cache: C,
}

/// The kept caches, least recently used first.
pub struct PromptCache<C> {
    entries: Vec<Entry<C>>,
    budget: usize,
}

/// A cache ready for a prompt: `tokens` (what it holds, a prefix of the prompt) and how many
/// prompt tokens it saves.
pub struct Taken<C> {
    pub tokens: Vec<u32>,
    pub cache: C,
    pub reused: usize,
}

impl<C: Reusable> PromptCache<C> {
    /// An empty store keeping at most `budget` bytes of caches (the one in use excepted).
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Vec::new(),
            budget,
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Conversations kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the kept caches hold.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.cache.bytes()).sum()
    }

    /// Bytes per token of the kept caches (their allocated size over the tokens they hold; 0
    /// when none is kept).
    fn per_token(&self) -> usize {
        let tokens: usize = self.entries.iter().map(|e| e.cache.tokens()).sum();
        self.bytes() / tokens.max(1)
    }

    /// Drops least recently used caches (never the one at `keep`) until the kept ones and
    /// `need` more bytes fit the budget; returns where `keep` is then.
    fn make_room(&mut self, need: usize, mut keep: Option<usize>) -> Option<usize> {
        let mut at = 0;
        while at < self.entries.len() && self.bytes().saturating_add(need) > self.budget {
            if keep == Some(at) {
                at += 1;
                continue;
            }
            self.entries.remove(at);
            keep = keep.map(|k| if k > at { k - 1 } else { k });
        }
        keep
    }

    /// The cache to run `prompt` on (see the module header); `fresh` makes an empty one.
    /// Least recently used caches are dropped first so that the kept ones and this one, grown
    /// to the prompt, fit the budget.
    pub fn take(&mut self, prompt: &[u32], fresh: impl FnOnce() -> C) -> Taken<C> {
        let limit = prompt.len().saturating_sub(1);
        let need = self.per_token().saturating_mul(prompt.len());
        let best = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, common_prefix(&e.tokens, prompt).min(limit)))
            .filter(|&(_, n)| n > 0)
            // The longest shared prefix; among equals, the most recently used.
            .max_by_key(|&(i, n)| (n, i));
        let Some((i, n)) = best else {
            self.make_room(need, None);
            return Taken {
                tokens: Vec::new(),
                cache: fresh(),
                reused: 0,
            };
        };
        let held = self.entries[i].tokens.len();
        let whole = n == held;
        let room = self.bytes().saturating_add(need) <= self.budget;
        // Without room for a copy, a cache that is mostly the prompt (the same conversation,
        // its reply regenerated or its last message edited) is cut back in place; one that
        // shares only a little (another conversation with the same system prompt and tools)
        // is kept, and copied, others making room.
        if !whole && (room || 2 * n < held) {
            let i = self.make_room(need, Some(i)).unwrap_or(i);
            match self.entries[i].cache.fork(n) {
                Ok(cache) => {
                    // (A cache may keep one token fewer than asked.)
                    let n = cache.tokens().min(n);
                    return Taken {
                        tokens: prompt[..n].to_vec(),
                        cache,
                        reused: n,
                    };
                }
                Err(e) => tracing::warn!("could not copy a kept prompt cache: {e}"),
            }
        }
        let Entry {
            mut tokens,
            mut cache,
        } = self.entries.remove(i);
        cache.truncate(n);
        let n = cache.tokens().min(n);
        tokens.truncate(n);
        self.make_room(need, None);
        Taken {
            tokens,
            cache,
            reused: n,
        }
    }

    /// Keeps `cache` (holding `tokens`) as the most recently used, dropping the least recently
    /// used ones beyond the budget.
    pub fn put(&mut self, mut tokens: Vec<u32>, cache: C) {
        // Tokens sampled but never fed (a stop, a cancel) are not in the cache.
        tokens.truncate(cache.tokens());
        self.entries.push(Entry { tokens, cache });
        while self.entries.len() > 1
            && (self.bytes() > self.budget || self.entries.len() > MAX_ENTRIES)
        {
            self.entries.remove(0);
        }
    }

    /// Drops every kept cache.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Reusable for localglm_glm::KvCache {
    fn tokens(&self) -> usize {
        localglm_glm::KvCache::len(self)
    }

    fn bytes(&self) -> usize {
        localglm_glm::KvCache::bytes(self)
    }

    fn truncate(&mut self, len: usize) {
        localglm_glm::KvCache::truncate(self, len)
    }

    fn fork(&self, len: usize) -> Result<Self, EngineError> {
        localglm_glm::KvCache::fork(self, len).map_err(|e| EngineError::Generation(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache that is its tokens (10 bytes each), with a failure switch for `fork`.
    #[derive(Debug, Clone, PartialEq)]
    struct Fake(Vec<u32>, bool);

    impl Reusable for Fake {
        fn tokens(&self) -> usize {
            self.0.len()
        }
        fn bytes(&self) -> usize {
            10 * self.0.len()
        }
        fn truncate(&mut self, len: usize) {
            self.0.truncate(len)
        }
        fn fork(&self, len: usize) -> Result<Self, EngineError> {
            if self.1 {
                return Err(EngineError::Generation("out of memory".into()));
            }
            Ok(Fake(self.0[..len].to_vec(), false))
        }
    }

    /// Runs one "request": takes the cache, appends the rest of the prompt and a 2-token
    /// reply, puts it back. Returns the tokens reused.
    fn turn(store: &mut PromptCache<Fake>, prompt: &[u32]) -> usize {
        let mut t = store.take(prompt, || Fake(Vec::new(), false));
        assert_eq!(t.cache.0, t.tokens, "cache and tokens agree");
        assert_eq!(&prompt[..t.reused], &t.tokens[..]);
        t.tokens.extend_from_slice(&prompt[t.reused..]);
        t.tokens.extend([900, 901]);
        t.cache = Fake(t.tokens.clone(), false);
        store.put(t.tokens, t.cache);
        t.reused
    }

    #[test]
    fn a_growing_conversation_reuses_everything_it_sent_before() {
        let mut store = PromptCache::new(1 << 20);
        let mut prompt: Vec<u32> = (0..50).collect();
        assert_eq!(turn(&mut store, &prompt), 0);
        for round in 0..5 {
            let before = prompt.len();
            // The agent resends everything, with the reply and a tool result appended.
            prompt.extend([900, 901]);
            prompt.extend(1000 + round * 10..1005 + round * 10);
            assert_eq!(turn(&mut store, &prompt), before + 2);
        }
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn interleaved_conversations_each_keep_their_cache() {
        let mut store = PromptCache::new(1 << 20);
        let system: Vec<u32> = (0..30).collect();
        let a: Vec<u32> = system.iter().copied().chain([100, 101]).collect();
        let b: Vec<u32> = system.iter().copied().chain([200, 201]).collect();
        assert_eq!(turn(&mut store, &a), 0);
        // B shares the system prompt with A's cache: forked, A's stays.
        assert_eq!(turn(&mut store, &b), 30);
        assert_eq!(store.len(), 2);
        let a2: Vec<u32> = a.iter().copied().chain([900, 901, 102]).collect();
        let b2: Vec<u32> = b.iter().copied().chain([900, 901, 202]).collect();
        assert_eq!(turn(&mut store, &a2), a.len() + 2);
        assert_eq!(turn(&mut store, &b2), b.len() + 2);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn the_budget_drops_the_least_recently_used() {
        // Room for about two 32-token caches.
        let mut store = PromptCache::new(700);
        let conv = |k: u32| -> Vec<u32> { (0..30).map(|i| k * 1000 + i).collect() };
        for k in 1..=3 {
            turn(&mut store, &conv(k));
        }
        assert_eq!(store.len(), 2, "the oldest went");
        assert_eq!(turn(&mut store, &conv(1)), 0);
        assert_eq!(
            turn(&mut store, &conv(3)),
            29,
            "kept (the limit: one token computed)"
        );
        // A cache bigger than the budget is still kept while it is the last one used.
        let mut tiny = PromptCache::new(1);
        turn(&mut tiny, &conv(1));
        assert_eq!(tiny.len(), 1);
        assert_eq!(turn(&mut tiny, &conv(1)), 29);
        // And the number kept is bounded whatever the budget.
        let mut big = PromptCache::new(usize::MAX);
        for k in 1..=(MAX_ENTRIES as u32 + 3) {
            turn(&mut big, &conv(k));
        }
        assert_eq!(big.len(), MAX_ENTRIES);
    }

    #[test]
    fn a_side_request_sharing_only_the_system_prompt_leaves_the_main_conversation_cached() {
        // Room for 150 tokens; the main conversation holds 102, a side request shares 5.
        let mut store = PromptCache::new(1500);
        let main: Vec<u32> = (0..100).collect();
        turn(&mut store, &main);
        let side: Vec<u32> = (0..5).chain(500..510).collect();
        assert_eq!(turn(&mut store, &side), 5);
        assert_eq!(store.len(), 2, "both kept");
        let next: Vec<u32> = main.iter().copied().chain([900, 901, 7]).collect();
        assert_eq!(
            turn(&mut store, &next),
            102,
            "the main conversation's cache survived"
        );
        // A new conversation that does not fit beside the others makes room first.
        let big: Vec<u32> = (2000..2120).collect();
        turn(&mut store, &big);
        assert_eq!(store.len(), 1, "the others went before it was computed");
    }

    #[test]
    fn without_room_or_when_a_copy_fails_the_kept_cache_is_cut_back() {
        let mut store = PromptCache::new(400);
        let a: Vec<u32> = (0..30).collect();
        let mut b = a.clone();
        b[20] = 7777;
        turn(&mut store, &a);
        // A (32 tokens, 320 bytes) plus its copy would exceed 400 bytes: cut back in place.
        assert_eq!(turn(&mut store, &b), 20);
        assert_eq!(store.len(), 1);
        let mut failing = PromptCache::new(1 << 20);
        failing.put(a.clone(), Fake(a.clone(), true));
        let t = failing.take(&b, || Fake(Vec::new(), false));
        assert_eq!((t.reused, t.cache.0.len()), (20, 20));
        assert!(failing.is_empty());
    }

    #[test]
    fn regenerating_recomputes_only_the_last_prompt_token() {
        let mut store = PromptCache::new(1 << 20);
        let p: Vec<u32> = (0..10).collect();
        turn(&mut store, &p);
        assert_eq!(turn(&mut store, &p), 9);
        let mut one = PromptCache::new(1 << 20);
        assert_eq!(turn(&mut one, &[5]), 0);
        assert_eq!(
            turn(&mut one, &[5]),
            0,
            "a one-token prompt is always computed"
        );
    }
}
