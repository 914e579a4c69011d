//! Conversation persistence: one JSON file per conversation in a directory.
//!
//! Invariants: a file is only ever replaced by a complete new version (write to a temporary
//! file in the same directory, fsync, rename over the old one, fsync the directory), so a crash
//! at any moment leaves either the old or the new conversation, never a torn file. Ids are
//! validated before they touch a path. Unreadable files are skipped by `list` and never deleted.

use localglm_protocol::{Conversation, ConversationSummary, FinishReason, Message, Role};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod exchange;
pub mod search;
pub mod tree;

/// Current on-disk format version of a conversation file. 1: one linear list of messages;
/// 2: messages linked to their parents, with branches (read from 1 by linking the list).
pub const FORMAT_VERSION: u32 = 2;
/// A conversation's reply being written, kept beside it: `<id>.partial.json`.
const PARTIAL_SUFFIX: &str = ".partial.json";

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("conversation {0} not found")]
    NotFound(String),
    #[error("invalid conversation id {0:?}")]
    InvalidId(String),
    #[error("message {0} not found")]
    MessageNotFound(String),
    #[error("conversation file {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("conversation file {path} has format version {found}, newer than this app ({FORMAT_VERSION})")]
    TooNew { path: PathBuf, found: u32 },
    #[error("not a LocalGLM conversation file: {0}")]
    NotAnExport(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ConversationError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConversationError + '_ {
    move |source| ConversationError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whole milliseconds since the Unix epoch (integral, so they round-trip through JSON exactly).
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// A fresh random id for conversations and messages.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Creates a message with a fresh id and the current time.
pub fn new_message(role: Role, content: impl Into<String>) -> Message {
    Message {
        id: new_id(),
        role,
        parent_id: None,
        content: content.into(),
        reasoning: None,
        reasoning_ms: None,
        created_at_ms: now_ms(),
        stats: None,
        finish_reason: None,
        model: None,
        sent_with: None,
    }
}

/// A new empty conversation with a fresh id (not saved).
pub fn blank(title: Option<String>) -> Conversation {
    let now = now_ms();
    Conversation {
        version: FORMAT_VERSION,
        id: new_id(),
        title: title
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "New chat".to_string()),
        created_at_ms: now,
        updated_at_ms: now,
        messages: Vec::new(),
        current_id: None,
        shown: Default::default(),
        thinking: None,
        preset_id: None,
    }
}

/// Writes `bytes` to `path` atomically (temp file + fsync + rename + directory fsync). On Unix
/// the file is readable by its owner only: conversations and settings (API keys) are private.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        new_id()
    ));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Persist the rename itself. Directories cannot be opened for sync on Windows.
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A directory of conversation files. Every change of an existing conversation goes through
/// [`ConversationStore::update`], which reads, changes and writes it under one lock shared by
/// the store's clones: two writers (a reply being saved, a title, a rename) never lose each
/// other's change.
#[derive(Debug, Clone)]
pub struct ConversationStore {
    dir: PathBuf,
    writes: Arc<Mutex<()>>,
}

/// What an [`ConversationStore::update`] closure decided: write the changed conversation, or
/// leave the file as it is; either way with a value for the caller.
pub enum Change<T> {
    Save(T),
    Keep(T),
}

