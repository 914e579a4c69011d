//! The remote backend against a second, real `localglm serve` process (the tiny GLM-5.x fixture
//! on LocalGLM's runtime): streaming with reasoning, stop, and clear errors for an unreachable
//! host, a wrong key and an unknown model; `localglm chat --remote` on top.

use futures::StreamExt;
use localglm_engine::remote::{RemoteEngine, RemoteSpec};
use localglm_engine::{
    ChatTurn, Engine, EngineEvent, GenerateRequest, LoadSpec, Role, SamplingParams,
};
use localglm_protocol::FinishReason;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(key: &str) -> Server {
    serve_with(key, &[])
}

fn serve_with(key: &str, env: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures/tiny-f32.gguf");
    let child = Command::new(env!("CARGO_BIN_EXE_localglm"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--api-key",
            key,
            "--model",
        ])
        .arg(&glm)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Server(child, format!("http://127.0.0.1:{port}/v1"))
}

fn engine(url: &str, key: &str, model: Option<&str>) -> RemoteEngine {
    RemoteEngine::new(RemoteSpec {
        base_url: url.into(),
        api_key: Some(key.into()),
        model: model.map(str::to_owned),
    })
}

fn request(max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![ChatTurn::new(Role::User, "Hello")],
        sampling: SamplingParams {
            max_tokens,
            seed: Some(5),
            ..Default::default()
        },
        enable_thinking: Some(true),
        reasoning_effort: None,
        clear_thinking: None,
        tools: None,
    }
}

