//! The device-resident pass's selection and grouped-query attention kernels against plain Rust
//! statements of their rules (the whole passes are checked against `transformers` in
//! `localglm-glm`'s `gpu_reference` and `dense` tests): per query, the top-k visible scores —
//! ties at the k-th value taken in key order — with negative scores, many ties, rows with fewer
//! visible keys than k, and long rows; causal GQA over a `[k ; v]` cache; MLA attention in
//! absorbed form, chunked, with and without the indexer's mask.

use localglm_gpu::{Gpu, GpuOptions};

mod common;

fn open() -> Option<Gpu> {
    common::open(GpuOptions::default())
}

/// The rule, stated plainly.
fn expected(scores: &[f32], n: usize, t_len: usize, p0: usize, k: usize, hidden: f32) -> Vec<f32> {
    let mut out = vec![hidden; n * t_len];
    for i in 0..n {
        let visible = (p0 + i + 1).min(t_len);
        let row = &scores[i * t_len..(i + 1) * t_len];
        let mut order: Vec<usize> = (0..visible).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &t in order.iter().take(k) {
            out[i * t_len + t] = 0.0;
        }
    }
    out
}

#[test]
fn topk_selection_matches_the_rule_with_ties_and_negatives() {
    let Some(gpu) = open() else { return };
    let hidden = -1e30;
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    for (n, t_len, p0, k, levels) in [
        (5usize, 40usize, 35usize, 8usize, 5u32), // heavy ties
        (3, 40, 0, 8, 1000),                      // early rows have < k visible keys
        (2, 3000, 2998, 2048, 7),                 // long rows, GLM's top-k, ties
        (4, 300, 296, 16, 1 << 20),               // nearly distinct, negatives
    ] {
        let scores: Vec<f32> = (0..n * t_len)
            .map(|_| (next() % levels) as f32 - (levels / 2) as f32)
            .collect();
        let s = gpu.upload_f32(&scores).unwrap();
        let m = gpu.zeros(n * t_len).unwrap();
        gpu.topk_mask(&s, 0, &m, 0, n, t_len, p0, k, hidden)
            .unwrap();
        let got = gpu.read_f32(&m).unwrap();
        let want = expected(&scores, n, t_len, p0, k, hidden);
        assert_eq!(got, want, "n {n} T {t_len} p0 {p0} k {k} levels {levels}");
    }
}

/// Grouped-query attention over a `[k ; v]` cache (stored by `kv_store` into each half of the
/// rows) against the rule in plain Rust: 6 query heads over 2 KV heads, a head width that is
/// not a multiple of the workgroup, and a context longer than one workgroup's stride (the
/// fixtures' prompts are shorter), queries at the end of it.
#[test]
fn grouped_query_attention_matches_the_rule() {
    let Some(gpu) = open() else { return };
    let (heads, kv_heads, hd, n, t_len) = (6usize, 2usize, 40usize, 3usize, 300usize);
    let p0 = t_len - n;
    let kvw = kv_heads * hd;
    let mut seed = 11u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let k: Vec<f32> = (0..t_len * kvw).map(|_| next()).collect();
    let v: Vec<f32> = (0..t_len * kvw).map(|_| next()).collect();
    let q: Vec<f32> = (0..n * heads * hd).map(|_| 2.0 * next()).collect();
    let scale = 1.0 / (hd as f32).sqrt();
    let kv = localglm_quants::KvType::F32;
    let cache = gpu.zeros(t_len * 2 * kvw).unwrap();
    let (kb, vb) = (gpu.upload_f32(&k).unwrap(), gpu.upload_f32(&v).unwrap());
    for (src, base) in [(&kb, 0), (&vb, kvw)] {
        gpu.kv_store(kv, &cache, base, 2 * kvw, 0, src, 0, kvw, t_len, kvw)
            .unwrap();
    }
    let qb = gpu.upload_f32(&q).unwrap();
    let out = gpu.zeros(n * heads * hd).unwrap();
    let scratch = gpu.zeros(n * heads * t_len).unwrap();
    gpu.attention_gqa(&localglm_gpu::GqaAttentionArgs {
        kv,
        out: &out,
        out_off: 0,
        q: &qb,
        q_off: 0,
        cache: &cache,
        key_base: 0,
        key_stride: 2 * kvw,
        v_base: kvw,
        scratch: &scratch,
        scratch_off: 0,
        n,
        heads,
        kv_heads,
        head_dim: hd,
        t_len,
        p0,
        scale,
    })
    .unwrap();
    let got = gpu.read_f32(&out).unwrap();
    let group = heads / kv_heads;
    for i in 0..n {
        let visible = p0 + i + 1;
        for h in 0..heads {
            let col = (h / group) * hd;
            let qh = &q[(i * heads + h) * hd..][..hd];
            let s: Vec<f32> = (0..visible)
                .map(|t| scale * (0..hd).map(|c| qh[c] * k[t * kvw + col + c]).sum::<f32>())
                .collect();
            let mx = s.iter().fold(f32::MIN, |a, &b| a.max(b));
            let e: Vec<f32> = s.iter().map(|x| (x - mx).exp()).collect();
            let sum: f32 = e.iter().sum();
            for c in 0..hd {
                let want: f32 = (0..visible)
                    .map(|t| e[t] * v[t * kvw + col + c])
                    .sum::<f32>()
                    / sum;
                let g = got[(i * heads + h) * hd + c];
                assert!((g - want).abs() <= 1e-5, "i {i} h {h} c {c}: {g} vs {want}");
            }
        }
    }
}

fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut seed = seed;
    move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// One MLA attention call over an f32 latent cache of `t_len` rows (`n` queries ending at the
