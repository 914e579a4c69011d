//! The API over real HTTP on loopback, on the scripted engine (deterministic replies that think
//! unless told not to): the OpenAI shapes, streaming, errors, the key, fairness under load and
//! disconnects. The official `openai` Python client against the real default model runs in
//! `scripts/openai_client_test.py` (from `scripts/test.sh`).

use localglm_engine::scripted::ScriptedEngine;
use localglm_engine::{Engine, LoadSpec};
use localglm_server::{serve, ApiState};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::sync::Arc;

async fn start(key: Option<&str>, loaded: bool) -> String {
    start_with(key, loaded, false).await
}

async fn start_with(key: Option<&str>, loaded: bool, strict: bool) -> String {
    let engine = Arc::new(ScriptedEngine::default());
    if loaded {
        engine
            .load(LoadSpec::new("/m/tiny-think.gguf"))
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = ApiState::new(engine, key.map(str::to_owned)).strict_models(strict);
    tokio::spawn(async move { serve(listener, state).await });
    url
}

fn post(url: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = ureq::post(&format!("{url}/v1/chat/completions"));
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    match req.send_json(body.clone()) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// The SSE `data:` payloads of a streaming request (JSON chunks, then "[DONE]").
fn stream(url: &str, body: &Value) -> Vec<String> {
    let r = ureq::post(&format!("{url}/v1/chat/completions"))
        .send_json(body.clone())
        .unwrap();
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    BufReader::new(r.into_reader())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

fn user(text: &str) -> Value {
    json!({ "messages": [{ "role": "user", "content": text }] })
}

#[tokio::test(flavor = "multi_thread")]
async fn models_and_chat_with_reasoning_separated() {
    let url = start(None, true).await;
    tokio::task::spawn_blocking(move || {
        let models: Value = ureq::get(&format!("{url}/v1/models"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        assert_eq!(models["data"][0]["id"], "tiny-think");
        assert_eq!(models["data"][0]["max_model_len"], 8192);
        let (code, r) = post(&url, &user("hello"), None);
        assert_eq!(code, 200, "{r}");
        let msg = &r["choices"][0]["message"];
        assert_eq!(msg["reasoning_content"], "The user wrote 5 characters.");
        assert!(msg["content"]
            .as_str()
            .unwrap()
            .starts_with("You said: **hello**"));
        assert!(!msg["content"].as_str().unwrap().contains("characters"));
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(r["usage"]["completion_tokens"].as_u64().unwrap() > 5);
        // chat_template_kwargs reach the template: no thinking.
        let mut body = user("hello");
        body["chat_template_kwargs"] = json!({ "enable_thinking": false });
        let (_, r) = post(&url, &body, None);
        assert!(
            r["choices"][0]["message"]
                .get("reasoning_content")
                .is_none(),
            "{r}"
        );
        // reasoning_effort reaches it too; max_tokens cuts with "length".
        let mut body = user("hello");
        body["reasoning_effort"] = json!("max");
        body["max_tokens"] = json!(3);
        let (_, r) = post(&url, &body, None);
        assert_eq!(r["choices"][0]["finish_reason"], "length");
        assert!(r["choices"][0]["message"]["reasoning_content"]
            .as_str()
            .unwrap()
            .starts_with("The user"));
        // A stop string ends the answer before it.
        let mut body = user("hello");
        body["stop"] = json!(["**hello"]);
        let (_, r) = post(&url, &body, None);
        assert_eq!(r["choices"][0]["message"]["content"], "You said: ");
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_sends_reasoning_and_content_deltas_then_done() {
    let url = start(None, true).await;
    tokio::task::spawn_blocking(move || {
        let mut body = user("stream me");
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
        let events = stream(&url, &body);
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text = |field: &str| -> String {
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"][field].as_str())
                .collect()
        };
        assert_eq!(text("reasoning_content"), "The user wrote 9 characters.");
        assert!(text("content").starts_with("You said: **stream me**"));
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_have_openai_shape_and_status() {
    let url = start(Some("sekret"), true).await;
    let idle = start(None, false).await;
    let strict = start_with(Some("sekret"), true, true).await;
    tokio::task::spawn_blocking(move || {
        let (code, r) = post(&url, &user("hi"), None);
        assert_eq!(code, 401);
        assert_eq!(r["error"]["code"], "invalid_api_key");
        assert_eq!(post(&url, &user("hi"), Some("sekret")).0, 200);
        let e = ureq::get(&format!("{url}/v1/models")).call().unwrap_err();
        assert!(matches!(e, ureq::Error::Status(401, _)));
        // A model name the server does not know runs on the loaded model, unless strict.
        let mut body = user("hi");
        body["model"] = json!("gpt-4o");
        assert_eq!(post(&url, &body, Some("sekret")).0, 200);
        let (code, r) = post(&strict, &body, Some("sekret"));
        assert_eq!(
            (code, r["error"]["code"].as_str()),
            (404, Some("model_not_found"))
        );
        let (code, r) = post(&url, &json!({ "messages": "nope" }), Some("sekret"));
        assert_eq!(
            (code, r["error"]["type"].as_str()),
            (400, Some("invalid_request_error"))
        );
        let bad = ureq::post(&format!("{url}/v1/chat/completions"))
            .set("Authorization", "Bearer sekret")
            .set("Content-Type", "application/json")
            .send_string("{not json");
        match bad {
            Err(ureq::Error::Status(400, r)) => {
                let v: Value = r.into_json().unwrap();
                assert!(
                    v["error"]["message"].as_str().unwrap().contains("JSON"),
                    "{v}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A JSON body without a Content-Type (as curl sends with plain -d) is read all the same.
        let (code, r) = match ureq::post(&format!("{url}/v1/chat/completions"))
            .set("Authorization", "Bearer sekret")
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&user("hi").to_string())
        {
            Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(code, 200, "{r}");
        let huge = "x".repeat(9 << 20);
        let big = ureq::post(&format!("{url}/v1/chat/completions"))
            .set("Authorization", "Bearer sekret")
            .send_json(user(&huge));
        assert!(matches!(big, Err(ureq::Error::Status(413, _))), "{big:?}");
        let (code, r) = post(&idle, &user("hi"), None);
        assert_eq!(
            (code, r["error"]["code"].as_str()),
            (503, Some("model_not_loaded"))
        );
        let e = ureq::get(&format!("{idle}/v2/nothing")).call().unwrap_err();
        assert!(matches!(e, ureq::Error::Status(404, _)));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_streaming_clients_and_a_disconnect() {
    let url = start(None, true).await;
    tokio::task::spawn_blocking(move || {
        // A client that hangs up mid-stream on a long reply frees the queue.
        let mut body = user("a long one");
        body["stream"] = json!(true);
        let r = ureq::post(&format!("{url}/v1/chat/completions"))
            .send_json(body)
            .unwrap();
        let mut lines = BufReader::new(r.into_reader()).lines();
        for _ in 0..6 {
            lines.next();
        }
        drop(lines);
        let started = std::time::Instant::now();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut body = user(&format!("client {i}"));
                    body["stream"] = json!(true);
                    let events = stream(&url, &body);
                    assert_eq!(events.last().unwrap(), "[DONE]");
                    let content: String = events[..events.len() - 1]
                        .iter()
                        .map(|e| serde_json::from_str::<Value>(e).unwrap())
                        .filter_map(|c| {
                            c["choices"][0]["delta"]["content"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .collect();
                    // Exactly its own reply: nothing of another client's stream mixed in.
                    let own = format!("You said: **client {i}**\n\n```text\nclient {i}\n```\n");
                    assert_eq!(content, own);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The long reply (400+ tokens at 15 ms) was cancelled, not waited for.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    })
    .await
    .unwrap();
}

fn weather_tools() -> Value {
    json!([{ "type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } },
                        "required": ["city"] } } }])
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_parsed_from_glm_xml_plain_and_streaming_then_the_result_goes_back() {
    let url = start(None, true).await;
    tokio::task::spawn_blocking(move || {
        let mut body = user("Paris");
        body["tools"] = weather_tools();
        let (code, r) = post(&url, &body, None);
        assert_eq!(code, 200, "{r}");
        let choice = &r["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{r}");
        let msg = &choice["message"];
        assert_eq!(msg["content"], "Calling get_weather.");
        let call = &msg["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert!(!msg["content"].as_str().unwrap().contains("tool_call"));

        // Streaming: text deltas, then the call whole in one delta with its index.
        body["stream"] = json!(true);
        let data = stream(&url, &body);
        assert_eq!(data.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Calling get_weather.");
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(calls.len(), 1, "{chunks:?}");
        assert_eq!(calls[0][0]["index"], 0);
        assert_eq!(calls[0][0]["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );

        // The result goes back as a `tool` message (arguments as the string OpenAI clients
        // send); the model answers with it.
        let body = json!({
            "tools": weather_tools(),
            "messages": [
                { "role": "user", "content": "Paris" },
                { "role": "assistant", "content": null, "tool_calls": [call] },
                { "role": "tool", "tool_call_id": call["id"], "content": "21 C, clear" }
            ]
        });
        let (code, r) = post(&url, &body, None);
        assert_eq!(code, 200, "{r}");
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            r["choices"][0]["message"]["content"],
            "The tool said: 21 C, clear"
        );

        // tool_choice "none": the tools stay in the prompt, the reply is not parsed.
        let mut body = user("Paris");
        body["tools"] = weather_tools();
        body["tool_choice"] = json!("none");
        let (_, r) = post(&url, &body, None);
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(r["choices"][0]["message"].get("tool_calls").is_none());
        assert!(r["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("<tool_call>get_weather"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_log_times_a_stream_to_its_end() {
    let engine = Arc::new(ScriptedEngine::default());
    engine.load(LoadSpec::new("/m/m.gguf")).await.unwrap();
    let seen: Arc<std::sync::Mutex<Vec<localglm_protocol::ApiLogEntry>>> = Arc::default();
    let sink = seen.clone();
    let state =
        ApiState::new(engine, None).with_log(Arc::new(move |e| sink.lock().unwrap().push(e)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { serve(listener, state).await });
    let streamed = tokio::task::spawn_blocking(move || {
        let mut body = user("hello");
        body["stream"] = json!(true);
        let started = std::time::Instant::now();
        stream(&url, &body);
        started.elapsed()
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let log = seen.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].path.as_str(), log[0].status),
        ("/v1/chat/completions", 200)
    );
    // About the whole stream (15 ms a token), not just the time to the response head.
    assert!(
        log[0].duration_ms >= streamed.as_secs_f64() * 1000.0 * 0.8,
        "{} ms logged, {streamed:?} streamed",
        log[0].duration_ms
    );
}
