//! Conversations in and out of the app: a readable Markdown export of the branch shown, and a
//! JSON export of the whole conversation (every branch, what each reply was sent with) that
//! `import` reads back as a new conversation.
//!
//! Invariant: an import either adds one complete, well-linked conversation under a new id or
//! changes nothing; it never overwrites an existing conversation.

use crate::{new_id, now_ms, tree, ConversationError, ConversationStore, Result, FORMAT_VERSION};
use localglm_protocol::{Conversation, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The `format` of an exported conversation file.
pub const EXPORT_FORMAT: &str = "localglm-conversation";

#[derive(Serialize, Deserialize)]
struct ExportFile {
    format: String,
    conversation: Conversation,
}

/// The whole conversation as a LocalGLM JSON file.
pub fn to_json(conv: &Conversation) -> String {
    serde_json::to_string_pretty(&ExportFile {
        format: EXPORT_FORMAT.into(),
        conversation: conv.clone(),
    })
    .expect("conversation serializes")
}

/// The branch shown as Markdown: a heading per turn, reasoning in a collapsed `<details>`.
pub fn to_markdown(conv: &Conversation) -> String {
    let mut out = format!("# {}\n", conv.title);
    for m in tree::path(conv) {
        let who = match m.role {
            Role::User => "You".to_string(),
            Role::System => "System".to_string(),
            _ => match &m.model {
                Some(model) => format!("Assistant ({model})"),
                None => "Assistant".to_string(),
            },
        };
        out.push_str(&format!("\n## {who}\n\n"));
        if let Some(reasoning) = m.reasoning.as_deref().filter(|r| !r.trim().is_empty()) {
            // Blank lines around the body so Markdown inside it is still read as Markdown.
            out.push_str("<details>\n<summary>Reasoning</summary>\n\n");
            out.push_str(reasoning.trim_end());
            out.push_str("\n\n</details>\n\n");
        }
        out.push_str(m.content.trim_end());
        out.push('\n');
    }
    out
}

/// A file name for an export of `title`: letters, digits, spaces, `-` and `_` kept, at most 60
/// characters, never empty.
pub fn file_stem(title: &str) -> String {
    let kept: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let kept = kept.trim().trim_matches('_').trim();
    // Names Windows keeps for devices, whatever the extension.
    let upper = kept.to_ascii_uppercase();
    let device = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit());
    if kept.is_empty() {
        "conversation".into()
    } else if device {
        format!("{kept}_")
    } else {
        kept.into()
    }
}

/// Writes an export into `dir` (created if needed) as `<stem>.<ext>`, or `<stem> (2).<ext>` …
/// when that name is taken: an export never replaces a file. Returns the path written.
pub fn write_export(
    dir: &std::path::Path,
    stem: &str,
    ext: &str,
    text: &str,
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    for n in 1..10_000 {
        let name = match n {
            1 => format!("{stem}.{ext}"),
            n => format!("{stem} ({n}).{ext}"),
        };
        let path = dir.join(name);
        // The name is taken by creating it (two exports at once never get the same one), then
        // filled atomically.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {
                crate::write_atomic(&path, text.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many exports of this name"))
}

impl ConversationStore {
    /// Adds the conversation of a LocalGLM JSON export under a new id (shown first in the
    /// list); a file that is not one, or whose messages do not link up, is refused whole.
    pub fn import(&self, json: &str) -> Result<Conversation> {
        let bad = |why: String| ConversationError::NotAnExport(why);
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not JSON ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(EXPORT_FORMAT) {
            return Err(bad(format!("\"format\" is not \"{EXPORT_FORMAT}\"")));
        }
        let file: ExportFile = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let mut conv = file.conversation;
        if conv.version > FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is newer than this app's ({FORMAT_VERSION}); update LocalGLM",
                conv.version
            )));
        }
        if conv.version < 2 {
            tree::migrate_linear(&mut conv);
        }
        check_links(&conv)?;
        conv.version = FORMAT_VERSION;
        conv.id = new_id();
        if conv.title.trim().is_empty() {
            conv.title = "Imported chat".into();
        }
        conv.updated_at_ms = now_ms();
        self.save(&conv)?;
        Ok(conv)
    }
}

/// Every message has a unique id and follows a message written before it; the branch shown
/// ends at a message of the file.
fn check_links(conv: &Conversation) -> Result<()> {
    let bad = |why: String| Err(ConversationError::NotAnExport(why));
    let mut seen = HashSet::new();
    for m in &conv.messages {
        if m.id.is_empty() {
            return bad("a message has no id".into());
        }
        if let Some(parent) = &m.parent_id {
            if !seen.contains(parent.as_str()) {
                return bad(format!(
                    "message {} follows {parent}, which is not before it in the file",
                    m.id
                ));
            }
        }
        if !seen.insert(m.id.as_str()) {
            return bad(format!("two messages have the id {}", m.id));
        }
    }
    match &conv.current_id {
        Some(id) if !seen.contains(id.as_str()) => bad(format!(
            "the branch shown ends at {id}, which is not in the file"
        )),
        None if !conv.messages.is_empty() => bad("no branch is marked as shown".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
