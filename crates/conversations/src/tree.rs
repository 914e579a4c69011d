//! A conversation's branches: every message names the one it follows (`parent_id`), messages
//! sharing a parent are versions of one another (a regenerated reply, an edited message),
//! `current_id` names the last message of the branch shown, and `shown` remembers, below each
//! message, which version was shown last.
//!
//! Invariants: messages are never removed or changed here, only added; the branch shown is
//! always a chain from `current_id` up to a first message; a file whose links are broken (a
//! parent that does not exist, a loop) still shows every message it can reach, never panics.

use localglm_protocol::{Conversation, Message};
use std::collections::HashMap;

/// The `shown` key of the messages following `parent` (`""`: the first messages).
fn key(parent: Option<&str>) -> String {
    parent.unwrap_or_default().to_string()
}

/// Links a format-1 conversation (one linear list of messages) as a single branch.
pub(crate) fn migrate_linear(conv: &mut Conversation) {
    let mut parent: Option<String> = None;
    for m in &mut conv.messages {
        m.parent_id = parent.take();
        parent = Some(m.id.clone());
    }
    conv.current_id = parent;
}

fn by_id(conv: &Conversation) -> HashMap<&str, &Message> {
    conv.messages.iter().map(|m| (m.id.as_str(), m)).collect()
}

/// `id` and the messages above it, nearest first; at most one step per message (a loop in a
/// damaged file ends the walk).
fn ancestry<'a>(conv: &'a Conversation, id: &str) -> Vec<&'a Message> {
    let index = by_id(conv);
    let mut out = Vec::new();
    let mut at = index.get(id).copied();
    while let Some(m) = at {
        if out.len() == conv.messages.len() {
            break;
        }
        out.push(m);
        at = m.parent_id.as_deref().and_then(|p| index.get(p).copied());
    }
    out
}

/// The branch shown, first message first.
pub fn path(conv: &Conversation) -> Vec<&Message> {
    let mut out = conv
        .current_id
        .as_deref()
        .map(|id| ancestry(conv, id))
        .unwrap_or_default();
    out.reverse();
    out
}

/// Adds `message` after the last message of the branch shown and shows it.
pub fn push(conv: &mut Conversation, mut message: Message) {
    message.parent_id = conv.current_id.clone();
    attach(conv, message);
}

/// Adds `message` under its own `parent_id` and shows it (the branch shown becomes its).
pub fn attach(conv: &mut Conversation, message: Message) {
    conv.shown
        .insert(key(message.parent_id.as_deref()), message.id.clone());
    conv.current_id = Some(message.id.clone());
    conv.messages.push(message);
}

/// The versions of message `id`: the messages sharing its parent, in the order written
/// (`id` itself included). Empty when there is no such message.
pub fn versions(conv: &Conversation, id: &str) -> Vec<String> {
    let Some(me) = conv.messages.iter().find(|m| m.id == id) else {
        return Vec::new();
    };
    conv.messages
        .iter()
        .filter(|m| m.parent_id == me.parent_id)
        .map(|m| m.id.clone())
        .collect()
}

/// Shows the branch through message `id`: below it, at each step the version shown last (the
/// newest where none was), down to the end. `false` when there is no such message.
pub fn select(conv: &mut Conversation, id: &str) -> bool {
    let chosen: Vec<(String, String)> = ancestry(conv, id)
        .iter()
        .map(|m| (key(m.parent_id.as_deref()), m.id.clone()))
        .collect();
    if chosen.is_empty() {
        return false;
    }
    conv.shown.extend(chosen);
    let mut at = id.to_string();
    for _ in 0..conv.messages.len() {
        let children: Vec<&str> = conv
            .messages
            .iter()
            .filter(|m| m.parent_id.as_deref() == Some(at.as_str()))
            .map(|m| m.id.as_str())
            .collect();
        let remembered = conv.shown.get(&at).map(String::as_str);
        let Some(next) = remembered
            .filter(|r| children.contains(r))
            .or(children.last().copied())
        else {
            break;
        };
        at = next.to_string();
    }
    conv.current_id = Some(at);
    true
}