/// The text and finish of one generation.
async fn run(e: &RemoteEngine, request: GenerateRequest) -> String {
    let mut g = e.generate(request).await.unwrap();
    let mut text = String::new();
    while let Some(ev) = g.events.next().await {
        if let EngineEvent::Content(t) = ev {
            text.push_str(&t);
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_definitions_and_calls_pass_through_a_remote_server() {
    // The scripted engine behind the server calls the first tool it is given.
    let server = serve_with("k2", &[("LOCALGLM_ENGINE", "scripted")]);
    let e = engine(&server.1, "k2", None);
    assert!(
        e.load(LoadSpec::new("remote"))
            .await
            .unwrap()
            .supports_tools
    );
    let tools = serde_json::json!([{ "type": "function", "function": { "name": "get_weather",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }]);
    let mut ask = request(200);
    ask.messages = vec![ChatTurn::new(Role::User, "Paris")];
    ask.tools = Some(tools.clone());
    let text = run(&e, ask.clone()).await;
    // The server's structured call comes back as the text LocalGLM's API reads calls from.
    assert!(
        text.ends_with(
            r#"<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>"#
        ),
        "{text}"
    );
    ask.messages.push(ChatTurn {
        tool_calls: Some(serde_json::json!([{ "id": "call_1", "type": "function",
            "function": { "name": "get_weather", "arguments": { "city": "Paris" } } }])),
        ..ChatTurn::new(Role::Assistant, "")
    });
    ask.messages.push(ChatTurn {
        tool_call_id: Some("call_1".into()),
        ..ChatTurn::new(Role::Tool, "18 C")
    });
    assert_eq!(run(&e, ask).await, "The tool said: 18 C");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_stops_and_explains_failures() {
    let server = serve("k1");
    let e = engine(&server.1, "k1", None);
    let info = e.load(LoadSpec::new("remote")).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.backend.as_str()),
        ("tiny-f32", "remote")
    );

    // Streaming: the prompt opens <think>, so reasoning comes first, as reasoning.
    let mut g = e.generate(request(16)).await.unwrap();
    let (mut reasoning, mut fin) = (String::new(), None);
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Reasoning(t) => reasoning.push_str(&t),
            EngineEvent::Content(_) => {}
            EngineEvent::Finished {
                reason,
                stats,
                error,
            } => {
                assert!(error.is_none(), "{error:?}");
                assert!(
                    stats.prompt_tokens > 0 && stats.generated_tokens > 0,
                    "{stats:?}"
                );
                fin = Some(reason);
            }
        }
    }
    assert!(!reasoning.is_empty());
    assert!(matches!(
        fin,
        Some(FinishReason::Length | FinishReason::Stop)
    ));

    // Stop: a long reply ends as cancelled right away, and the server is free again.
    let mut g = e.generate(request(100_000)).await.unwrap();
    g.events.next().await.unwrap();
    let stopped = Instant::now();
    g.cancel();
    let mut last = None;
    while let Some(ev) = g.events.next().await {
        last = Some(ev);
    }
    assert!(
        matches!(
            last,
            Some(EngineEvent::Finished {
                reason: FinishReason::Cancelled,
                ..
            })
        ),
        "{last:?}"
    );
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let mut g = e.generate(request(4)).await.unwrap();
    while g.events.next().await.is_some() {}

    // Failures say what is wrong.
    let err = |e: localglm_engine::EngineError| e.to_string();
    let wrong_key = engine(&server.1, "nope", None)
        .load(LoadSpec::new("r"))
        .await
        .unwrap_err();
    assert!(err(wrong_key).contains("401"));
    let unknown = engine(&server.1, "k1", Some("gpt-4o"))
        .load(LoadSpec::new("r"))
        .await
        .unwrap_err();
    assert!(err(unknown).contains("no model `gpt-4o`"));
    let gone = engine("http://127.0.0.1:9/v1", "k1", None)
        .load(LoadSpec::new("r"))
        .await
        .unwrap_err();
    assert!(err(gone).contains("cannot reach"));

    // The CLI chats through it.
    let out = Command::new(env!("CARGO_BIN_EXE_localglm"))
        .args([
            "chat",
            "--remote",
            &server.1,
            "--remote-key",
            "k1",
            "--max-tokens",
            "6",
            "Hi",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("loaded tiny-f32 (remote)"), "{stderr}");
}

/// A server that lists one model at once but never answers a chat request (a cluster stuck in
/// a queue or a very long prefill), or — with `silent` — never answers at all.
fn stalled_server(silent: bool) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut head = [0u8; 4096];
            let n = stream.read(&mut head).unwrap_or(0);
            let models = String::from_utf8_lossy(&head[..n]).starts_with("GET /v1/models");
            if models && !silent {
                let body = r#"{"object":"list","data":[{"id":"slow","object":"model"}]}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                held.push(stream); // never answered
            }
        }
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_times_out_at_load_and_stop_ends_a_stalled_reply_at_once() {
    let (silent, _h1) = stalled_server(true);
    let started = Instant::now();
    let e = engine(&silent, "k", None)
        .with_timeouts(Duration::from_millis(500), Duration::from_secs(300));
    let err = e.load(LoadSpec::new("r")).await.unwrap_err().to_string();
    assert!(err.contains("did not answer in time"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let (stalled, _h2) = stalled_server(false);
    let e = engine(&stalled, "k", None);
    e.load(LoadSpec::new("r")).await.unwrap();
    // The request goes out, the server says nothing; Stop still ends the reply at once.
    let mut g = e.generate(request(8)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    g.cancel();
    let ev = tokio::time::timeout(Duration::from_secs(2), g.events.next())
        .await
        .expect("Finished comes at once")
        .unwrap();
    assert!(
        matches!(
            ev,
            EngineEvent::Finished {
                reason: FinishReason::Cancelled,
                ..
            }
        ),
        "{ev:?}"
    );
    assert!(stopped.elapsed() < Duration::from_millis(500));
    assert!(g.events.next().await.is_none(), "one Finished only");
}

/// A server like vLLM that refuses a request whose `max_tokens` would pass its context and
/// answers one without it.
fn context_checking_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 8192];
            // Head, then the body by its Content-Length.
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if req.len() >= head_end + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&req).to_string();
            let (status, kind, body) = if text.starts_with("GET") {
                (
                    "200 OK",
                    "application/json",
                    r#"{"data":[{"id":"big","max_model_len":100}]}"#.to_string(),
                )
            } else if text.contains("\"max_tokens\"") {
                ("400 Bad Request", "application/json", r#"{"error":{"message":"This model's maximum context length is 100 tokens. However, you requested 131072 tokens."}}"#.to_string())
            } else {
                ("200 OK", "text/event-stream", "data: {\"choices\":[{\"delta\":{\"content\":\"fits\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_too_long_for_the_servers_context_is_asked_again_without_max_tokens() {
    let url = context_checking_server();
    let e = engine(&url, "k", None);
    let info = e.load(LoadSpec::new("r")).await.unwrap();
    assert_eq!(info.context_length, Some(100));
    let mut g = e.generate(request(131_072)).await.unwrap();
    let mut text = String::new();
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Content(t) => text.push_str(&t),
            EngineEvent::Finished { error, .. } => assert!(error.is_none(), "{error:?}"),
            EngineEvent::Reasoning(_) => {}
        }
    }
    assert_eq!(text, "fits");
}
