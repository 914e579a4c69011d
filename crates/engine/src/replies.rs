//! Recent replies as they were generated: each run of reply text (the reasoning, the answer)
//! with the ids the model sampled for it.
//!
//! The next turn of a conversation sends the reply back as text. Byte-level BPE does not always
//! encode generated text to the ids that were sampled (a model may spell a word in pieces the
//! merges would join), and the previous turn's cache holds the sampled ones, so a re-encoded
//! reply would end the reused prefix where it first differs — at the start of the reply, often,
//! with everything after it computed again. The prompt encoder asks here first
//! (`GlmTokenizer::encode_prompt`'s `known`): a message text that equals a recent reply's gets
//! that reply's ids, which decode to exactly that text.

use localglm_glm::tokenizer::GlmTokenizer;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Runs kept (a reasoning and an answer per reply, and their stripped forms).
const KEEP: usize = 64;

/// A run of reply text being generated: the ids pushed, how many of them the text covers (an
/// incomplete UTF-8 sequence at the end is held back), and the text streamed.
#[derive(Default)]
pub(crate) struct Run {
    ids: Vec<u32>,
    covered: usize,
    text: String,
}

impl Run {
    /// `id` was generated and `text` streamed for it (empty while a character is incomplete).
    pub(crate) fn push(&mut self, id: u32, text: &str) {
        self.ids.push(id);
        if !text.is_empty() {
            self.covered = self.ids.len();
            self.text.push_str(text);
        }
    }
}

#[derive(Default)]
pub(crate) struct Replies {
    runs: Mutex<VecDeque<(String, Vec<u32>)>>,
}

impl Replies {
    /// Keeps a finished run (and, where the template may strip it, its form without
    /// surrounding whitespace, when whole tokens make that up), if its ids decode to its text.
    pub(crate) fn record(&self, tok: &GlmTokenizer, run: Run) {
        let ids = &run.ids[..run.covered];
        if run.text.is_empty() || tok.decode(ids).ok().as_deref() != Some(run.text.as_str()) {
            return;
        }
        let mut keep = vec![(run.text.clone(), ids.to_vec())];
        let trimmed = run.text.trim();
        if trimmed != run.text && !trimmed.is_empty() {
            let blank = |id: &&u32| tok.decode(&[**id]).is_ok_and(|t| t.trim().is_empty());
            let start = ids.iter().take_while(blank).count();
            let end = ids.len() - ids[start..].iter().rev().take_while(blank).count();
            let core = &ids[start..end];
            if tok.decode(core).ok().as_deref() == Some(trimmed) {
                keep.push((trimmed.to_string(), core.to_vec()));
            }
        }
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        for k in keep {
            runs.retain(|(t, _)| *t != k.0);
            runs.push_back(k);
        }
        while runs.len() > KEEP {
            runs.pop_front();
        }
    }

    /// The ids `text` was generated as, if it is a kept run's text.
    pub(crate) fn ids(&self, text: &str) -> Option<Vec<u32>> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter()
            .rev()
            .find(|(t, _)| t == text)
            .map(|(_, ids)| ids.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> GlmTokenizer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../glm/tests/fixtures/tiny-f32.gguf"
        );
        GlmTokenizer::from_gguf(&localglm_gguf::GgufModel::open(path).unwrap()).unwrap()
    }

    fn run_of(tok: &GlmTokenizer, ids: &[u32]) -> Run {
        let mut run = Run::default();
        for &id in ids {
            run.push(id, &tok.decode(&[id]).unwrap());
        }
        run
    }

    #[test]
    fn a_reply_is_found_by_its_text_and_by_its_stripped_text() {
        let tok = tok();
        let nl = tok.encode_text("\n").unwrap();
        let word: Vec<u32> = ["Par", "is"]
            .iter()
            .flat_map(|p| tok.encode_text(p).unwrap())
            .collect();
        let ids: Vec<u32> = nl.iter().chain(&word).chain(&nl).copied().collect();
        let replies = Replies::default();
        replies.record(&tok, run_of(&tok, &ids));
        assert_eq!(replies.ids("\nParis\n"), Some(ids.clone()));
        assert_eq!(replies.ids("Paris"), Some(word));
        assert_eq!(replies.ids("Pari"), None);
    }

    #[test]
    fn ids_whose_text_was_not_all_streamed_are_not_kept() {
        let tok = tok();
        let ids = tok.encode_text("Paris").unwrap();
        let mut run = run_of(&tok, &ids);
        // One more id whose text is still held back (an incomplete character).
        run.push(ids[0], "");
        replies_of(&tok, run, "Paris", Some(ids));
        // A run whose text does not decode from its ids is not kept.
        let mut wrong = Run::default();
        wrong.push(tok.encode_text("x").unwrap()[0], "y");
        replies_of(&tok, wrong, "y", None);
    }

    fn replies_of(tok: &GlmTokenizer, run: Run, text: &str, want: Option<Vec<u32>>) {
        let replies = Replies::default();
        replies.record(tok, run);
        assert_eq!(replies.ids(text), want);
    }
}
