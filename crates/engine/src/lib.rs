//! The inference engine behind LocalGLM: one trait, several backends.
//!
//! * [`Engine`] — load a model, generate as a stream of typed [`EngineEvent`]s, cancel, unload.
//! * [`mistral::MistralRsEngine`] — GGUF models of the architectures the published `mistralrs`
//!   supports (llama, qwen2/3, phi, ... — the default SmolLM2 model among them).
//! * [`glm::GlmEngine`] — GLM-5.x (`glm-dsa`) on LocalGLM's own runtime (`localglm-glm`).
//! * [`auto::AutoEngine`] — picks one of the two by the GGUF's architecture (what the app and
//!   CLI use).
//! * [`scripted::ScriptedEngine`] — a deterministic fake for UI tests only (never instead of
//!   real-model tests).
//!
//! Invariant: every generation's stream ends with exactly one [`EngineEvent::Finished`] (also on
//! cancellation and on failure, carrying the partial stats), and reasoning text never arrives as
//! content nor content as reasoning.

use async_trait::async_trait;
use futures::stream::BoxStream;
pub use localglm_glm::gpu::DeviceChoice;
pub use localglm_glm::KvType;
pub use localglm_protocol::{FinishReason, GenerationStats, ModelInfo, Role, SamplingParams};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub mod auto;
pub mod glm;
pub mod mistral;
pub mod prompt;
pub mod prompt_cache;
pub mod queue;
pub mod reasoning;
pub mod remote;
pub mod scripted;
mod stats;

pub use stats::StatsClock;

/// What can go wrong in an engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("model file not found: {}", .0.display())]
    ModelMissing(PathBuf),
    #[error("could not load {}: {reason}", .path.display())]
    LoadFailed { path: PathBuf, reason: String },
    #[error("no model is loaded")]
    NoModel,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("generation failed: {0}")]
    Generation(String),
}

/// One message of the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTurn {
    pub role: Role,
    pub content: String,
    /// The reasoning of a past assistant turn (templates that keep history reasoning render it
    /// as `<think>…</think>` unless `clear_thinking` is set).
    pub reasoning: Option<String>,
    /// OpenAI-style tool calls of an assistant turn (`[{id, type, function: {name,
    /// arguments}}]`, arguments as a JSON object, the form chat templates iterate over).
    pub tool_calls: Option<serde_json::Value>,
    /// The call a [`Role::Tool`] message answers.
    pub tool_call_id: Option<String>,
}

impl ChatTurn {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            reasoning: None,
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

/// A request for one reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateRequest {
    pub messages: Vec<ChatTurn>,
    pub sampling: SamplingParams,
    /// Template switch for thinking models; `None` keeps the template's default.
    pub enable_thinking: Option<bool>,
    /// Template `reasoning_effort` (e.g. `high`, `max` for GLM-5.2); `None` = template default.
    pub reasoning_effort: Option<String>,
    /// Template `clear_thinking`: drop past turns' reasoning from the prompt; `None` = default.
    pub clear_thinking: Option<bool>,
    /// OpenAI-style tool definitions (`[{type: "function", function: {name, description,
    /// parameters}}]`) handed to the chat template as `tools`; `None` = no tools.
    pub tools: Option<serde_json::Value>,
}

pub use localglm_glm::spec::Drafting;

/// Which model to load, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub path: PathBuf,
    /// Context length to allocate for; `None` = the backend's default.
    pub context_length: Option<u32>,
    /// KV-cache element type (GLM-5.x runtime); `None` = f16.
    pub kv_cache: Option<localglm_glm::KvType>,
    /// An OpenAI-compatible server to use instead of a file ([`auto::AutoEngine`] then runs the
    /// remote backend; `path` is only shown).
    pub remote: Option<remote::RemoteSpec>,
    /// Where the model runs (auto / gpu / cpu); `gpu` never falls back to the CPU. GLM-5.x:
    /// LocalGLM's wgpu backend (see [`glm::place`]); other architectures: mistral.rs's `metal`
    /// / `cuda` build, when this build has one (`auto` and `gpu` use it, `cpu` does not).
    pub device: localglm_glm::gpu::DeviceChoice,
    /// MoE layers whose routed experts stay in RAM on the CPU when running on a GPU.
    pub cpu_moe: Option<u32>,
    /// Told how far the load has come, where the backend knows (weights uploaded to a GPU).
    pub progress: ProgressSink,
    /// Bytes of KV caches kept for prompt-prefix reuse across requests (GLM-5.x runtime);
    /// `None` = the backend's default (one cache of the planned context), `Some(0)` = only the
    /// last conversation's.
    pub prompt_cache: Option<u64>,
    /// Speculative decoding with the model's MTP block (GLM-5.x runtime, CPU or GPU): tokens
    /// drafted per step, or `Auto` (as many as pay, measured while generating); `Fixed(0)`
    /// does not load the block.
    pub mtp: localglm_glm::spec::Drafting,
    /// Run a dense LLaMA-family model on mistral.rs rather than LocalGLM's own runtime.
    pub mistralrs: bool,
}

/// A load's progress listener (none by default); compares equal to any other, so a
/// [`LoadSpec`] still compares by what it loads.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Arc<dyn Fn(localglm_protocol::LoadProgress) + Send + Sync>>);

impl ProgressSink {
    pub fn new(f: impl Fn(localglm_protocol::LoadProgress) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Reports `done` of `total` bytes of `stage`.
    pub fn report(&self, stage: &str, done: u64, total: u64) {
        if let Some(f) = &self.0 {
            f(localglm_protocol::LoadProgress {
                stage: stage.into(),
                done_bytes: done as f64,
                total_bytes: total as f64,
            });
        }
    }

    /// Whether anyone listens.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(set)"
        } else {
            "ProgressSink(none)"
        })
    }
}

