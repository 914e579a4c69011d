//! The coding agents' protocols (Anthropic Messages, OpenAI Responses) next to chat
//! completions: the same multi-turn tool conversation with reasoning, sent through each, renders
//! exactly as jinja2 renders the real GLM-5.2 template with `clear_thinking` false; their
//! shapes over real HTTP on the scripted engine; and prompt-cache reuse on the GLM fixture —
//! an agent resending its growing conversation pays only for the new tokens, with the answers
//! of a cold run, and two interleaved conversations both keep their caches. The official
//! Python SDKs run against `localglm serve` in `scripts/agent_client_test.py`.

use localglm_engine::auto::AutoEngine;
use localglm_engine::prompt::ModelPrompt;
use localglm_engine::scripted::ScriptedEngine;
use localglm_engine::{DeviceChoice, Engine, LoadSpec, ModelInfo};
use localglm_protocol::ApiLogEntry;
use localglm_server::{anthropic, openai, responses, serve, ApiState};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn info() -> ModelInfo {
    ModelInfo {
        name: "GLM-5.2".into(),
        path: String::new(),
        size_bytes: 0.0,
        backend: "test".into(),
        architecture: Some("glm-dsa".into()),
        context_length: Some(8192),
        quant: None,
        supports_thinking: true,
        effort_levels: vec!["high".into(), "max".into()],
        supports_tools: true,
        placement: None,
        prompt_cache_bytes: None,
        runtimes: Vec::new(),
    }
}

/// The `agent_reasoning_kept` case of the template fixtures: its tools and jinja2's rendering.
fn agent_case() -> (Value, String) {
    let dir = root().join("crates/glm/tests/fixtures/chat-templates");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "agent_reasoning_kept" && c["template"] == "GLM-5.2.jinja")
        .expect("the agent case (scripts/make_template_fixtures.py)")
        .clone();
    let expected =
        std::fs::read_to_string(dir.join("expected/GLM-5.2__agent_reasoning_kept.txt")).unwrap();
    (case["tools"].clone(), expected)
}

