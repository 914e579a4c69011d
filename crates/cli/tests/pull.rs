//! `localglm pull` and `localglm models` against a real local HTTP server in the hub's layout.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::Value;
use localglm_quants::GgmlType;
use localglm_testkit::FileServer;
use std::process::Command;

#[test]
fn pull_then_list() {
    let root = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()));
    w.tensor("w.weight", &[256, 64], GgmlType::F32, vec![1; 256 * 64 * 4])
        .unwrap();
    let file = root
        .path()
        .join("acme/mini-GGUF/resolve/main/mini-F32.gguf");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    w.write(&file).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let api = root.path().join("api/models/acme/mini-GGUF/tree");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::write(
        api.join("main"),
        serde_json::json!([{ "type": "file", "path": "mini-F32.gguf", "size": size }]).to_string(),
    )
    .unwrap();
    let server = FileServer::start(root.path().to_path_buf());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_localglm"))
            .env("HF_ENDPOINT", &server.url)
            .env("LOCALGLM_DATA_DIR", data.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["pull", "acme/mini-GGUF"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim().ends_with("acme__mini-GGUF/mini-F32.gguf"),
        "{stdout}"
    );
    assert!(stderr.contains("100.0%"), "{stderr}");
    let out = run(&["models"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("mini-F32") && listed.contains("llama"),
        "{listed}"
    );
    // A GGUF already on disk joins the library without being copied.
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures/tiny-f32.gguf");
    let out = run(&["models", "--import", glm.to_str().unwrap()]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("tiny-f32") && listed.contains("glm-dsa"),
        "{listed}"
    );
    let out = run(&["models", "--import", "/nonexistent.gguf"]);
    assert!(!out.status.success());
    let out = run(&["pull", "acme/none-GGUF"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
}