impl PartialEq for ProgressSink {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// `EngineError::LoadFailed` for `path` from any error's text (for `map_err`).
pub fn load_failed<E: std::fmt::Display>(path: &std::path::Path) -> impl Fn(E) -> EngineError + '_ {
    move |e| EngineError::LoadFailed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl LoadSpec {
    /// `path` with the defaults: the backend's context and KV type, device `Auto`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            context_length: None,
            kv_cache: None,
            remote: None,
            device: Default::default(),
            cpu_moe: None,
            progress: Default::default(),
            prompt_cache: None,
            mtp: Default::default(),
            mistralrs: false,
        }
    }

    /// A server instead of a file.
    pub fn remote(server: remote::RemoteSpec) -> Self {
        Self {
            path: PathBuf::from(&server.base_url),
            remote: Some(server),
            ..Self::new("")
        }
    }
}

/// Events of one generation, in order: deltas, then exactly one `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Reasoning(String),
    Content(String),
    Finished {
        reason: FinishReason,
        stats: GenerationStats,
        /// Set when `reason` is [`FinishReason::Error`].
        error: Option<EngineError>,
    },
}

impl PartialEq for EngineError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// A running generation: its events and the token that cancels it.
pub struct Generation {
    pub events: BoxStream<'static, EngineEvent>,
    cancel: CancellationToken,
}

impl Generation {
    pub fn new(events: BoxStream<'static, EngineEvent>, cancel: CancellationToken) -> Self {
        Self { events, cancel }
    }

    /// A handle that cancels this generation from elsewhere (e.g. a Stop button).
    pub fn canceller(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Asks the generation to stop; the stream then ends with `Finished { Cancelled }` within
    /// one token step.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// An inference engine holding at most one loaded model.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Short backend name shown in the UI (`mistralrs`, `scripted`, ...).
    fn backend(&self) -> &'static str;

    /// Loads a model, replacing the loaded one (which is unloaded first).
    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError>;

    /// The loaded model, if any.
    fn loaded(&self) -> Option<ModelInfo>;

    /// Starts a generation. Fails at once if no model is loaded or the request is invalid;
    /// later failures arrive as `Finished { reason: Error }`.
    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError>;

    /// Releases the loaded model (running generations finish first or are cancelled by the
    /// caller).
    async fn unload(&self);

    /// Tokens the request's prompt takes, rendered as [`Engine::generate`] would render it
    /// (the APIs' token counting). Backends that cannot tell say so.
    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        let _ = request;
        Err(EngineError::InvalidRequest(format!(
            "the {} backend cannot count tokens",
            self.backend()
        )))
    }
}

/// The system instruction of a title request (the first exchange of a conversation follows as
/// the user message). Backends treat it like any prompt; the scripted fake recognises it.
pub const TITLE_INSTRUCTION: &str = "Write a short title (at most six words) for the conversation below. Reply with the title only: no quotes, no punctuation at the end.";

/// Environment variable selecting the engine of the app and `localglm serve`: the real one by
/// default (GLM-5.x GGUFs on LocalGLM's runtime, other architectures on mistralrs) or
/// `scripted` (a deterministic fake, for UI and API-shape tests only).
pub const ENGINE_ENV: &str = "LOCALGLM_ENGINE";

/// The engine named by `LOCALGLM_ENGINE`.
pub fn engine_from_env() -> std::sync::Arc<dyn Engine> {
    match std::env::var(ENGINE_ENV).as_deref() {
        Ok("scripted") => std::sync::Arc::new(scripted::ScriptedEngine::default()),
        _ => std::sync::Arc::new(auto::AutoEngine::new()),
    }
}

/// The stream side of a backend's event channel.
pub(crate) fn event_stream(
    rx: tokio::sync::mpsc::UnboundedReceiver<EngineEvent>,
) -> BoxStream<'static, EngineEvent> {
    use futures::StreamExt;
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

/// Checks a request before any backend sees it.
pub fn validate(request: &GenerateRequest) -> Result<(), EngineError> {
    if request.messages.is_empty() {
        return Err(EngineError::InvalidRequest("no messages".into()));
    }
    validate_sampling(&request.sampling)
}

/// Checks sampling values: temperature in 0..=5, top_p in (0, 1], min_p in 0..=1, repetition
/// penalty in (0, 10], at least one token.
pub fn validate_sampling(s: &SamplingParams) -> Result<(), EngineError> {
    if !s.temperature.is_finite() || !(0.0..=5.0).contains(&s.temperature) {
        return Err(EngineError::InvalidRequest(format!(
            "temperature must be in 0..=5, got {}",
            s.temperature
        )));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(EngineError::InvalidRequest(format!(
            "top_p must be in (0, 1], got {}",
            s.top_p
        )));
    }
    if let Some(m) = s.min_p {
        if !(0.0..=1.0).contains(&m) {
            return Err(EngineError::InvalidRequest(format!(
                "min_p must be in 0..=1, got {m}"
            )));
        }
    }
    if let Some(r) = s.repetition_penalty {
        if !(r > 0.0 && r <= 10.0) {
            return Err(EngineError::InvalidRequest(format!(
                "repetition_penalty must be in (0, 10], got {r}"
            )));
        }
    }
    if s.max_tokens == 0 {
        return Err(EngineError::InvalidRequest(
            "max_tokens must be at least 1".into(),
        ));
    }
    Ok(())
}
