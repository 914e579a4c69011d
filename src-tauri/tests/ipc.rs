//! The shell's real commands through Tauri's IPC layer (mock runtime), on the scripted engine.

use localglm_protocol::{
    AppInfo, ConversationSummary, ConversationView, ErrorKind, GenerationHandle, Role, Settings,
};
use serde_json::{json, Value};
use std::time::Duration;

mod common;

use common::*;

#[test]
fn conversations_crud_through_ipc() {
    let h = harness();
    let info: AppInfo = ok(&h, "app_info", json!({}));
    assert!(info
        .default_model_path
        .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));

    let empty: Vec<ConversationSummary> = ok(&h, "list_conversations", json!({}));
    assert!(empty.is_empty());
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    assert_eq!(c.title, "New chat");
    let renamed: ConversationSummary = ok(
        &h,
        "rename_conversation",
        json!({ "id": c.id, "title": "Trip to Paris" }),
    );
    assert_eq!(renamed.title, "Trip to Paris");
    let list: Vec<ConversationSummary> = ok(&h, "list_conversations", json!({}));
    assert_eq!(list.len(), 1);
    let view: ConversationView = ok(&h, "get_conversation", json!({ "id": c.id }));
    assert!(view.messages.is_empty());

    ok::<Value>(&h, "delete_conversation", json!({ "id": c.id }));
    let e = err(&h, "get_conversation", json!({ "id": c.id }));
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = err(&h, "get_conversation", json!({ "id": "../../etc/passwd" }));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

#[test]
fn send_message_streams_and_persists() {
    let h = harness();
    wait_ready(&h);
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    let handle: GenerationHandle = ok(
        &h,
        "send_message",
        json!({
            "request": { "conversation_id": c.id, "action": { "type": "new", "text": "Hello there" } },
            "onEvent": "__CHANNEL__:7"
        }),
    );
    assert_eq!(handle.user_message.message.role, Role::User);
    // The reply is saved when the generation ends.
    let view = conversation_with(&h, &c.id, 2);
    assert_eq!(view.title, "Hello there");
    assert_eq!(view.messages.len(), 2);
    assert_eq!(view.messages[1].message.id, handle.assistant_message_id);
    assert!(view.messages[1]
        .html
        .contains("<strong>Hello there</strong>"));
    assert!(!ok::<bool>(
        &h,
        "stop_generation",
        json!({ "generationId": handle.generation_id })
    ));
    // Branch switching takes the names the UI sends.
    let first = &view.messages[0].message.id;
    let shown: ConversationView = ok(
        &h,
        "select_branch",
        json!({ "conversationId": c.id, "messageId": first }),
    );
    assert_eq!(shown, view);
    let e = err(
        &h,
        "select_branch",
        json!({ "conversationId": c.id, "messageId": "nosuch" }),
    );
    assert_eq!(e.kind, ErrorKind::NotFound);
    let hits: Vec<localglm_protocol::SearchHit> = ok(
        &h,
        "search_conversations",
        json!({ "query": "HELLO THERE", "reasoning": false }),
    );
    assert_eq!(
        hits.len(),
        3,
        "the title, the message and the reply: {hits:?}"
    );

    // Export as JSON, import it back as a copy; a malformed file is refused.
    let exported: localglm_protocol::ExportedConversation = ok(
        &h,
        "export_conversation",
        json!({ "id": c.id, "format": "json" }),
    );
    assert_eq!(
        std::fs::read_to_string(&exported.path).unwrap(),
        exported.text
    );
    let copy: ConversationSummary = ok(&h, "import_conversation", json!({ "json": exported.text }));
    assert_ne!(copy.id, c.id);
    assert_eq!(copy.message_count, 2);
    let e = err(&h, "import_conversation", json!({ "json": "{ nope" }));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    let md: localglm_protocol::ExportedConversation = ok(
        &h,
        "export_conversation",
        json!({ "id": c.id, "format": "markdown" }),
    );
    assert!(md.path.ends_with(".md") && md.text.starts_with("# Hello there"));

    // A message measured before it is sent, with the conversation it would be sent in.
    let measured: localglm_protocol::MessageMeasure = ok(
        &h,
        "measure_message",
        json!({ "request": { "conversation_id": c.id, "text": "one two three" } }),
    );
    assert!(
        measured.prompt_tokens > measured.message_tokens,
        "{measured:?}"
    );
}