/// cache's end, `heads` heads, the mask `[n, t_len]` if given); returns `[n, heads, lora]`.
#[allow(clippy::too_many_arguments)]
fn mla(
    gpu: &Gpu,
    cache: &[f32],
    qabs: &[f32],
    qpe: &[f32],
    mask: Option<&[f32]>,
    n: usize,
    heads: usize,
    (lora, rope): (usize, usize),
    t_len: usize,
) -> Vec<f32> {
    let kv = localglm_quants::KvType::F32;
    let cb = gpu.upload_f32(cache).unwrap();
    let (qa, qp) = (gpu.upload_f32(qabs).unwrap(), gpu.upload_f32(qpe).unwrap());
    let mb = mask.map(|m| gpu.upload_f32(m).unwrap());
    let out = gpu.zeros(n * heads * lora).unwrap();
    let scratch = gpu
        .zeros(localglm_gpu::attention_scratch_words(n, heads, lora))
        .unwrap();
    gpu.attention(&localglm_gpu::AttentionArgs {
        kv,
        out: &out,
        out_off: 0,
        qabs: &qa,
        qabs_off: 0,
        q: &qp,
        qpe_off: 0,
        qpe_token_stride: heads * rope,
        qpe_head_stride: rope,
        cache: &cb,
        key_base: 0,
        key_stride: lora + rope,
        scratch: &scratch,
        scratch_off: 0,
        mask: mb.as_ref(),
        selected: t_len,
        n,
        heads,
        t_len,
        p0: t_len - n,
        kv_lora: lora,
        rope,
        scale: 0.125,
    })
    .unwrap();
    gpu.read_f32(&out).unwrap()
}

/// MLA attention in absorbed form against the rule in plain Rust: 10 heads (a full group of 8
/// and a partial one), a latent width under the workgroup's, queries whose keys split into 3
/// and 8 chunks, and the indexer's mask keeping a scattered subset with whole tiles left out.
/// A query's output is the same bit for bit whether it runs alone (decode) or in a batch.
#[test]
fn mla_attention_matches_the_rule_in_chunks_with_and_without_the_mask() {
    let Some(gpu) = open() else { return };
    let (heads, lora, rope) = (10usize, 96usize, 32usize);
    let w = lora + rope;
    for (n, t_len, masked) in [(3usize, 700usize, false), (3, 700, true), (2, 2500, true)] {
        let mut next = lcg(t_len as u64 + n as u64);
        let cache: Vec<f32> = (0..t_len * w).map(|_| next()).collect();
        let qabs: Vec<f32> = (0..n * heads * lora).map(|_| 0.6 * next()).collect();
        let qpe: Vec<f32> = (0..n * heads * rope).map(|_| 0.6 * next()).collect();
        let p0 = t_len - n;
        // Kept: about a third of the keys, none in 64..300 (whole tiles), and the last one.
        let mask: Vec<f32> = (0..n * t_len)
            .map(|k| {
                let t = k % t_len;
                let keep = (!(64..300).contains(&t) && next() < -0.3) || t + 1 == t_len;
                if keep {
                    0.0
                } else {
                    -1e30
                }
            })
            .collect();
        let m = masked.then_some(mask.as_slice());
        let before = gpu.counters();
        let got = mla(&gpu, &cache, &qabs, &qpe, m, n, heads, (lora, rope), t_len);
        // Counted: per head group (2 here), each query's visible keys (the test's `selected`
        // is the whole cache), a whole f32 row for the scores and its latent part again.
        let loaded = gpu.counters().since(&before).kv_bytes;
        let visible: usize = (0..n).map(|i| p0 + i + 1).sum();
        assert_eq!(loaded, (2 * visible * (w + lora) * 4) as u64);
        for i in 0..n {
            let visible = p0 + i + 1;
            for h in 0..heads {
                let qa = &qabs[(i * heads + h) * lora..][..lora];
                let qp = &qpe[(i * heads + h) * rope..][..rope];
                let kept: Vec<usize> = (0..visible)
                    .filter(|&t| !masked || mask[i * t_len + t] == 0.0)
                    .collect();
                let s: Vec<f32> = kept
                    .iter()
                    .map(|&t| {
                        let row = &cache[t * w..][..w];
                        let d: f32 = (0..lora).map(|c| qa[c] * row[c]).sum::<f32>()
                            + (0..rope).map(|c| qp[c] * row[lora + c]).sum::<f32>();
                        0.125 * d
                    })
                    .collect();
                let mx = s.iter().fold(f32::MIN, |a, &b| a.max(b));
                let e: Vec<f32> = s.iter().map(|x| (x - mx).exp()).collect();
                let sum: f32 = e.iter().sum();
                for c in 0..lora {
                    let want: f32 = kept
                        .iter()
                        .zip(&e)
                        .map(|(&t, p)| p * cache[t * w + c])
                        .sum::<f32>()
                        / sum;
                    let g = got[(i * heads + h) * lora + c];
                    assert!(
                        (g - want).abs() <= 2e-5,
                        "n {n} T {t_len} mask {masked} i {i} h {h} c {c}: {g} vs {want}"
                    );
                }
            }
            // The same query alone, as decode runs it: the same bits.
            let t_i = p0 + i + 1;
            let one_mask: Vec<f32> = mask[i * t_len..][..t_i].to_vec();
            let alone = mla(
                &gpu,
                &cache[..t_i * w],
                &qabs[i * heads * lora..][..heads * lora],
                &qpe[i * heads * rope..][..heads * rope],
                masked.then_some(one_mask.as_slice()),
                1,
                heads,
                (lora, rope),
                t_i,
            );
            let batch = &got[i * heads * lora..][..heads * lora];
            assert!(
                alone
                    .iter()
                    .zip(batch)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "n {n} T {t_len} mask {masked}: query {i} alone differs from its batch"
            );
        }
    }
}
