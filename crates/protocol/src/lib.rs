//! Every type that crosses a process boundary: Tauri IPC (commands and generation channels) and,
//! later, the HTTP API. Each type derives `ts_rs::TS`; `tests/bindings.rs` regenerates the
//! TypeScript twins into `ui/src/lib/bindings` and fails when the committed files differ.
//!
//! Invariant: field names are `snake_case` on both sides, integers that can exceed 2^53 are not
//! used (counts are `u32`, byte sizes and timestamps are `f64`), so the UI never sees a `bigint`.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

mod conversation;
pub use conversation::*;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result (OpenAI API requests only; conversations never hold one).
    Tool,
}

/// Sampling settings of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SamplingParams {
    pub temperature: f64,
    pub top_p: f64,
    /// `None` disables top-k filtering.
    pub top_k: Option<u32>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Fixed seed for reproducible sampling; `None` draws one.
    pub seed: Option<u32>,
    /// Min-p filtering: drop tokens less likely than `min_p` × the most likely one; `None` = off.
    #[serde(default)]
    pub min_p: Option<f64>,
    /// Repetition penalty on tokens already in the context (CTRL-style; `None` or 1.0 = off).
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
}

impl Default for SamplingParams {
    /// The GLM-5.x "General" recommendation (temperature 1.0, top_p 0.95).
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 0.95,
            top_k: None,
            max_tokens: 4096,
            seed: None,
            min_p: None,
            repetition_penalty: None,
        }
    }
}

/// A named set of generation settings: sampling plus the thinking switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SamplingPreset {
    /// Stable identifier (`general`, `swe-bench-pro`, or a user preset's own).
    pub id: String,
    /// Display name.
    pub name: String,
    pub sampling: SamplingParams,
    /// Thinking on or off for templates that read `enable_thinking`.
    pub enable_thinking: bool,
    /// `reasoning_effort` for templates that read it; `None` leaves the template's default.
    pub reasoning_effort: Option<String>,
    /// System prompt sent with this preset; `None` uses the app's system prompt.
    #[serde(default)]
    pub system_prompt: Option<String>,
}

impl SamplingPreset {
    /// Whether this is one of [`builtin_presets`] (those cannot be renamed or deleted).
    pub fn is_builtin(&self) -> bool {
        builtin_presets().iter().any(|b| b.id == self.id)
    }
}

/// What one reply was generated with, recorded on the assistant message and shown in its stats
/// line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SentWith {
    /// The preset chosen for the message (`None` when sent with the saved settings).
    pub preset_id: Option<String>,
    /// Its display name at the time.
    pub preset_name: Option<String>,
    /// The sampling values actually used (preset plus any per-message override).
    pub sampling: SamplingParams,
    /// Thinking switch sent to the template (`None` = the template's default).
    pub enable_thinking: Option<bool>,
    /// Effort sent to the template (`None` = the template's default).
    pub reasoning_effort: Option<String>,
}

/// The runtimes a local model can run on, as settings and the library name them.
pub mod runtime {
    /// LocalGLM's own runtime (its CPU kernels or its GPU backend).
    pub const LOCALGLM: &str = "localglm";
    /// mistral.rs.
    pub const MISTRALRS: &str = "mistralrs";
    /// Whether `name` is one of them.
    pub fn known(name: &str) -> bool {
        name == LOCALGLM || name == MISTRALRS
    }
}

/// Recommended maximum new tokens for GLM-5.x (Z.ai / Unsloth: up to 131072; the GLM-5.2 API's
/// 128K output). Runtimes stop earlier when the context fills.
pub const GLM_MAX_NEW_TOKENS: u32 = 131_072;

/// The two built-in presets Z.ai and Unsloth recommend for GLM-5.x: **General** (temperature
/// 1.0, top_p 0.95) and **SWE-Bench Pro** (temperature 1.0, top_p 1.0), both thinking, at the
/// template's default effort, with the recommended maximum output.
pub fn builtin_presets() -> Vec<SamplingPreset> {
    let preset = |id: &str, name: &str, top_p: f64| SamplingPreset {
        id: id.into(),
        name: name.into(),
        sampling: SamplingParams {
            temperature: 1.0,
            top_p,
            top_k: None,
            max_tokens: GLM_MAX_NEW_TOKENS,
            seed: None,
            min_p: None,
            repetition_penalty: None,
        },
        enable_thinking: true,
        reasoning_effort: None,
        system_prompt: None,
    };
    vec![
        preset("general", "General", 0.95),
        preset("swe-bench-pro", "SWE-Bench Pro", 1.0),
    ]
}

