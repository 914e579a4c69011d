//! The OpenAI chat-completions wire format: requests in, errors, responses and stream chunks
//! out. Pure functions, so the shapes are tested without a server.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use localglm_engine::{ChatTurn, GenerateRequest, Role, SamplingParams};
use serde_json::{json, Value};

/// An error in OpenAI's shape, with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            param,
            code: None,
        }
    }

    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: Some(code),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code
        } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// A parsed chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub generate: GenerateRequest,
    pub stream: bool,
    pub include_usage: bool,
    pub stop: Vec<String>,
    /// Read tool calls out of the reply (tools were given and `tool_choice` is not `none`).
    pub parse_tools: bool,
}

pub(crate) fn text_of(content: &Value) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err(ApiError::invalid(
                    "only text content parts are supported",
                    Some("messages"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.concat()),
        _ => Err(ApiError::invalid(
            "message content must be a string or a list of parts",
            Some("messages"),
        )),
    }
}

pub(crate) fn number(v: &Value, name: &'static str) -> Result<Option<f64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        _ => Err(ApiError::invalid(
            format!("{name} must be a number"),
            Some(name),
        )),
    }
}

/// Parses a request body. `max_output` caps `max_tokens` (the context of the loaded model).
pub fn parse(body: &Value, max_output: u32) -> Result<ChatRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object", None));
    }
    let Some(msgs) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "messages must be a non-empty array",
            Some("messages"),
        ));
    };
    let (tools, parse_tools) = tools_of(body)?;
    let mut messages = Vec::with_capacity(msgs.len());
    for m in msgs {
        let role = match m["role"].as_str() {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("messages with role `{other}` are not supported"),
                    Some("messages"),
                ))
            }
            None => {
                return Err(ApiError::invalid(
                    "every message needs a role",
                    Some("messages"),
                ))
            }
        };
        messages.push(ChatTurn {
            role,
            content: text_of(&m["content"])?,
            reasoning: m["reasoning_content"].as_str().map(str::to_owned),
            tool_calls: tool_calls_of(&m["tool_calls"])?,
            tool_call_id: m["tool_call_id"].as_str().map(str::to_owned),
        });
    }
    let max = body["max_completion_tokens"]
        .as_u64()
        .or(body["max_tokens"].as_u64())
        .unwrap_or(u64::from(max_output))
        .clamp(1, u64::from(max_output.max(1))) as u32;
    let stop = match &body["stop"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(ApiError::invalid(
                "stop must be a string or a list",
                Some("stop"),
            ))
        }
    };
    let kwargs = &body["chat_template_kwargs"];
    let sampling = sampling(body, max)?;
    Ok(ChatRequest {
        model: body["model"].as_str().map(str::to_owned),
        generate: GenerateRequest {
            messages,
            sampling,
            enable_thinking: kwargs["enable_thinking"].as_bool(),
            reasoning_effort: body["reasoning_effort"]
                .as_str()
                .or(kwargs["reasoning_effort"].as_str())
                .map(str::to_owned),
            clear_thinking: kwargs["clear_thinking"].as_bool(),
            tools,
        },
        stream: body["stream"].as_bool().unwrap_or(false),
        include_usage: body["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false),
        stop,
        parse_tools,
    })
}

/// The sampling fields every protocol shares (`temperature`, `top_p`, `top_k`, `seed`, `min_p`,
/// `repetition_penalty`), checked, with `max_tokens` already capped.
pub(crate) fn sampling(body: &Value, max_tokens: u32) -> Result<SamplingParams, ApiError> {
    let sampling = SamplingParams {
        temperature: number(&body["temperature"], "temperature")?.unwrap_or(1.0),
        top_p: number(&body["top_p"], "top_p")?.unwrap_or(1.0),
        top_k: body["top_k"].as_u64().map(|k| k as u32),
        max_tokens,
        seed: body["seed"].as_u64().map(|s| s as u32),
        min_p: number(&body["min_p"], "min_p")?,
        repetition_penalty: number(&body["repetition_penalty"], "repetition_penalty")?,
    };
    localglm_engine::validate_sampling(&sampling)
        .map_err(|e| ApiError::invalid(e.to_string(), None))?;
    Ok(sampling)
}

/// An agent's effort level (OpenAI's `none` … `xhigh`, Anthropic's `low` … `max`) as the loaded
/// model's template switches: `(enable_thinking, reasoning_effort)`. A level the template
/// names passes as it is; otherwise Z.ai's mapping for GLM: `none`/`minimal` turn thinking
/// off, `low`/`medium`/`high` are `high`, `xhigh`/`max` are `max` — where the template has
/// those levels (else its default).
pub(crate) fn effort(level: &str, levels: &[String]) -> (Option<bool>, Option<String>) {
    let level = level.to_ascii_lowercase();
    if levels.contains(&level) {
        return (Some(true), Some(level));
    }
    let mapped = match level.as_str() {
        "none" | "minimal" => return (Some(false), None),
        "low" | "medium" | "high" => "high",
        _ => "max",
    };
    let known = levels.iter().any(|l| l == mapped);
    (Some(true), known.then(|| mapped.to_owned()))
}

