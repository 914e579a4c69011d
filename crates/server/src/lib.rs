//! LocalGLM's HTTP API over the loaded model, in the three protocols clients and coding agents
//! speak: OpenAI chat completions (`POST /v1/chat/completions`, [`chat`]), Anthropic Messages
//! (`POST /v1/messages`, `/v1/messages/count_tokens`, [`anthropic`]) and OpenAI Responses
//! (`POST /v1/responses`, [`responses`]), plus `GET /v1/models`. Each parses its request into
//! one [`openai::ChatRequest`] for the engine and shapes the same [`run::Run`] — reasoning,
//! text, tool calls read out of the text, one end with usage — into its own events.
//!
//! Invariants: requests to the one model are served one at a time in arrival order (a fair
//! semaphore); a client that disconnects cancels its generation and frees the queue; errors
//! have each protocol's own shape and status codes; with an API key set, every request needs
//! it (`Authorization: Bearer KEY` or Anthropic's `x-api-key: KEY`). Binding to loopback is the
//! caller's default (see the CLI). A model name the server does not know (an agent's own, such
//! as a Claude model id) runs on the loaded model unless [`ApiState::strict_models`] is set;
//! the request log shows the mapping and each generation's prompt and cached tokens.

pub mod anthropic;
pub mod chat;
pub mod openai;
pub mod responses;
pub mod run;
pub mod tools;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use localglm_engine::{Engine, EngineError, GenerationStats, ModelInfo};
use openai::{ApiError, ChatRequest};
use run::Run;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Largest request body accepted.
pub const MAX_BODY: usize = 8 << 20;

/// Receives one entry per request served (method, path, status, time until the response body
/// ended — for a stream, its last event or the client hanging up).
pub type RequestLog = Arc<dyn Fn(localglm_protocol::ApiLogEntry) + Send + Sync>;

/// What the server needs.
#[derive(Clone)]
pub struct ApiState {
    engine: Arc<dyn Engine>,
    api_key: Option<String>,
    queue: Arc<Semaphore>,
    log: Option<RequestLog>,
    strict_models: bool,
    /// Responses kept for `previous_response_id`.
    kept: responses::Kept,
}

impl ApiState {
    pub fn new(engine: Arc<dyn Engine>, api_key: Option<String>) -> Self {
        Self {
            engine,
            api_key: api_key.filter(|k| !k.is_empty()),
            queue: Arc::new(Semaphore::new(1)),
            log: None,
            strict_models: false,
            kept: Default::default(),
        }
    }

    /// Reports every request to `log` (the app's live request log).
    pub fn with_log(mut self, log: RequestLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Refuses (404) model names other than the loaded model's (and `localglm`, `default`)
    /// instead of running them on the loaded model.
    pub fn strict_models(mut self, strict: bool) -> Self {
        self.strict_models = strict;
        self
    }
}

/// What a handler tells the request log beyond the status: the model mapping and usage.
#[derive(Clone, Default)]
pub struct LogNote(Arc<Mutex<NoteData>>);

#[derive(Default)]
struct NoteData {
    model: Option<String>,
    prompt_tokens: Option<u32>,
    cached_tokens: Option<u32>,
}

impl LogNote {
    fn model(&self, text: String) {
        self.0.lock().expect("note lock").model = Some(text);
    }

    fn usage(&self, stats: &GenerationStats) {
        let mut n = self.0.lock().expect("note lock");
        n.prompt_tokens = Some(stats.prompt_tokens);
        n.cached_tokens = Some(stats.cached_tokens.unwrap_or(0));
    }
}

async fn log_requests(
    State(state): State<ApiState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let note = LogNote::default();
    req.extensions_mut().insert(note.clone());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let Some(log) = state.log.clone() else {
        return response;
    };
    let guard = LogWhenDone {
        log,
        started,
        note,
        entry: Some(localglm_protocol::ApiLogEntry {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0),
            method,
            path,
            status: response.status().as_u16(),
            duration_ms: 0.0,
            model: None,
            prompt_tokens: None,
            cached_tokens: None,
        }),
    };
    // The entry goes out when the body is done (or dropped), so a stream's whole time counts.
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _ = &guard;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

/// Reports its entry, with the time since `started` and the handler's note, when dropped.
struct LogWhenDone {
    log: RequestLog,
    started: std::time::Instant,
    note: LogNote,
    entry: Option<localglm_protocol::ApiLogEntry>,
}

impl Drop for LogWhenDone {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            let n = self.note.0.lock().unwrap_or_else(|p| p.into_inner());
            entry.model = n.model.clone();
            entry.prompt_tokens = n.prompt_tokens;
            entry.cached_tokens = n.cached_tokens;
            drop(n);
            (self.log)(entry);
        }
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        // Clients probe the root before their first request (Claude Code sends HEAD /).
        .route(
            "/",
            get(|| async { Json(json!({ "name": "LocalGLM", "api": "/v1" })) }),
        )
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/responses", post(responses::handle))
        .fallback(|headers: HeaderMap| async move {
            let e = ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "No such endpoint.",
            );
            e.into_response_for(Protocol::of(&headers))
        })
        // Bodies are read by `read_body`, which drains an oversized one before refusing it.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_requests,
        ))
        .with_state(state)
}

/// Serves until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Whose error shape a response takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
}

impl Protocol {
    /// Anthropic's for requests that carry its headers, else OpenAI's.
    fn of(headers: &HeaderMap) -> Self {
        if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
            Protocol::Anthropic
        } else {
            Protocol::OpenAi
        }
    }
}

