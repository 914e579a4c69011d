//! The app built on the mock runtime, and its commands called through Tauri's IPC layer.

#![allow(dead_code)]

use localglm_app_lib::build;
use localglm_engine::Engine;
use localglm_models::Library;
use localglm_protocol::{AppError, ConversationView, ModelStatus};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

pub struct Harness {
    pub dir: tempfile::TempDir,
    _app: App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
}

/// The app on the scripted engine.
pub fn harness() -> Harness {
    harness_with(Arc::new(
        localglm_engine::scripted::ScriptedEngine::default(),
    ))
}

/// The app on `engine`.
pub fn harness_with(engine: Arc<dyn Engine>) -> Harness {
    harness_in(tempfile::tempdir().unwrap(), engine)
}

/// The app on `engine` over the data directory `dir` (which may hold settings already).
pub fn harness_in(dir: tempfile::TempDir, engine: Arc<dyn Engine>) -> Harness {
    let library = Library::new(dir.path());
    std::fs::create_dir_all(library.models_dir()).unwrap();
    // The scripted engine accepts any path; the default model path is what autoload uses.
    std::fs::write(library.default_model_path(), b"GGUF").unwrap();
    let app = build(mock_builder(), library, engine)
        .build(mock_context(noop_assets()))
        .expect("app builds");
    let webview = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Harness {
        dir,
        _app: app,
        webview,
    }
}

pub fn invoke(h: &Harness, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        &h.webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}

pub fn ok<T: serde::de::DeserializeOwned>(h: &Harness, cmd: &str, args: Value) -> T {
    let v = invoke(h, cmd, args).unwrap_or_else(|e| panic!("{cmd} failed: {e}"));
    serde_json::from_value(v).unwrap()
}

pub fn err(h: &Harness, cmd: &str, args: Value) -> AppError {
    let e = invoke(h, cmd, args).expect_err("command should fail");
    serde_json::from_value(e).unwrap()
}

/// The conversation once it holds `n` messages (a reply is saved when its generation ends).
pub fn conversation_with(h: &Harness, id: &str, n: usize) -> ConversationView {
    let mut view: ConversationView = ok(h, "get_conversation", json!({ "id": id }));
    for _ in 0..500 {
        if view.messages.len() == n {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        view = ok(h, "get_conversation", json!({ "id": id }));
    }
    view
}

pub fn wait_ready(h: &Harness) {
    for _ in 0..500 {
        if let ModelStatus::Ready { .. } = ok::<ModelStatus>(h, "model_status", json!({})) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("model never became ready");
}

/// GLM-5.2 UD-Q2_K_XL (253 GB) as sparse files in `dir`: its first shard's path. More than
/// this machine holds.
pub fn too_big_for_this_machine(dir: &std::path::Path) -> String {
    let files = localglm_testkit::glm52::write_sparse_split(
        dir,
        "GLM-5.2-UD-Q2_K_XL",
        localglm_testkit::glm52::UD_Q2_K_XL,
        3,
    );
    files[0].to_string_lossy().into_owned()
}
