//! The MTP (NextN) block and speculative decoding on the tiny `glm-dsa` fixture that has one
//! (`tiny-f32`, `blk.6`): its logits against the Python reference built around `transformers`'
//! decoder layer (`scripts/make_glm_fixtures.py`), greedy generation with drafting equal to
//! generation without, the sampled distribution unchanged by drafting, and caches after
//! rejected drafts equal to caches that never drafted — on the CPU, and the logits and greedy
//! drafting on the GPU backend (lavapipe in CI) too.

use localglm_glm::sampler::{Sampler, SamplerConfig};
use localglm_glm::spec::{Decoder, Drafting};
use localglm_glm::{GpuPlacement, KvCache, KvType, Logits, Model, RuntimeOptions};
use localglm_quants::Activations;

mod common;
use common::{cases, compare, fixture, gpu, own_gpu};

fn open(activations: Activations, kv_type: KvType, mtp: bool) -> Model {
    Model::open(
        fixture("tiny-f32.gguf"),
        RuntimeOptions {
            activations,
            kv_type,
            mtp,
            ..Default::default()
        },
    )
    .unwrap()
}

fn greedy() -> Sampler {
    Sampler::new(SamplerConfig {
        temperature: 0.0,
        ..Default::default()
    })
}

/// One prefill of `prompt`, then draft steps on `chain`: the cache and each step's logits.
fn prefill_and_draft(model: &Model, prompt: &[u32], chain: &[u32]) -> (KvCache, Vec<Vec<f32>>) {
    let mut cache = model.new_cache();
    model.forward(prompt, &mut cache, Logits::Last).unwrap();
    let rows = chain
        .iter()
        .map(|&t| model.mtp_step(&mut cache, t).unwrap())
        .collect();
    (cache, rows)
}

/// Tolerance of the exact (f32 activations) model against the reference, as the trunk's.
const TOL: f32 = 1e-3;

#[test]
fn mtp_logits_match_the_reference_token_by_token_in_one_prefill_and_along_a_draft_chain() {
    let model = open(Activations::F32, KvType::F32, true);
    assert!(model.has_mtp());
    for case in cases("tiny-f32") {
        let r = case.mtp.as_ref().expect("tiny-f32 has MTP references");
        let n = case.tokens.len();
        assert_eq!(r.logits.len(), n - 1);

        // Token by token: after feeding t_0..t_i, a draft step on t_{i+1} gives row i (the
        // block's cache for the earlier pairs comes from the trunk passes).
        let mut cache = model.new_cache();
        let mut got = Vec::new();
        for i in 0..n - 1 {
            model
                .forward(&case.tokens[i..=i], &mut cache, Logits::Last)
                .unwrap();
            assert!(model.can_draft(&cache));
            got.push(model.mtp_step(&mut cache, case.tokens[i + 1]).unwrap());
            model.mtp_rewind(&mut cache);
        }
        let (diff, bad) = compare(&got, &r.logits);
        eprintln!(
            "{} token by token: max |Δ| {diff:.2e}, argmax misses {bad}",
            case.name
        );
        assert!(diff <= TOL && bad == 0, "{}: {diff} / {bad}", case.name);

        // One prefill (in passes of 7 on the way: the block catches up across passes), then
        // the draft chain.
        for chunk in [0, 7] {
            let model = Model::open(
                fixture("tiny-f32.gguf"),
                RuntimeOptions {
                    activations: Activations::F32,
                    kv_type: KvType::F32,
                    mtp: true,
                    device_chunk: chunk,
                    ..Default::default()
                },
            )
            .unwrap();
            let (mut cache, chain) = prefill_and_draft(&model, &case.tokens, &r.chain);
            let (diff, bad) = compare(&chain, &r.chain_logits);
            eprintln!(
                "{} chain after one prefill (pass {chunk}): max |Δ| {diff:.2e}, misses {bad}",
                case.name
            );
            assert!(diff <= TOL && bad == 0, "{}: {diff} / {bad}", case.name);
            // Rewound, the same chain again gives the same rows.
            model.mtp_rewind(&mut cache);
            let again = model.mtp_step(&mut cache, r.chain[0]).unwrap();
            assert_eq!(again, chain[0]);
        }
    }
}

