//! Tool calls in a model's output, turned into OpenAI `tool_calls`.
//!
//! Two formats are read, whichever the model writes:
//! * GLM XML (GLM-4.5 … GLM-5.x):
//!   `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`. Values are raw
//!   text; a value is a string when the tool's JSON schema says so, otherwise it is read as JSON
//!   when it parses (numbers, booleans, objects), else kept as a string.
//! * Hermes JSON (Qwen3, SmolLM3, …): `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.
//!
//! Parsing is incremental: text outside calls streams out at once (only a possible start of
//! `<tool_call>` is held back), each call is reported when its closing tag arrives. A block that
//! is not a well-formed call comes out as the text it was, so nothing the model wrote is lost.

use serde_json::{Map, Value};
use std::collections::HashMap;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// One parsed call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as a JSON object, serialized (what OpenAI's `function.arguments` holds).
    pub arguments: String,
}

/// What the parser lets out.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Call(ToolCall),
}

/// Splits streamed content into text and tool calls.
#[derive(Debug, Default)]
pub struct ToolCallParser {
    /// Tool name → parameter name → JSON-schema type (`string`, `integer`, ...).
    schemas: HashMap<String, HashMap<String, String>>,
    held: String,
    in_call: bool,
}

impl ToolCallParser {
    /// A parser for the request's `tools` (OpenAI's list of `{type, function}` objects).
    pub fn new(tools: &Value) -> Self {
        let mut schemas = HashMap::new();
        for tool in tools.as_array().into_iter().flatten() {
            let f = tool.get("function").unwrap_or(tool);
            let Some(name) = f["name"].as_str() else {
                continue;
            };
            let params = f["parameters"]["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), schema_type(v)?)))
                        .collect()
                })
                .unwrap_or_default();
            schemas.insert(name.to_owned(), params);
        }
        Self {
            schemas,
            ..Self::default()
        }
    }

    /// Feeds streamed text; returns what can be let out now.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.held.push_str(text);
        let mut out = Vec::new();
        loop {
            if self.in_call {
                let Some(end) = self.held.find(CLOSE) else {
                    break;
                };
                let body: String = self.held[..end].to_string();
                self.held.drain(..end + CLOSE.len());
                self.in_call = false;
                out.push(self.call_or_text(&body));
            } else if let Some(start) = self.held.find(OPEN) {
                if start > 0 {
                    out.push(Piece::Text(self.held[..start].to_string()));
                }
                self.held.drain(..start + OPEN.len());
                self.in_call = true;
            } else {
                // Hold back a tail that may be the start of `<tool_call>`.
                let keep = (1..OPEN.len())
                    .rev()
                    .find(|&n| self.held.ends_with(&OPEN[..n]))
                    .unwrap_or(0);
                let cut = self.held.len() - keep;
                if cut > 0 {
                    out.push(Piece::Text(self.held[..cut].to_string()));
                    self.held.drain(..cut);
                }
                break;
            }
        }
        out
    }

    /// The end of the output. A call left open (the model stopped at `<|observation|>` before
    /// its closing tag) is taken as a call only when the output ended normally (`complete`) and
    /// it names a declared tool; otherwise it is returned as the text it was.
    pub fn finish(&mut self, complete: bool) -> Vec<Piece> {
        let rest = std::mem::take(&mut self.held);
        if std::mem::take(&mut self.in_call) {
            let call = self
                .parse_call(&rest)
                .filter(|c| complete && self.schemas.contains_key(&c.name));
            return vec![match call {
                Some(call) => Piece::Call(call),
                None => Piece::Text(format!("{OPEN}{rest}")),
            }];
        }
        if rest.is_empty() {
            Vec::new()
        } else {
            vec![Piece::Text(rest)]
        }
    }

    fn call_or_text(&self, body: &str) -> Piece {
        match self.parse_call(body) {
            Some(call) => Piece::Call(call),
            None => Piece::Text(format!("{OPEN}{body}{CLOSE}")),
        }
    }

    /// One call's body (between the tags), in either format.
    pub fn parse_call(&self, body: &str) -> Option<ToolCall> {
        let body = body.trim();
        if body.starts_with('{') {
            return parse_json_call(body);
        }
        let (name, mut rest) = match body.find("<arg_key>") {
            Some(at) => (body[..at].trim(), &body[at..]),
            None => (body, ""),
        };
        if name.is_empty() || name.contains(['<', '>']) || name.contains(char::is_whitespace) {
            return None;
        }
        let schema = self.schemas.get(name);
        let mut args = Map::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let key = between(&mut rest, "<arg_key>", "</arg_key>")?;
            rest = rest.trim_start();
            let raw = between(&mut rest, "<arg_value>", "</arg_value>")?;
            let ty = schema.and_then(|s| s.get(key.trim())).map(String::as_str);
            args.insert(key.trim().to_owned(), typed_value(raw, ty));
        }
        Some(ToolCall {
            name: name.to_owned(),
            arguments: Value::Object(args).to_string(),
        })
    }
}

