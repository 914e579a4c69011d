//! OpenAI's Responses API: `POST /v1/responses`, JSON or server-sent events
//! (`response.created`, `response.in_progress`, `response.output_item.added` / `.done`,
//! `response.reasoning_text.delta` / `.done` for reasoning items,
//! `response.content_part.added` / `.done` and `response.output_text.delta` / `.done` for the
//! message, `response.function_call_arguments.delta` / `.done` for calls, then
//! `response.completed`, `response.incomplete` at the token limit or `response.failed`). What
//! Codex CLI and the OpenAI Agents SDK send.
//!
//! Mapping to the chat template: `instructions` is a system turn; input items in order —
//! messages (string or text parts; `developer` is `system`), and consecutive `reasoning`,
//! assistant `message` and `function_call` items as one assistant turn (its reasoning, text and
//! tool calls: reasoning kept, `clear_thinking` false), `function_call_output` as a tool turn
//! answering an earlier call. `reasoning.effort` maps as [`crate::openai::effort`] says.
//! Reasoning comes back as a reasoning item with the text in `content` (`reasoning_text`) and
//! in `encrypted_content`, which is what a stateless client (`store: false`; Codex drops
//! `content` when it sends items back) returns to us. Responses (unless `store: false`) are kept in memory for
//! `previous_response_id`, the last [`KEPT`] of them.

use crate::openai::{self, ApiError, ChatRequest};
use crate::run::{Collected, End, Run, Step};
use crate::tools::ToolCall;
use crate::{admit, begin, engine_error, max_output, now_s, uuid_like, ApiState, Body, LogNote};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use localglm_engine::{ChatTurn, GenerateRequest, GenerationStats, ModelInfo, Role};
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// How many responses are kept for `previous_response_id`.
pub const KEPT: usize = 64;

/// Kept responses: id → the whole conversation up to and including its output.
pub type Kept = Arc<Mutex<VecDeque<(String, Vec<ChatTurn>)>>>;

/// A parsed Responses request and what answering it needs beyond the engine request.
pub struct Parsed {
    pub chat: ChatRequest,
    /// Keep the response for `previous_response_id`.
    pub store: bool,
    /// `instructions` were given (the first turn; not kept for `previous_response_id`).
    pub instructions: bool,
    /// Echoed in the response object.
    pub echo: Value,
}

impl Parsed {
    /// The request as kept for `previous_response_id`: without its instructions.
    pub fn kept_request(&self) -> GenerateRequest {
        let mut g = self.chat.generate.clone();
        if self.instructions {
            g.messages.remove(0);
        }
        g
    }
}

fn bad(m: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::invalid(m, Some(param))
}

/// Parses a Responses request; `kept` resolves `previous_response_id`.
pub fn parse(body: &Value, model: &ModelInfo, kept: &Kept) -> Result<Parsed, ApiError> {
    let mut messages = Vec::new();
    if let Some(text) = body["instructions"].as_str().filter(|t| !t.is_empty()) {
        messages.push(ChatTurn::new(Role::System, text));
    }
    let mut calls_seen: HashSet<String> = HashSet::new();
    if let Some(prev) = body["previous_response_id"].as_str() {
        let kept = kept.lock().expect("kept lock");
        let Some((_, turns)) = kept.iter().find(|(id, _)| id == prev) else {
            return Err(ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                code: Some("previous_response_not_found"),
                ..bad(
                    format!("Previous response with id '{prev}' not found."),
                    "previous_response_id",
                )
            });
        };
        // The earlier instructions are not kept (as OpenAI does); system messages among the
        // input items are.
        for t in turns {
            for c in t
                .tool_calls
                .iter()
                .flat_map(|c| c.as_array().into_iter().flatten())
            {
                calls_seen.extend(c["id"].as_str().map(str::to_owned));
            }
            messages.push(t.clone());
        }
    }
    match &body["input"] {
        Value::String(s) => messages.push(ChatTurn::new(Role::User, s.clone())),
        Value::Array(items) if !items.is_empty() => {
            items_to_turns(items, &mut calls_seen, &mut messages)?
        }
        _ => {
            return Err(bad(
                "input must be a string or a non-empty list of items",
                "input",
            ))
        }
    }
    let (tools, parse_tools) = tools_of(body)?;
    let max = match &body["max_output_tokens"] {
        Value::Null => max_output(model),
        v => match v.as_u64() {
            Some(n) if n >= 1 => n.min(u64::from(max_output(model))) as u32,
            _ => {
                return Err(bad(
                    "max_output_tokens must be a positive integer",
                    "max_output_tokens",
                ))
            }
        },
    };
    let (enable_thinking, reasoning_effort) = match body["reasoning"]["effort"].as_str() {
        Some(level) => openai::effort(level, &model.effort_levels),
        None => (None, None),
    };
    let mut echo = json!({});
    for key in [
        "instructions",
        "previous_response_id",
        "reasoning",
        "tool_choice",
        "tools",
        "metadata",
        "temperature",
        "top_p",
        "max_output_tokens",
        "text",
    ] {
        if !body[key].is_null() {
            echo[key] = body[key].clone();
        }
    }
    Ok(Parsed {
        store: body["store"].as_bool().unwrap_or(true),
        instructions: body["instructions"].as_str().is_some_and(|t| !t.is_empty()),
        echo,
        chat: ChatRequest {
            model: body["model"].as_str().map(str::to_owned),
            generate: GenerateRequest {
                messages,
                sampling: openai::sampling(body, max)?,
                enable_thinking,
                reasoning_effort,
                clear_thinking: Some(false),
                tools,
            },
            stream: body["stream"].as_bool().unwrap_or(false),
            include_usage: true,
            stop: Vec::new(),
            parse_tools,
        },
    })
}

