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

/// MLA attention in absorbed form against the rule in plain Rust: 20 heads (a full group of 16
/// and a partial one), a latent width under the workgroup's, queries whose keys split into 3
/// and 8 chunks, and the indexer's mask keeping a scattered subset with a whole tile left out.
/// A query's output is the same bit for bit whether it runs alone (decode) or in a batch.
#[test]
fn mla_attention_matches_the_rule_in_chunks_with_and_without_the_mask() {
    let Some(gpu) = open() else { return };
    let (heads, lora, rope) = (20usize, 96usize, 32usize);
    let w = lora + rope;
    for (n, t_len, masked) in [(3usize, 700usize, false), (3, 700, true), (2, 3000, true)] {
        let mut next = lcg(t_len as u64 + n as u64);
        let cache: Vec<f32> = (0..t_len * w).map(|_| next()).collect();
        let qabs: Vec<f32> = (0..n * heads * lora).map(|_| 0.6 * next()).collect();
        let qpe: Vec<f32> = (0..n * heads * rope).map(|_| 0.6 * next()).collect();
        let p0 = t_len - n;
        // Kept: about a third of the keys, none in 64..300 (the whole tile 128..256), and the
        // last one.
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

/// The q8_0 cache bytes of rows `first..` of `cache` (`stride` words a row).
fn steps_bytes(
    gpu: &Gpu,
    cache: &localglm_gpu::Buffer,
    stride: usize,
    first: usize,
) -> Vec<Vec<u8>> {
    let words = gpu.read_f32(cache).unwrap();
    words
        .chunks_exact(stride)
        .skip(first)
        .map(|r| r.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect())
        .collect()
}

/// The device's q8_0 rows (`bytes`, one a row, padded to whole words) follow llama.cpp's
/// reference rule for the f32 rows `x` (`w` wide): per 32 values (the last block zero-padded)
/// `d = max|x| / 127`, `q = round-half-away(x / d)`, d stored as f16, the rest of the row's last word 0.
/// (`d` within an f16 rounding; `q` exact but at a tie, where the device's division may
/// round the other way.)
fn q8_rows_follow_the_reference_rule(x: &[f32], bytes: &[Vec<u8>], w: usize) {
    for (r, row) in bytes.iter().enumerate() {
        let xr = &x[r * w..][..w];
        for (b, blk) in row.chunks(34).enumerate().take(w.div_ceil(32)) {
            let vals: Vec<f32> = (0..32)
                .map(|k| xr.get(32 * b + k).copied().unwrap_or(0.0))
                .collect();
            let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = localglm_quants::f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
            assert!(
                (d - amax / 127.0).abs() <= amax / 127.0 / 1024.0,
                "row {r} block {b}: d {d}"
            );
            for (k, v) in vals.iter().enumerate() {
                // Quantized by the f32 scale, before its f16 rounding (as the reference does).
                let t = if amax > 0.0 { v * (127.0 / amax) } else { 0.0 };
                let got = f32::from(blk[2 + k] as i8);
                // Another rounding only where x / d is a tie to within the division's error.
                let tie = (t.abs().fract() - 0.5).abs() < 1e-3;
                assert!(
                    got == t.round() || (tie && (got - t.round()).abs() <= 1.0),
                    "row {r} block {b} value {k}: {got} for {t}"
                );
            }
        }
        assert!(
            row[w.div_ceil(32) * 34..].iter().all(|&v| v == 0),
            "row {r}: padding"
        );
    }
}

/// A cache row's norm, RoPE and store in one dispatch (`row_store`) against the three ops it
/// stands for (`rms_norm`/`layer_norm`, `rope`, `kv_store`) on the same device, for every cache
/// type: GLM-5.x's latent row (RMSNorm on 512, RoPE on the 64 after), its indexer key
/// (LayerNorm on all 128, RoPE on the first 64), and a row of odd width whose RoPE is on halves
/// and whose q8_0 blocks are odd in number; rows stored after two already there. The same f32
/// steps in the same order: the decoded rows agree to a rounding of the cache type (one q8_0
/// step, where a rounding at .5 may go the other way).
#[test]
fn a_cache_rows_norm_rope_and_store_in_one_dispatch_equal_the_three_ops() {
    use localglm_gpu::{cache_words, CacheRows, RowNorm, RowRope};
    use localglm_quants::{dequantize_to_vec, GgmlType, KvType};
    let Some(gpu) = open() else { return };
    let mut next = lcg(31);
    let (n, first) = (3usize, 2usize);
    // (width, normed columns, LayerNorm, RoPE from, pairs, halves)
    for (w, cols, layer, off, half, halves) in [
        (576usize, 512usize, false, 512usize, 32usize, false),
        (128, 128, true, 0, 32, false),
        (70, 40, false, 40, 15, true),
    ] {
        let x: Vec<f32> = (0..n * w).map(|_| 3.0 * next()).collect();
        // Weight then bias, as the runtime keeps the indexer's norm.
        let wb: Vec<f32> = (0..2 * cols).map(|_| 1.0 + next()).collect();
        let table: Vec<f32> = (0..2 * n * half).map(|_| next()).collect();
        let (xb, wbuf, tb) = (
            gpu.upload_f32(&x).unwrap(),
            gpu.upload_f32(&wb).unwrap(),
            gpu.upload_f32(&table).unwrap(),
        );
        let rope = RowRope {
            table: &tb,
            cos_off: 0,
            sin_off: n * half,
            off,
            half,
            halves,
        };
        let norm = RowNorm {
            weights: &wbuf,
            w_off: 0,
            bias_off: layer.then_some(cols),
            cols,
            eps: 1e-6,
        };
        for kv in [KvType::F32, KvType::F16, KvType::BF16, KvType::Q8_0] {
            let stride = cache_words(kv, w);
            let rows = first + n;
            let (fused, steps) = (
                gpu.zeros(rows * stride).unwrap(),
                gpu.zeros(rows * stride).unwrap(),
            );
            let to = |cache| CacheRows {
                kv,
                cache,
                base: 0,
                stride,
                first,
            };
            gpu.row_store(to(&fused), (&xb, 0, w), n, w, norm, rope)
                .unwrap();
            let y = gpu.upload_f32(&x).unwrap();
            let place = (&y, 0, w);
            match layer {
                true => gpu.layer_norm(place, place, (&wbuf, 0), cols, n, cols, 1e-6),
                false => gpu.rms_norm(place, place, (&wbuf, 0), n, cols, 1e-6),
            }
            .unwrap();
            gpu.rope(&y, off, n, 1, half, w, w, &tb, 0, n * half, halves)
                .unwrap();
            gpu.kv_store(kv, &steps, 0, stride, first, &y, 0, w, n, w)
                .unwrap();
            let decode = |b| -> Vec<f32> {
                let words: Vec<u32> = gpu
                    .read_f32(b)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                let ty = match kv {
                    KvType::F32 => GgmlType::F32,
                    KvType::F16 => GgmlType::F16,
                    KvType::BF16 => GgmlType::BF16,
                    KvType::Q8_0 => GgmlType::Q8_0,
                };
                words
                    .chunks_exact(stride)
                    .flat_map(|r| {
                        let mut bytes: Vec<u8> = r.iter().flat_map(|v| v.to_le_bytes()).collect();
                        bytes.truncate(kv.bytes(w as u64) as usize);
                        let padded = w.div_ceil(32) * 32;
                        let elems = if kv == KvType::Q8_0 { padded } else { w };
                        let mut v = dequantize_to_vec(ty, &bytes, elems).unwrap();
                        v.truncate(w);
                        v
                    })
                    .collect()
            };
            if kv == KvType::Q8_0 {
                q8_rows_follow_the_reference_rule(
                    &gpu.read_f32(&y).unwrap(),
                    &steps_bytes(&gpu, &steps, stride, first),
                    w,
                );
            }
            let (a, b) = (decode(&fused), decode(&steps));
            assert!(
                a[..first * w].iter().all(|&v| v == 0.0),
                "rows before first"
            );
            for (j, (p, q)) in a.iter().zip(&b).enumerate().skip(first * w) {
                let tol = match kv {
                    KvType::F32 => 1e-5 * q.abs().max(1.0),
                    KvType::F16 => 1e-3 * q.abs().max(1e-2),
                    KvType::BF16 => 8e-3 * q.abs().max(1e-2),
                    // One step of the block's scale (its largest value / 127), at most.
                    KvType::Q8_0 => {
                        let r = (j / w) * w;
                        let blk = r + (j - r) / 32 * 32;
                        let amax = b[blk..(blk + 32).min(r + w)]
                            .iter()
                            .fold(0f32, |m, v| m.max(v.abs()));
                        1.01 * amax / 127.0
                    }
                };
                assert!(
                    (p - q).abs() <= tol,
                    "{kv:?} w {w} value {j}: {p} vs {q} (tolerance {tol})"
                );
            }
        }
    }
    // Wider than the kernel's workgroup row: refused, not truncated.
    let wide = localglm_gpu::ROW_STORE_MAX + 2;
    let (src, cache) = (gpu.zeros(wide).unwrap(), gpu.zeros(wide).unwrap());
    let to = CacheRows {
        kv: KvType::F32,
        cache: &cache,
        base: 0,
        stride: wide,
        first: 0,
    };
    let rope = RowRope {
        table: &src,
        cos_off: 0,
        sin_off: 0,
        off: 0,
        half: 1,
        halves: false,
    };
    let norm = RowNorm {
        weights: &src,
        w_off: 0,
        bias_off: None,
        cols: wide,
        eps: 1e-6,
    };
    assert!(gpu
        .row_store(to, (&src, 0, wide), 1, wide, norm, rope)
        .is_err());
}