/// A parameter's JSON-schema type, with `string` winning wherever it is allowed: `"type":
/// ["string", "null"]` and `anyOf` / `oneOf` alternatives (what `Optional[str]` becomes) keep a
/// value like `75001` a string.
fn schema_type(v: &Value) -> Option<String> {
    match &v["type"] {
        Value::String(t) => return Some(t.clone()),
        Value::Array(ts) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            return names
                .iter()
                .find(|t| **t == "string")
                .or(names.first())
                .map(|t| t.to_string());
        }
        _ => {}
    }
    let alternatives: Vec<String> = ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| v[*k].as_array())
        .flatten()
        .filter_map(schema_type)
        .collect();
    alternatives
        .iter()
        .find(|t| *t == "string")
        .or(alternatives.first())
        .cloned()
}

/// Takes `OPEN…CLOSE` off the front of `rest`, returning what is inside.
fn between<'a>(rest: &mut &'a str, open: &str, close: &str) -> Option<&'a str> {
    let inner = rest.strip_prefix(open)?;
    let end = inner.find(close)?;
    *rest = &inner[end + close.len()..];
    Some(&inner[..end])
}

/// A GLM argument value: a string where the schema says so, else JSON when it parses.
fn typed_value(raw: &str, schema_type: Option<&str>) -> Value {
    if schema_type == Some("string") {
        return Value::String(raw.to_owned());
    }
    serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn parse_json_call(body: &str) -> Option<ToolCall> {
    let v: Value = serde_json::from_str(body).ok()?;
    let name = v["name"].as_str()?.to_owned();
    let arguments = match &v["arguments"] {
        Value::Object(_) => v["arguments"].to_string(),
        Value::String(s) if serde_json::from_str::<Map<String, Value>>(s).is_ok() => s.clone(),
        Value::Null => "{}".to_owned(),
        _ => return None,
    };
    Some(ToolCall { name, arguments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn weather() -> ToolCallParser {
        ToolCallParser::new(&json!([{ "type": "function", "function": {
            "name": "get_weather",
            "parameters": { "type": "object", "properties": {
                "city": { "type": "string" }, "days": { "type": "integer" },
                "zip": { "type": "string" } } } } }]))
    }

    fn call(name: &str, args: Value) -> Piece {
        Piece::Call(ToolCall {
            name: name.into(),
            arguments: args.to_string(),
        })
    }

    fn all(p: &mut ToolCallParser, chunks: &[&str]) -> Vec<Piece> {
        let mut out: Vec<Piece> = chunks.iter().flat_map(|c| p.push(c)).collect();
        out.extend(p.finish(true));
        // Adjacent text pieces joined, so chunking does not matter to the comparison.
        out.into_iter().fold(Vec::new(), |mut acc, piece| {
            match (acc.last_mut(), piece) {
                (Some(Piece::Text(a)), Piece::Text(b)) => a.push_str(&b),
                (_, piece) => acc.push(piece),
            }
            acc
        })
    }

    #[test]
    fn glm_xml_calls_with_schema_types() {
        let text = "Let me check.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris\
                    </arg_value><arg_key>days</arg_key><arg_value>2</arg_value><arg_key>zip\
                    </arg_key><arg_value>75001</arg_value></tool_call>";
        let want = vec![
            Piece::Text("Let me check.".into()),
            call(
                "get_weather",
                json!({ "city": "Paris", "days": 2, "zip": "75001" }),
            ),
        ];
        assert_eq!(all(&mut weather(), &[text]), want);
        // Any chunking, down to one character at a time, gives the same result.
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chunks: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(all(&mut weather(), &chunks), want);
    }

    #[test]
    fn newlines_parallel_calls_and_unknown_tools() {
        // GLM-4.x style puts newlines between the parts; unknown parameters read as JSON.
        let text = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n\
                    </tool_call>\n<tool_call>search\n<arg_key>q</arg_key>\n<arg_value>rust</arg_value>\n\
                    <arg_key>opts</arg_key>\n<arg_value>{\"n\": 3, \"safe\": true}</arg_value>\n</tool_call>";
        assert_eq!(
            all(&mut weather(), &[text]),
            vec![
                call("get_weather", json!({ "city": "Oslo" })),
                Piece::Text("\n".into()),
                call(
                    "search",
                    json!({ "q": "rust", "opts": { "n": 3, "safe": true } })
                ),
            ]
        );
        // A call without arguments.
        assert_eq!(
            all(&mut weather(), &["<tool_call>now</tool_call>"]),
            vec![call("now", json!({}))]
        );
    }

    #[test]
    fn hermes_json_calls() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>";
        assert_eq!(
            all(&mut weather(), &[text]),
            vec![call("get_weather", json!({ "city": "Rome" }))]
        );
    }

    #[test]
    fn malformed_blocks_and_near_misses_stay_text() {
        for text in [
            "a <tool_call>not a call</tool_call> b",
            "<tool_call>f<arg_key>k</arg_key>no value</tool_call>",
            "<tool_call>{\"broken\": </tool_call>",
            "x < y and <tool_ca",
            "<tool_call>unterminated<arg_key>k",
        ] {
            assert_eq!(
                all(&mut weather(), &[text]),
                vec![Piece::Text(text.into())],
                "{text}"
            );
        }
        // A call cut off before its closing tag (the model stopped at `<|observation|>`) is
        // still a call when it is complete otherwise.
        assert_eq!(
            all(
                &mut weather(),
                &["<tool_call>get_weather<arg_key>city</arg_key><arg_value>Lima</arg_value>"]
            ),
            vec![call("get_weather", json!({ "city": "Lima" }))]
        );
        // Cut off (token limit, Stop) or naming no declared tool: text, never a call.
        for (text, complete) in [
            ("<tool_call>get_wea", false),
            (
                "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Lima</arg_value>",
                false,
            ),
            ("<tool_call>get_wea", true),
        ] {
            let mut p = weather();
            let mut out: Vec<Piece> = p.push(text);
            out.extend(p.finish(complete));
            let joined: String = out
                .iter()
                .map(|x| match x {
                    Piece::Text(t) => t.clone(),
                    Piece::Call(c) => panic!("{c:?}"),
                })
                .collect();
            assert_eq!(joined, text);
        }
    }

    #[test]
    fn optional_strings_stay_strings() {
        let mut p = ToolCallParser::new(&json!([{ "type": "function", "function": {
            "name": "lookup", "parameters": { "type": "object", "properties": {
                "zip": { "anyOf": [{ "type": "string" }, { "type": "null" }] },
                "code": { "type": ["string", "null"] },
                "n": { "anyOf": [{ "type": "integer" }, { "type": "null" }] } } } } }]));
        let text = "<tool_call>lookup<arg_key>zip</arg_key><arg_value>75001</arg_value>\
                    <arg_key>code</arg_key><arg_value>true</arg_value>\
                    <arg_key>n</arg_key><arg_value>3</arg_value></tool_call>";
        assert_eq!(
            all(&mut p, &[text]),
            vec![call(
                "lookup",
                json!({ "zip": "75001", "code": "true", "n": 3 })
            )]
        );
    }

    #[test]
    fn only_a_possible_tag_start_is_held_back() {
        let mut p = weather();
        assert_eq!(p.push("hello <to"), vec![Piece::Text("hello ".into())]);
        assert_eq!(p.push("day"), vec![Piece::Text("<today".into())]);
        assert_eq!(p.push("日本"), vec![Piece::Text("日本".into())]);
        assert!(p.finish(true).is_empty());
    }
}