impl ConversationStore {
    /// Opens (creating if needed) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            writes: Arc::default(),
        })
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        // A writer that panicked left no torn file (writes are atomic): the lock stays usable.
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads conversation `id`, lets `change` edit it and saves it when `change` says so, all
    /// under the store's write lock; returns the conversation as it is now and `change`'s value.
    pub fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Conversation) -> Change<T>,
    ) -> Result<(Conversation, T)> {
        let _lock = self.write_lock();
        let before = self.get(id)?;
        let mut conv = before.clone();
        match change(&mut conv) {
            Change::Save(value) => {
                self.save_unlocked(&conv)?;
                Ok((conv, value))
            }
            Change::Keep(value) => Ok((before, value)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> Result<PathBuf> {
        if !valid_id(id) {
            return Err(ConversationError::InvalidId(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Creates and saves an empty conversation.
    pub fn create(&self, title: Option<String>) -> Result<Conversation> {
        let conv = blank(title);
        self.save(&conv)?;
        Ok(conv)
    }

    /// Reads one conversation.
    pub fn get(&self, id: &str) -> Result<Conversation> {
        let path = self.path_of(id)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConversationError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut conv: Conversation =
            serde_json::from_slice(&bytes).map_err(|e| ConversationError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if conv.version > FORMAT_VERSION {
            return Err(ConversationError::TooNew {
                path,
                found: conv.version,
            });
        }
        if conv.version < 2 {
            // Written in format 2 at its next save; the file is not touched by reading it.
            tree::migrate_linear(&mut conv);
            conv.version = FORMAT_VERSION;
        }
        Ok(conv)
    }

    /// Saves a conversation atomically, replacing any previous version. To change a saved
    /// conversation use [`ConversationStore::update`]: a `get` then `save` can lose a change
    /// written in between.
    pub fn save(&self, conv: &Conversation) -> Result<()> {
        let _lock = self.write_lock();
        self.save_unlocked(conv)
    }

    fn save_unlocked(&self, conv: &Conversation) -> Result<()> {
        let path = self.path_of(&conv.id)?;
        let bytes = serde_json::to_vec_pretty(conv).expect("conversation serializes");
        write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Lists conversations, most recently updated first. Unreadable files are skipped
    /// (and left in place) so one bad file never hides the others.
    pub fn list(&self) -> Result<Vec<ConversationSummary>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            match self.get(id) {
                Ok(c) => out.push(summary(&c)),
                Err(e) => tracing_warn(&e),
            }
        }
        out.sort_by(|a, b| b.updated_at_ms.total_cmp(&a.updated_at_ms));
        Ok(out)
    }

    /// Renames a conversation.
    pub fn rename(&self, id: &str, title: &str) -> Result<ConversationSummary> {
        let (conv, ()) = self.update(id, |conv| {
            conv.title = title.trim().to_string();
            if conv.title.is_empty() {
                conv.title = "Untitled".into();
            }
            conv.updated_at_ms = now_ms();
            Change::Save(())
        })?;
        Ok(summary(&conv))
    }

    fn partial_path(&self, id: &str) -> Result<PathBuf> {
        if !valid_id(id) {
            return Err(ConversationError::InvalidId(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}{PARTIAL_SUFFIX}")))
    }

    /// Keeps the reply being streamed into a conversation on disk (atomically, apart from the
    /// conversation file), so a process killed mid-answer loses at most the text since the last
    /// call; [`ConversationStore::recover_interrupted`] appends it at the next start.
    pub fn save_partial(&self, conversation_id: &str, reply: &Message) -> Result<()> {
        let path = self.partial_path(conversation_id)?;
        let bytes = serde_json::to_vec(reply).expect("message serializes");
        write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Forgets a conversation's partial reply (the whole reply was saved, or it was deleted).
    pub fn remove_partial(&self, conversation_id: &str) -> Result<()> {
        let path = self.partial_path(conversation_id)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Appends each partial reply a process left behind (it ended mid-answer) to its
    /// conversation, marked [`FinishReason::Interrupted`]; returns the conversations changed.
    /// Call at start, before any generation runs. A partial reply whose conversation is gone,
    /// that is already in it, or that holds no text is dropped; one that cannot be read or
    /// saved is left in place for the next start.
    pub fn recover_interrupted(&self) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let name = entry.map_err(io_err(&self.dir))?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(PARTIAL_SUFFIX)) else {
                continue;
            };
            match self.recover_one(id) {
                Ok(true) => changed.push(id.to_string()),
                Ok(false) => {}
                Err(e) => tracing_warn(&e),
            }
        }
        Ok(changed)
    }

    fn recover_one(&self, id: &str) -> Result<bool> {
        let path = self.partial_path(id)?;
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let mut reply: Message =
            serde_json::from_slice(&bytes).map_err(|e| ConversationError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let has_text = !reply.content.is_empty() || reply.reasoning.is_some();
        let updated = self.update(id, |conv| {
            if !has_text || conv.messages.iter().any(|m| m.id == reply.id) {
                return Change::Keep(false);
            }
            reply.finish_reason = Some(FinishReason::Interrupted);
            if reply.parent_id.is_none() {
                // Kept by a version that did not link messages: it answered the last one.
                reply.parent_id = conv.current_id.clone();
            }
            tree::attach(conv, reply);
            conv.updated_at_ms = now_ms();
            Change::Save(true)
        });
        let added = match updated {
            Ok((_, added)) => added,
            Err(ConversationError::NotFound(_)) => return self.remove_partial(id).map(|_| false),
            Err(e) => return Err(e),
        };
        self.remove_partial(id)?;
        Ok(added)
    }

    /// Deletes a conversation file (and a partial reply left with it).
    pub fn delete(&self, id: &str) -> Result<()> {
        let path = self.path_of(id)?;
        let _lock = self.write_lock();
        let _ = self.remove_partial(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ConversationError::NotFound(id.to_string()))
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

/// The sidebar summary of a conversation.
pub fn summary(c: &Conversation) -> ConversationSummary {
    ConversationSummary {
        id: c.id.clone(),
        title: c.title.clone(),
        updated_at_ms: c.updated_at_ms,
        message_count: tree::path(c).len() as u32,
    }
}

/// A title from the first user message: its first line, at most 48 characters.
pub fn title_from(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut title: String = line.chars().take(48).collect();
    if line.chars().count() > 48 {
        title.push('…');
    }
    if title.is_empty() {
        "New chat".into()
    } else {
        title
    }
}

fn tracing_warn(e: &ConversationError) {
    eprintln!("localglm: skipping conversation file: {e}");
}

#[cfg(test)]
mod tests;
