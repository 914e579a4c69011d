//! The engine on the real default model (SmolLM2-135M-Instruct Q4_1), installed by the setup
//! script into the model library (`LOCALGLM_DATA_DIR` or the platform data directory).

use futures::StreamExt;
use localglm_engine::mistral::MistralRsEngine;
use localglm_engine::{
    ChatTurn, Engine, EngineError, EngineEvent, GenerateRequest, LoadSpec, Role, SamplingParams,
};
use localglm_protocol::FinishReason;
use std::time::{Duration, Instant};

fn default_model() -> std::path::PathBuf {
    let p = localglm_models::Library::from_env().default_model_path();
    assert!(
        p.exists(),
        "default model missing at {}: run `scripts/install-default-model.sh` (the README's setup does)",
        p.display()
    );
    p
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![ChatTurn::new(Role::User, prompt)],
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: Some(1),
            max_tokens,
            seed: None,
            ..Default::default()
        },
        enable_thinking: None,
        reasoning_effort: None,
        clear_thinking: None,
        tools: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_generates_cancels_and_recovers() {
    let engine = MistralRsEngine::new();
    assert!(matches!(
        engine.generate(request("hi", 4)).await,
        Err(EngineError::NoModel)
    ));
    let info = engine
        .load(LoadSpec::new(default_model()))
        .await
        .expect("load SmolLM2");
    assert_eq!(info.backend, "mistralrs");
    assert!(info.name.contains("SmolLM2"));
    assert!(info.size_bytes > 50e6);

    // 1. A prompt yields non-empty text and sane stats.
    let mut g = engine
        .generate(request("What is the capital of France?", 48))
        .await
        .unwrap();
    let mut text = String::new();
    let mut finished = None;
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Content(t) | EngineEvent::Reasoning(t) => text.push_str(&t),
            EngineEvent::Finished {
                reason,
                stats,
                error,
            } => {
                assert!(error.is_none(), "{error:?}");
                finished = Some((reason, stats));
            }
        }
    }
    let (reason, stats) = finished.expect("a Finished event");
    println!("reply: {text:?}\nstats: {stats:?}");
    assert!(!text.trim().is_empty());
    assert!(matches!(reason, FinishReason::Stop | FinishReason::Length));
    assert!(stats.ttft_ms > 0.0, "{stats:?}");
    assert!(stats.prompt_tokens > 5, "{stats:?}");
    assert!(stats.generated_tokens > 1, "{stats:?}");
    assert!(stats.decode_tokens_per_s > 0.0, "{stats:?}");
    assert!(stats.prefill_tokens_per_s > 0.0, "{stats:?}");
    assert!(stats.total_ms >= stats.ttft_ms);

    // 2. Cancellation stops the stream within one token step.
    let mut g = engine
        .generate(request(
            "Write a very long story about a dragon and a knight.",
            400,
        ))
        .await
        .unwrap();
    let mut before = 0;
    while let Some(ev) = g.events.next().await {
        if matches!(ev, EngineEvent::Content(_)) {
            before += 1;
            if before == 5 {
                break;
            }
        }
    }
    assert_eq!(before, 5);
    let t = Instant::now();
    g.cancel();
    let mut after = 0;
    let mut reason = None;
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Content(_) | EngineEvent::Reasoning(_) => after += 1,
            EngineEvent::Finished {
                reason: r, stats, ..
            } => {
                reason = Some(r);
                assert_eq!(stats.generated_tokens, 5, "no token counted after cancel");
            }
        }
    }
    assert_eq!(reason, Some(FinishReason::Cancelled));
    assert!(after <= 1, "{after} deltas arrived after cancel");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        t.elapsed()
    );

    // 3. The engine serves the next request right away (nothing stalled).
    let mut g = engine.generate(request("Say hello.", 8)).await.unwrap();
    let mut n = 0;
    let mut last = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(60), g.events.next())
        .await
        .expect("engine answers after a cancelled request")
    {
        if let EngineEvent::Finished { reason, .. } = ev {
            last = Some(reason);
        } else {
            n += 1;
        }
    }
    assert!(n > 0);
    assert!(matches!(
        last,
        Some(FinishReason::Stop | FinishReason::Length)
    ));

    engine.unload().await;
    assert!(engine.loaded().is_none());
}

#[tokio::test]
async fn bad_files_give_clear_errors() {
    let engine = MistralRsEngine::new();
    let dir = tempfile_dir();
    let missing = dir.join("missing.gguf");
    match engine.load(LoadSpec::new(&missing)).await {
        Err(EngineError::ModelMissing(p)) => assert_eq!(p, missing),
        other => panic!("{:?}", other.map(|i| i.name)),
    }
    let foreign = dir.join("foreign.gguf");
    std::fs::write(&foreign, b"PK\x03\x04 definitely a zip").unwrap();
    match engine.load(LoadSpec::new(&foreign)).await {
        Err(EngineError::LoadFailed { reason, .. }) => {
            assert!(reason.contains("not a GGUF"), "{reason}")
        }
        other => panic!("{:?}", other.map(|i| i.name)),
    }
    // A GGUF header cut short: the loader must fail, not panic or hang.
    let truncated = dir.join("truncated.gguf");
    let real = std::fs::read(default_model()).unwrap();
    std::fs::write(&truncated, &real[..4096]).unwrap();
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        engine.load(LoadSpec::new(&truncated)),
    )
    .await
    .expect("loading a truncated file ends");
    assert!(
        matches!(res, Err(EngineError::LoadFailed { .. })),
        "{:?}",
        res.map(|i| i.name)
    );
    assert!(engine.loaded().is_none());
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("localglm-engine-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