#[test]
fn the_quantized_activation_path_stays_close_and_a_model_without_the_block_does_not_draft() {
    let model = open(Activations::Int8, KvType::F16, true);
    let case = cases("tiny-f32").pop().unwrap();
    let r = case.mtp.unwrap();
    let (_, chain) = prefill_and_draft(&model, &case.tokens, &r.chain);
    let (diff, _) = compare(&chain, &r.chain_logits);
    eprintln!("int8 activations, f16 KV: chain max |Δ| {diff:.2e}");
    assert!(diff < 0.1, "{diff}");

    let plain = open(Activations::F32, KvType::F32, false);
    assert!(!plain.has_mtp());
    let mut cache = plain.new_cache();
    plain
        .forward(&case.tokens, &mut cache, Logits::Last)
        .unwrap();
    assert!(!plain.can_draft(&cache));
    assert!(plain.mtp_step(&mut cache, 1).is_err());
}

/// Generates at least `n` tokens after `prompt` on `cache` (which may already hold a prefix of
/// it); returns all of them (the cache holds all but the last).
fn generate(
    model: &Model,
    cache: &mut KvCache,
    prompt: &[u32],
    n: usize,
    draft: Drafting,
    sampler: Sampler,
) -> (Vec<u32>, localglm_glm::spec::DraftStats) {
    let mut dec = Decoder::new(model, sampler, draft);
    let draft = match draft {
        Drafting::Fixed(k) => k,
        Drafting::Auto => localglm_glm::spec::MAX_AUTO_DRAFT,
    };
    let mut history = prompt.to_vec();
    let mut pending = prompt[cache.len()..].to_vec();
    let mut out = Vec::new();
    while out.len() < n {
        let got = dec.step(cache, &history, &pending).unwrap();
        assert!(!got.is_empty() && got.len() <= draft + 1);
        history.extend_from_slice(&got);
        out.extend_from_slice(&got);
        pending = vec![*got.last().unwrap()];
        assert_eq!(cache.len() + 1, history.len());
    }
    (out, dec.stats)
}

#[test]
fn greedy_generation_with_1_2_and_3_drafts_equals_generation_without() {
    let prompt = cases("tiny-f32").remove(0).tokens;
    for kv in [KvType::F16, KvType::Q8_0] {
        let model = open(Activations::Int8, kv, true);
        let n = 240;
        let (want, _) = generate(
            &model,
            &mut model.new_cache(),
            &prompt,
            n,
            Drafting::Fixed(0),
            greedy(),
        );
        for draft in [1, 2, 3]
            .map(Drafting::Fixed)
            .into_iter()
            .chain([Drafting::Auto])
        {
            let mut cache = model.new_cache();
            let (got, stats) = generate(&model, &mut cache, &prompt, n, draft, greedy());
            eprintln!(
                "{kv:?} draft {draft}: {} rounds, {}/{} accepted",
                stats.rounds, stats.accepted, stats.drafted
            );
            // (Auto's rounds follow measured timings: on this tiny model a verification
            // costs about one decode step, so it keeps drafting at low acceptance.)
            assert!(stats.rounds > 0);
            assert_eq!(got[..n], want[..n], "{kv:?}, {draft} drafts");

            // After a reused prefix (the prompt cache cuts a kept cache back to a shared
            // prefix, possibly one token further): the same continuation again.
            let mut history = prompt.clone();
            history.extend_from_slice(&got[..100]);
            cache.truncate(history.len() - 3);
            assert!(cache.len() >= history.len() - 4);
            let (more, _) = generate(&model, &mut cache, &history, 100, draft, greedy());
            assert_eq!(
                more[..100],
                want[100..200],
                "{kv:?}, {draft} drafts after a cut"
            );
        }
    }
}

