//! The GLM runtime on the GPU backend (wgpu; lavapipe in CI) against the same Hugging Face
//! `transformers` references as the CPU runtime, with the same tolerances as its exact mode
//! (the GPU products are f32 on block-decoded weights): the f32 fixture and the IQ2_XXS /
//! IQ3_S / Q4_K-expert variants, short (dense) and long (sparse indexer) prompts; prefill then
//! decode equals one prefill, with f32 and q8_0 caches; and hybrid placement — the routed
//! experts of the first N MoE layers on the CPU — equals all-GPU equals CPU.
//!
//! Without any adapter the tests say so and pass, unless `LOCALGLM_REQUIRE_GPU=1`.

use localglm_glm::{GpuPlacement, KvType, Logits, Model, RuntimeOptions};
use localglm_gpu::Gpu;
use localglm_quants::Activations;
use std::sync::Arc;

mod common;
use common::{cases, compare, fixture, gpu, own_gpu, prefill_and_decode, Case};

fn open(stem: &str, kv_type: KvType, placement: Option<GpuPlacement>) -> Model {
    Model::open(
        fixture(&format!("{stem}.gguf")),
        RuntimeOptions {
            activations: Activations::F32,
            kv_type,
            gpu: placement,
            ..Default::default()
        },
    )
    .unwrap()
}

fn on_gpu(gpu: &Arc<Gpu>, cpu_moe: usize) -> Option<GpuPlacement> {
    Some(GpuPlacement {
        gpu: gpu.clone(),
        cpu_moe,
        progress: None,
        separate_weights: false,
    })
}

#[test]
fn every_fixture_matches_transformers_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    for stem in ["tiny-f32", "tiny-q-iq2_xxs", "tiny-q-iq3_s", "tiny-q-q4_k"] {
        let model = open(stem, KvType::F32, on_gpu(&gpu, 0));
        let (adapter, bytes, cpu_moe) = model.gpu_placement().unwrap();
        assert_eq!(cpu_moe, 0);
        assert!(bytes > 0);
        let all = cases(stem);
        assert!(all.iter().any(|c| c.tokens.len() > model.config.idx_topk));
        for Case {
            name,
            tokens,
            logits: want,
            ..
        } in all
        {
            let mut cache = model.new_cache();
            let got = model.forward(&tokens, &mut cache, Logits::All).unwrap();
            let (diff, bad) = compare(&got, &want);
            eprintln!(
                "{stem} {name} ({} tokens) on {}: max |Δlogit| = {diff:.2e}, argmax misses {bad}",
                tokens.len(),
                adapter.name
            );
            assert!(diff <= 1e-3, "{stem} {name}: {diff}");
            assert_eq!(bad, 0, "{stem} {name}");
        }
    }
}

