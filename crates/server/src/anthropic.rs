//! Anthropic's Messages API: `POST /v1/messages` (JSON, or server-sent events: `message_start`,
//! `ping`, `content_block_start` / `_delta` / `_stop` for `thinking`, `text` and `tool_use`
//! blocks, `message_delta` with `stop_reason` and usage, `message_stop`) and
//! `POST /v1/messages/count_tokens`, with errors in Anthropic's shape. What coding agents built
//! for Claude (Claude Code) send.
//!
//! Mapping to the chat template: `system` (string or text blocks) is a system turn; a user
//! message's `tool_result` blocks are tool turns (in order, and before the message's text
//! wherever it stands, so a result follows its call; an `is_error` result reads `Error: …`),
//! and each must answer an earlier `tool_use`; consecutive text blocks are joined by a line
//! break, and image or document blocks (the models read text only; refusing them would fail
//! every later request of an agent's session) stand as a short placeholder; an
//! assistant message's `thinking` blocks are its reasoning (kept in the prompt:
//! `clear_thinking` is false), its `text` its content and its `tool_use` blocks its tool calls.
//! `thinking: {type: enabled, budget_tokens}` turns the template's thinking on, with effort
//! `high` below 16k tokens of budget and `max` from there (`output_config.effort` names the
//! effort directly); `disabled` turns it off. Tools with a server-side `type` (web search …)
//! cannot run here and are left out, and so is Claude Code's per-request attribution block in
//! `system` (`x-anthropic-billing-header: …`), which would otherwise defeat prompt-cache reuse.

use crate::openai::{self, number, ApiError, ChatRequest};
use crate::run::{Collected, End, Run, Step};
use crate::tools::ToolCall;
use crate::{admit, begin, engine_error, max_output, resolve_model, uuid_like, ApiState, Body};
use crate::{LogNote, Protocol};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use localglm_engine::{ChatTurn, GenerateRequest, GenerationStats, ModelInfo, Role};
use serde_json::{json, Value};
use std::collections::HashSet;

/// An error in Anthropic's shape.
pub fn error_body(e: &ApiError) -> Value {
    let kind = match e.status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    json!({ "type": "error", "error": { "type": kind, "message": e.message } })
}

/// How Claude Code's attribution (billing) system block starts.
const BILLING_BLOCK: &str = "x-anthropic-billing-header:";

/// Below this thinking budget the effort is `high`, from it `max`.
const MAX_EFFORT_BUDGET: u64 = 16_384;

/// Parses a Messages request. `counting`: a `count_tokens` request (no `max_tokens`).
pub fn parse(body: &Value, model: &ModelInfo, counting: bool) -> Result<ChatRequest, ApiError> {
    let bad = |m: String, param: &'static str| ApiError::invalid(m, Some(param));
    let Some(msgs) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(bad("messages: must be a non-empty list".into(), "messages"));
    };
    let (asked, max_out) = max_output_of(body, model, counting)?;
    let mut messages = Vec::new();
    let system = match &body["system"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            // Claude Code's per-request billing block changes every request: kept, it would
            // make every prompt new to the KV cache. It is Anthropic's metadata, not
            // instructions, so it is left out of the prompt.
            let kept: Vec<Value> = blocks
                .iter()
                .filter(|b| {
                    !b["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(BILLING_BLOCK))
                })
                .cloned()
                .collect();
            text_blocks(&kept, "system")?
        }
        _ => {
            return Err(bad(
                "system: must be a string or a list of text blocks".into(),
                "system",
            ))
        }
    };
    if !system.is_empty() {
        messages.push(ChatTurn::new(Role::System, system));
    }
    let mut tool_uses: HashSet<String> = HashSet::new();
    for (i, m) in msgs.iter().enumerate() {
        match m["role"].as_str() {
            Some("user") => user_turns(&m["content"], i, &tool_uses, &mut messages)?,
            Some("assistant") => {
                messages.push(assistant_turn(&m["content"], i, &mut tool_uses)?);
            }
            // Claude Code (2.1) sends system messages among the turns.
            Some("system") => {
                let at = format!("messages.{i}.content");
                let text = text_blocks(&blocks_of(&m["content"], &format!("messages.{i}"))?, &at)?;
                messages.push(ChatTurn::new(Role::System, text));
            }
            other => {
                return Err(bad(
                    format!(
                        "messages.{i}.role: must be `user`, `assistant` or `system`, not {other:?}"
                    ),
                    "messages",
                ))
            }
        }
    }
    let (tools, parse_tools) = tools_of(body)?;
    let (enable_thinking, reasoning_effort) = thinking_of(body, model, asked, counting)?;
    let stop = match &body["stop_sequences"] {
        Value::Null => Vec::new(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(bad(
                "stop_sequences: must be a list of strings".into(),
                "stop_sequences",
            ))
        }
    };
    Ok(ChatRequest {
        model: body["model"].as_str().map(str::to_owned),
        generate: GenerateRequest {
            messages,
            sampling: openai::sampling(body, max_out)?,
            enable_thinking,
            reasoning_effort,
            // Reasoning sent back in the history is kept, as GLM-5.x's template wants it for
            // multi-turn tool use.
            clear_thinking: Some(false),
            tools,
        },
        stream: body["stream"].as_bool().unwrap_or(false),
        include_usage: true,
        stop,
        parse_tools,
    })
}

