//! The device-resident pass's selection kernel against a plain Rust statement of the rule
//! (the whole pass is checked against `transformers` in `localglm-glm`'s `gpu_reference`):
//! per query, the top-k visible scores — ties at the k-th value taken in key order — with
//! negative scores, many ties, rows with fewer visible keys than k, and long rows.

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