/// A prompt longer than one device pass (here 5 tokens a pass; by default as many as keep
/// the attention scores within 256 MiB) runs as consecutive passes over the growing cache:
/// the same `transformers` logits, every position, the sparse indexer's selection included.
#[test]
fn a_prompt_in_several_device_passes_matches_transformers() {
    let Some(gpu) = gpu() else { return };
    let stem = "tiny-q-q4_k";
    let model = Model::open(
        fixture(&format!("{stem}.gguf")),
        RuntimeOptions {
            activations: Activations::F32,
            kv_type: KvType::F32,
            gpu: on_gpu(&gpu, 0),
            device_chunk: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let Case {
        tokens,
        logits: want,
        ..
    } = cases(stem)
        .into_iter()
        .max_by_key(|c| c.tokens.len())
        .unwrap();
    assert!(tokens.len() > 5 && tokens.len() > model.config.idx_topk);
    let got = model
        .forward(&tokens, &mut model.new_cache(), Logits::All)
        .unwrap();
    let (diff, bad) = compare(&got, &want);
    eprintln!(
        "{} tokens in passes of 5: max |Δlogit| = {diff:.2e}",
        tokens.len()
    );
    assert!(diff <= 1e-3, "{diff}");
    assert_eq!(bad, 0);
    // Only the last position's logits when asked for the last.
    let last = model
        .forward(&tokens, &mut model.new_cache(), Logits::Last)
        .unwrap();
    assert_eq!(last.len(), 1);
    assert!(compare(&last, &want[want.len() - 1..]).0 <= 1e-3);
}

#[test]
fn prefill_then_decode_equals_one_prefill_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    for (stem, kv) in [
        ("tiny-f32", KvType::F32),
        ("tiny-q-q4_k", KvType::F32),
        ("tiny-f32", KvType::Q8_0),
    ] {
        let model = open(stem, kv, on_gpu(&gpu, 0));
        for Case { name, tokens, .. } in cases(stem) {
            let (full, got) = prefill_and_decode(&model, &tokens);
            let (diff, bad) = compare(&got, &full);
            assert!(diff <= 1e-4, "{stem} {name} {kv:?}: {diff}");
            assert_eq!(bad, 0);
        }
    }
}

/// Experts of the first N MoE layers on the CPU (exact mode), the rest on the GPU: the same
/// logits as all-GPU and as all-CPU, to f32 rounding. The upload reports its progress, tensor
/// by tensor, to its total — which shrinks as more experts stay in RAM.
#[test]
fn hybrid_placement_equals_all_gpu_equals_cpu() {
    let Some(gpu) = gpu() else { return };
    let stem = "tiny-q-q4_k";
    let cpu = open(stem, KvType::F32, None);
    let n_moe = (0..cpu.config.n_layer)
        .filter(|&i| cpu.config.is_moe_layer(i))
        .count();
    assert!(n_moe >= 2, "the fixture has {n_moe} MoE layers");
    let Case { tokens, .. } = cases(stem).pop().unwrap();
    let want = cpu
        .forward(&tokens, &mut cpu.new_cache(), Logits::All)
        .unwrap();
    let mut last_total = u64::MAX;
    for cpu_moe in [0, 1, n_moe] {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let placement = GpuPlacement {
            progress: Some(Arc::new(move |done, total| {
                log.lock().unwrap().push((done, total))
            })),
            ..on_gpu(&gpu, cpu_moe).unwrap()
        };
        let model = open(stem, KvType::F32, Some(placement));
        assert_eq!(model.gpu_placement().unwrap().2, cpu_moe);
        let seen = seen.lock().unwrap().clone();
        let total = seen[0].1;
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0 && w[1].1 == total));
        assert_eq!(seen.last().unwrap().0, total);
        assert!(total < last_total, "experts in RAM are not uploaded");
        last_total = total;
        let got = model
            .forward(&tokens, &mut model.new_cache(), Logits::All)
            .unwrap();
        let (diff, bad) = compare(&got, &want);
        eprintln!(
            "experts of {cpu_moe} of {n_moe} MoE layers on the CPU: max |Δ| vs CPU {diff:.2e}"
        );
        assert!(diff <= 1e-4, "cpu_moe {cpu_moe}: {diff}");
        assert_eq!(bad, 0);
    }
}