/// A function tool in the chat-completions form the chat templates read, its keys in the
/// order clients write them (name, description, parameters: the template prints them so).
pub(crate) fn function_tool(name: &str, description: Option<&str>, parameters: Value) -> Value {
    let mut f = json!({ "name": name });
    if let Some(d) = description {
        f["description"] = d.into();
    }
    f["parameters"] = parameters;
    json!({ "type": "function", "function": f })
}

/// Narrows `tools` to the one a `tool_choice` names; an error when it is not there.
pub(crate) fn narrow_tools(tools: &mut Vec<Value>, name: &str) -> Result<(), ApiError> {
    tools.retain(|t| t["function"]["name"] == name);
    if tools.is_empty() {
        return Err(ApiError::invalid(
            format!("tool_choice names `{name}`, which is not in tools"),
            Some("tool_choice"),
        ));
    }
    Ok(())
}

/// The request's tool definitions (checked, narrowed to the one a named `tool_choice` picks),
/// and whether calls are to be read from the reply.
fn tools_of(body: &Value) -> Result<(Option<Value>, bool), ApiError> {
    let bad = |m: &str| ApiError::invalid(m, Some("tools"));
    let mut tools = match &body["tools"] {
        Value::Null => return Ok((None, false)),
        Value::Array(t) if t.is_empty() => return Ok((None, false)),
        Value::Array(t) => t.clone(),
        _ => return Err(bad("tools must be a list")),
    };
    for t in &tools {
        if t["type"].as_str().unwrap_or("function") != "function" {
            return Err(bad("only tools of type `function` are supported"));
        }
        if t["function"]["name"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(bad("every tool needs function.name"));
        }
    }
    let parse = match &body["tool_choice"] {
        Value::Null => true,
        Value::String(s) if s == "none" => false,
        Value::String(s) if s == "auto" || s == "required" => true,
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f["name"].as_str())
                .ok_or_else(|| {
                    ApiError::invalid("tool_choice needs function.name", Some("tool_choice"))
                })?;
            narrow_tools(&mut tools, name)?;
            true
        }
        _ => {
            return Err(ApiError::invalid(
                "tool_choice must be none, auto, required or a function",
                Some("tool_choice"),
            ))
        }
    };
    Ok((Some(Value::Array(tools)), parse))
}

/// An assistant message's `tool_calls`, with each `function.arguments` as a JSON object (OpenAI
/// clients send a string; chat templates iterate over the object).
fn tool_calls_of(calls: &Value) -> Result<Option<Value>, ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some("messages"));
    let calls = match calls {
        Value::Null => return Ok(None),
        Value::Array(c) if c.is_empty() => return Ok(None),
        Value::Array(c) => c,
        _ => return Err(bad("tool_calls must be a list".into())),
    };
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        let f = &c["function"];
        let Some(name) = f["name"].as_str() else {
            return Err(bad("every tool call needs function.name".into()));
        };
        let arguments = match &f["arguments"] {
            Value::Object(_) => f["arguments"].clone(),
            Value::Null => json!({}),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(bad(format!(
                        "the arguments of tool call `{name}` are not a JSON object"
                    )))
                }
            },
            _ => {
                return Err(bad(format!(
                    "the arguments of tool call `{name}` are not a JSON object"
                )))
            }
        };
        out.push(json!({
            "id": c["id"], "type": "function",
            "function": { "name": name, "arguments": arguments },
        }));
    }
    Ok(Some(Value::Array(out)))
}

/// Holds back text that may be the start of a stop string; reports when one is reached.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
    matched: Option<String>,
}

