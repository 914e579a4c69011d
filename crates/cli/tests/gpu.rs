//! The CLI on the GPU backend, as a user runs it: `localglm gpu` lists the adapters, `chat`
//! and `logprobs` run the GLM fixture (and `chat` the default dense model) with `--device gpu`
//! (lavapipe in CI) and say where the model runs, the GPU's logprobs equal the CPU's, and
//! asking for a GPU that is not there fails with a clear message instead of running on the CPU.
//!
//! Without any adapter the tests needing one say so and pass, unless `LOCALGLM_REQUIRE_GPU=1`.

use std::path::PathBuf;
use std::process::Command;

fn localglm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_localglm"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../glm/tests/fixtures/{name}"))
}

/// Whether an adapter exists (from `localglm gpu --json`); prints why a test is skipped.
fn have_adapter() -> bool {
    let out = localglm().args(["gpu", "--json"]).output().unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let any = !list.as_array().unwrap().is_empty();
    if !any {
        assert!(
            std::env::var("LOCALGLM_REQUIRE_GPU").map_or(true, |v| v != "1"),
            "LOCALGLM_REQUIRE_GPU=1 but `localglm gpu` lists no adapter"
        );
        eprintln!("SKIPPED: no GPU adapter on this machine");
    }
    any
}

#[test]
fn gpu_lists_adapters_with_their_memory_and_limits() {
    if !have_adapter() {
        return;
    }
    let out = localglm().arg("gpu").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("MiB per storage binding"), "{text}");
    assert!(text.contains("subgroups"), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&localglm().args(["gpu", "--json"]).output().unwrap().stdout)
            .unwrap();
    let first = &json[0];
    for key in [
        "name",
        "backend",
        "device_type",
        "max_storage_binding_bytes",
    ] {
        assert!(!first[key].is_null(), "{key} missing in {first}");
    }
    // Vulkan says how much memory the device has (lavapipe: the machine's RAM).
    if first["backend"] == "Vulkan" {
        assert!(first["memory_bytes"].as_u64().unwrap() > 0, "{first}");
        assert!(text.contains("memory:"), "{text}");
    }
}

/// `localglm gpu --check`: every kernel of every type against the CPU, all within their
/// bounds on the adapter (lavapipe in CI), as a table and as JSON.
#[test]
fn gpu_check_runs_every_kernel_against_the_cpu() {
    if !have_adapter() {
        return;
    }
    let out = localglm().args(["gpu", "--check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("all within their bounds"), "{text}");
    for ty in ["IQ1_S", "Q4_K", "BF16"] {
        assert!(text.lines().any(|l| l.starts_with(ty)), "{ty}: {text}");
    }
    let out = localglm()
        .args(["gpu", "--check", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], true, "{json}");
    let results = json["results"].as_array().unwrap();
    // 22 types, four shapes each (and the matrix units' where the adapter has them).
    assert!(results.len() >= 22 * 4, "{}", results.len());
    assert!(results.iter().all(|r| r["worst"].as_f64().unwrap() <= 1.0));
}

#[test]
fn chat_runs_the_glm_fixture_on_the_gpu_and_says_so() {
    if !have_adapter() {
        return;
    }
    let out = localglm()
        .args(["chat", "--model"])
        .arg(fixture("tiny-f32.gguf"))
        .args([
            "--device",
            "gpu",
            "--cpu-moe",
            "1",
            "--temperature",
            "0",
            "--max-tokens",
            "8",
            "Hello",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("GPU · "), "placement on stderr: {stderr}");
    assert!(stderr.contains("experts of 1 layer in RAM"), "{stderr}");
    assert!(stderr.contains("tok/s decode"), "{stderr}");
}

#[test]
fn logprobs_on_the_gpu_equal_the_cpus() {
    if !have_adapter() {
        return;
    }
    let run = |device: &str| -> serde_json::Value {
        let out = localglm()
            .args(["logprobs", "--model"])
            .arg(fixture("tiny-q-q4_k.gguf"))
            .args([
                "--tokens",
                "1,5,9,20,33,7,2,11,40,3,8,13",
                "--exact",
                "--json",
                "--top",
                "3",
                "--device",
                device,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (cpu, gpu) = (run("cpu"), run("gpu"));
    let positions = cpu["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 12);
    for (c, g) in positions.iter().zip(gpu["positions"].as_array().unwrap()) {
        assert_eq!(c["argmax"], g["argmax"]);
        for (a, b) in c["top"]
            .as_array()
            .unwrap()
            .iter()
            .zip(g["top"].as_array().unwrap())
        {
            assert_eq!(a["id"], b["id"]);
            let (x, y) = (
                a["logprob"].as_f64().unwrap(),
                b["logprob"].as_f64().unwrap(),
            );
            assert!((x - y).abs() < 1e-3, "{x} vs {y}");
        }
    }
}

#[test]
fn asking_for_a_gpu_that_is_not_there_fails_instead_of_using_the_cpu() {
    let out = localglm()
        .env("LOCALGLM_GPU_ADAPTER", "no-such-adapter-anywhere")
        .args(["chat", "--model"])
        .arg(fixture("tiny-f32.gguf"))
        .args(["--device", "gpu", "--max-tokens", "4", "Hello"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "must not fall back to the CPU: {stderr}"
    );
    assert!(stderr.contains("no usable GPU adapter"), "{stderr}");
    assert!(!stderr.contains("tok/s"), "nothing generated: {stderr}");
}

/// The default model (llama) on `--device gpu`: LocalGLM's runtime runs it on the GPU backend
/// and says so; asked for mistral.rs, a build whose mistral.rs has no GPU backend refuses
/// rather than use the CPU (a build with its `metal` / `cuda` feature runs it there).
#[test]
fn the_default_model_runs_on_the_gpu_and_mistralrs_without_a_gpu_build_refuses() {
    let default = localglm_models_default();
    if !default.exists() {
        eprintln!("SKIPPED: the default model is not installed");
        return;
    }
    let chat = |runtime: Option<&str>| {
        let out = localglm()
            .args(["chat", "--device", "gpu", "--temperature", "0"])
            .args(["--max-tokens", "8"])
            .args(runtime)
            .arg("What is the capital of France?")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), stdout, stderr)
    };
    if have_adapter() {
        let (ok, stdout, stderr) = chat(None);
        assert!(ok, "{stderr}");
        assert!(stderr.contains("GPU · "), "placement on stderr: {stderr}");
        assert!(stdout.contains("Paris"), "{stdout}");
    }
    let (ok, _, stderr) = chat(Some("--mistralrs"));
    if ok {
        assert!(
            stderr.contains("GPU · ") && stderr.contains("(mistral.rs)"),
            "{stderr}"
        );
    } else {
        assert!(stderr.contains("no GPU backend"), "{stderr}");
    }
}

fn localglm_models_default() -> PathBuf {
    let out = localglm().arg("paths").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("default model:"))
        .unwrap();
    PathBuf::from(line.trim_start_matches("default model:").trim())
}
