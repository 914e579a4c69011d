//! LocalGLM's OpenAI-compatible HTTP API over the loaded model: `GET /v1/models` and
//! `POST /v1/chat/completions` (plain and streaming server-sent events, `reasoning_content`
//! separate from `content` in messages and deltas).
//!
//! Invariants: requests to the one model are served one at a time in arrival order (a fair
//! semaphore); a client that disconnects cancels its generation and frees the queue; errors
//! have OpenAI's shape and status codes; with an API key set, every request needs
//! `Authorization: Bearer KEY`. Binding to loopback is the caller's default (see the CLI).

pub mod openai;
pub mod tools;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use localglm_engine::{Engine, EngineError, EngineEvent, FinishReason};
use openai::{finish_reason, ApiError, ChatRequest, StopFilter};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::DropGuard;
use tools::{Piece, ToolCall, ToolCallParser};

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
}

impl ApiState {
    pub fn new(engine: Arc<dyn Engine>, api_key: Option<String>) -> Self {
        Self {
            engine,
            api_key: api_key.filter(|k| !k.is_empty()),
            queue: Arc::new(Semaphore::new(1)),
            log: None,
        }
    }

    /// Reports every request to `log` (the app's live request log).
    pub fn with_log(mut self, log: RequestLog) -> Self {
        self.log = Some(log);
        self
    }
}

async fn log_requests(
    State(state): State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let Some(log) = state.log.clone() else {
        return response;
    };
    let guard = LogWhenDone {
        log,
        started,
        entry: Some(localglm_protocol::ApiLogEntry {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0),
            method,
            path,
            status: response.status().as_u16(),
            duration_ms: 0.0,
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

/// Reports its entry, with the time since `started`, when dropped.
struct LogWhenDone {
    log: RequestLog,
    started: std::time::Instant,
    entry: Option<localglm_protocol::ApiLogEntry>,
}

impl Drop for LogWhenDone {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            (self.log)(entry);
        }
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "No such endpoint.",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
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

fn check_key(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
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
        return e.into_response();
    }
    let data: Vec<Value> = state
        .engine
        .loaded()
        .map(|m| {
            // `max_model_len` as vLLM reports it, so clients (and LocalGLM's remote backend)
            // learn the context.
            let mut v =
                json!({ "id": m.name, "object": "model", "created": 0, "owned_by": "localglm" });
            if let Some(n) = m.context_length {
                v["max_model_len"] = n.into();
            }
            v
        })
        .into_iter()
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
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

async fn chat(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match chat_inner(state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(
    state: ApiState,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    check_key(&state, &headers)?;
    // Read as JSON whatever the Content-Type says (curl users often leave it out, as
    // llama-server and vLLM allow).
    let bytes = body.map_err(|e| {
        let mut err = ApiError::invalid(
            format!("the body could not be read: {}", e.body_text()),
            None,
        );
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            err.status = StatusCode::PAYLOAD_TOO_LARGE;
            err.message = format!("the body is larger than {} MiB", MAX_BODY >> 20);
        }
        err
    })?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}"), None))?;
    let model = state
        .engine
        .loaded()
        .ok_or_else(|| engine_error(&EngineError::NoModel))?;
    let max_output = model.context_length.unwrap_or(4096).max(1);
    let req = openai::parse(&body, max_output)?;
    if let Some(asked) = req.model.as_deref() {
        if asked != model.name && asked != "localglm" && asked != "default" {
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
    }
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
    let id = format!("chatcmpl-{}", uuid_like());
    let run = Run::new(generation, permit, &req);
    if req.stream {
        Ok(stream_response(run, id, model.name, req.include_usage).into_response())
    } else {
        Ok(Json(complete(run, id, model.name).await?).into_response())
    }
}

/// A unique-enough id for responses.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{t:x}{n:x}")
}

/// One running generation: its events, the guard that cancels it when the response is dropped
/// (a client that hangs up), and its place in the queue.
struct Run {
    events: futures::stream::BoxStream<'static, EngineEvent>,
    _guard: DropGuard,
    _permit: OwnedSemaphorePermit,
    stop: StopFilter,
    /// Reads tool calls out of the content when the request gave tools.
    tools: Option<ToolCallParser>,
    /// Tool calls let out so far.
    calls: usize,
    /// Steps ready to go out, in order.
    queue: VecDeque<Step>,
    ended: bool,
}

/// One step of a run, in OpenAI's terms.
enum Step {
    Reasoning(String),
    Content(String),
    ToolCall {
        index: usize,
        id: String,
        call: ToolCall,
    },
    Done {
        finish: &'static str,
        usage: Value,
        error: Option<EngineError>,
    },
}

impl Run {
    fn new(
        generation: localglm_engine::Generation,
        permit: OwnedSemaphorePermit,
        req: &ChatRequest,
    ) -> Self {
        Self {
            _guard: generation.canceller().drop_guard(),
            events: generation.events,
            _permit: permit,
            stop: StopFilter::new(req.stop.clone()),
            tools: req
                .parse_tools
                .then(|| req.generate.tools.as_ref().map(ToolCallParser::new))
                .flatten(),
            calls: 0,
            queue: VecDeque::new(),
            ended: false,
        }
    }

    /// The next step; `None` after `Done`.
    async fn next(&mut self) -> Option<Step> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return Some(step);
            }
            if self.ended {
                return None;
            }
            match self.events.next().await {
                None => return None,
                Some(EngineEvent::Reasoning(t)) => return Some(Step::Reasoning(t)),
                Some(EngineEvent::Content(t)) => {
                    let (out, hit) = self.stop.push(&t);
                    self.content(&out);
                    if hit {
                        // A stop string: end here (dropping the run cancels the generation).
                        self.events = futures::stream::empty().boxed();
                        self.end("stop", Value::Null, None);
                    }
                }
                Some(EngineEvent::Finished {
                    reason,
                    stats,
                    error,
                }) => {
                    let usage = json!({
                        "prompt_tokens": stats.prompt_tokens,
                        "completion_tokens": stats.generated_tokens,
                        "total_tokens": stats.prompt_tokens + stats.generated_tokens,
                        "completion_tokens_details": { "reasoning_tokens": stats.reasoning_tokens.unwrap_or(0) },
                    });
                    let rest = self.stop.finish();
                    self.content(&rest);
                    let error = error.filter(|_| reason == FinishReason::Error);
                    self.end(finish_reason(reason), usage, error);
                }
            }
        }
    }

    /// Content after the stop filter: as text, or through the tool-call parser.
    fn content(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let pieces = match &mut self.tools {
            Some(p) => p.push(text),
            None => vec![Piece::Text(text.to_owned())],
        };
        self.pieces(pieces);
    }

    fn pieces(&mut self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Text(t) if t.is_empty() => {}
                Piece::Text(t) => self.queue.push_back(Step::Content(t)),
                Piece::Call(call) => {
                    self.queue.push_back(Step::ToolCall {
                        index: self.calls,
                        id: format!("call_{}", uuid_like()),
                        call,
                    });
                    self.calls += 1;
                }
            }
        }
    }

    /// Queues the end: what the tool parser still holds, then `Done` (`tool_calls` when the
    /// reply called tools and ended normally).
    fn end(&mut self, finish: &'static str, usage: Value, error: Option<EngineError>) {
        // A call left open is only a call when the model stopped by itself (at
        // `<|observation|>`), not when it was cut off by the token limit or a Stop.
        let complete = finish == "stop" && error.is_none();
        if let Some(rest) = self.tools.as_mut().map(|p| p.finish(complete)) {
            self.pieces(rest);
        }
        let finish = if finish == "stop" && self.calls > 0 {
            "tool_calls"
        } else {
            finish
        };
        self.queue.push_back(Step::Done {
            finish,
            usage,
            error,
        });
        self.ended = true;
    }
}

