//! Streaming splitter of generated text into reasoning and answer for `<think>…</think>` models.
//!
//! Invariant: text inside a think segment is only ever emitted as reasoning and text outside it
//! only as content, whatever the chunking of the input: a tag split across chunks is held back
//! until it is complete (or proven not to be a tag), and `finish` flushes what is held.

/// One piece of split output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Reasoning(String),
    Content(String),
}

/// Splits a token stream into reasoning and content.
#[derive(Debug, Clone)]
pub struct ThinkParser {
    open_tag: String,
    close_tag: String,
    in_reasoning: bool,
    pending: String,
}

impl Default for ThinkParser {
    fn default() -> Self {
        Self::new("<think>", "</think>", false)
    }
}

impl ThinkParser {
    /// `starts_in_reasoning`: the prompt already opened the think block (e.g. a template that
    /// ends the generation prompt with `<think>`), so the first output is reasoning.
    pub fn new(open_tag: &str, close_tag: &str, starts_in_reasoning: bool) -> Self {
        Self {
            open_tag: open_tag.to_string(),
            close_tag: close_tag.to_string(),
            in_reasoning: starts_in_reasoning,
            pending: String::new(),
        }
    }

    /// Whether the parser is currently inside a reasoning segment.
    pub fn in_reasoning(&self) -> bool {
        self.in_reasoning
    }

    /// Feeds one chunk; returns the segments that are certain so far.
    pub fn push(&mut self, chunk: &str) -> Vec<Segment> {
        self.pending.push_str(chunk);
        let mut out = Vec::new();
        loop {
            let tag = if self.in_reasoning {
                &self.close_tag
            } else {
                &self.open_tag
            };
            if let Some(pos) = self.pending.find(tag.as_str()) {
                let before: String = self.pending[..pos].to_string();
                let rest = self.pending[pos + tag.len()..].to_string();
                self.emit(&mut out, before);
                self.pending = rest;
                self.in_reasoning = !self.in_reasoning;
                continue;
            }
            // Hold back the longest suffix that could be the start of the tag.
            let keep = longest_prefix_suffix(&self.pending, tag);
            let cut = self.pending.len() - keep;
            let ready: String = self.pending[..cut].to_string();
            self.pending.drain(..cut);
            self.emit(&mut out, ready);
            break;
        }
        out
    }

    /// Ends the stream: flushes any held-back text into the current segment.
    pub fn finish(&mut self) -> Vec<Segment> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        self.emit(&mut out, rest);
        out
    }

    fn emit(&self, out: &mut Vec<Segment>, text: String) {
        if text.is_empty() {
            return;
        }
        let seg = if self.in_reasoning {
            Segment::Reasoning(text)
        } else {
            Segment::Content(text)
        };
        match (out.last_mut(), seg) {
            (Some(Segment::Reasoning(a)), Segment::Reasoning(b)) => a.push_str(&b),
            (Some(Segment::Content(a)), Segment::Content(b)) => a.push_str(&b),
            (_, seg) => out.push(seg),
        }
    }
}

/// Length (bytes) of the longest suffix of `text` that is a proper prefix of `tag`,
/// cut at a char boundary.
fn longest_prefix_suffix(text: &str, tag: &str) -> usize {
    let max = tag.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Joins the parser's output into (reasoning, content).
    fn run(parser: ThinkParser, chunks: &[&str]) -> (String, String) {
        let mut p = parser;
        let mut r = String::new();
        let mut c = String::new();
        let mut take = |segs: Vec<Segment>| {
            for s in segs {
                match s {
                    Segment::Reasoning(t) => r.push_str(&t),
                    Segment::Content(t) => c.push_str(&t),
                }
            }
        };
        for ch in chunks {
            take(p.push(ch));
        }
        take(p.finish());
        (r, c)
    }

    /// Every split of `input` into two and three chunks (at char boundaries) gives `want`.
    fn check_all_splits(starts_in: bool, input: &str, want: (&str, &str)) {
        let mk = || ThinkParser::new("<think>", "</think>", starts_in);
        let bounds: Vec<usize> = (0..=input.len())
            .filter(|&i| input.is_char_boundary(i))
            .collect();
        assert_eq!(
            run(mk(), &[input]),
            (want.0.into(), want.1.into()),
            "whole: {input:?}"
        );
        for &i in &bounds {
            let got = run(mk(), &[&input[..i], &input[i..]]);
            assert_eq!(
                got,
                (want.0.into(), want.1.into()),
                "split at {i}: {input:?}"
            );
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let got = run(mk(), &[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(
                    got,
                    (want.0.into(), want.1.into()),
                    "split at {i},{j}: {input:?}"
                );
            }
        }
        // one char at a time
        let chars: Vec<String> = input.chars().map(|c| c.to_string()).collect();
        let refs: Vec<&str> = chars.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            run(mk(), &refs),
            (want.0.into(), want.1.into()),
            "per char: {input:?}"
        );
    }

    #[test]
    fn table_of_inputs_at_every_chunk_boundary() {
        let cases: &[(bool, &str, (&str, &str))] = &[
            (false, "plain answer", ("", "plain answer")),
            (false, "<think>hmm</think>answer", ("hmm", "answer")),
            (false, "<think>a</think>b<think>c</think>d", ("ac", "bd")),
            (
                true,
                "reasoning first</think>then answer",
                ("reasoning first", "then answer"),
            ),
            (
                true,
                "still thinking when it ends",
                ("still thinking when it ends", ""),
            ),
            (false, "a < b and <thin ice>", ("", "a < b and <thin ice>")),
            (false, "<think>é ü 中文</think>ø", ("é ü 中文", "ø")),
            (
                false,
                "ends with partial tag <thi",
                ("", "ends with partial tag <thi"),
            ),
            (true, "x</thin", ("x</thin", "")),
            (false, "<think></think>empty thought", ("", "empty thought")),
        ];
        for (starts_in, input, want) in cases {
            check_all_splits(*starts_in, input, *want);
        }
    }

    #[test]
    fn reports_state() {
        let mut p = ThinkParser::default();
        assert!(!p.in_reasoning());
        p.push("<think>x");
        assert!(p.in_reasoning());
        p.push("</think>");
        assert!(!p.in_reasoning());
    }
}
