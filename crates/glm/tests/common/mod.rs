//! What the reference tests on the CPU and on the GPU share: the fixtures and the
//! `transformers` logits committed beside them, and how two sets of logits are compared.

#![allow(dead_code)]

use localglm_gpu::{Gpu, GpuOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The adapter GPU tests share (software ones such as lavapipe included). Without one the
/// tests say so and pass, unless `LOCALGLM_REQUIRE_GPU=1`.
pub fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    GPU.get_or_init(|| {
        let opts = GpuOptions {
            allow_software: true,
            ..GpuOptions::default()
        };
        match Gpu::new(&opts) {
            Ok(g) => Some(Arc::new(g)),
            Err(e) => {
                if std::env::var("LOCALGLM_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                    panic!("LOCALGLM_REQUIRE_GPU=1 but {e}");
                }
                eprintln!("SKIPPED: no GPU adapter to test on ({e})");
                None
            }
        }
    })
    .clone()
}

/// A device of its own, for tests that read its counters (the others share one and run in
/// parallel) — or that must not disturb a test that does.
pub fn own_gpu() -> Arc<Gpu> {
    Arc::new(
        Gpu::new(&GpuOptions {
            allow_software: true,
            ..GpuOptions::default()
        })
        .unwrap(),
    )
}

/// A file of `tests/fixtures`; `LOCALGLM_GLM_FIXTURES` names that folder where the test binary
/// runs away from its checkout (a lent GPU machine: `scripts/device_check.sh`).
pub fn fixture(name: &str) -> PathBuf {
    match std::env::var_os("LOCALGLM_GLM_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
    .join(name)
}

pub struct Case {
    pub name: String,
    pub tokens: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
    /// The MTP block's reference, for fixtures that have one.
    pub mtp: Option<MtpRef>,
}

/// MTP logits: `logits[i]` for the pair (h_i, t_{i+1}) of the prompt; `chain_logits[j]` after
/// drafting `chain[..=j]` from the end of the prompt.
pub struct MtpRef {
    pub logits: Vec<Vec<f32>>,
    pub chain: Vec<u32>,
    pub chain_logits: Vec<Vec<f32>>,
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

pub fn cases(stem: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.ref.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            tokens: ids(&c["tokens"]),
            logits: rows(&c["logits"]),
            mtp: c.get("mtp").map(|m| MtpRef {
                logits: rows(&m["logits"]),
                chain: ids(&m["chain"]),
                chain_logits: rows(&m["chain_logits"]),
            }),
        })
        .collect()
}

/// The logits of every position of `tokens` from one prefill, and from a prefill of the first
/// third then one token at a time (the cache checked to hold them all).
pub fn prefill_and_decode(
    model: &localglm_glm::Model,
    tokens: &[u32],
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    use localglm_glm::Logits;
    let full = model
        .forward(tokens, &mut model.new_cache(), Logits::All)
        .unwrap();
    let split = tokens.len() / 3;
    let mut cache = model.new_cache();
    let mut got = model
        .forward(&tokens[..split], &mut cache, Logits::All)
        .unwrap();
    for t in &tokens[split..] {
        got.extend(model.forward(&[*t], &mut cache, Logits::Last).unwrap());
    }
    assert_eq!(cache.len(), tokens.len());
    (full, got)
}

pub fn argmax(v: &[f32]) -> usize {
    localglm_glm::sampler::argmax(v) as usize
}

/// (max |Δ| over all positions and logits, positions whose argmax differs)
pub fn compare(got: &[Vec<f32>], want: &[Vec<f32>]) -> (f32, usize) {
    assert_eq!(got.len(), want.len());
    let mut max = 0f32;
    let mut bad = 0;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len());
        for (a, b) in g.iter().zip(w) {
            max = max.max((a - b).abs());
        }
        if argmax(g) != argmax(w) {
            bad += 1;
        }
    }
    (max, bad)
}