/// OpenAI's form of one tool call (in a message, or whole in one stream delta).
fn tool_call_json(index: Option<usize>, id: &str, call: &ToolCall) -> Value {
    let mut v = json!({
        "id": id, "type": "function",
        "function": { "name": call.name, "arguments": call.arguments },
    });
    if let Some(i) = index {
        v["index"] = i.into();
    }
    v
}

/// The whole reply as one chat completion.
async fn complete(mut run: Run, id: String, model: String) -> Result<Value, ApiError> {
    let (mut content, mut reasoning) = (String::new(), String::new());
    let mut calls = Vec::new();
    let (finish, usage) = loop {
        match run.next().await {
            Some(Step::Reasoning(t)) => reasoning.push_str(&t),
            Some(Step::Content(t)) => content.push_str(&t),
            Some(Step::ToolCall { id, call, .. }) => calls.push(tool_call_json(None, &id, &call)),
            Some(Step::Done { error: Some(e), .. }) => return Err(engine_error(&e)),
            Some(Step::Done { finish, usage, .. }) => break (finish, usage),
            None => break ("stop", Value::Null),
        }
    };
    let mut message = json!({ "role": "assistant", "content": content });
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !calls.is_empty() {
        // OpenAI's shape: no text beside the calls is `null` content.
        if content.trim().is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(json!({
        "id": id, "object": "chat.completion", "created": now_s(), "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage,
    }))
}

/// The reply as server-sent events: a role delta, reasoning and content deltas, a final chunk
/// with `finish_reason` (and usage when asked), then `[DONE]`.
fn stream_response(
    run: Run,
    id: String,
    model: String,
    include_usage: bool,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let created = now_s();
    let chunk = move |delta: Value, finish: Option<&str>, usage: Option<Value>| {
        let mut c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        if let Some(u) = usage {
            c["usage"] = u;
        }
        Event::default().data(c.to_string())
    };
    let first = chunk(json!({ "role": "assistant", "content": "" }), None, None);
    let state = (Some(run), false);
    let rest = futures::stream::unfold((state, chunk), move |((run, done), chunk)| async move {
        if done {
            return None;
        }
        let Some(mut run) = run else {
            return Some((Event::default().data("[DONE]"), ((None, true), chunk)));
        };
        let ev = match run.next().await {
            Some(Step::Reasoning(t)) => chunk(json!({ "reasoning_content": t }), None, None),
            Some(Step::Content(t)) => chunk(json!({ "content": t }), None, None),
            Some(Step::ToolCall { index, id, call }) => chunk(
                json!({ "tool_calls": [tool_call_json(Some(index), &id, &call)] }),
                None,
                None,
            ),
            Some(Step::Done { error: Some(e), .. }) => {
                let body = engine_error(&e).body();
                return Some((
                    Event::default().data(body.to_string()),
                    ((None, false), chunk),
                ));
            }
            Some(Step::Done { finish, usage, .. }) => {
                let u = include_usage.then_some(usage);
                return Some((chunk(json!({}), Some(finish), u), ((None, false), chunk)));
            }
            None => return Some((Event::default().data("[DONE]"), ((None, true), chunk))),
        };
        Some((ev, ((Some(run), false), chunk)))
    });
    Sse::new(
        futures::stream::once(async move { first })
            .chain(rest)
            .map(Ok),
    )
}