/// The text of a message's content: a string or a list of text parts.
fn content_text(content: &Value, at: &str) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p["type"].as_str(), p["text"].as_str()) {
                    (Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text"), Some(t)) => {
                        out.push_str(t)
                    }
                    (Some(kind @ ("input_image" | "input_file" | "input_audio")), _) => {
                        return Err(bad(format!("{at}.content.{j}: {kind} parts are not supported (the models are text only)"), "input"))
                    }
                    _ => return Err(bad(format!("{at}.content.{j}: expected a text part with a `text` string"), "input")),
                }
            }
            Ok(out)
        }
        _ => Err(bad(
            format!("{at}.content: must be a string or a list of parts"),
            "input",
        )),
    }
}

/// Input items as chat turns (see the module header).
fn items_to_turns(
    items: &[Value],
    calls_seen: &mut HashSet<String>,
    out: &mut Vec<ChatTurn>,
) -> Result<(), ApiError> {
    // The assistant turn being gathered from consecutive items.
    let mut turn: Option<ChatTurn> = None;
    let flush = |turn: &mut Option<ChatTurn>, out: &mut Vec<ChatTurn>| out.extend(turn.take());
    for (i, item) in items.iter().enumerate() {
        let at = format!("input.{i}");
        let kind = item["type"]
            .as_str()
            .unwrap_or(if item["role"].is_string() {
                "message"
            } else {
                ""
            });
        match kind {
            "message" => {
                let role = match item["role"].as_str() {
                    Some("user") => Role::User,
                    Some("system" | "developer") => Role::System,
                    Some("assistant") => Role::Assistant,
                    other => return Err(bad(format!("{at}.role: must be user, assistant, system or developer, not {other:?}"), "input")),
                };
                let text = content_text(&item["content"], &at)?;
                if role == Role::Assistant {
                    // Text between or after calls belongs to the same reply (a model may write
                    // a line break between parallel calls): one turn until a user, system or
                    // tool item.
                    let t = turn.get_or_insert_with(|| ChatTurn::new(Role::Assistant, ""));
                    t.content.push_str(&text);
                } else {
                    flush(&mut turn, out);
                    out.push(ChatTurn::new(role, text));
                }
            }
            "reasoning" => {
                let mut text = content_text(&item["content"], &at)?;
                if text.is_empty() {
                    text = content_text(&item["summary"], &at)?;
                }
                if text.is_empty() {
                    text = item["encrypted_content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
                if turn
                    .as_ref()
                    .is_some_and(|t| !t.content.is_empty() || t.tool_calls.is_some())
                {
                    flush(&mut turn, out);
                }
                let t = turn.get_or_insert_with(|| ChatTurn::new(Role::Assistant, ""));
                t.reasoning.get_or_insert_with(String::new).push_str(&text);
            }
            "function_call" => {
                let (Some(call_id), Some(name)) = (item["call_id"].as_str(), item["name"].as_str())
                else {
                    return Err(bad(
                        format!("{at}: a function_call needs call_id and name"),
                        "input",
                    ));
                };
                let args = match &item["arguments"] {
                    Value::String(s) => serde_json::from_str::<Value>(s)
                        .ok()
                        .filter(Value::is_object),
                    v @ Value::Object(_) => Some(v.clone()),
                    _ => None,
                }
                .ok_or_else(|| {
                    bad(
                        format!("{at}.arguments: must be a JSON object (as a string)"),
                        "input",
                    )
                })?;
                calls_seen.insert(call_id.to_owned());
                let t = turn.get_or_insert_with(|| ChatTurn::new(Role::Assistant, ""));
                let calls = t.tool_calls.get_or_insert_with(|| json!([]));
                if let Some(list) = calls.as_array_mut() {
                    list.push(json!({ "id": call_id, "type": "function", "function": { "name": name, "arguments": args } }));
                }
            }
            "function_call_output" => {
                let call_id = item["call_id"].as_str().unwrap_or_default();
                if !calls_seen.contains(call_id) {
                    return Err(bad(format!("{at}: function_call_output for call_id `{call_id}`, which no earlier function_call has"), "input"));
                }
                let output = match &item["output"] {
                    Value::String(s) => s.clone(),
                    v => content_text(v, &at)?,
                };
                flush(&mut turn, out);
                out.push(ChatTurn {
                    tool_call_id: Some(call_id.to_owned()),
                    ..ChatTurn::new(Role::Tool, output)
                });
            }
            "" => return Err(bad(format!("{at}: every input item needs a type"), "input")),
            other => {
                return Err(bad(
                    format!("{at}: input items of type `{other}` are not supported"),
                    "input",
                ))
            }
        }
    }
    flush(&mut turn, out);
    Ok(())
}

/// Function tools as the template's (chat-completions) form; other types (built-in tools that
/// run at OpenAI) are left out. Narrowed by `tool_choice`.
fn tools_of(body: &Value) -> Result<(Option<Value>, bool), ApiError> {
    let empty = Vec::new();
    let list = match &body["tools"] {
        Value::Null => &empty,
        Value::Array(t) => t,
        _ => return Err(bad("tools must be a list", "tools")),
    };
    let mut tools = Vec::new();
    for (i, t) in list.iter().enumerate() {
        if t["type"].as_str() != Some("function") {
            continue;
        }
        let Some(name) = t["name"].as_str().filter(|n| !n.is_empty()) else {
            return Err(bad(format!("tools.{i}.name: field required"), "tools"));
        };
        let parameters = t.get("parameters").cloned().unwrap_or(json!({}));
        tools.push(openai::function_tool(
            name,
            t["description"].as_str(),
            parameters,
        ));
    }
    let parse = match &body["tool_choice"] {
        Value::Null => true,
        Value::String(s) if s == "none" => false,
        Value::String(s) if s == "auto" || s == "required" => true,
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
            openai::narrow_tools(&mut tools, name)?;
            true
        }
        _ => {
            return Err(bad(
                "tool_choice must be none, auto, required or a function",
                "tool_choice",
            ))
        }
    };
    if tools.is_empty() {
        return Ok((None, false));
    }
    Ok((Some(Value::Array(tools)), parse))
}

fn usage(stats: Option<&GenerationStats>) -> Value {
    let s = stats.cloned().unwrap_or_default();
    json!({
        "input_tokens": s.prompt_tokens,
        "input_tokens_details": { "cached_tokens": s.cached_tokens.unwrap_or(0) },
        "output_tokens": s.generated_tokens,
        "output_tokens_details": { "reasoning_tokens": s.reasoning_tokens.unwrap_or(0) },
        "total_tokens": s.prompt_tokens + s.generated_tokens,
    })
}

/// What one response is being built from.
struct Reply {
    id: String,
    model: String,
    created: u64,
    echo: Value,
    /// Output items so far.
    output: Vec<Value>,
}

impl Reply {
    fn reasoning_item(&self, id: &str, text: &str) -> Value {
        let mut v = json!({ "id": id, "type": "reasoning", "summary": [],
            "content": [{ "type": "reasoning_text", "text": text }] });
        v["encrypted_content"] = text.into();
        v
    }

    fn object(&self, status: &str, end: Option<&End>, stats: Option<&GenerationStats>) -> Value {
        let mut v = json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "model": self.model, "output": self.output, "error": null,
            "incomplete_details": null, "parallel_tool_calls": true, "tool_choice": "auto",
            "tools": [], "usage": stats.map(|s| usage(Some(s))),
        });
        if let Some(o) = self.echo.as_object() {
            for (k, val) in o {
                v[k] = val.clone();
            }
        }
        if end == Some(&End::Length) {
            v["status"] = "incomplete".into();
            v["incomplete_details"] = json!({ "reason": "max_output_tokens" });
        }
        v
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({ "id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [], "logprobs": [] }] })
}

fn call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({ "id": format!("fc_{id}"), "type": "function_call", "status": status,
        "call_id": format!("call_{id}"), "name": call.name, "arguments": call.arguments })
}

/// The conversation to keep: the request's turns and the reply as an assistant turn.
fn kept_turns(req: &GenerateRequest, c: &Collected, calls: &[(String, ToolCall)]) -> Vec<ChatTurn> {
    let mut turns = req.messages.clone();
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, call)| {
            let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            json!({ "id": format!("call_{id}"), "type": "function", "function": { "name": call.name, "arguments": args } })
        })
        .collect();
    turns.push(ChatTurn {
        reasoning: (!c.reasoning.is_empty()).then(|| c.reasoning.clone()),
        tool_calls: (!tool_calls.is_empty()).then_some(Value::Array(tool_calls)),
        ..ChatTurn::new(Role::Assistant, c.content.clone())
    });
    turns
}

