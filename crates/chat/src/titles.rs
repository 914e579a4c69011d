//! Titles written by the model: after the first reply of a chat still titled from its first
//! words, one short request (thinking off), cleaned, applied unless the chat was renamed or its
//! first question edited meanwhile.

use crate::ChatService;
use futures::StreamExt;
use localglm_conversations::{title_from, tree, Change};
use localglm_engine::{ChatTurn, EngineEvent, GenerateRequest};
use localglm_protocol::{Conversation, Role};
use std::time::Duration;

/// Longest a title may take to generate before it is given up.
pub const TITLE_TIMEOUT: Duration = Duration::from_secs(60);

impl ChatService {
    /// Asks the model for a title of the first exchange and renames the conversation with it
    /// (unless the user renamed it meanwhile); best effort: any failure keeps the title.
    pub(crate) async fn generate_title(&self, conversation_id: &str, asked: &str, answer: &str) {
        let clip = |t: &str| t.chars().take(1500).collect::<String>();
        let request = GenerateRequest {
            messages: vec![
                ChatTurn::new(Role::System, localglm_engine::TITLE_INSTRUCTION),
                ChatTurn::new(Role::User, format!("{}\n\n{}", clip(asked), clip(answer))),
            ],
            sampling: localglm_protocol::SamplingParams {
                temperature: 0.3,
                max_tokens: 24,
                ..Default::default()
            },
            enable_thinking: Some(false),
            reasoning_effort: None,
            clear_thinking: None,
            tools: None,
        };
        let Ok(generation) = self.engine.generate(request).await else {
            return;
        };
        let cancel = generation.canceller();
        let mut events = generation.events;
        let mut text = String::new();
        let collect = async {
            while let Some(event) = events.next().await {
                match event {
                    EngineEvent::Content(t) => text.push_str(&t),
                    EngineEvent::Finished { error: None, .. } => return true,
                    EngineEvent::Finished { .. } => return false,
                    EngineEvent::Reasoning(_) => {}
                }
            }
            false
        };
        let finished = tokio::time::timeout(TITLE_TIMEOUT, collect).await;
        if !matches!(finished, Ok(true)) {
            cancel.cancel();
            return;
        }
        let Some(title) = clean_title(&text) else {
            return;
        };
        // Checked and written under the store's lock: a message sent meanwhile is never lost.
        let updated = self.store.update(conversation_id, |conv| {
            // Renamed or the question edited meanwhile: the title no longer fits. Messages
            // sent since, or the answer regenerated, keep the question the title is about.
            let opens_with_question = tree::path(conv)
                .first()
                .is_some_and(|m| m.role == Role::User && m.content == asked);
            if !opens_with_question || conv.title != title_from(asked) {
                return Change::Keep(false);
            }
            conv.title = title;
            Change::Save(true)
        });
        if let Ok((conv, true)) = updated {
            let sink = self.on_conversation.lock().expect("lock").clone();
            if let Some(sink) = sink {
                sink(&localglm_conversations::summary(&conv));
            }
        }
    }
}

/// The first exchange of a conversation still titled automatically (from its first message):
/// the question and the answer shown, when the branch shown is exactly those two.
pub(crate) fn first_exchange(conv: &Conversation) -> Option<(String, String)> {
    match tree::path(conv).as_slice() {
        [asked, answer]
            if asked.role == Role::User
                && answer.role == Role::Assistant
                && !answer.content.trim().is_empty()
                && conv.title == title_from(&asked.content) =>
        {
            Some((asked.content.clone(), answer.content.clone()))
        }
        _ => None,
    }
}

/// A model's title as the sidebar shows it: its first line without a "Title:" label, Markdown
/// marks, quotes or a closing full stop; `None` when nothing is left.
pub fn clean_title(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line);
    let quotes: &[char] = &['"', '\'', '“', '”', '‘', '’', '`', '*', '_', '#'];
    let line = line.trim().trim_matches(quotes).trim();
    let line = line
        .trim_end_matches(['.', '!', ':', ';', ','])
        .trim_matches(quotes)
        .trim();
    let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
    (!words.is_empty()).then(|| title_from(&words))
}