/// A built-in preset by id or display name (case-insensitive).
pub fn builtin_preset(name: &str) -> Option<SamplingPreset> {
    builtin_presets()
        .into_iter()
        .find(|p| p.id.eq_ignore_ascii_case(name) || p.name.eq_ignore_ascii_case(name))
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model emitted an end-of-turn token or a stop string.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The user pressed Stop.
    Cancelled,
    /// The engine failed; the message holds what was generated before the failure.
    Error,
    /// The app ended (killed, crashed, power lost) while the reply was being written; the
    /// message holds what had been streamed, recovered at the next start.
    Interrupted,
}

/// Numbers shown under each reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct GenerationStats {
    /// Tokens in the rendered prompt.
    pub prompt_tokens: u32,
    /// Tokens generated (reasoning and content together).
    pub generated_tokens: u32,
    /// Time from the request to the first generated token, in milliseconds.
    pub ttft_ms: f64,
    /// Prompt tokens per second of prefill.
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second after the first one.
    pub decode_tokens_per_s: f64,
    /// Wall time of the whole generation, in milliseconds.
    pub total_ms: f64,
    /// Context length of the loaded model, when known (for a "context used" gauge).
    pub context_length: Option<u32>,
    /// Of `generated_tokens`, those spent reasoning (`None` when the backend cannot tell).
    #[serde(default)]
    pub reasoning_tokens: Option<u32>,
    /// Of `prompt_tokens`, those read from a kept KV cache instead of being computed again
    /// (prompt-prefix reuse; `None` when the backend cannot tell).
    #[serde(default)]
    pub cached_tokens: Option<u32>,
    /// Tokens drafted by the model's MTP block and verified (speculative decoding; `None`
    /// when the generation did not draft).
    #[serde(default)]
    pub drafted_tokens: Option<u32>,
    /// Of `drafted_tokens`, those the model accepted.
    #[serde(default)]
    pub accepted_tokens: Option<u32>,
}

/// Returned by `send_message` once the generation is running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct GenerationHandle {
    pub generation_id: String,
    /// The user message being answered (new or edited).
    pub user_message: MessageView,
    /// Id the assistant message will carry once saved.
    pub assistant_message_id: String,
}

/// Events of one generation, streamed over its own IPC channel, in this order:
/// `started`, any number of `reasoning` / `content` deltas, then exactly one of `done` / `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GenerationEvent {
    Started {
        generation_id: String,
        model: String,
    },
    /// New reasoning text (plain text, append it).
    Reasoning { delta: String },
    /// New answer text, and the answer's HTML (rendered and sanitized) as it changed: the
    /// blocks that became final since the last event (`append_html`, to append once after the
    /// earlier ones; after `reset_html`, in place of them) and the block still being written
    /// (`live_html`, replacing the previous one). The appended HTML since the last reset
    /// followed by the latest live HTML is always the whole answer's HTML.
    Content {
        delta: String,
        append_html: String,
        live_html: String,
        reset_html: bool,
    },
    /// The generation ended; the assistant message is saved.
    Done {
        message: MessageView,
        finish_reason: FinishReason,
    },
    /// The generation failed; whatever was generated before is saved in `message` if any.
    Error {
        error: AppError,
        message: Option<MessageView>,
    },
}

/// What the UI can switch on when something fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No model file at the expected place (e.g. setup not run).
    ModelMissing,
    /// A model file exists but could not be loaded.
    LoadFailed,
    /// No model is loaded yet.
    NoModel,
    /// Generation failed inside the engine.
    Generation,
    /// Something the request named does not exist.
    NotFound,
    /// The request itself is invalid.
    InvalidRequest,
    /// Reading or writing files failed.
    Io,
    /// The model does not fit this machine's memory (load it anyway with `force`).
    WontFit,
    /// Anything else.
    Internal,
}

/// The one error shape at the IPC boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AppError {
    pub kind: ErrorKind,
    /// One sentence for the user.
    pub message: String,
    /// Technical detail (path, underlying error), if any.
    pub detail: Option<String>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{} ({d})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AppError {}