/// `max_tokens`: required (but for counting), at least 1; as asked, and capped to the context
/// (what is generated).
fn max_output_of(body: &Value, model: &ModelInfo, counting: bool) -> Result<(u64, u32), ApiError> {
    let cap = max_output(model);
    match &body["max_tokens"] {
        Value::Null if counting => Ok((u64::from(cap), cap)),
        Value::Null => Err(ApiError::invalid(
            "max_tokens: field required",
            Some("max_tokens"),
        )),
        v => match v.as_u64() {
            Some(n) if n >= 1 => Ok((n, n.min(u64::from(cap)) as u32)),
            _ => Err(ApiError::invalid(
                "max_tokens: must be a positive integer",
                Some("max_tokens"),
            )),
        },
    }
}

/// What stands in the prompt for an image or document block: the models read text only, and an
/// agent resends its history, so refusing one (a screenshot a tool returned) would fail every
/// later request of the session.
pub const NOT_TEXT: &str = "[an image or document was here; this model reads text only]";

/// Appends a block's text, a line break between blocks.
fn join(out: &mut String, text: &str) {
    if !out.is_empty() && !text.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
}

/// The text of a list of `text` blocks (`cache_control` and citations ignored; image and
/// document blocks as [`NOT_TEXT`]).
fn text_blocks(blocks: &[Value], at: &str) -> Result<String, ApiError> {
    let mut out = String::new();
    for (j, b) in blocks.iter().enumerate() {
        match (b["type"].as_str(), b["text"].as_str()) {
            (Some("text"), Some(t)) => join(&mut out, t),
            (Some("image" | "document"), _) => join(&mut out, NOT_TEXT),
            _ => {
                return Err(ApiError::invalid(
                    format!("{at}.{j}: expected a text block with a `text` string"),
                    Some("messages"),
                ))
            }
        }
    }
    Ok(out)
}

/// A block list, or a string as one text block.
fn blocks_of(content: &Value, at: &str) -> Result<Vec<Value>, ApiError> {
    match content {
        Value::String(s) => Ok(vec![json!({ "type": "text", "text": s })]),
        Value::Array(blocks) => Ok(blocks.clone()),
        _ => Err(ApiError::invalid(
            format!("{at}.content: must be a string or a list of content blocks"),
            Some("messages"),
        )),
    }
}

fn unsupported(at: String, kind: &str) -> ApiError {
    let what = match kind {
        "" => "every content block needs a `type`".into(),
        _ => format!("unsupported content block type `{kind}`"),
    };
    ApiError::invalid(format!("{at}: {what}"), Some("messages"))
}