#[test]
fn reasoning_sent_back_through_each_api_reaches_the_template_as_jinja2_renders_it() {
    let (tools, expected) = agent_case();
    let source = std::fs::read_to_string(
        root().join("crates/glm/tests/fixtures/chat-templates/GLM-5.2.jinja"),
    )
    .unwrap();
    let prompt = ModelPrompt::new(&source, "GLM-5.2", "", "<|endoftext|>").unwrap();
    let paris = json!({ "location": "Paris", "unit": "celsius" });
    let oslo = json!({ "location": "Oslo", "unit": "celsius" });
    let question = "Is it warmer in Paris or in Oslo?";
    let answer = "Paris (18 °C) is warmer than Oslo (4 °C).";

    let chat = json!({
        "tools": tools, "chat_template_kwargs": { "clear_thinking": false },
        "messages": [
            { "role": "system", "content": "You are a coding agent." },
            { "role": "user", "content": question },
            { "role": "assistant", "content": "Let me check Paris first.",
              "reasoning_content": "I need both temperatures; start with Paris.",
              "tool_calls": [{ "id": "call_a", "type": "function",
                  "function": { "name": "get_weather", "arguments": paris.to_string() } }] },
            { "role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}" },
            { "role": "assistant", "content": null, "reasoning_content": "Paris is 18 C. Now Oslo.",
              "tool_calls": [{ "id": "call_b", "type": "function",
                  "function": { "name": "get_weather", "arguments": oslo.to_string() } }] },
            { "role": "tool", "tool_call_id": "call_b", "content": "{\"temp\": 4}" },
            { "role": "assistant", "content": answer, "reasoning_content": "18 > 4." },
            { "role": "user", "content": "And in Fahrenheit?" }
        ]
    });
    let anthropic_tools: Vec<Value> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let f = &t["function"];
            json!({ "name": f["name"], "description": f["description"], "input_schema": f["parameters"] })
        })
        .collect();
    let messages = json!({
        "max_tokens": 1024, "system": "You are a coding agent.", "tools": anthropic_tools,
        "messages": [
            { "role": "user", "content": question },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "I need both temperatures; start with Paris.", "signature": "s" },
                { "type": "text", "text": "Let me check Paris first." },
                { "type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": paris } ] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_a", "content": "{\"temp\": 18}" } ] },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "Paris is 18 C. Now Oslo.", "signature": "s" },
                { "type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": oslo } ] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_b", "content": [{ "type": "text", "text": "{\"temp\": 4}" }] } ] },
            { "role": "assistant", "content": [
                { "type": "thinking", "thinking": "18 > 4.", "signature": "s" },
                { "type": "text", "text": answer } ] },
            { "role": "user", "content": "And in Fahrenheit?" }
        ]
    });
    let responses_tools: Vec<Value> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let f = &t["function"];
            json!({ "type": "function", "name": f["name"], "description": f["description"], "parameters": f["parameters"] })
        })
        .collect();
    let reasoning = |text: &str| {
        json!({ "type": "reasoning", "id": "rs", "summary": [],
                "content": [{ "type": "reasoning_text", "text": text }] })
    };
    let responses_body = json!({
        "instructions": "You are a coding agent.", "tools": responses_tools, "store": false,
        "input": [
            { "role": "user", "content": question },
            reasoning("I need both temperatures; start with Paris."),
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "Let me check Paris first." }] },
            { "type": "function_call", "call_id": "c_a", "name": "get_weather", "arguments": paris.to_string() },
            { "type": "function_call_output", "call_id": "c_a", "output": "{\"temp\": 18}" },
            { "type": "reasoning", "id": "rs2", "summary": [], "encrypted_content": "Paris is 18 C. Now Oslo." },
            { "type": "function_call", "call_id": "c_b", "name": "get_weather", "arguments": oslo.to_string() },
            { "type": "function_call_output", "call_id": "c_b", "output": "{\"temp\": 4}" },
            reasoning("18 > 4."),
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": answer }] },
            { "role": "user", "content": [{ "type": "input_text", "text": "And in Fahrenheit?" }] }
        ]
    });

    let requests = [
        (
            "chat completions",
            openai::parse(&chat, 8192).unwrap().generate,
        ),
        (
            "Anthropic Messages",
            anthropic::parse(&messages, &info(), false)
                .unwrap()
                .generate,
        ),
        (
            "OpenAI Responses",
            responses::parse(&responses_body, &info(), &Default::default())
                .unwrap()
                .chat
                .generate,
        ),
    ];
    for (api, request) in requests {
        let got = prompt.render(&request).unwrap();
        assert!(
            got == expected,
            "{api}: rendered prompt differs from jinja2's\n--- got\n{got}\n--- expected\n{expected}"
        );
    }
}

// ---- Over HTTP, on the scripted engine ----------------------------------------------------

async fn start(
    engine: Arc<dyn Engine>,
    key: Option<&str>,
    strict: bool,
) -> (String, Arc<Mutex<Vec<ApiLogEntry>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let state = ApiState::new(engine, key.map(str::to_owned))
        .strict_models(strict)
        .with_log(Arc::new(move |e| sink.lock().unwrap().push(e)));
    tokio::spawn(async move { serve(listener, state).await });
    (url, log)
}

async fn scripted() -> Arc<dyn Engine> {
    let engine = Arc::new(ScriptedEngine::default());
    engine
        .load(LoadSpec::new("/m/GLM-5.2-test.gguf"))
        .await
        .unwrap();
    engine
}

