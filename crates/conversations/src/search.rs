//! Search over every conversation: titles, and the text of every message of every branch
//! (reasoning when asked), case-insensitive. Each hit carries the text around the match so the
//! sidebar can show and highlight it without parsing anything.

use crate::{ConversationStore, Result};
use localglm_protocol::{Conversation, SearchField, SearchHit};

/// Hits kept per conversation (the first ones, in the order written).
pub const HITS_PER_CONVERSATION: usize = 3;
/// Characters of context kept on each side of a match.
const CONTEXT_CHARS: usize = 40;

impl ConversationStore {
    /// The conversations matching `query` (most recently updated first), at most `limit` hits
    /// in all; an empty query finds nothing. Unreadable files are skipped, as by `list`.
    pub fn search(&self, query: &str, reasoning: bool, limit: usize) -> Result<Vec<SearchHit>> {
        let needle = fold(query.trim());
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        for summary in self.list()? {
            if hits.len() >= limit {
                break;
            }
            if let Ok(conv) = self.get(&summary.id) {
                let mut found = hits_in(&conv, &needle, reasoning);
                found.truncate(HITS_PER_CONVERSATION.min(limit - hits.len()));
                hits.extend(found);
            }
        }
        Ok(hits)
    }
}

/// Case folding that keeps one char per char, so positions map back to the original text.
fn fold(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

fn hits_in(conv: &Conversation, needle: &[char], reasoning: bool) -> Vec<SearchHit> {
    let hit = |message_id: Option<&str>, field, text: &str| {
        snippet(text, needle).map(|(before, matched, after)| SearchHit {
            conversation_id: conv.id.clone(),
            title: conv.title.clone(),
            message_id: message_id.map(str::to_string),
            field,
            before,
            matched,
            after,
        })
    };
    let mut out: Vec<SearchHit> = hit(None, SearchField::Title, &conv.title)
        .into_iter()
        .collect();
    for m in &conv.messages {
        if out.len() >= HITS_PER_CONVERSATION {
            break;
        }
        out.extend(hit(Some(&m.id), SearchField::Content, &m.content));
        if reasoning {
            if let Some(r) = &m.reasoning {
                out.extend(hit(Some(&m.id), SearchField::Reasoning, r));
            }
        }
    }
    out
}

/// The first match of `needle` in `text`, with up to [`CONTEXT_CHARS`] around it, whitespace
/// runs collapsed to one space and `…` where the text was cut.
fn snippet(text: &str, needle: &[char]) -> Option<(String, String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let folded = fold(text);
    let at = folded.windows(needle.len()).position(|w| w == needle)?;
    let end = at + needle.len();
    let from = at.saturating_sub(CONTEXT_CHARS);
    let to = (end + CONTEXT_CHARS).min(chars.len());
    let squash = |part: &[char]| {
        let mut out = String::new();
        for c in part {
            if c.is_whitespace() {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push(*c);
            }
        }
        out
    };
    let mut before = squash(&chars[from..at]).trim_start().to_string();
    if from > 0 {
        before.insert(0, '…');
    }
    let mut after = squash(&chars[end..to]).trim_end().to_string();
    if to < chars.len() {
        after.push('…');
    }
    Some((before, squash(&chars[at..end]), after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_message, tree};
    use localglm_protocol::Role;

    #[test]
    fn finds_titles_and_every_branch_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let s = ConversationStore::open(dir.path()).unwrap();
        let mut a = s.create(Some("Trip to Paris".into())).unwrap();
        tree::push(
            &mut a,
            new_message(Role::User, "What should I see in PARIS?"),
        );
        let mut reply = new_message(Role::Assistant, "The   Louvre,\n\nand the Eiffel tower.");
        reply.reasoning = Some("They want sights in Paris.".into());
        let asked = a.current_id.clone();
        tree::push(&mut a, reply);
        // Another branch, not shown: still found.
        let mut other = new_message(Role::Assistant, "Try the Musée d'Orsay.");
        other.parent_id = asked;
        tree::attach(&mut a, other);
        let shown = a.messages[1].id.clone();
        tree::select(&mut a, &shown);
        s.save(&a).unwrap();
        let b = s.create(Some("Rust lifetimes".into())).unwrap();

        let hits = s.search("paris", false, 50).unwrap();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].field, SearchField::Title);
        assert_eq!(hits[0].matched, "Paris");
        assert_eq!(hits[1].message_id.as_ref(), Some(&a.messages[0].id));
        assert_eq!(
            (
                hits[1].before.as_str(),
                hits[1].matched.as_str(),
                hits[1].after.as_str()
            ),
            ("What should I see in ", "PARIS", "?")
        );
        // Reasoning only when asked; a branch not shown is searched too; whitespace collapsed.
        assert_eq!(s.search("paris", true, 50).unwrap().len(), 3);
        let orsay = s.search("musée", false, 50).unwrap();
        assert_eq!(orsay[0].message_id.as_ref(), Some(&a.messages[2].id));
        assert_eq!(
            s.search("louvre", false, 50).unwrap()[0].after,
            ", and the Eiffel tower."
        );
        assert_eq!(
            s.search("LIFETIMES", false, 50).unwrap()[0].conversation_id,
            b.id
        );
        assert!(s.search("   ", false, 50).unwrap().is_empty());
        assert!(s.search("nowhere", false, 50).unwrap().is_empty());
        assert_eq!(
            s.search("paris", true, 1).unwrap().len(),
            1,
            "the limit holds"
        );
    }

    #[test]
    fn long_text_is_cut_around_the_match() {
        let text = format!("{} needle {}", "a".repeat(100), "b".repeat(100));
        let (before, matched, after) = snippet(&text, &fold("NEEDLE")).unwrap();
        assert_eq!(matched, "needle");
        assert!(before.starts_with('…') && before.chars().count() == CONTEXT_CHARS + 1);
        assert!(after.ends_with('…') && after.chars().count() == CONTEXT_CHARS + 1);
        // Letters whose lowercase form is longer (İ) keep positions aligned.
        let (b, m, _) = snippet("İstanbul and Ankara", &fold("ankara")).unwrap();
        assert_eq!((b.as_str(), m.as_str()), ("İstanbul and ", "Ankara"));
    }
}
