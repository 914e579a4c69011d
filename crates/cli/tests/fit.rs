//! `localglm fit` on real files: the JSON contract, simulated machines, forced placements and
//! clear errors. (The planner's numbers on GLM-5.2's full tensor list are checked in
//! `crates/planner/tests/glm52.rs`; remote headers in `crates/planner/tests/remote.rs`.)

use std::process::Command;

fn fit(args: &[&str]) -> (bool, serde_json::Value, String) {
    let glm = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures/tiny-q-iq2_xxs.gguf");
    let out = Command::new(env!("CARGO_BIN_EXE_localglm"))
        .arg("fit")
        .arg(&glm)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, format!("{stdout}{stderr}"))
}

#[test]
fn json_has_the_verdict_placement_context_and_bytes() {
    let (ok, v, text) = fit(&[
        "--json",
        "--ctx",
        "4096",
        "--ram-gib",
        "16",
        "--vram-gib",
        "8",
    ]);
    assert!(ok, "{text}");
    assert_eq!(v["verdict"], "gpu", "{text}");
    assert_eq!(v["cpu_moe_layers"], 0);
    assert!(v["max_context"].as_u64().unwrap() >= 4096);
    for k in ["weights_gpu", "weights_cpu", "kv", "scratch"] {
        assert!(v["bytes"][k].is_u64(), "{k}: {text}");
    }
    assert_eq!(v["model"]["architecture"], "glm-dsa");
    assert_eq!(v["hardware"]["source"], "simulated");
    // Forced: every MoE layer's experts in RAM.
    let (_, v, text) = fit(&[
        "--json",
        "--ram-gib",
        "16",
        "--vram-gib",
        "8",
        "--cpu-moe",
        "99",
    ]);
    assert_eq!(v["verdict"], "gpu_cpu_experts", "{text}");
    assert_eq!(v["cpu_moe_layers"], v["moe_layers"]);
    assert_eq!(v["bytes"]["experts_gpu"], 0);
    assert!(v["bytes"]["experts_cpu"].as_u64().unwrap() > 0);
    // A Mac, and the RAM-only placement.
    let (_, v, _) = fit(&["--json", "--unified-gib", "16", "--gpu-limit-gib", "12"]);
    assert_eq!(v["hardware"]["unified"]["gpu_limit"], 12u64 << 30);
    let (_, v, _) = fit(&[
        "--json",
        "--ram-gib",
        "16",
        "--cpu-only",
        "--kv-type",
        "q8_0",
    ]);
    assert_eq!(v["verdict"], "cpu");
    assert_eq!(v["kv_type"], "q8_0");
}

#[test]
fn text_output_and_errors() {
    let (ok, _, text) = fit(&["--ram-gib", "16"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("Verdict: fits in system memory only"),
        "{text}"
    );
    assert!(
        text.contains("Largest context with this placement"),
        "{text}"
    );
    let (ok, _, text) = fit(&["--kv-type", "q4"]);
    assert!(!ok && text.contains("--kv-type q4"), "{text}");
    let (ok, _, text) = fit(&["--unified-gib", "64", "--ram-gib", "64"]);
    assert!(!ok && text.contains("--unified-gib"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_localglm"))
        .args(["fit", "/nonexistent/model.gguf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.gguf"));
}

#[test]
fn glm52_on_the_256_gb_mac_and_the_24_gb_pc_from_headers_alone() {
    use localglm_testkit::{glm52, FileServer};
    let dir = std::env::temp_dir().join(format!("localglm-fit-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let repo = dir.join("unsloth/GLM-5.2-GGUF/resolve/main/UD-Q2_K_XL");
    std::fs::create_dir_all(&repo).unwrap();
    let files = glm52::write_sparse_split(&repo, "GLM-5.2-UD-Q2_K_XL", glm52::UD_Q2_K_XL, 6);
    let server = FileServer::start(dir.clone());
    let run = |model: &str, machine: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_localglm"))
            .env("HF_ENDPOINT", &server.url)
            .args(["fit", model, "--json"])
            .args(machine)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let hub = "hf://unsloth/GLM-5.2-GGUF/UD-Q2_K_XL/GLM-5.2-UD-Q2_K_XL-00001-of-00006.gguf";
    let mac = run(hub, &["--unified-gib", "256"]);
    assert_eq!(mac["verdict"], "gpu_cpu_experts");
    assert_eq!(mac["cpu_moe_layers"], 16);
    assert_eq!(mac["model"]["source"]["remote"], true);
    assert!(
        mac["model"]["source"]["header_bytes_fetched"]
            .as_u64()
            .unwrap()
            < 2 << 20
    );
    let raise = &mac["fixes"].as_array().unwrap()[0];
    assert_eq!(raise["kind"], "raise_gpu_limit");
    // With the limit raised to 240 GiB the trunk fits all on the GPU; the MTP block the
    // runtime also loads (unless drafting is off) needs one layer's experts in RAM
    // (`crates/planner/tests/glm52.rs` has the arithmetic).
    let raised = run(hub, &["--unified-gib", "256", "--gpu-limit-gib", "240"]);
    assert_eq!(raised["verdict"], "gpu_cpu_experts");
    assert_eq!(raised["cpu_moe_layers"], 1);
    let trunk = run(
        hub,
        &["--unified-gib", "256", "--gpu-limit-gib", "240", "--no-mtp"],
    );
    assert_eq!(trunk["verdict"], "gpu");
    let pc = run(hub, &["--ram-gib", "256", "--vram-gib", "24"]);
    assert_eq!(pc["verdict"], "gpu_cpu_experts");
    assert_eq!(pc["cpu_moe_layers"], 75);
    assert_eq!(pc["bytes"]["weights_gpu"], 19_982_496_768u64);
    assert_eq!(pc["max_context"], 51_113);
    let pc_trunk = run(hub, &["--ram-gib", "256", "--vram-gib", "24", "--no-mtp"]);
    assert_eq!(pc_trunk["bytes"]["weights_gpu"], 19_670_455_296u64);
    assert_eq!(pc_trunk["max_context"], 55_061);
    // The local split set (any shard) answers the same.
    let local = run(
        files[4].to_str().unwrap(),
        &["--ram-gib", "256", "--vram-gib", "24"],
    );
    assert_eq!(local["bytes"], pc["bytes"]);
    let small = run(hub, &["--unified-gib", "128"]);
    assert_eq!(small["verdict"], "no_fit");
    std::fs::remove_dir_all(&dir).unwrap();
}
