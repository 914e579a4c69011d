//! Backend on any OpenAI-compatible server (vLLM, SGLang, llama-server, another LocalGLM):
//! for users whose model runs on a cluster. Replies stream over server-sent events; reasoning
//! comes as `reasoning_content` deltas or as `<think>` tags inside the content (both end up as
//! reasoning); stop closes the connection.
//!
//! Invariants: `load` checks reachability, the key and the model name before anything else, so a
//! bad setting fails at once with a clear reason (a server that does not answer within the load
//! timeout too); `generate` returns at once and the request is made on the stream's thread, so
//! Stop ends a generation immediately even while the server is still silent (queued, or in a long
//! prefill); every generation ends with one `Finished`.

use crate::reasoning::{Segment, ThinkParser};
use crate::{
    validate, Engine, EngineError, EngineEvent, GenerateRequest, Generation, LoadSpec, StatsClock,
};
use async_trait::async_trait;
use localglm_protocol::{FinishReason, ModelInfo};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Base URL including `/v1`, e.g. `http://gpu-box:8000/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Model id; `None` takes the server's first.
    pub model: Option<String>,
}

/// The remote backend.
pub struct RemoteEngine {
    spec: RemoteSpec,
    loaded: RwLock<Option<ModelInfo>>,
    /// Longest wait for the model list at load.
    load_timeout: Duration,
    /// Longest silence while a reply streams.
    stream_timeout: Duration,
}

impl RemoteEngine {
    pub fn new(spec: RemoteSpec) -> Self {
        Self {
            spec: RemoteSpec {
                base_url: spec.base_url.trim_end_matches('/').to_string(),
                ..spec
            },
            loaded: RwLock::new(None),
            load_timeout: Duration::from_secs(30),
            stream_timeout: Duration::from_secs(300),
        }
    }

    /// Other limits for the load check and for silence within a stream.
    pub fn with_timeouts(mut self, load: Duration, stream: Duration) -> Self {
        self.load_timeout = load;
        self.stream_timeout = stream;
        self
    }

    fn agent(read: Duration) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(read)
            .build()
    }

    fn request(&self, agent: &ureq::Agent, method: &str, path: &str) -> ureq::Request {
        let mut r = agent.request(method, &format!("{}{path}", self.spec.base_url));
        if let Some(k) = &self.spec.api_key {
            r = r.set("Authorization", &format!("Bearer {k}"));
        }
        r
    }
}

/// A readable reason for a failed call.
fn http_reason(base: &str, e: ureq::Error) -> String {
    if let ureq::Error::Transport(t) = &e {
        let text = t.to_string();
        if text.contains("timed out") || text.contains("temporarily unavailable") {
            return format!("{base} did not answer in time ({text})");
        }
    }
    match e {
        ureq::Error::Status(401 | 403, _) => {
            format!("{base} refused the API key (401): check the key")
        }
        ureq::Error::Status(code, r) => {
            let body: Value = r.into_json().unwrap_or(Value::Null);
            let msg = body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            format!("{base} answered {code}: {msg}")
        }
        ureq::Error::Transport(t) => format!("cannot reach {base}: {t}"),
    }
}

#[async_trait]
impl Engine for RemoteEngine {
    fn backend(&self) -> &'static str {
        "remote"
    }

    async fn load(&self, _spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        let base = self.spec.base_url.clone();
        let failed = |reason: String| EngineError::LoadFailed {
            path: base.clone().into(),
            reason,
        };
        let agent = Self::agent(self.load_timeout);
        let list = self.request(&agent, "GET", "/models");
        let call_base = base.clone();
        let models: Value = tokio::task::spawn_blocking(move || {
            list.call().map_err(|e| http_reason(&call_base, e))
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)?
        .into_json()
        .map_err(|e| failed(format!("not an OpenAI-compatible model list: {e}")))?;
        let listed: Vec<&Value> = models["data"].as_array().into_iter().flatten().collect();
        let ids: Vec<String> = listed
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        let name = match &self.spec.model {
            Some(m) if ids.contains(m) => m.clone(),
            Some(m) => {
                return Err(failed(format!(
                    "the server has no model `{m}` (it has: {})",
                    ids.join(", ")
                )))
            }
            None => ids
                .first()
                .cloned()
                .ok_or_else(|| failed("the server lists no model".into()))?,
        };
        // The server's template is not visible from here: offer the efforts of the model's
        // family — GLM-5.x distinguishes High and Max — else OpenAI's levels.
        let effort_levels = if name.to_ascii_lowercase().contains("glm") {
            vec!["high".into(), "max".into()]
        } else {
            vec!["low".into(), "medium".into(), "high".into()]
        };
        // The context, where the server says: vLLM, SGLang and LocalGLM report `max_model_len`,
        // llama-server `meta.n_ctx_train`.
        let entry = listed
            .iter()
            .find(|m| m["id"].as_str() == Some(name.as_str()));
        let context_length = entry.and_then(|m| {
            [
                &m["max_model_len"],
                &m["context_length"],
                &m["meta"]["n_ctx_train"],
            ]
            .into_iter()
            .find_map(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
        });
        let info = ModelInfo {
            name,
            path: self.spec.base_url.clone(),
            size_bytes: 0.0,
            backend: self.backend().into(),
            architecture: None,
            context_length,
            quant: None,
            // The server's template decides; the switches are passed through.
            supports_thinking: true,
            effort_levels,
            supports_tools: true,
            placement: None,
            prompt_cache_bytes: None,
            runtimes: Vec::new(),
        };
        *self.loaded.write().expect("engine lock") = Some(info.clone());
        Ok(info)
    }

    fn loaded(&self) -> Option<ModelInfo> {
        self.loaded.read().expect("engine lock").clone()
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        validate(&request)?;
        let model = self.loaded().ok_or(EngineError::NoModel)?;
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|t| {
                let role = crate::prompt::role_name(t.role);
                let mut m = json!({ "role": role, "content": t.content });
                if let Some(id) = &t.tool_call_id {
                    m["tool_call_id"] = Value::String(id.clone());
                }
                // The calls a tool message answers go with it, arguments as OpenAI's string.
                if let Some(Value::Array(calls)) = &t.tool_calls {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|c| {
                            let mut c = c.clone();
                            if let Some(args) =
                                c["function"].get("arguments").filter(|a| !a.is_string())
                            {
                                c["function"]["arguments"] = Value::String(args.to_string());
                            }
                            c
                        })
                        .collect();
                    m["tool_calls"] = Value::Array(calls);
                }
                if let Some(r) = &t.reasoning {
                    m["reasoning_content"] = Value::String(r.clone());
                }
                m
            })
            .collect();
        let s = &request.sampling;
        let mut kwargs = serde_json::Map::new();
        if let Some(on) = request.enable_thinking {
            kwargs.insert("enable_thinking".into(), on.into());
        }
        if let Some(c) = request.clear_thinking {
            kwargs.insert("clear_thinking".into(), c.into());
        }
        let mut body = json!({
            "model": model.name, "messages": messages, "stream": true,
            "stream_options": { "include_usage": true },
            "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
        });
        let extra = [
            ("top_k", s.top_k.map(Value::from)),
            ("seed", s.seed.map(Value::from)),
            ("min_p", s.min_p.map(Value::from)),
            ("repetition_penalty", s.repetition_penalty.map(Value::from)),
            (
                "reasoning_effort",
                request.reasoning_effort.clone().map(Value::from),
            ),
            (
                "chat_template_kwargs",
                (!kwargs.is_empty()).then(|| Value::Object(kwargs)),
            ),
            // Tool definitions pass through; the server's calls come back as text (below).
            ("tools", request.tools.clone()),
        ];
        for (k, v) in extra {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        let agent = Self::agent(self.stream_timeout);
        let post = self.request(&agent, "POST", "/chat/completions");
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut clock = StatsClock::start(0);
        clock.track_reasoning();
        let shared = Arc::new(Mutex::new(StreamState {
            tx: Some(tx),
            clock,
            exact: None,
        }));
        // Stop ends the generation at once, even while the server has not answered yet; the
        // reading thread notices later and only closes the connection.
        let done = CancellationToken::new();
        let (watched, token, over) = (shared.clone(), cancel.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => lock(&watched).finish(FinishReason::Cancelled, None),
                _ = over.cancelled() => {}
            }
        });
        let call = Call {
            post,
            body,
            base: self.spec.base_url.clone(),
        };
        let stop = cancel.clone();
        std::thread::Builder::new()
            .name("remote-stream".into())
            .spawn(move || {
                read_stream(call, &stop, &shared);
                done.cancel();
            })
            .map_err(|e| EngineError::Generation(e.to_string()))?;
        Ok(Generation::new(crate::event_stream(rx), cancel))
    }

    async fn unload(&self) {
        *self.loaded.write().expect("engine lock") = None;
    }
}

/// One chat request, made on the stream's thread.
struct Call {
    post: ureq::Request,
    body: Value,
    base: String,
}

/// Posts the chat request. A server that refuses `max_tokens` because prompt plus reply would
/// pass its context (vLLM and SGLang check this up front; a preset asks for up to 131072 new
/// tokens) is asked once more without it, so the reply may use whatever context is left.
fn send(call: &Call) -> Result<ureq::Response, EngineError> {
    let reason = |e| EngineError::Generation(http_reason(&call.base, e));
    match call.post.clone().send_json(call.body.clone()) {
        Err(ureq::Error::Status(400, r)) => {
            let text = r.into_string().unwrap_or_default();
            let lower = text.to_ascii_lowercase();
            let too_long = lower.contains("context length") || lower.contains("max_tokens");
            if too_long && call.body.get("max_tokens").is_some() {
                let mut body = call.body.clone();
                if let Some(o) = body.as_object_mut() {
                    o.remove("max_tokens");
                }
                return call.post.clone().send_json(body).map_err(reason);
            }
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            Err(EngineError::Generation(format!(
                "{} answered 400: {msg}",
                call.base
            )))
        }
        other => other.map_err(reason),
    }
}

/// What the reading thread and the Stop watcher share: the one `Finished` goes out through
/// whichever gets there first.
struct StreamState {
    tx: Option<mpsc::UnboundedSender<EngineEvent>>,
    clock: StatsClock,
    /// The server's own completion-token count, when it reports usage.
    exact: Option<u32>,
}

impl StreamState {
    /// Sends an event; `false` when the generation is over (stopped, or nobody listens).
    fn send(&mut self, event: EngineEvent) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(event).is_ok())
    }

    /// Ends the generation (later calls do nothing).
    fn finish(&mut self, reason: FinishReason, error: Option<EngineError>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(EngineEvent::Finished {
                reason,
                stats: self.clock.finish(self.exact, None),
                error,
            });
        }
    }
}

fn lock(state: &Mutex<StreamState>) -> std::sync::MutexGuard<'_, StreamState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the request and turns the server's SSE stream into engine events; stops (closing the
/// connection) when cancelled or when nobody listens.
fn read_stream(call: Call, cancel: &CancellationToken, state: &Mutex<StreamState>) {
    let response = match send(&call) {
        Ok(r) => r,
        Err(error) => {
            lock(state).finish(FinishReason::Error, Some(error));
            return;
        }
    };
    let mut parser = ThinkParser::default();
    let send = |segs: Vec<Segment>, state: &mut StreamState| {
        segs.into_iter().all(|s| {
            state.send(match s {
                Segment::Reasoning(t) => EngineEvent::Reasoning(t),
                Segment::Content(t) => EngineEvent::Content(t),
            })
        })
    };
    let mut reason = FinishReason::Stop;
    let mut error = None;
    // Streamed `tool_calls` deltas, by index: (name, arguments so far).
    let mut calls: Vec<(String, String)> = Vec::new();
    for line in BufReader::new(response.into_reader()).lines() {
        if cancel.is_cancelled() {
            reason = FinishReason::Cancelled;
            break;
        }
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                reason = FinishReason::Error;
                error = Some(EngineError::Generation(format!(
                    "the stream from {} broke: {e}",
                    call.base
                )));
                break;
            }
        };
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(msg) = chunk["error"]["message"].as_str() {
            reason = FinishReason::Error;
            error = Some(EngineError::Generation(msg.to_string()));
            break;
        }
        let mut st = lock(state);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            st.clock
                .set_prompt_tokens(u["prompt_tokens"].as_u64().unwrap_or(0) as u32);
            st.exact = u["completion_tokens"].as_u64().map(|n| n as u32);
            if let Some(n) = u["prompt_tokens_details"]["cached_tokens"].as_u64() {
                st.clock.cached_tokens(n as u32);
            }
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        let mut segs = Vec::new();
        if let Some(r) = delta["reasoning_content"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            segs.push(Segment::Reasoning(r.to_string()));
        }
        if let Some(c) = delta["content"].as_str().filter(|c| !c.is_empty()) {
            segs.extend(parser.push(c));
        }
        for d in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = d["index"].as_u64().unwrap_or(calls.len() as u64) as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            // The name comes once (some servers repeat it in every delta).
            if calls[i].0.is_empty() {
                calls[i].0 = d["function"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
            calls[i]
                .1
                .push_str(d["function"]["arguments"].as_str().unwrap_or_default());
        }
        if !segs.is_empty() {
            let thought = segs.iter().any(|s| matches!(s, Segment::Reasoning(_)));
            st.clock.tokens(1);
            if thought {
                st.clock.reasoning_tokens(1);
            }
            if !send(segs, &mut st) {
                reason = FinishReason::Cancelled;
                break;
            }
        }
        match choice["finish_reason"].as_str() {
            Some("length") => reason = FinishReason::Length,
            Some(_) => reason = FinishReason::Stop,
            None => {}
        }
    }
    let mut st = lock(state);
    let mut rest = parser.finish();
    rest.extend(
        calls
            .iter()
            .map(|(name, args)| Segment::Content(call_text(name, args))),
    );
    send(rest, &mut st);
    st.finish(reason, error);
}

/// A tool call the server returned, as the Hermes-format text LocalGLM's API reads calls from
/// (`<tool_call>{"name": …, "arguments": {…}}</tool_call>`), so a remote model's calls reach
/// the local API's clients like a local model's.
fn call_text(name: &str, arguments: &str) -> String {
    let args = serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    format!(
        "<tool_call>{}</tool_call>",
        json!({ "name": name, "arguments": args })
    )
}