/// A model file the app knows about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ModelInfo {
    /// Display name, e.g. `SmolLM2-135M-Instruct.Q4_1`.
    pub name: String,
    pub path: String,
    pub size_bytes: f64,
    /// Which engine backend runs it (`mistralrs`, `scripted`, ...).
    pub backend: String,
    /// GGUF `general.architecture`, when known.
    pub architecture: Option<String>,
    pub context_length: Option<u32>,
    /// The weight type holding most of the bytes (`Q4_1`, `IQ2_XXS`, ...), when known.
    #[serde(default)]
    pub quant: Option<String>,
    /// The model's chat template reads `enable_thinking` (a Think toggle applies).
    #[serde(default)]
    pub supports_thinking: bool,
    /// `reasoning_effort` values its template distinguishes (lower case), if any.
    #[serde(default)]
    pub effort_levels: Vec<String>,
    /// The model's chat template renders `tools` (so the API accepts tool definitions).
    #[serde(default)]
    pub supports_tools: bool,
    /// Where it runs, for the model indicator: "CPU", or the GPU backend, adapter and
    /// placement ("GPU · Vulkan · NVIDIA GeForce RTX 4090, experts of 12 layers in RAM");
    /// `None` where the backend does not say (remote servers, mistralrs).
    #[serde(default)]
    pub placement: Option<String>,
    /// Bytes of KV caches kept for reusing prompt prefixes across requests (`None` where the
    /// backend keeps none).
    #[serde(default)]
    pub prompt_cache_bytes: Option<f64>,
    /// The runtimes that can run the file (`localglm`, `mistralrs`), listed for the library's
    /// "Run with" choice; empty where unknown (a model being served, a remote server).
    #[serde(default)]
    pub runtimes: Vec<String>,
}

/// A load's progress: what it is doing and how many of its bytes are done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LoadProgress {
    /// What is happening, e.g. "uploading weights to the GPU".
    pub stage: String,
    pub done_bytes: f64,
    pub total_bytes: f64,
}

/// Engine state for the model indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelStatus {
    None,
    Loading {
        path: String,
        /// How far the load has come, where the backend says (weights uploaded to a GPU).
        #[serde(default)]
        progress: Option<LoadProgress>,
    },
    Ready {
        model: ModelInfo,
    },
    Failed {
        path: String,
        error: AppError,
    },
}

/// Persisted user settings (versioned; `localglm_chat::settings` migrates and validates them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Settings {
    pub version: u32,
    pub sampling: SamplingParams,
    /// System prompt prepended to every conversation; empty for none.
    pub system_prompt: String,
    /// Model loaded at start; `None` means the default model.
    pub model_path: Option<String>,
    /// Drop earlier turns' reasoning from the prompt (template `clear_thinking`); off keeps it,
    /// as the GLM-5.x templates do by default.
    #[serde(default)]
    pub clear_thinking: bool,
    /// Collapse the reasoning pane when the answer starts (off keeps it open).
    #[serde(default = "yes")]
    pub collapse_reasoning: bool,
    /// Title new conversations by asking the loaded model after the first reply (off: the
    /// first words of the first message).
    #[serde(default = "yes")]
    pub generate_titles: bool,
    /// The user's own presets (the built-in ones are not stored).
    #[serde(default)]
    pub presets: Vec<SamplingPreset>,
    /// Preset selected for new conversations.
    #[serde(default = "general")]
    pub default_preset: String,
    /// The OpenAI-compatible local API.
    #[serde(default)]
    pub api: ApiSettings,
    /// Servers the app can chat through, listed with the local models.
    #[serde(default)]
    pub remotes: Vec<RemoteServer>,
    /// The server in use (loaded at start instead of `model_path`); `None` = a local model.
    #[serde(default)]
    pub active_remote: Option<String>,
    /// Context limit when a model loads, and the context its fit is checked for; `None` = the
    /// model's own limit (the fit check then assumes 32 768). GLM-5.x caches grow as used.
    #[serde(default)]
    pub context_length: Option<u32>,
    /// KV-cache type for models on LocalGLM's runtime (GLM-5.x, the LLaMA family): `f16`
    /// (default), `q8_0` (about half), `bf16`, `f32`.
    #[serde(default)]
    pub kv_cache: Option<String>,
    /// Where models on LocalGLM's runtime run: `auto` (default: the GPU when the fit planner
    /// places the model on a hardware adapter, else the CPU), `gpu` (any Vulkan / Metal
    /// adapter; a load fails rather than fall back to the CPU) or `cpu`.
    #[serde(default)]
    pub device: Option<String>,
    /// On the GPU: the routed experts of the first N MoE layers stay in RAM on the CPU
    /// (`None` = none).
    #[serde(default)]
    pub cpu_moe: Option<u32>,
    /// MiB of KV caches kept to reuse prompt prefixes across requests (GLM-5.x runtime);
    /// `None` = one cache of the planned context.
    #[serde(default)]
    pub prompt_cache_mb: Option<u32>,
    /// Speculative decoding with a GLM-5.x model's MTP block: `auto` (default: as many
    /// drafts as pay, measured while generating), `off`, or `1`–`8` drafts per step.
    #[serde(default)]
    pub mtp: Option<String>,
    /// What runs dense LLaMA-family models (llama, qwen2, qwen3): `localglm` (default:
    /// LocalGLM's own runtime, on the CPU or its GPU backend as `device` places it) or
    /// `mistralrs`.
    #[serde(default)]
    pub dense_runtime: Option<String>,
    /// Per model, by file name (a split set's first shard): the runtime chosen for it in the
    /// library (`localglm` or `mistralrs`), over `dense_runtime`.
    #[serde(default)]
    #[ts(type = "Record<string, string>")]
    pub model_runtimes: std::collections::BTreeMap<String, String>,
}