#[test]
fn caches_after_rejected_drafts_equal_caches_that_never_drafted() {
    let model = open(Activations::F32, KvType::F32, true);
    let prompt = cases("tiny-f32").remove(0).tokens;
    let sampler = || {
        Sampler::new(SamplerConfig {
            temperature: 1.0,
            seed: 5,
            ..Default::default()
        })
    };
    let mut cache = model.new_cache();
    let (got, stats) = generate(
        &model,
        &mut cache,
        &prompt,
        60,
        Drafting::Fixed(3),
        sampler(),
    );
    // Random weights: the block rarely agrees with the trunk, so most drafts were rejected.
    assert!(stats.accepted < stats.drafted, "{stats:?}");
    let mut all = prompt.clone();
    all.extend_from_slice(&got);
    // The cache holds everything but the last token; a following prefill on it gives the
    // logits (and MTP logits) of one prefill over everything.
    let tail = [3u32, 141, 59, 26];
    let mut fresh = model.new_cache();
    model
        .forward(&all[..all.len() - 1], &mut fresh, Logits::Last)
        .unwrap();
    let mut next = vec![*all.last().unwrap()];
    next.extend_from_slice(&tail);
    let a = model.forward(&next, &mut cache, Logits::All).unwrap();
    let b = model.forward(&next, &mut fresh, Logits::All).unwrap();
    let (diff, _) = compare(&a, &b);
    assert!(diff < 1e-4, "trunk logits after drafting differ by {diff}");
    let a = model.mtp_step(&mut cache, 7).unwrap();
    let b = model.mtp_step(&mut fresh, 7).unwrap();
    let (diff, _) = compare(&[a], &[b]);
    assert!(diff < 1e-4, "MTP logits after drafting differ by {diff}");
}

/// With temperature, top-k, top-p, min-p and a repetition penalty, the first token a drafting
/// step returns follows the trunk's distribution (chi-square over the kept tokens).
#[test]
fn drafting_leaves_the_sampled_distribution_unchanged() {
    let model = open(Activations::F32, KvType::F32, true);
    let prompt = cases("tiny-f32").remove(0).tokens;
    let cfg = SamplerConfig {
        temperature: 1.3,
        top_k: Some(40),
        top_p: 0.98,
        min_p: 0.005,
        repetition_penalty: 1.1,
        seed: 1234,
    };
    let mut cache = model.new_cache();
    let (head, last) = prompt.split_at(prompt.len() - 1);
    model.forward(head, &mut cache, Logits::Last).unwrap();
    // The target: the sampler's distribution on the trunk's logits after the whole prompt.
    let target = {
        let mut c = model.new_cache();
        let rows = model.forward(&prompt, &mut c, Logits::Last).unwrap();
        Sampler::new(cfg.clone()).distribution(&rows[0], &prompt)
    };
    assert!(target.0.len() >= 10, "{target:?}");
    let mut dec = Decoder::new(&model, Sampler::new(cfg), Drafting::Fixed(2));
    let n = 4000;
    let mut counts = std::collections::HashMap::<u32, usize>::new();
    for _ in 0..n {
        let got = dec.step(&mut cache, &prompt, last).unwrap();
        *counts.entry(got[0]).or_default() += 1;
        cache.truncate(head.len());
        assert_eq!(cache.len(), head.len());
    }
    eprintln!("{:?}, target {target:?}, counts {counts:?}", dec.stats);
    assert!(
        dec.stats.accepted > 0,
        "some drafts must be accepted to test that path"
    );
    assert!(counts.keys().all(|t| target.p(*t) > 0.0));
    // Pearson's chi-square, bins with an expected count below 5 merged into one.
    let (mut chi2, mut bins, mut rest_e, mut rest_o) = (0.0, 0usize, 0.0, 0.0);
    for &(t, p) in &target.0 {
        let e = p as f64 * n as f64;
        let o = counts.get(&t).copied().unwrap_or(0) as f64;
        if e < 5.0 {
            rest_e += e;
            rest_o += o;
        } else {
            chi2 += (o - e) * (o - e) / e;
            bins += 1;
        }
    }
    if rest_e > 0.0 {
        chi2 += (rest_o - rest_e) * (rest_o - rest_e) / rest_e.max(1e-9);
        bins += 1;
    }
    // The 99.9th percentile of chi-square with bins − 1 degrees of freedom (Wilson–Hilferty).
    let df = (bins - 1) as f64;
    let a = 2.0 / (9.0 * df);
    let limit = df * (1.0 - a + 3.09 * a.sqrt()).powi(3);
    eprintln!("chi-square {chi2:.2} over {bins} bins (99.9 % limit {limit:.1})");
    assert!(
        chi2 < limit,
        "chi-square {chi2} over {bins} bins, limit {limit}"
    );
}

