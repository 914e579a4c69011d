//! `localglm logprobs` on the tiny GLM fixtures matches the Hugging Face `transformers`
//! reference (log-softmax of the reference logits), for short and sparse-indexer prompts.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures")
        .join(name)
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = row.iter().map(|z| (z - mx).exp()).sum::<f64>().ln() + mx;
    row.iter().map(|z| z - lse).collect()
}

#[test]
fn logprobs_json_matches_the_reference_on_every_position() {
    for (stem, exact, tol) in [("tiny-f32", true, 1e-3), ("tiny-q-iq3_s", true, 1e-3)] {
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{stem}.ref.json"))).unwrap(),
        )
        .unwrap();
        for case in reference["cases"].as_array().unwrap() {
            let tokens: Vec<String> = case["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.to_string())
                .collect();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_localglm"));
            cmd.args(["logprobs", "--model"])
                .arg(fixture(&format!("{stem}.gguf")))
                .args(["--tokens", &tokens.join(","), "--top", "3", "--json"]);
            if exact {
                cmd.arg("--exact");
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(got["tokens"].as_array().unwrap().len(), tokens.len());
            let positions = got["positions"].as_array().unwrap();
            assert_eq!(positions.len(), tokens.len());
            for (i, (p, want)) in positions
                .iter()
                .zip(case["logits"].as_array().unwrap())
                .enumerate()
            {
                let want: Vec<f64> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                let lp = log_softmax(&want);
                assert_eq!(p["position"].as_u64().unwrap() as usize, i);
                let top = p["top"].as_array().unwrap();
                assert_eq!(top.len(), 3);
                assert_eq!(p["argmax"], top[0]["id"]);
                for c in top {
                    let id = c["id"].as_u64().unwrap() as usize;
                    let got = c["logprob"].as_f64().unwrap();
                    assert!(
                        (got - lp[id]).abs() < tol,
                        "{stem} pos {i} id {id}: {got} vs {}",
                        lp[id]
                    );
                }
                let best = (0..lp.len())
                    .max_by(|&a, &b| lp[a].total_cmp(&lp[b]))
                    .unwrap();
                assert_eq!(
                    p["argmax"].as_u64().unwrap() as usize,
                    best,
                    "{stem} pos {i}"
                );
            }
        }
    }
}

#[test]
fn logprobs_on_a_non_glm_file_says_why() {
    let out = Command::new(env!("CARGO_BIN_EXE_localglm"))
        .args(["logprobs", "--model", "Cargo.toml", "--tokens", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("glm-dsa"));
}
