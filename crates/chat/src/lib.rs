//! One chat turn, end to end, independent of any UI toolkit: apply the user's action to the
//! stored conversation (new message, regenerate, edit-and-resend), build the prompt, run the
//! engine, stream coalesced [`GenerationEvent`]s to a sink, and persist the reply.
//!
//! Invariants:
//! * The user's message is saved before generation starts; the assistant reply is saved
//!   (also when stopped or failed, with what was generated) before `done`/`error` is sent.
//! * A sink sees `started`, deltas, then exactly one `done` or `error`.
//! * Deltas are coalesced to at most one flush per [`FLUSH_INTERVAL`], so long answers stay
//!   smooth in the webview; a pending delta is never held longer than that interval.
//! * A flush renders only the answer's unfinished last block; finished blocks' HTML is sent
//!   once (`localglm_markdown::StreamRenderer`), and the HTML sent adds up to the saved
//!   message's.
//! * At most one generation runs per conversation.

use futures::StreamExt;
use localglm_conversations::{
    exchange, new_id, new_message, now_ms, title_from, tree, Change, ConversationStore,
};
use localglm_engine::{
    ChatTurn, Engine, EngineError, EngineEvent, GenerateRequest, LoadSpec, ProgressSink,
};
use localglm_protocol::{
    AppError, Conversation, ConversationSummary, ConversationView, ErrorKind, ExportFormat,
    ExportedConversation, FinishReason, GenerationEvent, GenerationHandle, LoadProgress,
    MeasureRequest, Message, MessageMeasure, ModelInfo, ModelStatus, RemoteServer, Role, SearchHit,
    SendAction, SendRequest, SentWith, Settings, ThinkingChoice,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod errors;
pub mod presets;
pub mod remotes;
mod reservation;
pub mod settings;
mod titles;
mod view;
pub use errors::{conversation_error, engine_error};
use titles::first_exchange;
pub use titles::{clean_title, TITLE_TIMEOUT};
use view::conversation_view;
pub use view::{render, view};

/// Longest time a delta waits before it is sent to the UI.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(30);
/// Most search hits returned at once.
pub const SEARCH_LIMIT: usize = 100;
/// How often the reply being written is kept on disk (what a killed app loses at most).
pub const PARTIAL_INTERVAL: Duration = Duration::from_secs(1);

/// Receives the events of one generation.
pub type EventSink = Arc<dyn Fn(GenerationEvent) + Send + Sync>;
/// Receives model status changes.
pub type StatusSink = Arc<dyn Fn(&ModelStatus) + Send + Sync>;
/// Receives a conversation changed outside a request (a title generated after a reply).
pub type ConversationSink = Arc<dyn Fn(&ConversationSummary) + Send + Sync>;

struct Running {
    conversation_id: String,
    cancel: CancellationToken,
}

/// The chat service shared by the desktop shell (and later the API server).
pub struct ChatService {
    engine: Arc<dyn Engine>,
    store: ConversationStore,
    running: Mutex<HashMap<String, Running>>,
    status: Arc<StatusBoard>,
    on_conversation: Mutex<Option<ConversationSink>>,
}

/// The model status and its listener, shared with a load's progress callback.
struct StatusBoard {
    status: Mutex<ModelStatus>,
    on_status: Mutex<Option<StatusSink>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self {
            status: Mutex::new(ModelStatus::None),
            on_status: Mutex::new(None),
        }
    }
}

impl StatusBoard {
    fn set(&self, status: ModelStatus) {
        *self.status.lock().expect("lock") = status.clone();
        let sink = self.on_status.lock().expect("lock").clone();
        if let Some(sink) = sink {
            sink(&status);
        }
    }
}

impl ChatService {
    /// A service over `store`. Replies a previous run left half-written (the app was killed
    /// mid-answer) are appended to their conversations first, marked interrupted.
    pub fn new(engine: Arc<dyn Engine>, store: ConversationStore) -> Self {
        // A failure leaves the partial replies in place for the next start: nothing is lost.
        let _ = store.recover_interrupted();
        Self {
            engine,
            store,
            running: Mutex::new(HashMap::new()),
            status: Arc::default(),
            on_conversation: Mutex::new(None),
        }
    }

    /// Registers the listener told about conversations changed outside a request.
    pub fn on_conversation(&self, sink: ConversationSink) {
        *self.on_conversation.lock().expect("lock") = Some(sink);
    }