fn post(url: &str, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = ureq::post(&format!("{url}{path}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.send_json(body.clone()) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// Server-sent events as (event name, data).
fn events(url: &str, path: &str, body: &Value) -> Vec<(String, Value)> {
    let r = ureq::post(&format!("{url}{path}"))
        .send_json(body.clone())
        .unwrap();
    let mut out = Vec::new();
    let mut name = String::new();
    for line in BufReader::new(r.into_reader())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_owned();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((std::mem::take(&mut name), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

const ANTHROPIC: [(&str, &str); 2] = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_messages_over_http() {
    let (url, log) = start(scripted().await, Some("k"), false).await;
    let body = json!({ "model": "claude-sonnet-4-5", "max_tokens": 200,
        "messages": [{ "role": "user", "content": "Hello there" }] });
    let (status, m) = post(&url, "/v1/messages", &body, &ANTHROPIC);
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert_eq!(m["content"][0]["type"], "thinking");
    assert!(m["content"][0]["thinking"]
        .as_str()
        .unwrap()
        .starts_with("The user wrote"));
    assert_eq!(m["content"][1]["type"], "text");
    assert!(m["content"][1]["text"]
        .as_str()
        .unwrap()
        .contains("Hello there"));
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["usage"]["output_tokens"].as_u64().unwrap() > 0);
    // Bearer works as well as x-api-key; a wrong key is Anthropic's 401.
    let (status, _) = post(
        &url,
        "/v1/messages",
        &body,
        &[("authorization", "Bearer k")],
    );
    assert_eq!(status, 200);
    let (status, e) = post(&url, "/v1/messages", &body, &[("x-api-key", "wrong")]);
    assert_eq!((status, e["type"].as_str()), (401, Some("error")));
    assert_eq!(e["error"]["type"], "authentication_error");
    // The request log shows the model mapping.
    let entry = log.lock().unwrap()[0].clone();
    assert_eq!(entry.path, "/v1/messages");
    assert_eq!(
        entry.model.as_deref(),
        Some("claude-sonnet-4-5 → GLM-5.2-test")
    );
    assert!(entry.prompt_tokens.is_some());

    // Streaming: the event sequence, thinking kept apart from text.
    let mut sbody = body.clone();
    sbody["stream"] = true.into();
    let (url2, _) = start(scripted().await, None, false).await;
    let evs = events(&url2, "/v1/messages", &sbody);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    assert_eq!(evs[2].1["content_block"]["type"], "thinking");
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let blocks: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1]["type"], "text");
    let text: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert!(text.contains("Hello there"));
    assert!(evs
        .iter()
        .any(|(_, d)| d["delta"]["type"] == "signature_delta"));
    assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "end_turn");

    // A tool-use round trip.
    let tools = json!([{ "name": "get_weather", "description": "Weather",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } } }]);
    let ask = json!({ "max_tokens": 200, "tools": tools,
        "messages": [{ "role": "user", "content": "Paris" }] });
    let (_, m) = post(&url2, "/v1/messages", &ask, &[]);
    assert_eq!(m["stop_reason"], "tool_use", "{m}");
    let call = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(
        (call["name"].as_str(), &call["input"]),
        (Some("get_weather"), &json!({ "city": "Paris" }))
    );
    let answer = json!({ "max_tokens": 200, "tools": tools, "messages": [
        { "role": "user", "content": "Paris" },
        { "role": "assistant", "content": m["content"] },
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": call["id"], "content": "18 C" }] }
    ] });
    let (_, m) = post(&url2, "/v1/messages", &answer, &[]);
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(
        m["content"][1]["text"]
            .as_str()
            .unwrap()
            .contains("The tool said: 18 C"),
        "{m}"
    );
    // Stop sequences end with their name.
    let (_, m) = post(
        &url2,
        "/v1/messages",
        &json!({ "max_tokens": 200, "stop_sequences": ["there"],
        "messages": [{ "role": "user", "content": "Hello there" }] }),
        &[],
    );
    assert_eq!(
        (m["stop_reason"].as_str(), m["stop_sequence"].as_str()),
        (Some("stop_sequence"), Some("there"))
    );
    assert!(
        m["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "usage after a stop string"
    );

    // count_tokens, and errors in Anthropic's shape; the server keeps serving.
    let (status, n) = post(
        &url2,
        "/v1/messages/count_tokens",
        &json!({ "messages": [{ "role": "user", "content": "one two three" }] }),
        &[],
    );
    assert_eq!((status, n["input_tokens"].as_u64()), (200, Some(3)));
    let (status, e) = post(&url2, "/v1/nothing", &json!({}), &ANTHROPIC);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    let big = json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": "x".repeat(9 << 20) }] });
    let (status, e) = post(&url2, "/v1/messages", &big, &[]);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (413, Some("request_too_large"))
    );
    let (status, e) = post(
        &url2,
        "/v1/messages",
        &json!({ "max_tokens": 10, "messages": [
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "nope", "content": "x" }] }] }),
        &[],
    );
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (status, _) = post(&url2, "/v1/messages", &body, &[]);
    assert_eq!(status, 200, "still serving");

    // Strict model names refuse what is not loaded.
    let (url3, _) = start(scripted().await, None, true).await;
    let (status, e) = post(&url3, "/v1/messages", &body, &[]);
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_responses_over_http() {
    let (url, _) = start(scripted().await, None, false).await;
    let (status, r) = post(
        &url,
        "/v1/responses",
        &json!({ "model": "gpt-5-codex",
        "input": "Hello there", "include": ["reasoning.encrypted_content"] }),
        &[],
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["object"].as_str(), r["status"].as_str()),
        (Some("response"), Some("completed"))
    );
    assert_eq!(r["output"][0]["type"], "reasoning");
    let thought = r["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(r["output"][0]["encrypted_content"].as_str(), Some(thought));
    assert_eq!(r["output"][1]["type"], "message");
    assert!(r["output"][1]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Hello there"));
    assert!(
        r["usage"]["output_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    // previous_response_id continues it.
    let (status, r2) = post(
        &url,
        "/v1/responses",
        &json!({ "previous_response_id": r["id"], "input": "again" }),
        &[],
    );
    assert_eq!(status, 200, "{r2}");
    let (status, e) = post(
        &url,
        "/v1/responses",
        &json!({ "previous_response_id": "resp_nope", "input": "x" }),
        &[],
    );
    assert_eq!(
        (status, e["error"]["param"].as_str()),
        (404, Some("previous_response_id"))
    );

    // Streaming with a function call.
    let tools = json!([{ "type": "function", "name": "shell", "description": "Run",
        "parameters": { "type": "object", "properties": { "command": { "type": "string" } } } }]);
    let evs = events(
        &url,
        "/v1/responses",
        &json!({ "stream": true, "tools": tools, "input": "ls" }),
    );
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"]);
    assert_eq!(*names.last().unwrap(), "response.completed");
    for kind in [
        "response.reasoning_text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.output_item.done",
    ] {
        assert!(names.contains(&kind), "{kind} in {names:?}");
    }
    let seqs: Vec<u64> = evs
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers count up"
    );
    let done = &evs.last().unwrap().1["response"];
    let call = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(
        (call["name"].as_str(), call["arguments"].as_str()),
        (Some("shell"), Some("{\"command\":\"ls\"}"))
    );
    // The call's output answers it.
    let (_, r) = post(
        &url,
        "/v1/responses",
        &json!({ "tools": tools, "input": [
        { "role": "user", "content": "ls" },
        { "type": "function_call", "call_id": call["call_id"], "name": "shell", "arguments": call["arguments"] },
        { "type": "function_call_output", "call_id": call["call_id"], "output": "a.txt" }
    ] }),
        &[],
    );
    let text = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "message")
        .unwrap();
    assert!(
        text["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("The tool said: a.txt"),
        "{r}"
    );
    // The token limit is an incomplete response.
    let (_, r) = post(
        &url,
        "/v1/responses",
        &json!({ "input": "Hello", "max_output_tokens": 2 }),
        &[],
    );
    assert_eq!(
        (
            r["status"].as_str(),
            r["incomplete_details"]["reason"].as_str()
        ),
        (Some("incomplete"), Some("max_output_tokens"))
    );
}

// ---- Prompt-cache reuse on the GLM fixture ------------------------------------------------

async fn glm(prompt_cache: Option<u64>) -> Arc<dyn Engine> {
    let engine = Arc::new(AutoEngine::new());
    engine
        .load(LoadSpec {
            device: DeviceChoice::Cpu,
            prompt_cache,
            ..LoadSpec::new(root().join("crates/glm/tests/fixtures/tiny-f32.gguf"))
        })
        .await
        .unwrap();
    engine
}

/// One Claude Code–shaped turn: the whole conversation so far, tools, greedy, a short reply.
fn agent_request(history: &[Value]) -> Value {
    json!({ "model": "claude-sonnet-4-5", "max_tokens": 12, "temperature": 0,
        "system": "You are a coding agent. Use the tools.",
        "tools": [{ "name": "read_file", "description": "Read a file",
            "input_schema": { "type": "object", "properties": { "path": { "type": "string" } } } }],
        "messages": history })
}

/// The reply as the agent sends it back: its thinking and text blocks.
fn reply_blocks(m: &Value) -> Value {
    let mut blocks: Vec<Value> = m["content"].as_array().unwrap().clone();
    blocks.retain(|b| b["type"] != "tool_use");
    if blocks.is_empty() {
        blocks.push(json!({ "type": "text", "text": "" }));
    }
    Value::Array(blocks)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_resending_its_conversation_pays_only_for_the_new_tokens() {
    let warm = glm(None).await;
    assert!(
        warm.loaded().unwrap().prompt_cache_bytes.unwrap() > 0.0,
        "a default budget"
    );
    let (url, log) = start(warm, None, false).await;
    // Two conversations, interleaved, five requests each.
    let mut histories = [Vec::<Value>::new(), Vec::<Value>::new()];
    let mut last_prompt = [0u64; 2];
    for round in 0..5 {
        for (c, history) in histories.iter_mut().enumerate() {
            history.push(json!({ "role": "user", "content": format!("Task {c}: step {round}, read src/{round}.rs") }));
            let body = agent_request(history);
            let (status, m) = post(&url, "/v1/messages", &body, &[]);
            assert_eq!(status, 200, "{m}");
            let u = &m["usage"];
            let (computed, cached) = (
                u["input_tokens"].as_u64().unwrap(),
                u["cache_read_input_tokens"].as_u64().unwrap(),
            );
            let prompt = computed + cached;
            if round > 0 {
                // Everything the previous request sent is reused; only what follows is computed.
                assert!(
                    cached >= last_prompt[c],
                    "conversation {c} round {round}: cached {cached} < previous prompt {}",
                    last_prompt[c]
                );
                assert!(computed <= prompt - last_prompt[c]);
            }
            last_prompt[c] = prompt;
            // The answer equals a cold run's (a fresh engine, nothing cached).
            let (cold_url, _) = start(glm(None).await, None, false).await;
            let (_, cold) = post(&cold_url, "/v1/messages", &body, &[]);
            assert_eq!(cold["usage"]["cache_read_input_tokens"], 0);
            assert_eq!(
                cold["content"], m["content"],
                "conversation {c} round {round}: warm and cold answers differ"
            );
            history.push(json!({ "role": "assistant", "content": reply_blocks(&m) }));
        }
    }
    // The request log carries the prompt and cached tokens.
    let entries = log.lock().unwrap().clone();
    assert_eq!(entries.len(), 10);
    assert!(entries[2..].iter().all(
        |e| e.cached_tokens.unwrap() > 0 && e.prompt_tokens.unwrap() > e.cached_tokens.unwrap()
    ));
}