/// A cache cut far back keeps one token fewer (its MTP input row is gone) and the block's pair
/// for the dropped token: re-fed the same token, it drafts exactly as a fresh cache does; fed
/// another token, the stale pair is never used.
#[test]
fn a_cut_cache_drafts_as_a_fresh_one_or_not_at_all() {
    let model = open(Activations::F32, KvType::F32, true);
    let prompt = cases("tiny-f32").pop().unwrap().tokens;
    assert!(prompt.len() > 30);
    for other in [false, true] {
        let mut cache = model.new_cache();
        model.forward(&prompt, &mut cache, Logits::Last).unwrap();
        // Within top-k keys throughout, so the block attends to every pair (dense).
        cache.truncate(5);
        assert_eq!(cache.len(), 4, "the row at 4 is not kept: one token fewer");
        let mut next = prompt[..7].to_vec();
        if other {
            next[4] = next[4] % 100 + 1;
        }
        model.forward(&next[4..], &mut cache, Logits::Last).unwrap();
        let mut fresh = model.new_cache();
        model.forward(&next, &mut fresh, Logits::Last).unwrap();
        assert!(model.can_draft(&fresh));
        if !other {
            assert!(model.can_draft(&cache));
        }
        if model.can_draft(&cache) {
            let a = model.mtp_step(&mut cache, 5).unwrap();
            let b = model.mtp_step(&mut fresh, 5).unwrap();
            let (diff, _) = compare(&[a], &[b]);
            assert!(
                diff < 1e-4,
                "other token {other}: MTP logits differ by {diff}"
            );
        }
    }
}