impl ApiError {
    pub fn into_response_for(self, protocol: Protocol) -> Response {
        match protocol {
            Protocol::OpenAi => self.into_response(),
            Protocol::Anthropic => {
                (self.status, Json(anthropic::error_body(&self))).into_response()
            }
        }
    }
}

/// The key check: `Authorization: Bearer KEY` or `x-api-key: KEY`.
fn check_key(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    if bearer == Some(key.as_str()) || header("x-api-key") == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect or missing API key.",
        ))
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn models(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(e) = check_key(&state, &headers) {
        return e.into_response_for(Protocol::of(&headers));
    }
    let data: Vec<Value> = state
        .engine
        .loaded()
        .map(|m| {
            // `max_model_len` as vLLM reports it, so clients (and LocalGLM's remote backend)
            // learn the context; Anthropic's `type`/`display_name` for its model list.
            let mut v = json!({
                "id": m.name, "object": "model", "created": 0, "owned_by": "localglm",
                "type": "model", "display_name": m.name, "created_at": "1970-01-01T00:00:00Z",
            });
            if let Some(n) = m.context_length {
                v["max_model_len"] = n.into();
            }
            v
        })
        .into_iter()
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    Json(json!({
        "object": "list", "data": data,
        "has_more": false, "first_id": first, "last_id": first,
    }))
    .into_response()
}

fn engine_error(e: &EngineError) -> ApiError {
    match e {
        EngineError::NoModel => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "model_not_loaded",
            "No model is loaded.",
        ),
        EngineError::InvalidRequest(m) => ApiError::invalid(m.clone(), None),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "generation_failed",
            other.to_string(),
        ),
    }
}

type Body = axum::body::Body;

/// How much of an oversized body is read (and dropped) before the 413 goes out: a client that
/// writes its whole body before reading (curl, ureq, many SDKs) then sees the answer instead of
/// a broken pipe.
const DRAIN: usize = 8 * MAX_BODY;

/// The body, at most [`MAX_BODY`] bytes.
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let (mut bytes, mut total) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid(format!("the body could not be read: {e}"), None))?;
        total += chunk.len();
        if total <= MAX_BODY {
            bytes.extend_from_slice(&chunk);
        } else if total > DRAIN {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..ApiError::invalid(
                format!("the body is larger than {} MiB", MAX_BODY >> 20),
                None,
            )
        });
    }
    Ok(bytes)
}

/// The key, then the body as JSON whatever the Content-Type says (curl users often leave it
/// out, as llama-server and vLLM allow), then the loaded model.
async fn admit(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Value, ModelInfo), ApiError> {
    check_key(state, headers)?;
    let bytes = read_body(body).await?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}"), None))?;
    if !body.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object", None));
    }
    let model = state
        .engine
        .loaded()
        .ok_or_else(|| engine_error(&EngineError::NoModel))?;
    Ok((body, model))
}

/// The model a request named, checked against the loaded one: its own name, `localglm` and
/// `default` are it; any other name runs on it too (noted in the request log) unless the
/// server is strict.
fn resolve_model(
    state: &ApiState,
    asked: Option<&str>,
    model: &ModelInfo,
    note: &LogNote,
) -> Result<(), ApiError> {
    let Some(asked) = asked.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if asked == model.name || asked == "localglm" || asked == "default" {
        return Ok(());
    }
    if state.strict_models {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            message: format!(
                "The model `{asked}` does not exist; `{}` is loaded.",
                model.name
            ),
            param: Some("model"),
            code: Some("model_not_found"),
        });
    }
    note.model(format!("{asked} → {}", model.name));
    Ok(())
}

/// After parsing, every generation endpoint: the tools check, its turn in the queue, then the
/// engine.
async fn begin(
    state: &ApiState,
    req: &ChatRequest,
    model: &ModelInfo,
    note: &LogNote,
) -> Result<Run, ApiError> {
    resolve_model(state, req.model.as_deref(), model, note)?;
    if req.generate.tools.is_some() && !model.supports_tools {
        return Err(ApiError::invalid(
            format!(
                "The chat template of `{}` does not render tools, so it cannot call them.",
                model.name
            ),
            Some("tools"),
        ));
    }
    // Wait for our turn (fair: first come, first served); dropping the request leaves the queue.
    let permit = state
        .queue
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| engine_error(&EngineError::NoModel))?;
    let generation = state
        .engine
        .generate(req.generate.clone())
        .await
        .map_err(|e| engine_error(&e))?;
    let tools = req
        .parse_tools
        .then_some(req.generate.tools.as_ref())
        .flatten();
    Ok(Run::new(
        generation,
        permit,
        req.stop.clone(),
        tools,
        note.clone(),
    ))
}

/// The output cap for the loaded model: its context.
fn max_output(model: &ModelInfo) -> u32 {
    model.context_length.unwrap_or(4096).max(1)
}

/// A loaded model as the parsers see it, for the unit tests.
#[cfg(test)]
pub(crate) fn test_model() -> ModelInfo {
    ModelInfo {
        name: "glm".into(),
        path: String::new(),
        size_bytes: 0.0,
        backend: "test".into(),
        architecture: None,
        context_length: Some(4096),
        quant: None,
        supports_thinking: true,
        effort_levels: vec!["high".into(), "max".into()],
        supports_tools: true,
        placement: None,
        prompt_cache_bytes: None,
        runtimes: Vec::new(),
    }
}

/// A unique-enough id for responses.
pub(crate) fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{t:x}{n:x}")
}