/// A user message: its tool results as tool turns, its text as a user turn.
fn user_turns(
    content: &Value,
    i: usize,
    tool_uses: &HashSet<String>,
    out: &mut Vec<ChatTurn>,
) -> Result<(), ApiError> {
    let at = format!("messages.{i}");
    let mut text = String::new();
    for (j, b) in blocks_of(content, &at)?.iter().enumerate() {
        let at = format!("{at}.content.{j}");
        match b["type"].as_str().unwrap_or_default() {
            "text" => {
                let t = b["text"].as_str().ok_or_else(|| {
                    ApiError::invalid(format!("{at}.text: must be a string"), Some("messages"))
                })?;
                join(&mut text, t);
            }
            "image" | "document" => join(&mut text, NOT_TEXT),
            "tool_result" => {
                let id = b["tool_use_id"].as_str().unwrap_or_default();
                if !tool_uses.contains(id) {
                    return Err(ApiError::invalid(
                        format!(
                            "{at}: tool_result for tool_use_id `{id}`, which no earlier \
                             tool_use block has"
                        ),
                        Some("messages"),
                    ));
                }
                let mut result = match &b["content"] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Array(blocks) => text_blocks(blocks, &format!("{at}.content"))?,
                    _ => {
                        return Err(ApiError::invalid(
                            format!("{at}.content: must be a string or a list of text blocks"),
                            Some("messages"),
                        ))
                    }
                };
                if b["is_error"].as_bool() == Some(true) {
                    result = format!("Error: {result}");
                }
                out.push(ChatTurn {
                    tool_call_id: Some(id.to_owned()),
                    ..ChatTurn::new(Role::Tool, result)
                });
            }
            kind => return Err(unsupported(at, kind)),
        }
    }
    let has_results = out.last().is_some_and(|t| t.role == Role::Tool);
    if !text.is_empty() || !has_results {
        out.push(ChatTurn::new(Role::User, text));
    }
    Ok(())
}

/// An assistant message: text, thinking (its reasoning) and tool calls.
fn assistant_turn(
    content: &Value,
    i: usize,
    tool_uses: &mut HashSet<String>,
) -> Result<ChatTurn, ApiError> {
    let at = format!("messages.{i}");
    let (mut text, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    for (j, b) in blocks_of(content, &at)?.iter().enumerate() {
        let at = format!("{at}.content.{j}");
        let field = |name: &str| {
            b[name].as_str().ok_or_else(|| {
                ApiError::invalid(format!("{at}.{name}: must be a string"), Some("messages"))
            })
        };
        match b["type"].as_str().unwrap_or_default() {
            "text" => join(&mut text, field("text")?),
            "thinking" => join(&mut reasoning, field("thinking")?),
            "redacted_thinking" => {}
            "tool_use" => {
                let (id, name) = (field("id")?, field("name")?);
                let input = match &b["input"] {
                    v @ Value::Object(_) => v.clone(),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("{at}.input: must be an object"),
                            Some("messages"),
                        ))
                    }
                };
                tool_uses.insert(id.to_owned());
                calls.push(json!({ "id": id, "type": "function",
                    "function": { "name": name, "arguments": input } }));
            }
            kind => return Err(unsupported(at, kind)),
        }
    }
    Ok(ChatTurn {
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls: (!calls.is_empty()).then_some(Value::Array(calls)),
        ..ChatTurn::new(Role::Assistant, text)
    })
}

/// `tools` as the template's (OpenAI's) form, narrowed by `tool_choice`; whether calls are read.
fn tools_of(body: &Value) -> Result<(Option<Value>, bool), ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some("tools"));
    let empty = Vec::new();
    let list = match &body["tools"] {
        Value::Null => &empty,
        Value::Array(t) => t,
        _ => return Err(bad("tools: must be a list".into())),
    };
    let mut tools = Vec::new();
    for (i, t) in list.iter().enumerate() {
        // Server tools (web search, code execution …) have a versioned `type`; they run at
        // Anthropic, not here.
        if !matches!(t["type"].as_str(), None | Some("custom")) {
            continue;
        }
        let Some(name) = t["name"].as_str().filter(|n| !n.is_empty()) else {
            return Err(bad(format!("tools.{i}.name: field required")));
        };
        let schema = match &t["input_schema"] {
            v @ Value::Object(_) => v.clone(),
            _ => return Err(bad(format!("tools.{i}.input_schema: must be an object"))),
        };
        tools.push(openai::function_tool(
            name,
            t["description"].as_str(),
            schema,
        ));
    }
    let choice = &body["tool_choice"];
    let parse = match choice["type"].as_str() {
        None if choice.is_null() => true,
        Some("auto" | "any") => true,
        Some("none") => false,
        Some("tool") => {
            let name = choice["name"].as_str().unwrap_or_default();
            openai::narrow_tools(&mut tools, name)?;
            true
        }
        _ => {
            return Err(ApiError::invalid(
                "tool_choice.type: must be auto, any, tool or none",
                Some("tool_choice"),
            ))
        }
    };
    if tools.is_empty() {
        return Ok((None, false));
    }
    Ok((Some(Value::Array(tools)), parse))
}