/// All the weight work of one decoded token goes to the GPU: dispatches are counted, and
/// the weight bytes read are at least the active weights (experts of k of n, all else whole).
#[test]
fn a_decoded_token_runs_its_weight_products_on_the_gpu() {
    if gpu().is_none() {
        return;
    }
    let gpu = own_gpu();
    let model = open("tiny-q-q4_k", KvType::F16, on_gpu(&gpu, 0));
    let mut cache = model.new_cache();
    // Past the indexer's top-k, so its query and weight products run too.
    let prompt: Vec<u32> = (1..=model.config.idx_topk as u32 + 4).collect();
    model.forward(&prompt, &mut cache, Logits::Last).unwrap();
    let before = gpu.counters();
    model.forward(&[4], &mut cache, Logits::Last).unwrap();
    let d = gpu.counters().since(&before);
    assert!(d.dispatches > 0);
    let rest = model.bytes_per_token().saturating_sub(d.weight_bytes);
    eprintln!(
        "one token: {} dispatches, {} submissions, {} weight bytes read on the GPU (model's \
         active weights {}, the difference {rest} being the embedding row and the norms, \
         read on the CPU)",
        d.dispatches,
        d.submissions,
        d.weight_bytes,
        model.bytes_per_token()
    );
    assert!(d.weight_bytes <= model.bytes_per_token());
    // One submission for the token, the indexer's selection included; only the logits return.
    assert_eq!(d.submissions, 1, "{d:?}");
    assert_eq!(d.readback_bytes, 4 * model.config.vocab as u64, "{d:?}");
    // Everything but the embedding row and the norm vectors and biases (f32, on the CPU).
    let norms: u64 = model
        .gguf()
        .tensors()
        .iter()
        .filter(|t| t.name.contains("norm") || t.name.ends_with(".bias"))
        .map(|t| t.size_bytes)
        .sum();
    assert!(
        rest <= norms + 4096,
        "{rest} bytes of weights not read on the GPU"
    );
}

/// Weights stacked into one device weight (the default where the device copies weights: each
/// FFN's gate and up, each MLA layer's q_a, kv_a and indexer key) and kept apart (as on a
/// device that reads the file in place) give the same logits, prefill and decode; stacked, a
/// decoded token needs one product fewer per FFN — the dense layers', the shared experts' and
/// the routed experts' — and per part an MLA layer's stack absorbs.
#[test]
fn stacked_weights_equal_separate_with_one_product_fewer_per_stacked_weight() {
    if gpu().is_none() {
        return;
    }
    let gpu = own_gpu();
    let mut runs = Vec::new();
    for separate_weights in [false, true] {
        let placement = GpuPlacement {
            separate_weights,
            ..on_gpu(&gpu, 0).unwrap()
        };
        let model = open("tiny-q-q4_k", KvType::F32, Some(placement));
        let mut cache = model.new_cache();
        let prompt = model
            .forward(&[1, 2, 3, 4, 5], &mut cache, Logits::All)
            .unwrap();
        let before = gpu.counters();
        let token = model.forward(&[6], &mut cache, Logits::Last).unwrap();
        let d = gpu.counters().since(&before);
        let c = &model.config;
        let moe = (0..c.n_layer).filter(|&i| c.is_moe_layer(i)).count();
        let ffns = c.n_layer + moe * usize::from(c.n_expert_shared > 0);
        // q_a with kv_a on every layer, and the indexer's key on a full one (all Q8_0 here).
        let attention = c.n_layer + c.indexer_full.iter().filter(|&&f| f).count();
        runs.push((
            prompt,
            token,
            d.dispatches,
            d.weight_bytes,
            ffns + attention,
        ));
    }
    let (stacked, separate) = (&runs[0], &runs[1]);
    eprintln!(
        "one token: {} dispatches stacked, {} separate ({} products fewer expected)",
        stacked.2, separate.2, stacked.4
    );
    for (a, b) in [(&stacked.0, &separate.0), (&stacked.1, &separate.1)] {
        let (diff, bad) = compare(a, b);
        assert!(diff <= 1e-5, "stacked vs separate: {diff}");
        assert_eq!(bad, 0);
    }
    assert_eq!(separate.2 - stacked.2, stacked.4 as u64);
    assert_eq!(stacked.3, separate.3, "the same weight bytes");
}