/// The block on the GPU backend, its experts on the device or (with every MoE layer's experts
/// in RAM) on the CPU: logits along a draft chain against the reference, with the exact mode's
/// tolerance (the device computes in f32), and greedy drafting that gives exactly the tokens of
/// no drafting, from a fresh prompt and after a cut, with f16 and q8_0 caches.
#[test]
fn on_the_gpu_the_block_matches_the_reference_and_greedy_drafting_changes_nothing() {
    let Some(gpu) = gpu() else { return };
    let on_gpu = |kv_type, cpu_moe| {
        let placement = GpuPlacement {
            gpu: gpu.clone(),
            cpu_moe,
            progress: None,
            separate_weights: false,
        };
        Model::open(
            fixture("tiny-f32.gguf"),
            RuntimeOptions {
                activations: Activations::F32,
                kv_type,
                mtp: true,
                gpu: Some(placement),
                ..Default::default()
            },
        )
        .unwrap()
    };
    for cpu_moe in [0, 99] {
        let model = on_gpu(KvType::F32, cpu_moe);
        assert!(model.has_mtp() && model.gpu_placement().is_some());
        for case in cases("tiny-f32") {
            let r = case.mtp.as_ref().expect("tiny-f32 has MTP references");
            let (_, chain) = prefill_and_draft(&model, &case.tokens, &r.chain);
            let (diff, bad) = compare(&chain, &r.chain_logits);
            eprintln!(
                "GPU, experts of {cpu_moe} layers in RAM, {}: chain max |Δ| {diff:.2e}, misses {bad}",
                case.name
            );
            assert!(diff <= TOL && bad == 0, "{}: {diff} / {bad}", case.name);
        }
    }
    // A decoded token reads back its logits and the final-norm row the block needs together,
    // and the block's catch-up on the new pair reads nothing (one wait in all).
    let model = on_gpu(KvType::F16, 0);
    let mut cache = model.new_cache();
    model.forward(&[1, 2, 3], &mut cache, Logits::Last).unwrap();
    model.forward(&[4], &mut cache, Logits::Last).unwrap();
    let before = gpu.counters();
    model.forward(&[5], &mut cache, Logits::Last).unwrap();
    let d = gpu.counters().since(&before);
    let c = &model.config;
    assert_eq!(d.readback_bytes, 4 * (c.vocab + c.n_embd) as u64, "{d:?}");
    assert!(d.submissions <= 2, "{d:?}");
    // A copy of the whole cache (the block's device cache is a row behind the trunk's: after
    // 65 tokens one buffer row short) continues like the original, drafting included.
    let mut cache = model.new_cache();
    let long: Vec<u32> = (1..=65).collect();
    model.forward(&long, &mut cache, Logits::Last).unwrap();
    let mut copy = cache.fork(cache.len()).unwrap();
    assert!(model.can_draft(&copy));
    let want = model.forward(&[6], &mut cache, Logits::Last).unwrap();
    assert_eq!(model.forward(&[6], &mut copy, Logits::Last).unwrap(), want);
    assert_eq!(
        model.mtp_step(&mut copy, 7).unwrap(),
        model.mtp_step(&mut cache, 7).unwrap()
    );

    // (Shorter than the CPU's 240 tokens: lavapipe runs a debug build's passes slowly.)
    let prompt = cases("tiny-f32").remove(0).tokens;
    let (n, cut) = (100, 50);
    let mut accepted = 0;
    for (kv, cpu_moe, drafts) in [(KvType::F16, 0, &[1, 3][..]), (KvType::Q8_0, 99, &[2])] {
        let model = on_gpu(kv, cpu_moe);
        let plain = Drafting::Fixed(0);
        let (want, _) = generate(&model, &mut model.new_cache(), &prompt, n, plain, greedy());
        for &k in drafts {
            let mut cache = model.new_cache();
            let draft = Drafting::Fixed(k);
            let (got, stats) = generate(&model, &mut cache, &prompt, n, draft, greedy());
            eprintln!(
                "GPU {kv:?}, experts of {cpu_moe} layers in RAM, draft {k}: {}/{} accepted",
                stats.accepted, stats.drafted
            );
            accepted += stats.accepted;
            assert_eq!(got[..n], want[..n], "{kv:?}, {cpu_moe}, {k} drafts");
            let mut history = prompt.clone();
            history.extend_from_slice(&got[..cut]);
            cache.truncate(history.len() - 3);
            let (more, _) = generate(&model, &mut cache, &history, n - cut, draft, greedy());
            assert_eq!(
                more[..n - cut],
                want[cut..n],
                "{kv:?}, {k} drafts after a cut"
            );
        }
    }
    // (This random-weight model's drafts are rarely right, but some are.)
    assert!(accepted > 0);
}

/// A Q8_0 copy of `tiny-f32` in `dir`: every weight whose rows are whole blocks (the router,
/// norms, biases and the 16-wide per-head matrices stay F32), so that the int8 activation path
/// runs in the trunk and the block.
fn q8_copy(dir: &std::path::Path) -> std::path::PathBuf {
    use localglm_gguf::{writer::GgufWriter, GgufModel};
    use localglm_quants::GgmlType;
    let src = GgufModel::open(fixture("tiny-f32.gguf")).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        w.kv(k, v.clone());
    }
    for t in src.tensors() {
        let bytes = src.tensor_bytes(t);
        let weight = t.dims.len() >= 2 && !t.name.contains("ffn_gate_inp");
        if t.ty == GgmlType::F32 && weight && t.dims[0] % 32 == 0 {
            let xs: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let mut q = Vec::with_capacity(xs.len() / 32 * 34);
            for block in xs.chunks_exact(32) {
                let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                let id = if d > 0.0 { 1.0 / d } else { 0.0 };
                q.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
                q.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
            }
            w.tensor(&t.name, &t.dims, GgmlType::Q8_0, q).unwrap();
        } else {
            w.tensor(&t.name, &t.dims, t.ty, bytes.to_vec()).unwrap();
        }
    }
    let path = dir.join("tiny-q8.gguf");
    w.write(&path).unwrap();
    path
}