/// `thinking` (and `output_config.effort`) as the template's switches.
fn thinking_of(
    body: &Value,
    model: &ModelInfo,
    max_tokens: u64,
    counting: bool,
) -> Result<(Option<bool>, Option<String>), ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some("thinking"));
    let t = &body["thinking"];
    let named = body["output_config"]["effort"].as_str();
    let levels = &model.effort_levels;
    let (on, budget_effort) = match t["type"].as_str() {
        None if t.is_null() => (None, None),
        Some("disabled") => return Ok((Some(false), None)),
        Some("adaptive") => (Some(true), None),
        Some("enabled") => {
            let Some(budget) = number(&t["budget_tokens"], "thinking")?.filter(|b| *b >= 1.0)
            else {
                return Err(bad("thinking.budget_tokens: field required".into()));
            };
            let budget = budget as u64;
            if budget < 1024 {
                return Err(bad(format!(
                    "thinking.budget_tokens: must be at least 1024, got {budget}"
                )));
            }
            // Against the request's own max_tokens: the cap to the context only limits what
            // is generated.
            if !counting && budget >= max_tokens {
                return Err(bad(format!(
                    "thinking.budget_tokens ({budget}) must be less than max_tokens ({max_tokens})"
                )));
            }
            let level = if budget < MAX_EFFORT_BUDGET {
                "high"
            } else {
                "max"
            };
            (Some(true), openai::effort(level, levels).1)
        }
        _ => {
            return Err(bad(
                "thinking.type: must be enabled, disabled or adaptive".into()
            ))
        }
    };
    match named {
        Some(level) => {
            let (switch, effort) = openai::effort(level, levels);
            Ok((on.or(switch), effort))
        }
        None => Ok((on, budget_effort)),
    }
}

/// Anthropic's usage: input tokens computed, those read from the cache, and output tokens.
fn usage(stats: Option<&GenerationStats>) -> Value {
    let s = stats.cloned().unwrap_or_default();
    let cached = s.cached_tokens.unwrap_or(0);
    json!({
        "input_tokens": s.prompt_tokens.saturating_sub(cached),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": s.generated_tokens,
    })
}

fn stop_reason(end: &End) -> (&'static str, Value) {
    match end {
        End::Stop => ("end_turn", Value::Null),
        End::Length => ("max_tokens", Value::Null),
        End::ToolCalls => ("tool_use", Value::Null),
        End::StopSequence(s) => ("stop_sequence", Value::String(s.clone())),
    }
}

/// Thinking blocks carry a signature the client sends back; LocalGLM's is a fixed marker
/// (nothing is verified on the way back).
const SIGNATURE: &str = "localglm";

fn tool_use_block(id: &str, call: &ToolCall, input: bool) -> Value {
    let args = if input {
        serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}))
    } else {
        json!({})
    };
    json!({ "type": "tool_use", "id": format!("toolu_{id}"), "name": call.name, "input": args })
}

fn message(reply: Collected, id: &str, model: &str) -> Value {
    let mut content = Vec::new();
    if !reply.reasoning.is_empty() {
        content.push(
            json!({ "type": "thinking", "thinking": reply.reasoning, "signature": SIGNATURE }),
        );
    }
    if !reply.content.is_empty() {
        content.push(json!({ "type": "text", "text": reply.content }));
    }
    for (id, call) in &reply.calls {
        content.push(tool_use_block(id, call, true));
    }
    let (reason, seq) = stop_reason(reply.end.as_ref().unwrap_or(&End::Stop));
    json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": reason, "stop_sequence": seq, "usage": usage(reply.stats.as_ref()),
    })
}

pub(crate) async fn messages(
    State(state): State<ApiState>,
    Extension(note): Extension<LogNote>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match messages_inner(state, note, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response_for(Protocol::Anthropic),
    }
}

async fn messages_inner(
    state: ApiState,
    note: LogNote,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, model) = admit(&state, &headers, body).await?;
    let req = parse(&body, &model, false)?;
    let run = begin(&state, &req, &model, &note).await?;
    let id = format!("msg_{}", uuid_like());
    if req.stream {
        return Ok(stream(run, id, model.name).into_response());
    }
    let reply = run.collect().await.map_err(|e| engine_error(&e))?;
    Ok(Json(message(reply, &id, &model.name)).into_response())
}