fn keep(kept: &Kept, id: &str, turns: Vec<ChatTurn>) {
    let mut k = kept.lock().expect("kept lock");
    k.push_back((id.to_owned(), turns));
    while k.len() > KEPT {
        k.pop_front();
    }
}

pub(crate) async fn handle(
    State(state): State<ApiState>,
    Extension(note): Extension<LogNote>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match inner(state, note, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn inner(
    state: ApiState,
    note: LogNote,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, model) = admit(&state, &headers, body).await?;
    let parsed = parse(&body, &model, &state.kept)?;
    let run = begin(&state, &parsed.chat, &model, &note).await?;
    let reply = Reply {
        id: format!("resp_{}", uuid_like()),
        model: model.name.clone(),
        created: now_s(),
        echo: parsed.echo.clone(),
        output: Vec::new(),
    };
    let keep_in = parsed
        .store
        .then(|| (state.kept.clone(), parsed.kept_request()));
    if parsed.chat.stream {
        return Ok(stream(run, reply, keep_in).into_response());
    }
    let c = run.collect().await.map_err(|e| engine_error(&e))?;
    let mut reply = reply;
    if !c.reasoning.is_empty() {
        let item = reply.reasoning_item(&format!("rs_{}", uuid_like()), &c.reasoning);
        reply.output.push(item);
    }
    if !c.content.is_empty() {
        reply.output.push(message_item(
            &format!("msg_{}", uuid_like()),
            &c.content,
            "completed",
        ));
    }
    for (id, call) in &c.calls {
        reply.output.push(call_item(id, call, "completed"));
    }
    if let Some((kept, req)) = keep_in {
        keep(&kept, &reply.id, kept_turns(&req, &c, &c.calls));
    }
    let status = if c.end == Some(End::Length) {
        "incomplete"
    } else {
        "completed"
    };
    Ok(Json(reply.object(status, c.end.as_ref(), c.stats.as_ref())).into_response())
}

/// The item being streamed.
enum Open {
    None,
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
}

/// Turns run steps into the Responses stream events.
struct Streamer {
    run: Option<Run>,
    reply: Reply,
    open: Open,
    seq: u64,
    /// What the reply said, for keeping it.
    said: Collected,
    keep: Option<(Kept, GenerateRequest)>,
}

impl Streamer {
    fn event(&mut self, kind: &str, mut data: Value) -> Event {
        data["type"] = kind.into();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        Event::default().event(kind).data(data.to_string())
    }

    /// Adds `item` as the next output item.
    fn added(&mut self, item: Value, out: &mut Vec<Event>) -> usize {
        let index = self.reply.output.len();
        self.reply.output.push(item.clone());
        let e = self.event(
            "response.output_item.added",
            json!({ "output_index": index, "item": item }),
        );
        out.push(e);
        index
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        let index = self.reply.output.len().saturating_sub(1);
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning { id, text } => {
                let e = self.event("response.reasoning_text.done", json!({ "item_id": id, "output_index": index, "content_index": 0, "text": text }));
                out.push(e);
                let item = self.reply.reasoning_item(&id, &text);
                self.reply.output[index] = item.clone();
                let e = self.event(
                    "response.output_item.done",
                    json!({ "output_index": index, "item": item }),
                );
                out.push(e);
            }
            Open::Message { id, text } => {
                let part = json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] });
                let e = self.event("response.output_text.done", json!({ "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": [] }));
                out.push(e);
                let e = self.event("response.content_part.done", json!({ "item_id": id, "output_index": index, "content_index": 0, "part": part }));
                out.push(e);
                let item = message_item(&id, &text, "completed");
                self.reply.output[index] = item.clone();
                let e = self.event(
                    "response.output_item.done",
                    json!({ "output_index": index, "item": item }),
                );
                out.push(e);
            }
        }
    }

    async fn next(&mut self) -> Option<Vec<Event>> {
        let run = self.run.as_mut()?;
        let step = run.next().await;
        let mut out = Vec::new();
        match step {
            Some(Step::Reasoning(t)) => {
                self.said.reasoning.push_str(&t);
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(&mut out);
                    let id = format!("rs_{}", uuid_like());
                    let item = self.reply.reasoning_item(&id, "");
                    self.added(item, &mut out);
                    self.open = Open::Reasoning {
                        id,
                        text: String::new(),
                    };
                }
                let index = self.reply.output.len() - 1;
                if let Open::Reasoning { id, text } = &mut self.open {
                    text.push_str(&t);
                    let id = id.clone();
                    let e = self.event("response.reasoning_text.delta", json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": t }));
                    out.push(e);
                }
            }
            Some(Step::Content(t)) => {
                self.said.content.push_str(&t);
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(&mut out);
                    let id = format!("msg_{}", uuid_like());
                    let mut item = message_item(&id, "", "in_progress");
                    item["content"] = json!([]);
                    let index = self.added(item, &mut out);
                    let part = json!({ "type": "output_text", "text": "", "annotations": [], "logprobs": [] });
                    let e = self.event("response.content_part.added", json!({ "item_id": id, "output_index": index, "content_index": 0, "part": part }));
                    out.push(e);
                    self.open = Open::Message {
                        id,
                        text: String::new(),
                    };
                }
                let index = self.reply.output.len() - 1;
                if let Open::Message { id, text } = &mut self.open {
                    text.push_str(&t);
                    let id = id.clone();
                    let e = self.event("response.output_text.delta", json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": t, "logprobs": [] }));
                    out.push(e);
                }
            }
            Some(Step::ToolCall { id, call, .. }) => {
                self.close(&mut out);
                let mut item = call_item(&id, &call, "in_progress");
                item["arguments"] = "".into();
                let index = self.added(item, &mut out);
                let item_id = format!("fc_{id}");
                let e = self.event(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": item_id, "output_index": index, "delta": call.arguments }),
                );
                out.push(e);
                let e = self.event("response.function_call_arguments.done", json!({ "item_id": item_id, "output_index": index, "arguments": call.arguments }));
                out.push(e);
                let item = call_item(&id, &call, "completed");
                self.reply.output[index] = item.clone();
                let e = self.event(
                    "response.output_item.done",
                    json!({ "output_index": index, "item": item }),
                );
                out.push(e);
                self.said.calls.push((id, call));
            }
            Some(Step::Done { error: Some(e), .. }) => {
                self.run = None;
                self.close(&mut out);
                let mut r = self.reply.object("failed", None, None);
                r["error"] = json!({ "code": "server_error", "message": engine_error(&e).message });
                let e = self.event("response.failed", json!({ "response": r }));
                out.push(e);
            }
            Some(Step::Done { end, stats, .. }) => {
                self.run = None;
                self.close(&mut out);
                if let Some((kept, req)) = self.keep.take() {
                    let calls = std::mem::take(&mut self.said.calls);
                    keep(&kept, &self.reply.id, kept_turns(&req, &self.said, &calls));
                }
                let (kind, status) = match end {
                    End::Length => ("response.incomplete", "incomplete"),
                    _ => ("response.completed", "completed"),
                };
                let r = self.reply.object(status, Some(&end), stats.as_ref());
                let e = self.event(kind, json!({ "response": r }));
                out.push(e);
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
    reply: Reply,
    keep: Option<(Kept, GenerateRequest)>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let mut s = Streamer {
        run: Some(run),
        reply,
        open: Open::None,
        seq: 0,
        said: Collected::default(),
        keep,
    };
    let r = s.reply.object("in_progress", None, None);
    let start = vec![
        s.event("response.created", json!({ "response": r.clone() })),
        s.event("response.in_progress", json!({ "response": r })),
    ];
    let rest = futures::stream::unfold(s, |mut s| async move {
        let events = s.next().await?;
        Some((futures::stream::iter(events), s))
    })
    .flatten();
    Sse::new(futures::stream::iter(start).chain(rest).map(Ok))
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