#[test]
fn settings_validate_and_persist() {
    let h = harness();
    let mut s: Settings = ok(&h, "get_settings", json!({}));
    assert_eq!(s, Settings::default());
    s.sampling.top_p = 1.0;
    s.system_prompt = "Be brief.".into();
    let saved: Settings = ok(&h, "save_settings", json!({ "settings": s }));
    assert_eq!(saved.system_prompt, "Be brief.");
    assert_eq!(ok::<Settings>(&h, "get_settings", json!({})), saved);
    s.sampling.top_p = 0.0;
    assert_eq!(
        err(&h, "save_settings", json!({ "settings": s })).kind,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn markdown_and_model_commands() {
    let h = harness();
    let html: String = ok(
        &h,
        "render_markdown",
        json!({ "text": "<script>x</script>\n\n**b**" }),
    );
    assert!(html.contains("<strong>b</strong>") && !html.contains("<script"));
    let models: Vec<localglm_protocol::ModelInfo> = ok(&h, "list_models", json!({}));
    assert_eq!(models.len(), 1);
    let e = err(
        &h,
        "send_message",
        json!({
            "request": { "conversation_id": "nope", "action": { "type": "regenerate" } },
            "onEvent": "__CHANNEL__:1"
        }),
    );
    assert!(matches!(e.kind, ErrorKind::NotFound | ErrorKind::NoModel));
}

#[test]
fn presets_crud_export_import_and_recorded_on_replies() {
    use localglm_protocol::SamplingPreset;
    let h = harness();
    let all: Vec<SamplingPreset> = ok(&h, "list_presets", json!({}));
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["general", "swe-bench-pro"]);

    // Saving a built-in's values under a new name creates a user preset.
    let mut mine = all[1].clone();
    mine.name = "Careful".into();
    mine.sampling.temperature = 0.6;
    mine.sampling.min_p = Some(0.05);
    mine.enable_thinking = false;
    let mine: SamplingPreset = ok(&h, "save_preset", json!({ "preset": mine }));
    assert_eq!(mine.id, "user-careful");
    // Rename keeps the id.
    let mut renamed = mine.clone();
    renamed.name = "Careful coder".into();
    let renamed: SamplingPreset = ok(&h, "save_preset", json!({ "preset": renamed }));
    assert_eq!(renamed.id, mine.id);
    let copy: SamplingPreset = ok(&h, "duplicate_preset", json!({ "id": "general" }));
    assert_eq!(copy.name, "General copy");
    let mut bad = copy.clone();
    bad.sampling.top_p = 2.0;
    assert_eq!(
        err(&h, "save_preset", json!({ "preset": bad })).kind,
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        err(&h, "delete_preset", json!({ "id": "general" })).kind,
        ErrorKind::InvalidRequest
    );
    ok::<()>(&h, "delete_preset", json!({ "id": copy.id }));

    // Export, then import the file: the preset comes back under a new name, nothing replaced.
    let file: String = ok(&h, "export_presets", json!({}));
    assert!(file.contains("\"localglm-presets\"") && file.contains("Careful coder"));
    let added: Vec<SamplingPreset> = ok(&h, "import_presets", json!({ "json": file }));
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].name, "Careful coder (2)");
    assert_eq!(added[0].sampling, renamed.sampling);
    let e = err(&h, "import_presets", json!({ "json": "{\"presets\": 3}" }));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    let names: Vec<String> = ok::<Vec<SamplingPreset>>(&h, "list_presets", json!({}))
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "General",
            "SWE-Bench Pro",
            "Careful coder",
            "Careful coder (2)"
        ]
    );
    // Presets persist in the settings store.
    let s: Settings = ok(&h, "get_settings", json!({}));
    assert_eq!(s.presets.len(), 2);

    // A message sent with a preset records it, with the values used, on the reply.
    wait_ready(&h);
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    ok::<GenerationHandle>(
        &h,
        "send_message",
        json!({
            "request": { "conversation_id": c.id, "action": { "type": "new", "text": "Hi" },
                         "preset_id": renamed.id },
            "onEvent": "__CHANNEL__:9"
        }),
    );
    let view = conversation_with(&h, &c.id, 2);
    let reply = &view.messages[1].message;
    let sent = reply.sent_with.as_ref().expect("recorded");
    assert_eq!(sent.preset_name.as_deref(), Some("Careful coder"));
    assert_eq!(sent.sampling.temperature, 0.6);
    assert_eq!(sent.enable_thinking, Some(false));
    // Thinking off: the scripted model does not reason.
    assert_eq!(reply.reasoning, None);
    assert_eq!(view.preset_id.as_deref(), Some(renamed.id.as_str()));
}

