//! `POST /v1/chat/completions`: JSON or server-sent events with `reasoning_content` /
//! `content` deltas, tool calls, usage (with `prompt_tokens_details.cached_tokens`), `[DONE]`.

use crate::openai::{self, ApiError};
use crate::run::{Collected, End, Run, Step};
use crate::tools::ToolCall;
use crate::{admit, begin, engine_error, max_output, now_s, uuid_like, ApiState, Body, LogNote};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::{Stream, StreamExt};
use localglm_engine::GenerationStats;
use serde_json::{json, Value};

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
    let req = openai::parse(&body, max_output(&model))?;
    let run = begin(&state, &req, &model, &note).await?;
    let id = format!("chatcmpl-{}", uuid_like());
    if req.stream {
        Ok(stream_response(run, id, model.name, req.include_usage).into_response())
    } else {
        let reply = run.collect().await.map_err(|e| engine_error(&e))?;
        Ok(Json(complete(reply, id, model.name)).into_response())
    }
}

/// OpenAI's usage object.
pub(crate) fn usage(stats: Option<&GenerationStats>) -> Value {
    let Some(s) = stats else {
        return Value::Null;
    };
    json!({
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.generated_tokens,
        "total_tokens": s.prompt_tokens + s.generated_tokens,
        "prompt_tokens_details": { "cached_tokens": s.cached_tokens.unwrap_or(0) },
        "completion_tokens_details": { "reasoning_tokens": s.reasoning_tokens.unwrap_or(0) },
    })
}

/// OpenAI's name for why a reply ended.
fn finish_reason(end: &End) -> &'static str {
    match end {
        End::Length => "length",
        End::ToolCalls => "tool_calls",
        End::Stop | End::StopSequence(_) => "stop",
    }
}

/// OpenAI's form of one tool call (in a message, or whole in one stream delta).
fn tool_call_json(index: Option<usize>, id: &str, call: &ToolCall) -> Value {
    let mut v = json!({
        "id": format!("call_{id}"), "type": "function",
        "function": { "name": call.name, "arguments": call.arguments },
    });
    if let Some(i) = index {
        v["index"] = i.into();
    }
    v
}

/// The whole reply as one chat completion.
fn complete(reply: Collected, id: String, model: String) -> Value {
    let mut message = json!({ "role": "assistant", "content": reply.content });
    if !reply.reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reply.reasoning);
    }
    if !reply.calls.is_empty() {
        // OpenAI's shape: no text beside the calls is `null` content.
        if message["content"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            message["content"] = Value::Null;
        }
        let calls = reply.calls.iter();
        message["tool_calls"] = calls.map(|(id, c)| tool_call_json(None, id, c)).collect();
    }
    let finish = reply.end.as_ref().map_or("stop", finish_reason);
    json!({
        "id": id, "object": "chat.completion", "created": now_s(), "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage(reply.stats.as_ref()),
    })
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
            Some(Step::Done { end, stats, .. }) => {
                let u = include_usage.then(|| usage(stats.as_ref()));
                let last = chunk(json!({}), Some(finish_reason(&end)), u);
                return Some((last, ((None, false), chunk)));
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
