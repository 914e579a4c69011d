//! Stored messages as the UI shows them: Markdown rendered and sanitized (user text escaped,
//! never interpreted), each with the ids of its versions.

use localglm_conversations::tree;
use localglm_protocol::{Conversation, ConversationView, Message, MessageView, Role};

/// Renders a message for display, as its only version.
pub fn render(message: Message) -> MessageView {
    let html = match message.role {
        Role::User => escape_as_paragraphs(&message.content),
        _ => localglm_markdown::render(&message.content),
    };
    let versions = vec![message.id.clone()];
    MessageView {
        message,
        html,
        versions,
    }
}

/// Renders a stored message of `conv` for display, with its versions.
pub fn view(conv: &Conversation, message: Message) -> MessageView {
    let versions = tree::versions(conv, &message.id);
    let mut shown = render(message);
    if !versions.is_empty() {
        shown.versions = versions;
    }
    shown
}

/// The branch of `conv` shown, for display.
pub(crate) fn conversation_view(conv: &Conversation) -> ConversationView {
    ConversationView {
        id: conv.id.clone(),
        title: conv.title.clone(),
        messages: tree::path(conv)
            .into_iter()
            .map(|m| view(conv, m.clone()))
            .collect(),
        thinking: conv.thinking.clone(),
        preset_id: conv.preset_id.clone(),
    }
}

/// User text is shown as typed (escaped, line breaks kept), not interpreted as Markdown.
fn escape_as_paragraphs(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str("<p>");
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out.push_str("</p>");
    out
}