#[test]
fn quant_picker_plans_and_a_model_that_does_not_fit_needs_force() {
    use localglm_protocol::{FitPlan, ModelInfo, QuantCatalog};
    let h = harness();
    let mac = json!({ "machine": { "id": "mac-256", "ram_gib": 256.0, "vram_gib": null,
        "unified": true, "gpu_limit_gib": null }, "context": 32768, "kv_type": "f16", "cpu_moe": null });
    let c: QuantCatalog = ok(&h, "quant_catalog", json!({ "request": mac }));
    assert_eq!(c.rows.len(), 16);
    assert!(c.machine.contains("256 GiB unified"), "{}", c.machine);
    assert_eq!((c.family.as_str(), c.families.len()), ("GLM-5.2", 3));
    let mut glm51 = mac.clone();
    glm51["family"] = json!("GLM-5.1");
    let c: QuantCatalog = ok(&h, "quant_catalog", json!({ "request": glm51 }));
    assert_eq!(
        (c.repo.as_str(), c.context_max),
        ("unsloth/GLM-5.1-GGUF", 202_752)
    );
    glm51["family"] = json!("GLM-9");
    let e = err(&h, "quant_catalog", json!({ "request": glm51 }));
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains("GLM-5.1, GLM-5.2, GLM-5.3"),
        "{}",
        e.message
    );
    let mut forced = mac.clone();
    forced["cpu_moe"] = json!(75);
    let p: FitPlan = ok(
        &h,
        "plan_quant",
        json!({ "label": "UD-IQ2_M", "request": forced }),
    );
    assert_eq!(
        (p.verdict.as_str(), p.cpu_moe_layers),
        ("gpu_cpu_experts", 75)
    );
    assert_eq!(
        err(&h, "plan_quant", json!({ "label": "nope", "request": mac })).kind,
        ErrorKind::NotFound
    );

    // GLM-5.2 UD-Q2_K_XL (253 GB, sparse files) on this 24 GiB machine: refused with the
    // numbers unless forced.
    let dir = tempfile::tempdir().unwrap();
    let path = too_big_for_this_machine(dir.path());
    let p: FitPlan = ok(&h, "plan_model", json!({ "path": path, "request": mac }));
    assert_eq!(p.verdict, "gpu_cpu_experts");
    assert!(!p.estimated);
    wait_ready(&h);
    let e = err(&h, "load_model", json!({ "path": path }));
    assert_eq!(e.kind, ErrorKind::WontFit, "{e:?}");
    assert!(
        e.message.contains("does not fit this machine"),
        "{}",
        e.message
    );
    assert!(e.detail.unwrap_or_default().contains("smaller quant"));
    let m: ModelInfo = ok(&h, "load_model", json!({ "path": path, "force": true }));
    assert!(m.name.contains("GLM-5.2-UD-Q2_K_XL"));
}

#[test]
fn the_local_api_starts_serves_logs_and_stops_from_settings() {
    use localglm_protocol::{ApiLogEntry, ApiStatus};
    let h = harness();
    wait_ready(&h);
    let off: ApiStatus = ok(&h, "api_status", json!({}));
    assert!(!off.running);
    let api = json!({ "enabled": true, "host": "127.0.0.1", "port": 0, "api_key": "k9" });
    let on: ApiStatus = ok(&h, "set_api", json!({ "api": api }));
    assert!(on.running, "{on:?}");
    let url = on.url.unwrap();
    let models: serde_json::Value = ureq::get(&format!("{url}/models"))
        .set("Authorization", "Bearer k9")
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
    let refused = ureq::get(&format!("{url}/models")).call();
    assert!(matches!(refused, Err(ureq::Error::Status(401, _))));
    let log: Vec<ApiLogEntry> = ok(&h, "api_log", json!({}));
    assert_eq!(
        log.iter().map(|e| e.status).collect::<Vec<_>>(),
        [200, 401],
        "{log:?}"
    );
    assert_eq!(log[0].path, "/v1/models");
    // Saved with the settings; off stops it.
    let s: Settings = ok(&h, "get_settings", json!({}));
    assert!(s.api.enabled && s.api.api_key.as_deref() == Some("k9"));
    let off: ApiStatus = ok(
        &h,
        "set_api",
        json!({ "api": { "enabled": false, "host": "127.0.0.1", "port": 0, "api_key": null } }),
    );
    assert!(!off.running);
    std::thread::sleep(Duration::from_millis(100));
    // A new connection (not a pooled keep-alive one) finds nobody listening.
    let fresh = ureq::AgentBuilder::new().build();
    assert!(fresh.get(&format!("{url}/models")).call().is_err());
}