/// An OpenAI-compatible server (vLLM, SGLang, llama-server, another LocalGLM) used like a
/// local model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RemoteServer {
    /// Assigned by the app when empty.
    pub id: String,
    /// Shown in the model list; empty shows the model id.
    pub name: String,
    /// Base URL including `/v1`, e.g. `http://gpu-node:8000/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
    /// Model id on the server; `None` takes the first it lists.
    pub model: Option<String>,
}

/// The local API server's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ApiSettings {
    pub enabled: bool,
    /// `127.0.0.1` (this computer only) unless the user opens it to the network.
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Required as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
        }
    }
}

/// Whether the local API runs, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ApiStatus {
    pub running: bool,
    /// `http://HOST:PORT/v1` while running.
    pub url: Option<String>,
    /// Why it is not running when it should (e.g. the port is taken).
    pub error: Option<String>,
}

/// One request the local API served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ApiLogEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: f64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub duration_ms: f64,
    /// The model the request named and what it ran on, when they differ
    /// (`claude-sonnet-4-5 → GLM-5.2-UD-Q2_K_XL`).
    #[serde(default)]
    pub model: Option<String>,
    /// Tokens of the rendered prompt (for a generation).
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    /// Of those, read from a kept KV cache rather than computed (prefill ran the rest).
    #[serde(default)]
    pub cached_tokens: Option<u32>,
}

fn yes() -> bool {
    true
}

fn general() -> String {
    "general".into()
}

impl Settings {
    pub const CURRENT_VERSION: u32 = 1;
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: Self::CURRENT_VERSION,
            sampling: SamplingParams::default(),
            system_prompt: String::new(),
            model_path: None,
            clear_thinking: false,
            collapse_reasoning: true,
            generate_titles: true,
            presets: Vec::new(),
            default_preset: general(),
            api: ApiSettings::default(),
            remotes: Vec::new(),
            active_remote: None,
            context_length: None,
            kv_cache: None,
            device: None,
            cpu_moe: None,
            prompt_cache_mb: None,
            mtp: None,
            dense_runtime: None,
            model_runtimes: Default::default(),
        }
    }
}

/// Static facts about the running app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AppInfo {
    pub version: String,
    pub data_dir: String,
    pub default_model_path: String,
}

#[cfg(test)]
mod preset_tests {
    use super::*;