    /// Registers the listener told about every model status change.
    pub fn on_status(&self, sink: StatusSink) {
        *self.status.on_status.lock().expect("lock") = Some(sink);
    }

    fn set_status(&self, status: ModelStatus) {
        self.status.set(status);
    }

    /// Reports a model that was not loaded (e.g. it does not fit), as a failed load.
    pub fn refuse(&self, path: &std::path::Path, error: AppError) -> AppError {
        self.set_status(ModelStatus::Failed {
            path: path.to_string_lossy().into_owned(),
            error: error.clone(),
        });
        error
    }

    pub fn model_status(&self) -> ModelStatus {
        self.status.status.lock().expect("lock").clone()
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    pub fn store(&self) -> &ConversationStore {
        &self.store
    }

    /// Loads a model, reporting `loading` then `ready` or `failed`.
    pub async fn load_model(&self, path: PathBuf) -> Result<ModelInfo, AppError> {
        self.load_model_with(LoadSpec::new(path)).await
    }

    /// Loads a model file with a context length and KV-cache type.
    pub async fn load_model_with(&self, spec: LoadSpec) -> Result<ModelInfo, AppError> {
        let shown = spec.path.to_string_lossy().into_owned();
        self.load(spec, shown, |r| r.map_err(|e| engine_error(&e)))
            .await
    }

    /// Switches to a server; a server that cannot be used (unreachable, key refused, no such
    /// model) leaves the loaded model in place and says why.
    pub async fn load_remote(&self, server: &RemoteServer) -> Result<ModelInfo, AppError> {
        let name = remotes::display_name(server);
        let spec = LoadSpec::remote(remotes::spec(server));
        let label = server.name.clone();
        self.load(spec, server.base_url.clone(), |loaded| match loaded {
            // Shown as "Server name · model id".
            Ok(mut info) => {
                if !label.is_empty() {
                    info.name = format!("{label} · {}", info.name);
                }
                Ok(info)
            }
            Err(EngineError::LoadFailed { reason, .. }) => Err(AppError::new(
                ErrorKind::LoadFailed,
                format!("Could not use the server {name}."),
            )
            .with_detail(reason)),
            Err(other) => Err(engine_error(&other)),
        })
        .await
    }

    async fn load(
        &self,
        spec: LoadSpec,
        shown: String,
        outcome: impl FnOnce(Result<ModelInfo, EngineError>) -> Result<ModelInfo, AppError>,
    ) -> Result<ModelInfo, AppError> {
        let before = self.model_status();
        self.set_status(ModelStatus::Loading {
            path: shown.clone(),
            progress: None,
        });
        let remote = spec.remote.is_some();
        // Progress shows in the status, at most once per whole percent of a stage.
        let (board, path) = (self.status.clone(), shown.clone());
        let shown_last = Mutex::new((String::new(), u64::MAX));
        let progress = ProgressSink::new(move |p: LoadProgress| {
            let pct = (100.0 * p.done_bytes / p.total_bytes.max(1.0)) as u64;
            let mut last = shown_last.lock().expect("progress lock");
            if last.0 != p.stage || last.1 != pct {
                *last = (p.stage.clone(), pct);
                board.set(ModelStatus::Loading {
                    path: path.clone(),
                    progress: Some(p),
                });
            }
        });
        let spec = LoadSpec { progress, ..spec };
        match outcome(self.engine.load(spec).await) {
            Ok(model) => {
                self.set_status(ModelStatus::Ready {
                    model: model.clone(),
                });
                Ok(model)
            }
            Err(error) => {
                let kept = remote || self.engine.loaded().is_some();
                if kept && matches!(before, ModelStatus::Ready { .. }) {
                    // Refused before the loaded model was let go (a server that cannot be
                    // used, a GPU that is not there or too small, an unreadable header):
                    // keep it, and report the error only.
                    self.set_status(before);
                } else {
                    self.set_status(ModelStatus::Failed {
                        path: shown,
                        error: error.clone(),
                    });
                }
                Err(error)
            }
        }
    }

    pub fn list(&self) -> Result<Vec<ConversationSummary>, AppError> {
        self.store.list().map_err(|e| conversation_error(&e))
    }

    pub fn create(&self, title: Option<String>) -> Result<ConversationSummary, AppError> {
        self.store
            .create(title)
            .map(|c| localglm_conversations::summary(&c))
            .map_err(|e| conversation_error(&e))
    }

    pub fn get(&self, id: &str) -> Result<ConversationView, AppError> {
        let c = self.store.get(id).map_err(|e| conversation_error(&e))?;
        Ok(conversation_view(&c))
    }

    /// Shows another version of a message (and the branch below it, as far as it was last
    /// written); refused while a reply is being written in the conversation.
    pub fn select_branch(
        &self,
        conversation_id: &str,
        message_id: &str,
    ) -> Result<ConversationView, AppError> {
        // Held while the branch is switched: no reply starts or is saved meanwhile.
        let _reserved = self.reserve(conversation_id)?;
        let (c, found) = self
            .store
            .update(conversation_id, |c| match tree::select(c, message_id) {
                true => Change::Save(true),
                false => Change::Keep(false),
            })
            .map_err(|e| conversation_error(&e))?;
        if !found {
            return Err(AppError::new(
                ErrorKind::NotFound,
                "That message no longer exists.",
            ));
        }
        Ok(conversation_view(&c))
    }

    /// Searches every conversation's title and messages (every branch; reasoning when asked).
    pub fn search(&self, query: &str, reasoning: bool) -> Result<Vec<SearchHit>, AppError> {
        self.store
            .search(query, reasoning, SEARCH_LIMIT)
            .map_err(|e| conversation_error(&e))
    }

    /// Exports a conversation into `dir` (Markdown: the branch shown; JSON: everything).
    pub fn export(
        &self,
        id: &str,
        format: ExportFormat,
        dir: &std::path::Path,
    ) -> Result<ExportedConversation, AppError> {
        let c = self.store.get(id).map_err(|e| conversation_error(&e))?;
        let (text, ext) = match format {
            ExportFormat::Markdown => (exchange::to_markdown(&c), "md"),
            ExportFormat::Json => (exchange::to_json(&c), "json"),
        };
        let path = exchange::write_export(dir, &exchange::file_stem(&c.title), ext, &text)
            .map_err(|e| {
                AppError::new(ErrorKind::Io, "Could not write the export.")
                    .with_detail(format!("{}: {e}", dir.display()))
            })?;
        Ok(ExportedConversation {
            path: path.to_string_lossy().into_owned(),
            text,
        })
    }

    /// Adds the conversation of a LocalGLM JSON export (a copy under a new id); a malformed
    /// file is refused and changes nothing.
    pub fn import(&self, json: &str) -> Result<ConversationSummary, AppError> {
        self.store
            .import(json)
            .map(|c| localglm_conversations::summary(&c))
            .map_err(|e| conversation_error(&e))
    }

    pub fn rename(&self, id: &str, title: &str) -> Result<ConversationSummary, AppError> {
        self.store
            .rename(id, title)
            .map_err(|e| conversation_error(&e))
    }

    /// Deletes a conversation, stopping its generation if one runs.
    pub fn delete(&self, id: &str) -> Result<(), AppError> {
        for r in self.running.lock().expect("lock").values() {
            if r.conversation_id == id {
                r.cancel.cancel();
            }
        }
        self.store.delete(id).map_err(|e| conversation_error(&e))
    }

    /// Stops a running generation; `false` if it is not running (any more).
    pub fn stop(&self, generation_id: &str) -> bool {
        match self.running.lock().expect("lock").get(generation_id) {
            Some(r) => {
                r.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Whether any generation is running.
    pub fn is_generating(&self) -> bool {
        !self.running.lock().expect("lock").is_empty()
    }

    /// The tokens a new message would take, alone and in the whole prompt it would be sent in
    /// (as `send` would build it), and the model's context: what the composer shows before
    /// sending, and how it refuses files that would overflow the context.
    pub async fn measure(
        &self,
        request: &MeasureRequest,
        settings: &Settings,
    ) -> Result<MessageMeasure, AppError> {
        let model = self
            .engine
            .loaded()
            .ok_or_else(|| engine_error(&EngineError::NoModel))?;
        let send = SendRequest {
            conversation_id: request.conversation_id.clone().unwrap_or_default(),
            action: SendAction::New {
                text: request.text.clone(),
            },
            preset_id: request.preset_id.clone(),
            sampling: None,
            enable_thinking: request.enable_thinking,
            reasoning_effort: request.reasoning_effort.clone(),
        };
        let (sent_with, system_prompt) = presets::resolve(settings, &send, &model)?;
        let mut conv = match &request.conversation_id {
            Some(id) => self.store.get(id).map_err(|e| conversation_error(&e))?,
            None => localglm_conversations::blank(None),
        };
        tree::push(&mut conv, new_message(Role::User, request.text.clone()));
        let whole = engine_request(&conv, &sent_with, &system_prompt, settings);
        let alone = GenerateRequest {
            messages: vec![ChatTurn::new(Role::User, request.text.clone())],
            ..whole.clone()
        };
        let counted = |r: Result<u32, EngineError>| r.map_err(|e| engine_error(&e));
        Ok(MessageMeasure {
            message_tokens: counted(self.engine.count_tokens(&alone).await)?,
            prompt_tokens: counted(self.engine.count_tokens(&whole).await)?,
            context_length: model.context_length,
        })
    }

    /// Applies the action, starts the generation and returns at once; events go to `sink`.
    pub async fn send(
        self: &Arc<Self>,
        request: SendRequest,
        settings: &Settings,
        sink: EventSink,
    ) -> Result<GenerationHandle, AppError> {
        let mut reserved = self.reserve(&request.conversation_id)?;
        let model = self
            .engine
            .loaded()
            .ok_or_else(|| engine_error(&EngineError::NoModel))?;
        let (sent_with, system_prompt) = presets::resolve(settings, &request, &model)?;
        let (conv, user_message) = self
            .store
            .update(&request.conversation_id, |conv| {
                let user_message = match apply_action(conv, &request.action) {
                    Ok(m) => m,
                    Err(e) => return Change::Keep(Err(e)),
                };
                if let Some(enabled) = request.enable_thinking {
                    // Remembered per conversation; the UI restores it when it reopens.
                    conv.thinking = Some(ThinkingChoice {
                        enabled,
                        effort: request.reasoning_effort.clone(),
                    });
                }
                if request.preset_id.is_some() {
                    conv.preset_id = request.preset_id.clone();
                }
                conv.updated_at_ms = now_ms();
                Change::Save(Ok(user_message))
            })
            .map_err(|e| conversation_error(&e))?;
        let user_message = user_message?;

        // The model sees the branch up to the message it answers (for a regenerate, the reply
        // being replaced is still the one shown).
        let mut asked = conv.clone();
        asked.current_id = Some(user_message.id.clone());
        let engine_request = engine_request(&asked, &sent_with, &system_prompt, settings);
        let generation = self
            .engine
            .generate(engine_request)
            .await
            .map_err(|e| engine_error(&e))?;

        let generation_id = reserved.keep(generation.canceller());
        let assistant_message_id = new_id();
        let this = Arc::clone(self);
        let job = Job {
            generation_id: generation_id.clone(),
            conversation_id: conv.id.clone(),
            user_message_id: user_message.id.clone(),
            assistant_message_id: assistant_message_id.clone(),
            model_name: model.name.clone(),
            sent_with,
            title: settings.generate_titles,
        };
        sink(GenerationEvent::Started {
            generation_id: generation_id.clone(),
            model: model.name,
        });
        tokio::spawn(async move {
            this.drive(job, generation, sink).await;
        });
        Ok(GenerationHandle {
            generation_id,
            user_message: view(&conv, user_message),
            assistant_message_id,
        })
    }

    async fn drive(&self, job: Job, generation: localglm_engine::Generation, sink: EventSink) {
        let mut events = generation.events;
        let mut content = String::new();
        let mut reasoning = String::new();
        let (mut pending_reasoning, mut pending_content) = (String::new(), String::new());
        let mut deadline: Option<Instant> = None;
        // Reasoning time: first reasoning delta → first answer delta after it (or the end).
        let (mut reasoning_start, mut reasoning_end): (Option<Instant>, Option<Instant>) =
            (None, None);
        // Only the answer's last block is rendered again at each flush; finished blocks are
        // sent once (a 30k-token answer would otherwise be rendered whole ~1000 times).
        let mut html = localglm_markdown::StreamRenderer::new();
        let mut flush = |pr: &mut String, pc: &mut String, content: &str| {
            if !pr.is_empty() {
                sink(GenerationEvent::Reasoning {
                    delta: std::mem::take(pr),
                });
            }
            if !pc.is_empty() {
                let update = html.update(content);
                sink(GenerationEvent::Content {
                    delta: std::mem::take(pc),
                    append_html: update.append,
                    live_html: update.live,
                    reset_html: update.reset,
                });
            }
        };
        let mut kept = Instant::now();
        let (reason, stats, error) = loop {
            let next = match deadline {
                Some(d) => tokio::select! {
                    ev = events.next() => Some(ev),
                    _ = tokio::time::sleep_until(d) => None,
                },
                None => Some(events.next().await),
            };
            match next {
                None => {
                    flush(&mut pending_reasoning, &mut pending_content, &content);
                    deadline = None;
                    if kept.elapsed() >= PARTIAL_INTERVAL {
                        kept = Instant::now();
                        self.keep_partial(&job, &content, &reasoning);
                    }
                }
                Some(Some(EngineEvent::Reasoning(t))) => {
                    reasoning_start.get_or_insert_with(Instant::now);
                    reasoning_end = None;
                    reasoning.push_str(&t);
                    pending_reasoning.push_str(&t);
                    deadline.get_or_insert_with(|| Instant::now() + FLUSH_INTERVAL);
                }
                Some(Some(EngineEvent::Content(t))) => {
                    if reasoning_start.is_some() && reasoning_end.is_none() {
                        reasoning_end = Some(Instant::now());
                    }
                    if !pending_reasoning.is_empty() {
                        // Keep order: reasoning that came first is shown first.
                        sink(GenerationEvent::Reasoning {
                            delta: std::mem::take(&mut pending_reasoning),
                        });
                    }
                    content.push_str(&t);
                    pending_content.push_str(&t);
                    deadline.get_or_insert_with(|| Instant::now() + FLUSH_INTERVAL);
                }
                Some(Some(EngineEvent::Finished {
                    reason,
                    stats,
                    error,
                })) => {
                    flush(&mut pending_reasoning, &mut pending_content, &content);
                    break (reason, Some(stats), error);
                }
                Some(None) => {
                    flush(&mut pending_reasoning, &mut pending_content, &content);
                    break (
                        FinishReason::Error,
                        None,
                        Some(EngineError::Generation(
                            "the engine stream ended early".into(),
                        )),
                    );
                }
            }
        };
        let message = Message {
            id: job.assistant_message_id,
            role: Role::Assistant,
            parent_id: Some(job.user_message_id),
            content,
            reasoning_ms: reasoning_start.map(|start| {
                let end = reasoning_end.unwrap_or_else(Instant::now);
                (end - start).as_secs_f64() * 1000.0
            }),
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            created_at_ms: now_ms(),
            stats,
            finish_reason: Some(reason),
            model: Some(job.model_name),
            sent_with: Some(job.sent_with),
        };
        let saved = {
            // The reply is saved and the conversation released in one step (under the lock
            // `reserve` takes): whoever sees the saved reply may send the next message.
            let mut running = self.running.lock().expect("lock");
            let saved = self.append(&job.conversation_id, &message);
            running.remove(&job.generation_id);
            saved
        };
        if saved.is_ok() {
            // Kept otherwise: the next start appends it as interrupted.
            let _ = self.store.remove_partial(&job.conversation_id);
        }
        let shown = match &saved {
            Ok(conv) => view(conv, message),
            Err(_) => render(message),
        };
        let titling = match (&saved, &error) {
            (Ok(conv), None) if job.title && reason != FinishReason::Cancelled => {
                first_exchange(conv)
            }
            _ => None,
        };
        let saved = saved.map(|_| ());
        match (error, saved) {
            (None, Ok(())) => sink(GenerationEvent::Done {
                message: shown,
                finish_reason: reason,
            }),
            (Some(e), saved) => sink(GenerationEvent::Error {
                error: engine_error(&e),
                message: saved.ok().map(|_| shown),
            }),
            (None, Err(e)) => sink(GenerationEvent::Error {
                error: e,
                message: None,
            }),
        }
        if let Some((asked, answer)) = titling {
            // After `done`: the reply is the user's; the title follows when the model has one.
            self.generate_title(&job.conversation_id, &asked, &answer)
                .await;
        }
    }

    /// Keeps the reply so far on disk, for a start after the app was killed mid-answer.
    fn keep_partial(&self, job: &Job, content: &str, reasoning: &str) {
        if content.is_empty() && reasoning.is_empty() {
            return;
        }
        let partial = Message {
            id: job.assistant_message_id.clone(),
            role: Role::Assistant,
            parent_id: Some(job.user_message_id.clone()),
            content: content.to_string(),
            reasoning: (!reasoning.is_empty()).then(|| reasoning.to_string()),
            reasoning_ms: None,
            created_at_ms: now_ms(),
            stats: None,
            finish_reason: None,
            model: Some(job.model_name.clone()),
            sent_with: Some(job.sent_with.clone()),
        };
        // Best effort: a failed write loses only this copy; the reply itself streams on.
        let _ = self.store.save_partial(&job.conversation_id, &partial);
    }

    /// Appends the reply to the conversation as it is on disk now, under the message it
    /// answers, and shows it; returns the conversation.
    fn append(&self, conversation_id: &str, message: &Message) -> Result<Conversation, AppError> {
        self.store
            .update(conversation_id, |conv| {
                if message.content.is_empty() && message.reasoning.is_none() {
                    // Nothing was generated (e.g. stopped before the first token): keep the
                    // turn open.
                    return Change::Keep(());
                }
                tree::attach(conv, message.clone());
                conv.updated_at_ms = now_ms();
                Change::Save(())
            })
            .map(|(conv, ())| conv)
            .map_err(|e| conversation_error(&e))
    }
}

struct Job {
    /// Title the conversation with the model if this reply completes its first exchange.
    title: bool,
    generation_id: String,
    conversation_id: String,
    /// The message being answered: the reply's parent.
    user_message_id: String,
    assistant_message_id: String,
    model_name: String,
    sent_with: SentWith,
}

/// What the engine is asked: the system prompt, then the branch shown (past reasoning
/// included; the template drops it when `clear_thinking` is set).
fn engine_request(
    conv: &Conversation,
    sent_with: &SentWith,
    system_prompt: &str,
    settings: &Settings,
) -> GenerateRequest {
    let mut messages = Vec::new();
    if !system_prompt.trim().is_empty() {
        messages.push(ChatTurn::new(Role::System, system_prompt));
    }
    messages.extend(tree::path(conv).into_iter().map(|m| ChatTurn {
        reasoning: m.reasoning.clone(),
        ..ChatTurn::new(m.role, m.content.clone())
    }));
    GenerateRequest {
        messages,
        sampling: sent_with.sampling.clone(),
        enable_thinking: sent_with.enable_thinking,
        reasoning_effort: sent_with.reasoning_effort.clone(),
        clear_thinking: settings.clear_thinking.then_some(true),
        tools: None,
    }
}

/// Applies the action to the conversation's branches; returns the user message to be
/// answered (the last message of the branch shown, except for a regenerate, which shows the
/// old reply until the new one is saved). Nothing is removed: a regenerated reply and an
/// edited message become new versions beside the old ones.
fn apply_action(conv: &mut Conversation, action: &SendAction) -> Result<Message, AppError> {
    let invalid = |m: &str| AppError::new(ErrorKind::InvalidRequest, m);
    match action {
        SendAction::New { text } => {
            if text.trim().is_empty() {
                return Err(invalid("The message is empty."));
            }
            if !conv.messages.iter().any(|m| m.role == Role::User) && conv.title == "New chat" {
                conv.title = title_from(text);
            }
            let m = new_message(Role::User, text.clone());
            tree::push(conv, m.clone());
            Ok(tree::path(conv).pop().cloned().unwrap_or(m))
        }
        SendAction::Regenerate => {
            let asked = tree::path(conv)
                .into_iter()
                .rev()
                .find(|m| m.role != Role::Assistant)
                .cloned();
            match asked {
                // The branch shown stays as it is until a new reply is saved: a regenerate
                // that yields nothing (stopped at once, failed) leaves the old reply shown.
                Some(m) if m.role == Role::User => Ok(m),
                _ => Err(invalid("There is no user message to answer.")),
            }
        }
        SendAction::Edit { message_id, text } => {
            if text.trim().is_empty() {
                return Err(invalid("The message is empty."));
            }
            let original = conv
                .messages
                .iter()
                .find(|m| &m.id == message_id)
                .cloned()
                .ok_or_else(|| {
                    AppError::new(ErrorKind::NotFound, "That message no longer exists.")
                })?;
            if original.role != Role::User {
                return Err(invalid("Only your own messages can be edited."));
            }
            if original.parent_id.is_none() && conv.title == title_from(&original.content) {
                // A title the user did not choose follows the first message.
                conv.title = title_from(text);
            }
            let m = Message {
                parent_id: original.parent_id,
                ..new_message(Role::User, text.clone())
            };
            tree::attach(conv, m.clone());
            Ok(m)
        }
    }
}

#[cfg(test)]
mod presets_tests;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod tests;