/// With quantized weights and int8 activations (the app's default), a verification pass of
/// k+1 ≤ 4 tokens gives exactly the logits of decoding them one at a time — before, its weight
/// products took the GEMM (another activation grid) and its MLA and indexer candle matmuls
/// blocked by the number of queries, which moved int8 logits enough to flip greedy near-ties
/// (up to ~1 on the GLM bench model) — so greedy drafting changes no token there either.
#[test]
fn on_quantized_weights_verification_equals_decode_and_greedy_drafting_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::open(
        q8_copy(dir.path()),
        RuntimeOptions {
            activations: Activations::Int8,
            kv_type: KvType::F16,
            mtp: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(model.has_mtp());
    verification_equals_decode(&model, "CPU", 160, &[2, 3]);
}

/// Passes of 2–4 tokens after the first case's prompt give exactly the logits of decoding
/// them one at a time, and greedy generation of `n` tokens with each of `drafts` equals it
/// without drafting.
fn verification_equals_decode(model: &Model, what: &str, n: usize, drafts: &[usize]) {
    let prompt = cases("tiny-f32").remove(0).tokens;
    let mut cache = model.new_cache();
    model.forward(&prompt, &mut cache, Logits::Last).unwrap();
    let base = cache.len();
    let next = [5u32, 17, 42, 99];
    let mut one_by_one = Vec::new();
    for &t in &next {
        one_by_one.extend(model.forward(&[t], &mut cache, Logits::Last).unwrap());
    }
    for len in 2..=4 {
        cache.truncate(base);
        let batch = model
            .forward(&next[..len], &mut cache, Logits::All)
            .unwrap();
        for (t, (b, o)) in batch.iter().zip(&one_by_one).enumerate() {
            let worst = b
                .iter()
                .zip(o)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                b == o,
                "{what}: a pass of {len}, position {t}: max |Δ| {worst}"
            );
        }
    }
    let plain = Drafting::Fixed(0);
    let (want, _) = generate(model, &mut model.new_cache(), &prompt, n, plain, greedy());
    for &k in drafts {
        let draft = Drafting::Fixed(k);
        let (got, stats) = generate(model, &mut model.new_cache(), &prompt, n, draft, greedy());
        assert!(stats.rounds > 0);
        assert_eq!(got[..n], want[..n], "{what}: {k} drafts");
    }
}

/// The same on the GPU backend (lavapipe in CI), all on the device and with every layer's
/// experts in RAM (int8 there, the app's default): a verification pass of 2–4 tokens gives the
/// logits of decoding them one at a time exactly, and greedy drafting changes no token.
#[test]
fn on_the_gpu_with_quantized_weights_verification_equals_decode() {
    if gpu().is_none() {
        return;
    }
    // Not the shared device: the other GPU test here counts what one token reads back.
    let gpu = own_gpu();
    let dir = tempfile::tempdir().unwrap();
    let path = q8_copy(dir.path());
    for cpu_moe in [0, 99] {
        let model = Model::open(
            &path,
            RuntimeOptions {
                activations: Activations::Int8,
                kv_type: KvType::F16,
                mtp: true,
                gpu: Some(GpuPlacement {
                    gpu: gpu.clone(),
                    cpu_moe,
                    progress: None,
                    separate_weights: false,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        verification_equals_decode(
            &model,
            &format!("GPU, {cpu_moe} expert layers in RAM"),
            60,
            &[3],
        );
    }
}