    #[test]
    fn built_in_presets_carry_the_recommended_values() {
        let g = builtin_preset("general").unwrap();
        assert_eq!((g.sampling.temperature, g.sampling.top_p), (1.0, 0.95));
        let s = builtin_preset("SWE-Bench Pro").unwrap();
        assert_eq!((s.sampling.temperature, s.sampling.top_p), (1.0, 1.0));
        for p in [g, s] {
            assert!(p.enable_thinking);
            assert_eq!(p.sampling.max_tokens, GLM_MAX_NEW_TOKENS);
        }
        assert!(builtin_preset("nope").is_none());
    }
}

/// Bytes per component of a fit plan (see `localglm-planner`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FitBytes {
    pub weights_gpu: f64,
    pub weights_cpu: f64,
    pub experts_gpu: f64,
    pub experts_cpu: f64,
    pub kv: f64,
    pub scratch: f64,
    pub os_reserve: f64,
    /// What the GPU may hold (0 without one).
    pub gpu_budget: f64,
    pub ram_budget: f64,
    pub gpu_used: f64,
    pub ram_used: f64,
}

/// One change that makes a model fit (or fit better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FitFix {
    /// `shorter_context`, `kv_q8_0`, `more_experts_on_cpu`, `raise_gpu_limit`, `smaller_quant`.
    pub kind: String,
    pub text: String,
}

/// Whether and how a model fits a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FitPlan {
    /// `gpu`, `gpu_cpu_experts`, `cpu` or `no_fit`.
    pub verdict: String,
    pub cpu_moe_layers: u32,
    pub moe_layers: u32,
    pub context: u32,
    pub max_context: u32,
    pub kv_type: String,
    pub bytes: FitBytes,
    pub model_bytes: f64,
    pub fixes: Vec<FitFix>,
    pub summary: String,
    /// Sizes are from the catalog, not the file's headers.
    pub estimated: bool,
}

/// A machine to plan for: this one, or a described one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MachineSpec {
    /// `this`, or a described machine.
    pub id: String,
    /// System RAM (or unified memory) in GiB; ignored for `this`.
    pub ram_gib: f64,
    /// One discrete GPU's VRAM in GiB.
    pub vram_gib: Option<f64>,
    /// Apple unified memory: the GPU wired limit in GiB (`None` with `unified`: Metal's default).
    pub unified: bool,
    pub gpu_limit_gib: Option<f64>,
}

/// How to plan: context, KV type and (optionally) a forced expert placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FitRequest {
    pub machine: MachineSpec,
    pub context: u32,
    /// `f16`, `bf16`, `f32` or `q8_0`.
    pub kv_type: String,
    /// MoE layers whose experts stay in system RAM; `None` = as few as needed.
    pub cpu_moe: Option<u32>,
    /// Count the MTP block, which the runtime loads unless drafting is off; `None` = yes.
    #[serde(default)]
    #[ts(optional)]
    pub mtp: Option<bool>,
    /// The quant catalog's GLM-5.x release (`GLM-5.1`, `GLM-5.2`, `GLM-5.3`); `None` = GLM-5.2.
    /// Plans of files ignore it (a file's header says what it is).
    #[serde(default)]
    #[ts(optional)]
    pub family: Option<String>,
}

/// A GLM-5.x quant of the catalog with its plan on the requested machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QuantRow {
    pub label: String,
    pub bits: u32,
    pub size_bytes: f64,
    /// `measured`, `documented` or `estimated`.
    pub size_confidence: String,
    pub shards: Option<u32>,
    pub memory_guidance: f64,
    pub quality: Option<String>,
    pub plan: FitPlan,
}

/// The machine a plan was made for, described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QuantCatalog {
    /// The release these quants are of, and the releases there are.
    pub family: String,
    pub families: Vec<String>,
    pub repo: String,
    /// The release's training context, in tokens.
    pub context_max: u32,
    /// Where the sizes come from when they are not this release's own.
    pub sizes_note: Option<String>,
    pub machine: String,
    pub rows: Vec<QuantRow>,
}

/// A model download in the app (also the record of unfinished ones kept across restarts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DownloadState {
    /// Stable id derived from `spec`.
    pub id: String,
    /// `OWNER/REPO[:QUANT]`.
    pub spec: String,
    /// The model's (first) file name without `.gguf`.
    pub name: String,
    pub files: u32,
    pub total_bytes: f64,
    pub done_bytes: f64,
    pub bytes_per_s: f64,
    /// `running`, `paused`, `failed`, `done` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    /// The model's path once done.
    pub path: Option<String>,
}
