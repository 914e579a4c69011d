//! A remote server as the app's model, through the real commands (mock runtime) and the real
//! engine: the server is a LocalGLM API server over real HTTP on loopback (its own engine is the
//! scripted one, so replies are known), reached by the app's remote backend.

mod common;

use common::*;
use localglm_engine::auto::AutoEngine;
use localglm_engine::scripted::{Script, ScriptedEngine};
use localglm_engine::{Engine, GenerateRequest, LoadSpec};
use localglm_protocol::{
    ConversationSummary, ErrorKind, FinishReason, GenerationHandle, ModelInfo, ModelStatus,
    Settings,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the server's engine was asked: sampling and thinking switches, per request.
type Seen = Arc<std::sync::Mutex<Vec<GenerateRequest>>>;

/// A LocalGLM API server with key `secret`, serving the scripted model `gpu-glm`.
fn start_server(seen: Seen) -> String {
    tauri::async_runtime::block_on(async {
        let engine = Arc::new(ScriptedEngine::new(move |r: &GenerateRequest| {
            seen.lock().unwrap().push(r.clone());
            Script::echo(r)
        }));
        engine.load(LoadSpec::new("/m/gpu-glm.gguf")).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = localglm_server::ApiState::new(engine, Some("secret".into()));
        tauri::async_runtime::spawn(localglm_server::serve(listener, state));
        url
    })
}

/// The status once the start-up load has ended (ready or failed).
fn settled(h: &Harness) -> ModelStatus {
    for _ in 0..500 {
        let s: ModelStatus = ok(h, "model_status", json!({}));
        if matches!(s, ModelStatus::Ready { .. } | ModelStatus::Failed { .. }) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the start-up load never ended");
}

fn server(url: &str, key: &str) -> serde_json::Value {
    json!({ "server": { "id": "", "name": "GPU node", "base_url": url, "api_key": key, "model": null } })
}

#[test]
fn a_server_is_checked_saved_used_for_chat_and_forgotten() {
    let h = harness_with(Arc::new(AutoEngine::new()));
    // The placeholder default model is not a real GGUF: the start-up load fails, harmlessly.
    assert!(matches!(settled(&h), ModelStatus::Failed { .. }));
    let seen = Seen::default();
    let url = start_server(seen.clone());

    // A refused key, an unreachable host and an unknown model: clear errors, nothing saved.
    let e = err(&h, "add_remote", server(&url, "wrong"));
    assert_eq!(e.kind, ErrorKind::LoadFailed);
    assert_eq!(e.message, "Could not use the server GPU node.");
    assert!(e.detail.as_deref().unwrap().contains("401"), "{e:?}");
    let e = err(&h, "add_remote", server("127.0.0.1:9", "secret"));
    assert!(
        e.detail.as_deref().unwrap().contains("cannot reach"),
        "{e:?}"
    );
    let mut unknown = server(&url, "secret");
    unknown["server"]["model"] = json!("nope");
    let e = err(&h, "add_remote", unknown);
    assert!(
        e.detail.as_deref().unwrap().contains("no model `nope`"),
        "{e:?}"
    );
    let s: Settings = ok(&h, "get_settings", json!({}));
    assert!(s.remotes.is_empty() && s.active_remote.is_none());

    // The right key: in use, saved, and the status names it.
    let info: ModelInfo = ok(&h, "add_remote", server(&url, "secret"));
    assert_eq!(info.name, "GPU node · gpu-glm");
    assert_eq!(info.backend, "remote");
    // The server's context (its `max_model_len`) caps replies and fills the stats.
    assert_eq!(info.context_length, Some(8192));
    let s: Settings = ok(&h, "get_settings", json!({}));
    assert_eq!(s.remotes.len(), 1);
    assert_eq!(s.remotes[0].base_url, url);
    assert_eq!(s.active_remote.as_deref(), Some(s.remotes[0].id.as_str()));
    match ok::<ModelStatus>(&h, "model_status", json!({})) {
        ModelStatus::Ready { model } => assert_eq!(model.name, info.name),
        other => panic!("{other:?}"),
    }

    // Chat through it: reasoning apart from the answer, stats, the model recorded.
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    let send = |action: serde_json::Value| -> GenerationHandle {
        ok(
            &h,
            "send_message",
            json!({ "request": { "conversation_id": c.id, "action": action },
                    "onEvent": "__CHANNEL__:7" }),
        )
    };
    send(json!({ "type": "new", "text": "Hello there" }));
    let view = conversation_with(&h, &c.id, 2);
    let reply = &view.messages[1].message;
    assert_eq!(
        reply.reasoning.as_deref(),
        Some("The user wrote 11 characters.")
    );
    assert!(reply.content.starts_with("You said: **Hello there**"));
    assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
    let stats = reply.stats.as_ref().unwrap();
    assert!(stats.generated_tokens > 5 && stats.ttft_ms > 0.0 && stats.decode_tokens_per_s > 0.0);
    // The reply records the model the server ran.
    assert_eq!(reply.model.as_deref(), Some("gpu-glm"));

    // The preset and the thinking switches reach the server: General, then SWE-Bench Pro with
    // thinking off and, on the regenerate below, Max effort.
    // The chat's requests (the title request after the first reply is the server's too).
    let asked = |i: usize| {
        let seen = seen.lock().unwrap();
        let mut chat = seen.iter().filter(|r| {
            r.messages.first().map(|m| m.content.as_str())
                != Some(localglm_engine::TITLE_INSTRUCTION)
        });
        chat.nth(i).cloned().expect("a chat request")
    };
    assert_eq!(
        (asked(0).sampling.temperature, asked(0).sampling.top_p),
        (1.0, 0.95)
    );
    let swe: GenerationHandle = ok(
        &h,
        "send_message",
        json!({ "request": { "conversation_id": c.id, "action": { "type": "regenerate" },
                             "preset_id": "swe-bench-pro", "enable_thinking": false },
                "onEvent": "__CHANNEL__:7" }),
    );
    let mut view = conversation_with(&h, &c.id, 2);
    while view.messages[1].message.id != swe.assistant_message_id
        || view.messages[1].message.finish_reason.is_none()
    {
        std::thread::sleep(Duration::from_millis(20));
        view = conversation_with(&h, &c.id, 2);
    }
    assert_eq!(
        (asked(1).sampling.top_p, asked(1).enable_thinking),
        (1.0, Some(false))
    );
    assert!(view.messages[1].message.reasoning.is_none());

    // Regenerate gives a new reply in its place.
    let again: GenerationHandle = ok(
        &h,
        "send_message",
        json!({ "request": { "conversation_id": c.id, "action": { "type": "regenerate" },
                             "reasoning_effort": "max" },
                "onEvent": "__CHANNEL__:7" }),
    );
    let mut view = conversation_with(&h, &c.id, 2);
    for _ in 0..500 {
        if view.messages.get(1).map(|m| &m.message.id) == Some(&again.assistant_message_id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        view = conversation_with(&h, &c.id, 2);
    }
    assert_eq!(view.messages[1].message.id, again.assistant_message_id);
    assert_eq!(asked(2).reasoning_effort.as_deref(), Some("max"));
    assert!(view.messages[1]
        .message
        .content
        .starts_with("You said: **Hello there**"));

    // Stop ends a long answer early and keeps what came.
    let long = send(json!({ "type": "new", "text": "a long one" }));
    std::thread::sleep(Duration::from_millis(400));
    assert!(ok::<bool>(
        &h,
        "stop_generation",
        json!({ "generationId": long.generation_id })
    ));
    let view = conversation_with(&h, &c.id, 4);
    let stopped = &view.messages[3].message;
    assert_eq!(stopped.finish_reason, Some(FinishReason::Cancelled));
    assert!(stopped.content.len() < 400 * 6, "{}", stopped.content.len());

    // A bad server while one is in use leaves the one in use.
    err(&h, "add_remote", server(&url, "wrong"));
    assert!(matches!(
        ok::<ModelStatus>(&h, "model_status", json!({})),
        ModelStatus::Ready { .. }
    ));

    // Forgotten: no longer listed nor loaded at the next start.
    let id = s.remotes[0].id.clone();
    let _: () = ok(&h, "remove_remote", json!({ "id": id }));
    let s: Settings = ok(&h, "get_settings", json!({}));
    assert!(s.remotes.is_empty() && s.active_remote.is_none());
    assert_eq!(
        err(&h, "load_remote", json!({ "id": id })).kind,
        ErrorKind::NotFound
    );
}

#[test]
fn the_context_and_kv_cache_settings_reach_the_load() {
    let h = harness_with(Arc::new(AutoEngine::new()));
    settled(&h);
    let s: Settings = ok(&h, "get_settings", json!({}));
    for (ctx, kv) in [(100, "f16"), (4096, "q4")] {
        let bad = Settings {
            context_length: Some(ctx),
            kv_cache: Some(kv.into()),
            ..s.clone()
        };
        let e = err(&h, "save_settings", json!({ "settings": bad }));
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }
    let mut good = s.clone();
    good.context_length = Some(4096);
    good.kv_cache = Some("q8_0".into());
    let _: Settings = ok(&h, "save_settings", json!({ "settings": good }));
    // A GLM-5.x model (the tiny fixture) loads with that limit and a q8_0 cache, and answers.
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/glm/tests/fixtures/tiny-f32.gguf");
    let info: ModelInfo = ok(&h, "load_model", json!({ "path": glm, "force": false }));
    assert_eq!(info.context_length, Some(4096));
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    let _: GenerationHandle = ok(
        &h,
        "send_message",
        json!({ "request": { "conversation_id": c.id, "action": { "type": "new", "text": "Hi" },
                             "sampling": { "temperature": 1.0, "top_p": 1.0, "top_k": null,
                                           "max_tokens": 8, "seed": 1, "min_p": null,
                                           "repetition_penalty": null } },
                "onEvent": "__CHANNEL__:7" }),
    );
    let view = conversation_with(&h, &c.id, 2);
    let stats = view.messages[1].message.stats.clone().unwrap();
    assert_eq!(stats.context_length, Some(4096));
    assert!(stats.generated_tokens > 0);
}