#[test]
fn the_app_and_the_local_api_share_one_queue() {
    use localglm_engine::scripted::{Script, ScriptedEngine};
    use localglm_protocol::ApiStatus;
    // Every reply takes about a second.
    let h = harness_with(std::sync::Arc::new(ScriptedEngine::new(|_| Script {
        reasoning: Vec::new(),
        content: Script::tokens("one two three four five six seven eight nine ten"),
        token_delay: Duration::from_millis(100),
        burst: 1,
        fail_with: None,
    })));
    wait_ready(&h);
    let on: ApiStatus = ok(
        &h,
        "set_api",
        json!({ "api": { "enabled": true, "host": "127.0.0.1", "port": 0, "api_key": null } }),
    );
    let url = on.url.unwrap();
    let c: ConversationSummary = ok(&h, "create_conversation", json!({ "title": null }));
    let started = std::time::Instant::now();
    let _: GenerationHandle = ok(
        &h,
        "send_message",
        json!({ "request": { "conversation_id": c.id, "action": { "type": "new", "text": "hi" } },
                "onEvent": "__CHANNEL__:7" }),
    );
    // The API request arrives while the app's reply streams: it waits for its turn.
    let api = std::thread::spawn(move || {
        let r: Value = ureq::post(&format!("{url}/chat/completions"))
            .send_json(json!({ "messages": [{ "role": "user", "content": "hello" }] }))
            .unwrap()
            .into_json()
            .unwrap();
        (r, started.elapsed())
    });
    let view = conversation_with(&h, &c.id, 2);
    let app_done = started.elapsed();
    assert_eq!(
        view.messages[1].message.content,
        "one two three four five six seven eight nine ten"
    );
    let (r, api_done) = api.join().unwrap();
    assert_eq!(
        r["choices"][0]["message"]["content"],
        "one two three four five six seven eight nine ten"
    );
    assert!(
        api_done >= app_done + Duration::from_millis(700),
        "the API reply ({api_done:?}) ran after the app's ({app_done:?})"
    );
}

#[test]
fn a_remembered_model_that_does_not_fit_is_not_loaded_at_start() {
    use localglm_engine::scripted::ScriptedEngine;
    use localglm_protocol::{ModelInfo, ModelStatus};
    // The last model chosen was GLM-5.2 UD-Q2_K_XL (253 GB, sparse files): on this machine the
    // start-up load is refused with the fit numbers, as a chosen load would be.
    let dir = tempfile::tempdir().unwrap();
    let path = too_big_for_this_machine(dir.path());
    let settings = Settings {
        model_path: Some(path.clone()),
        ..Settings::default()
    };
    std::fs::write(
        dir.path().join("settings.json"),
        json!({ "settings": settings }).to_string(),
    )
    .unwrap();
    let h = harness_in(dir, std::sync::Arc::new(ScriptedEngine::default()));
    let mut status: ModelStatus = ok(&h, "model_status", json!({}));
    for _ in 0..500 {
        if matches!(
            status,
            ModelStatus::Failed { .. } | ModelStatus::Ready { .. }
        ) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        status = ok(&h, "model_status", json!({}));
    }
    match status {
        ModelStatus::Failed { path: p, error } => {
            assert_eq!(p, path);
            assert_eq!(error.kind, ErrorKind::WontFit, "{error:?}");
        }
        other => panic!("loaded without a fit check: {other:?}"),
    }
    // "Load anyway" still works.
    let m: ModelInfo = ok(&h, "load_model", json!({ "path": path, "force": true }));
    assert!(m.name.contains("GLM-5.2-UD-Q2_K_XL"));
}
