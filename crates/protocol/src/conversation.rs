//! Conversations as stored and shown: messages linked into branches, the views the UI gets,
//! what a send, a search, an export and a measurement carry.

use crate::{FinishReason, GenerationStats, Role, SamplingParams, SentWith};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One message of a conversation as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Message {
    pub id: String,
    pub role: Role,
    /// The message this one answers or follows; `None` for a conversation's first message
    /// (and for each edited version of it). Messages sharing a parent are branches of one
    /// another: a regenerated reply, an edited and resent message.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The answer text (Markdown for assistant messages). Never contains reasoning.
    pub content: String,
    /// The reasoning trace of an assistant message, if the model produced one.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// How long the model reasoned (first reasoning delta to the first answer delta, or to the
    /// end), in milliseconds — shown as "Thought for N s", also after a restart.
    #[serde(default)]
    pub reasoning_ms: Option<f64>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: f64,
    /// Generation numbers, for assistant messages.
    #[serde(default)]
    pub stats: Option<GenerationStats>,
    /// Why the assistant message ended.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    /// Name of the model that wrote an assistant message.
    #[serde(default)]
    pub model: Option<String>,
    /// Preset, sampling and thinking settings an assistant message was generated with.
    #[serde(default)]
    pub sent_with: Option<SentWith>,
}

/// The thinking controls last used in a conversation (restored when it is opened again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ThinkingChoice {
    pub enabled: bool,
    /// `reasoning_effort`; `None` = the template's default.
    pub effort: Option<String>,
}

/// A whole conversation, as stored on disk (one file per conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Conversation {
    /// Format version of the stored file.
    pub version: u32,
    pub id: String,
    pub title: String,
    pub created_at_ms: f64,
    pub updated_at_ms: f64,
    /// Every message of every branch, in the order they were written (branches by
    /// `Message::parent_id`).
    pub messages: Vec<Message>,
    /// The last message of the branch shown (whose ancestors make up the conversation the
    /// model sees next); `None` while the conversation is empty.
    #[serde(default)]
    pub current_id: Option<String>,
    /// For each message (`""` for the first messages), which of its followers was shown last:
    /// a branch switched back to is shown as the user left it.
    #[serde(default)]
    #[ts(type = "Record<string, string>")]
    pub shown: std::collections::BTreeMap<String, String>,
    /// Thinking on/off and effort of the last message sent with them.
    #[serde(default)]
    pub thinking: Option<ThinkingChoice>,
    /// Preset of the last message sent (restored in the composer when the conversation opens).
    #[serde(default)]
    pub preset_id: Option<String>,
}

/// A conversation in the sidebar list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConversationSummary {
    pub id: String,
    pub title: String,
    pub updated_at_ms: f64,
    pub message_count: u32,
}

/// How a conversation is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// The branch shown, readable: reasoning in collapsed `<details>` blocks.
    Markdown,
    /// The whole conversation (every branch, the settings each reply was sent with), for import.
    Json,
}

/// A conversation exported to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ExportedConversation {
    /// The file written.
    pub path: String,
    /// What it holds.
    pub text: String,
}

/// Where a search matched, in what field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SearchField {
    Title,
    Content,
    Reasoning,
}

/// One match of a search over conversations: the text around it (whitespace collapsed), split
/// so the match can be highlighted without parsing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SearchHit {
    pub conversation_id: String,
    pub title: String,
    /// The message matched; `None` for a title.
    pub message_id: Option<String>,
    pub field: SearchField,
    pub before: String,
    pub matched: String,
    pub after: String,
}

/// A message with its content rendered to sanitized HTML for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MessageView {
    #[serde(flatten)]
    #[ts(flatten)]
    pub message: Message,
    /// `content` rendered by pulldown-cmark and sanitized; safe to assign to `innerHTML`.
    pub html: String,
    /// The ids of this message's versions (itself and its siblings: regenerated replies, edited
    /// messages), oldest first; one id when there is no other version.
    pub versions: Vec<String>,
}

/// A conversation prepared for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    /// The branch shown, first message first.
    pub messages: Vec<MessageView>,
    /// The conversation's remembered thinking controls, if any were used.
    #[serde(default)]
    pub thinking: Option<ThinkingChoice>,
    /// The conversation's last-used preset, if any.
    #[serde(default)]
    pub preset_id: Option<String>,
}

/// What the user asked for when sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SendAction {
    /// Append a new user message and answer it.
    New { text: String },
    /// Answer the last user message of the branch shown again; earlier replies are kept as
    /// other versions of the new one.
    Regenerate,
    /// Send a new version of a user message (a sibling of it, the original and what followed
    /// it kept as another branch) and answer it.
    Edit { message_id: String, text: String },
}

/// Start a generation in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SendRequest {
    pub conversation_id: String,
    pub action: SendAction,
    /// Preset for this message (a built-in or user preset id); `None` uses the saved settings.
    #[serde(default)]
    pub preset_id: Option<String>,
    /// Overrides the sampling values (of the preset or the saved settings) for this message.
    #[serde(default)]
    pub sampling: Option<SamplingParams>,
    /// Template switch for thinking models; `None` keeps the preset's (or template's) default.
    #[serde(default)]
    pub enable_thinking: Option<bool>,
    /// Template `reasoning_effort` (one of the model's `effort_levels`); `None` = the preset's.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
}

/// A message to measure before it is sent (text and attached files, as a new message of the
/// conversation would be sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MeasureRequest {
    /// `None`: a conversation not created yet.
    pub conversation_id: Option<String>,
    pub text: String,
    #[serde(default)]
    pub preset_id: Option<String>,
    #[serde(default)]
    pub enable_thinking: Option<bool>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
}

/// What a message would take of the loaded model's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MessageMeasure {
    /// The message alone.
    pub message_tokens: u32,
    /// The whole prompt it would be sent in: system prompt, the branch shown, the message.
    pub prompt_tokens: u32,
    /// The model's context, when known.
    pub context_length: Option<u32>,
}