pub(crate) async fn count_tokens(
    State(state): State<ApiState>,
    Extension(note): Extension<LogNote>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let counted = async {
        let (body, model) = admit(&state, &headers, body).await?;
        let req = parse(&body, &model, true)?;
        resolve_model(&state, req.model.as_deref(), &model, &note)?;
        let n = state
            .engine
            .count_tokens(&req.generate)
            .await
            .map_err(|e| engine_error(&e))?;
        Ok::<_, ApiError>(Json(json!({ "input_tokens": n })).into_response())
    };
    counted
        .await
        .unwrap_or_else(|e| e.into_response_for(Protocol::Anthropic))
}

/// The block being streamed.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    None,
    Thinking,
    Text,
}

/// Turns run steps into Anthropic's stream events.
struct Streamer {
    run: Option<Run>,
    open: Open,
    index: usize,
}

fn event(kind: &str, data: Value) -> Event {
    Event::default().event(kind).data(data.to_string())
}

impl Streamer {
    /// Closes the open block (a thinking block with its signature first).
    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open == Open::Thinking {
            out.push(event("content_block_delta", json!({ "type": "content_block_delta",
                "index": self.index, "delta": { "type": "signature_delta", "signature": SIGNATURE } })));
        }
        if self.open != Open::None {
            out.push(event(
                "content_block_stop",
                json!({ "type": "content_block_stop", "index": self.index }),
            ));
            self.index += 1;
            self.open = Open::None;
        }
    }

    /// Opens a block of `kind` unless one is open.
    fn open(&mut self, kind: Open, out: &mut Vec<Event>) {
        if self.open == kind {
            return;
        }
        self.close(out);
        let block = match kind {
            Open::Thinking => json!({ "type": "thinking", "thinking": "", "signature": "" }),
            _ => json!({ "type": "text", "text": "" }),
        };
        out.push(event(
            "content_block_start",
            json!({ "type": "content_block_start",
            "index": self.index, "content_block": block }),
        ));
        self.open = kind;
    }

    /// The events of the next step; `None` after the last.
    async fn next(&mut self) -> Option<Vec<Event>> {
        let run = self.run.as_mut()?;
        let mut out = Vec::new();
        let delta = |index: usize, d: Value| {
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index, "delta": d }),
            )
        };
        match run.next().await {
            Some(Step::Reasoning(t)) => {
                self.open(Open::Thinking, &mut out);
                out.push(delta(
                    self.index,
                    json!({ "type": "thinking_delta", "thinking": t }),
                ));
            }
            Some(Step::Content(t)) => {
                self.open(Open::Text, &mut out);
                out.push(delta(
                    self.index,
                    json!({ "type": "text_delta", "text": t }),
                ));
            }
            Some(Step::ToolCall { id, call, .. }) => {
                self.close(&mut out);
                out.push(event(
                    "content_block_start",
                    json!({ "type": "content_block_start",
                    "index": self.index, "content_block": tool_use_block(&id, &call, false) }),
                ));
                out.push(delta(
                    self.index,
                    json!({ "type": "input_json_delta", "partial_json": call.arguments }),
                ));
                out.push(event(
                    "content_block_stop",
                    json!({ "type": "content_block_stop", "index": self.index }),
                ));
                self.index += 1;
            }
            Some(Step::Done { error: Some(e), .. }) => {
                self.run = None;
                let body = error_body(&engine_error(&e));
                out.push(event("error", body));
            }
            Some(Step::Done { end, stats, .. }) => {
                self.close(&mut out);
                let (reason, seq) = stop_reason(&end);
                out.push(event(
                    "message_delta",
                    json!({ "type": "message_delta",
                    "delta": { "stop_reason": reason, "stop_sequence": seq },
                    "usage": usage(stats.as_ref()) }),
                ));
                out.push(event("message_stop", json!({ "type": "message_stop" })));
                self.run = None;
            }
            None => {
                self.run = None;
                return None;
            }
        }
        Some(out)
    }
}

fn stream(
    run: Run,
    id: String,
    model: String,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let start = vec![
        event(
            "message_start",
            json!({ "type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(None),
        } }),
        ),
        event("ping", json!({ "type": "ping" })),
    ];
    let streamer = Streamer {
        run: Some(run),
        open: Open::None,
        index: 0,
    };
    let rest = futures::stream::unfold(streamer, |mut s| async move {
        let events = s.next().await?;
        Some((futures::stream::iter(events), s))
    })
    .flatten();
    Sse::new(futures::stream::iter(start).chain(rest).map(Ok))
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