/// Within the indexer's top-k the whole token is one submission in one compute pass that
/// allocates nothing and, once a token has run, creates no bind groups either; only the
/// logits come back.
#[test]
fn a_decoded_token_is_one_submission_within_the_indexers_top_k() {
    if gpu().is_none() {
        return;
    }
    let gpu = own_gpu();
    let model = open("tiny-q-iq2_xxs", KvType::F16, on_gpu(&gpu, 0));
    let mut cache = model.new_cache();
    model.forward(&[1, 2, 3], &mut cache, Logits::Last).unwrap();
    model.forward(&[4], &mut cache, Logits::Last).unwrap();
    let before = gpu.counters();
    model.forward(&[5], &mut cache, Logits::Last).unwrap();
    let d = gpu.counters().since(&before);
    eprintln!("one token: {d:?}");
    assert_eq!(d.submissions, 1);
    assert_eq!(d.passes, 1, "{d:?}");
    assert_eq!(d.bind_groups, 0, "{d:?}");
    assert_eq!(d.readback_bytes, 4 * model.config.vocab as u64);
    // Scratch, cache rows and the read-back buffer are reused: nothing is allocated.
    assert_eq!(d.allocations, 0);
}

/// With the experts of N MoE layers in RAM, a decoded token waits for the GPU once per such
/// layer (its router logits and activations read back together; the shared expert stays on
/// the device) plus once for the logits.
#[test]
fn a_hybrid_token_waits_once_per_layer_with_experts_in_ram() {
    if gpu().is_none() {
        return;
    }
    let gpu = own_gpu();
    for cpu_moe in [1, 2] {
        let model = open("tiny-q-q4_k", KvType::F16, on_gpu(&gpu, cpu_moe));
        let mut cache = model.new_cache();
        model.forward(&[1, 2, 3], &mut cache, Logits::Last).unwrap();
        let before = gpu.counters();
        model.forward(&[4], &mut cache, Logits::Last).unwrap();
        let d = gpu.counters().since(&before);
        eprintln!("experts of {cpu_moe} layers in RAM, one token: {d:?}");
        assert_eq!(d.submissions, cpu_moe as u64 + 1, "{d:?}");
    }
}

/// f16 / bf16 / q8_0 caches on the device: the same bounds as the CPU runtime's test.
#[test]
fn half_precision_kv_caches_on_the_gpu_stay_close() {
    let Some(gpu) = gpu() else { return };
    for kv in [KvType::F16, KvType::BF16, KvType::Q8_0] {
        let model = open("tiny-f32", kv, on_gpu(&gpu, 0));
        for Case {
            name,
            tokens,
            logits: want,
            ..
        } in cases("tiny-f32")
        {
            let got = model
                .forward(&tokens, &mut model.new_cache(), Logits::All)
                .unwrap();
            let (diff, bad) = compare(&got, &want);
            eprintln!(
                "tiny-f32 {name} {kv:?} cache on the GPU: max {diff:.2e}, argmax misses {bad}"
            );
            if tokens.len() <= model.config.idx_topk {
                assert!(diff < 0.05, "{kv:?}: {diff}");
            } else {
                let agree = 1.0 - bad as f32 / tokens.len() as f32;
                let a = if kv == KvType::Q8_0 { 0.85 } else { 0.9 };
                assert!(agree >= a, "{kv:?}: agreement {agree}");
            }
        }
    }
}

