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

#[tokio::test(flavor = "multi_thread")]
async fn streams_stops_and_explains_failures() {
    let server = serve("k1");
    let e = engine(&server.1, "k1", None);
    let info = e.load(LoadSpec::cpu("remote")).await.unwrap();
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
        .load(LoadSpec::cpu("r"))
        .await
        .unwrap_err();
    assert!(err(wrong_key).contains("401"));
    let unknown = engine(&server.1, "k1", Some("gpt-4o"))
        .load(LoadSpec::cpu("r"))
        .await
        .unwrap_err();
    assert!(err(unknown).contains("no model `gpt-4o`"));
    let gone = engine("http://127.0.0.1:9/v1", "k1", None)
        .load(LoadSpec::cpu("r"))
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