impl StopFilter {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            matched: None,
        }
    }

    /// Text that can be sent now, and whether a stop string was reached (the text before it
    /// is all that is returned then).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some((at, stop)) = self
            .stops
            .iter()
            .filter_map(|s| Some((self.held.find(s.as_str())?, s)))
            .min_by_key(|&(at, _)| at)
        {
            self.matched = Some(stop.clone());
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest tail that is a prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .flat_map(|s| (1..s.len()).rev().map(move |n| &s[..n]))
            .filter(|p| self.held.ends_with(p))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let mut cut = self.held.len() - keep;
        while !self.held.is_char_boundary(cut) {
            cut -= 1;
        }
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }

    /// The stop string that was reached, if one was.
    pub fn matched(&self) -> Option<&str> {
        self.matched.as_deref()
    }

    /// What is left at the end.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openai_requests() {
        let r = parse(
            &json!({
                "model": "m", "stream": true, "max_tokens": 99999, "temperature": 0.2, "seed": 4,
                "stop": "END", "reasoning_effort": "max",
                "chat_template_kwargs": { "enable_thinking": false },
                "stream_options": { "include_usage": true },
                "messages": [
                    { "role": "developer", "content": "be brief" },
                    { "role": "user", "content": [{ "type": "text", "text": "hi " }, { "type": "text", "text": "there" }] },
                    { "role": "assistant", "content": "hello", "reasoning_content": "greet" },
                    { "role": "user", "content": "again" }
                ]
            }),
            512,
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("m"));
        assert!(r.stream && r.include_usage);
        assert_eq!(r.stop, ["END"]);
        let g = &r.generate;
        assert_eq!(g.sampling.max_tokens, 512);
        assert_eq!((g.sampling.temperature, g.sampling.seed), (0.2, Some(4)));
        assert_eq!(g.enable_thinking, Some(false));
        assert_eq!(g.reasoning_effort.as_deref(), Some("max"));
        assert_eq!(g.messages[0].role, Role::System);
        assert_eq!(g.messages[1].content, "hi there");
        assert_eq!(g.messages[2].reasoning.as_deref(), Some("greet"));
        for bad in [
            json!([]),
            json!({ "messages": [] }),
            json!({ "messages": [{ "role": "function", "content": "x" }] }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "temperature": "hot" }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "top_p": 3 }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "tools": [{ "type": "function" }] }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "tools": [{ "type": "code", "function": { "name": "f" } }] }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "tools": {} }),
            json!({ "messages": [{ "role": "user", "content": "x" }], "tool_choice": { "type": "function", "function": { "name": "g" } },
                    "tools": [{ "type": "function", "function": { "name": "f" } }] }),
            json!({ "messages": [{ "role": "assistant", "content": null,
                    "tool_calls": [{ "id": "1", "type": "function", "function": { "name": "f", "arguments": "[1]" } }] }] }),
        ] {
            let e = parse(&bad, 10).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn parses_tools_tool_calls_and_tool_results() {
        let tools = json!([
            { "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } },
            { "type": "function", "function": { "name": "search" } }
        ]);
        let r = parse(
            &json!({
                "tools": tools,
                "messages": [
                    { "role": "user", "content": "Weather?" },
                    { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_9", "type": "function",
                        "function": { "name": "get_weather", "arguments": "{\"city\": \"Paris\"}" } }] },
                    { "role": "tool", "tool_call_id": "call_9", "content": "21 C" }
                ]
            }),
            64,
        )
        .unwrap();
        assert!(r.parse_tools);
        assert_eq!(r.generate.tools.as_ref(), Some(&tools));
        let m = &r.generate.messages;
        assert_eq!(m[1].content, "");
        assert_eq!(
            m[1].tool_calls,
            Some(json!([{ "id": "call_9", "type": "function",
                "function": { "name": "get_weather", "arguments": { "city": "Paris" } } }]))
        );
        assert_eq!(
            (m[2].role, m[2].tool_call_id.as_deref()),
            (Role::Tool, Some("call_9"))
        );
        // A named tool_choice narrows the tools; `none` keeps them in the prompt, unparsed.
        let named = parse(
            &json!({ "tools": tools, "messages": [{ "role": "user", "content": "x" }],
                     "tool_choice": { "type": "function", "function": { "name": "search" } } }),
            8,
        )
        .unwrap();
        assert_eq!(named.generate.tools, Some(json!([tools[1]])));
        let none = parse(
            &json!({ "tools": tools, "tool_choice": "none", "messages": [{ "role": "user", "content": "x" }] }),
            8,
        )
        .unwrap();
        assert!(!none.parse_tools && none.generate.tools.is_some());
        let without = parse(
            &json!({ "messages": [{ "role": "user", "content": "x" }], "tools": [] }),
            8,
        )
        .unwrap();
        assert!(!without.parse_tools && without.generate.tools.is_none());
    }

    #[test]
    fn stop_strings_across_chunks() {
        let mut f = StopFilter::new(vec!["END".into()]);
        assert_eq!(f.push("abc E"), ("abc ".into(), false));
        assert_eq!(f.push("N"), (String::new(), false));
        assert_eq!(f.push("D tail"), (String::new(), true));
        assert_eq!(f.matched(), Some("END"));
        let mut f = StopFilter::new(vec!["END".into()]);
        assert_eq!(f.push("x E"), ("x ".into(), false));
        assert_eq!(f.push("x"), ("Ex".into(), false));
        assert_eq!(f.finish(), "");
        let mut f = StopFilter::new(vec![]);
        assert_eq!(f.push("é"), ("é".into(), false));
    }
}