/// Prompt-cache reuse on the device: a cache forked at a shared prefix (`KvCache::fork`
/// copies the device rows) continues exactly like a cache that computed that prefix itself,
/// and the cache it was forked from is untouched (both go on to the same logits as fresh
/// passes).
#[test]
fn a_forked_device_cache_continues_like_the_original() {
    let Some(gpu) = gpu() else { return };
    let stem = "tiny-q-q4_k";
    for kv in [KvType::F32, KvType::Q8_0] {
        let model = Model::open(
            fixture(&format!("{stem}.gguf")),
            RuntimeOptions {
                activations: Activations::F32,
                kv_type: kv,
                gpu: on_gpu(&gpu, 0),
                ..Default::default()
            },
        )
        .unwrap();
        let tokens = cases(stem)
            .into_iter()
            .max_by_key(|c| c.tokens.len())
            .unwrap()
            .tokens;
        let split = tokens.len() / 2;
        let fresh = |prefix: &[u32], rest: &[u32]| {
            let mut c = model.new_cache();
            model.forward(prefix, &mut c, Logits::Last).unwrap();
            model.forward(rest, &mut c, Logits::All).unwrap()
        };
        // The original holds the whole prompt; the fork takes its first half.
        let mut original = model.new_cache();
        model.forward(&tokens, &mut original, Logits::Last).unwrap();
        let mut forked = original.fork(split).unwrap();
        assert!(forked.bytes() > 0 && forked.len() == split);
        let other: Vec<u32> = tokens[split..].iter().rev().copied().collect();
        let got = model.forward(&other, &mut forked, Logits::All).unwrap();
        let (diff, bad) = compare(&got, &fresh(&tokens[..split], &other));
        assert!(diff <= 1e-4 && bad == 0, "{kv:?} fork: {diff}, {bad}");
        // The original still holds its own second half.
        let next = [tokens[0], tokens[1]];
        let got = model.forward(&next, &mut original, Logits::All).unwrap();
        let (diff, bad) = compare(&got, &fresh(&tokens, &next));
        assert!(diff <= 1e-4 && bad == 0, "{kv:?} original: {diff}, {bad}");
    }
}

/// The fast mode (the default, `Activations::Int8`) on a device with matrix units runs a
/// prompt's products on them — f16 copies of the decoded weights and of the activations, f32
/// sums — and stays close to `transformers`: within 2e-2 (10× what was measured, 4.8e-3 at
/// most, on Mesa 26's lavapipe; the exact mode's bound is 1e-3) with every argmax equal. The
/// CPU's fast mode (int8 activations) is held only to 0.1 at the first position
/// (`reference.rs`). On an adapter without matrix units this runs the f32 kernels (within the
/// same bounds) and says so; `LOCALGLM_REQUIRE_COOP=1` makes that a failure.
#[test]
fn the_fast_mode_runs_a_prompt_on_the_matrix_units_and_stays_close() {
    let Some(_) = gpu() else { return };
    let gpu = own_gpu();
    if gpu.matrix_size().is_none() {
        let why = format!("{} has no matrix units", gpu.adapter().name);
        assert!(
            std::env::var("LOCALGLM_REQUIRE_COOP").map_or(true, |v| v != "1"),
            "LOCALGLM_REQUIRE_COOP=1 but {why}"
        );
        eprintln!("{why}: the fast mode ran on the f32 kernels");
    }
    for stem in ["tiny-q-iq2_xxs", "tiny-q-iq3_s", "tiny-q-q4_k"] {
        let model = Model::open(
            fixture(&format!("{stem}.gguf")),
            RuntimeOptions {
                kv_type: KvType::F32,
                gpu: on_gpu(&gpu, 0),
                ..Default::default()
            },
        )
        .unwrap();
        for Case {
            name,
            tokens,
            logits: want,
            ..
        } in cases(stem)
        {
            let before = gpu.counters();
            let got = model
                .forward(&tokens, &mut model.new_cache(), Logits::All)
                .unwrap();
            let on_matrices = gpu.counters().since(&before).matrix_products;
            let (diff, bad) = compare(&got, &want);
            eprintln!(
                "{stem} {name} ({} tokens), fast mode: max |Δlogit| = {diff:.2e}, argmax misses \
                 {bad}, {on_matrices} products on the matrix units",
                tokens.len()
            );
            assert!(diff <= 2e-2, "{stem} {name}: {diff}");
            assert_eq!(bad, 0, "{stem} {name}");
            if gpu.matrix_size().is_some() && tokens.len() >= 16 {
                assert!(
                    on_matrices > 0,
                    "{stem} {name}: no product on the matrix units"
                );
            }
        }
    }
}
