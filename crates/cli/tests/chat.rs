//! `localglm chat` as a user runs it, on the real default model.

use std::process::Command;

fn localglm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_localglm"))
}

#[test]
fn chat_answers_on_stdout_with_stats_on_stderr() {
    let out = localglm()
        .args([
            "chat",
            "--temperature",
            "0",
            "--top-k",
            "1",
            "--max-tokens",
            "40",
        ])
        .arg("What is the capital of France?")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.trim().len() > 10,
        "a real answer on stdout: {stdout}"
    );
    assert!(!stdout.contains("tok/s"), "stats must not pollute stdout");
    assert!(stderr.contains("tok/s decode"), "stderr: {stderr}");
    assert!(stderr.contains("TTFT"), "stderr: {stderr}");
}

#[test]
fn interactive_loop_keeps_history_and_exits() {
    use std::io::Write;
    let mut child = localglm()
        .args([
            "chat",
            "--temperature",
            "0",
            "--top-k",
            "1",
            "--max-tokens",
            "12",
            "--quiet",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello!\nWhat did I just say?\n/exit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "two answers: {stdout}"
    );
}

#[test]
fn missing_model_is_a_clear_error() {
    let out = localglm()
        .args(["chat", "--model", "/nonexistent/model.gguf", "hi"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model file not found"), "{stderr}");
}

#[test]
fn unknown_preset_fails_before_loading_and_names_the_built_ins() {
    let out = localglm()
        .args(["chat", "--preset", "fastest", "hi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown preset `fastest`"), "{stderr}");
    assert!(
        stderr.contains("general") && stderr.contains("swe-bench-pro"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("loaded"),
        "must fail before loading: {stderr}"
    );
}

#[test]
fn preset_and_think_switches_reach_the_turn_and_its_stats_line() {
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures/tiny-f32.gguf");
    let run = |extra: &[&str]| {
        let out = localglm()
            .args(["chat", "--model"])
            .arg(&glm)
            .args(["--seed", "1", "--max-tokens", "3"])
            .args(extra)
            .arg("hi")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let e = run(&["--preset", "swe-bench-pro", "--think", "off"]);
    assert!(
        e.contains("preset SWE-Bench Pro, temperature 1, top_p 1, thinking off"),
        "{e}"
    );
    let e = run(&["--preset", "General", "--effort", "max"]);
    assert!(
        e.contains("preset General, temperature 1, top_p 0.95, thinking on, effort max"),
        "{e}"
    );
    // Explicit flags override the preset's values.
    let e = run(&["--preset", "general", "--top-p", "0.5", "--no-think"]);
    assert!(e.contains("top_p 0.5, thinking off"), "{e}");
}

#[test]
fn user_presets_of_the_app_are_found_by_name() {
    let data = tempfile::tempdir().unwrap();
    let settings = serde_json::json!({ "settings": { "version": 1, "presets": [{
        "id": "user-careful", "name": "Careful",
        "sampling": { "temperature": 0.5, "top_p": 0.9, "top_k": null, "max_tokens": 3,
                      "seed": 1, "min_p": 0.05, "repetition_penalty": null },
        "enable_thinking": false, "reasoning_effort": null, "system_prompt": "Be careful."
    }]}});
    std::fs::write(data.path().join("settings.json"), settings.to_string()).unwrap();
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures/tiny-f32.gguf");
    let out = localglm()
        .env("LOCALGLM_DATA_DIR", data.path())
        .args(["chat", "--model"])
        .arg(&glm)
        .args(["--preset", "careful", "hi"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("preset Careful, temperature 0.5, top_p 0.9, thinking off"),
        "{e}"
    );
    let out = localglm()
        .env("LOCALGLM_DATA_DIR", data.path())
        .args(["chat", "--preset", "nope", "hi"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("`user-careful`"), "{e}");
}
