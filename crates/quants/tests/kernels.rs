//! Fused kernels against an f64 reference of (dequantized W)·x, for every supported type, on
//! shapes that are not multiples of the thread count or task size, for 1 and many rows.
//!
//! Error budgets:
//! * `Activations::F32`: only f32 rounding of products and sums: |y − ref| ≤ 1e-3 · Σ|wᵢxᵢ|
//!   (observed ~1e-6).
//! * `Activations::Int8` (the default for quantized types): activation quantization moves each
//!   product by at most |wᵢ|·dᵢ/2 (dᵢ the int8 step of xᵢ's group: 256 values where the row
//!   length allows it — the AVX2 row kernels use llama.cpp's q8_K granularity — else 16), so
//!   |y − ref| ≤ Σ|wᵢ|·dᵢ/2 + 1e-4 · Σ|wᵢxᵢ|; we also report the error relative to Σ|wᵢxᵢ|.

use localglm_quants::q8::Q8Act;
use localglm_quants::synth::{random_blocks, random_vector};
use localglm_quants::{
    dequantize_row, matmul, matmul_with, matvec, matvec_indexed, matvec_with, Activations, Experts,
    GgmlType,
};

fn shapes(ty: GgmlType) -> Vec<(usize, usize)> {
    let be = ty.block_elems();
    let cols: Vec<usize> = match be {
        1 => vec![1, 70, 300, 1000],
        // 512: a multiple of 256, where Q8_0 and IQ4_NL take their per-256 row kernels.
        32 => vec![32, 96, 512, 800],
        _ => vec![256, 768, 2304],
    };
    let mut out = Vec::new();
    for &c in &cols {
        for r in [1usize, 3, 37, 301] {
            out.push((r, c));
        }
    }
    out
}

/// Per row: the f64 reference, Σ|w·x|, and the int8 activation error bound Σ|w|·d/2 (d per
/// 256 values where the length allows, the coarser of the two grids).
fn reference(ty: GgmlType, w: &[u8], rows: usize, cols: usize, x: &[f32]) -> Vec<(f64, f64, f64)> {
    let rb = ty.row_bytes(cols).unwrap();
    let act = cols.is_multiple_of(16).then(|| Q8Act::new(x));
    let mut row = vec![0f32; cols];
    (0..rows)
        .map(|r| {
            dequantize_row(ty, &w[r * rb..(r + 1) * rb], &mut row).unwrap();
            let y = row.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale = row
                .iter()
                .zip(x)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            let bound = act.as_ref().map_or(0.0, |a| {
                row.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let d = if a.d256.is_empty() {
                            a.d16[i / 16]
                        } else {
                            a.d256[i / 256]
                        };
                        (*v as f64).abs() * d as f64 / 2.0
                    })
                    .sum()
            });
            (y, scale, bound)
        })
        .collect()
}

#[test]
fn matvec_matches_f64_reference_for_every_type() {
    for mode in [Activations::F32, Activations::Int8] {
        let mut worst = 0f64;
        for ty in GgmlType::SUPPORTED {
            for (i, (rows, cols)) in shapes(ty).into_iter().enumerate() {
                let n_blocks = rows * cols / ty.block_elems();
                let w = random_blocks(ty, n_blocks, 100 + i as u64);
                let x = random_vector(cols, 7 + i as u64);
                let mut y = vec![0f32; rows];
                matvec_with(mode, ty, &w, rows, cols, &x, &mut y).unwrap();
                let int8 = mode == Activations::Int8 && ty.block_elems() > 1;
                for (r, (want, scale, bound)) in
                    reference(ty, &w, rows, cols, &x).into_iter().enumerate()
                {
                    assert!(y[r].is_finite(), "{ty} {rows}x{cols} row {r}: {}", y[r]);
                    let err = (y[r] as f64 - want).abs();
                    let allowed = if int8 {
                        bound + 1e-4 * scale
                    } else {
                        1e-3 * scale
                    };
                    worst = worst.max(err / scale.max(1e-30));
                    assert!(
                        err <= allowed + 1e-30,
                        "{mode:?} {ty} {rows}x{cols} row {r}: got {} want {want} (err {err:e}, allowed {allowed:e})",
                        y[r]
                    );
                }
            }
        }
        eprintln!("{mode:?}: worst error relative to Σ|w·x|: {worst:e}");
    }
}

/// Batches of up to `MATVEC_UP_TO` tokens (a speculative verification pass) give each token
/// exactly its own mat-vec's numbers, in both activation modes, for every type — on a product
/// large enough to be split into tasks and on a small one — so drafting never moves a greedy
/// argmax.
#[test]
fn small_batches_are_bit_identical_to_each_tokens_matvec() {
    assert_eq!(localglm_quants::MATVEC_UP_TO, 4);
    for ty in GgmlType::SUPPORTED {
        let cols = if ty.block_elems() == 1 {
            512
        } else {
            512.max(ty.block_elems())
        };
        for rows in [7, 300] {
            let w = random_blocks(ty, rows * cols / ty.block_elems(), 21);
            for mode in [Activations::Int8, Activations::F32] {
                for n in 2..=4 {
                    let xs = random_vector(n * cols, 8 + n as u64);
                    let mut ys = vec![0f32; n * rows];
                    matmul_with(mode, ty, &w, rows, cols, &xs, n, &mut ys).unwrap();
                    for t in 0..n {
                        let mut y = vec![0f32; rows];
                        let x = &xs[t * cols..(t + 1) * cols];
                        matvec_with(mode, ty, &w, rows, cols, x, &mut y).unwrap();
                        assert_eq!(
                            &ys[t * rows..(t + 1) * rows],
                            &y[..],
                            "{ty} {mode:?} {n}/{t}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn batched_and_indexed_forms_agree_with_matvec() {
    for ty in GgmlType::SUPPORTED {
        let cols = if ty.block_elems() == 1 {
            96
        } else {
            ty.block_elems() * 3
        };
        let rows = 19;
        let n = 5;
        let w = random_blocks(ty, rows * cols / ty.block_elems(), 9);
        let xs = random_vector(n * cols, 3);
        let mut ys = vec![0f32; n * rows];
        matmul(ty, &w, rows, cols, &xs, n, &mut ys).unwrap();
        for t in 0..n {
            let mut y = vec![0f32; rows];
            matvec(ty, &w, rows, cols, &xs[t * cols..(t + 1) * cols], &mut y).unwrap();
            // The batched (prefill) path decodes each block once and sums in another order, and
            // its activation grid may differ from the mat-vec's: per 256 (q8_K-like) for the
            // AVX2 super-block kernels, per 32 for the AVX-512 GEMM, per 16 in the portable
            // build. Float formats take the exact path in both.
            let got = &ys[t * rows..(t + 1) * rows];
            let scale = y.iter().map(|v| v.abs()).sum::<f32>() / rows as f32 + 1e-6;
            let tol = if ty.block_elems() == 1 { 1e-5 } else { 1e-1 } * scale;
            for (a, b) in got.iter().zip(&y) {
                assert!(
                    (a - b).abs() <= tol,
                    "{ty} batch {t}: {a} vs {b} (tol {tol})"
                );
            }
        }

        // 4 experts of rows × cols; ids with repeats, own and shared activations.
        let n_exp = 4;
        let we = random_blocks(ty, n_exp * rows * cols / ty.block_elems(), 11);
        let ids = [2u32, 0, 3, 2];
        let xk = random_vector(ids.len() * cols, 5);
        let mut yk = vec![0f32; ids.len() * rows];
        matvec_indexed(
            Experts {
                ty,
                data: &we,
                n_experts: n_exp,
                rows,
                cols,
            },
            &ids,
            &xk,
            &mut yk,
        )
        .unwrap();
        let rb = ty.row_bytes(cols).unwrap() * rows;
        for (k, &e) in ids.iter().enumerate() {
            let mut y = vec![0f32; rows];
            let e = e as usize;
            matvec(
                ty,
                &we[e * rb..(e + 1) * rb],
                rows,
                cols,
                &xk[k * cols..(k + 1) * cols],
                &mut y,
            )
            .unwrap();
            assert_eq!(
                &yk[k * rows..(k + 1) * rows],
                &y[..],
                "{ty} expert slot {k}"
            );
        }
        let mut shared = vec![0f32; ids.len() * rows];
        matvec_indexed(
            Experts {
                ty,
                data: &we,
                n_experts: n_exp,
                rows,
                cols,
            },
            &ids,
            &xk[..cols],
            &mut shared,
        )
        .unwrap();
        assert_eq!(&shared[..rows], &yk[..rows]);
    }
}

#[test]
fn shape_errors_are_reported() {
    let ty = GgmlType::Q4_K;
    let w = random_blocks(ty, 2, 1);
    let x = vec![0f32; 256];
    let mut y = vec![0f32; 2];
    assert!(matvec(ty, &w, 2, 256, &x, &mut y).is_ok());
    assert!(matvec(ty, &w, 3, 256, &x, &mut [0f32; 3]).is_err());
    assert!(matvec(ty, &w, 2, 256, &x[..255], &mut y).is_err());
    assert!(matvec(ty, &w, 2, 256, &x, &mut y[..1]).is_err());
    assert!(matvec(GgmlType::Q8_K, &w, 1, 256, &x, &mut y[..1]).is_err());
    let mut yk = vec![0f32; 256];
    assert!(
        matvec_indexed(
            Experts {
                ty,
                data: &w,
                n_experts: 2,
                rows: 1,
                cols: 256
            },
            &[2],
            &x,
            &mut yk[..1]
        )
        .is_err(),
        "expert id out of range"
    );
}

/// A product with no weight rows (or no tokens) is an empty output on every path (mat-vec,
/// per-token, GEMM, multi-vector rows, float), not a panic.
#[test]
fn zero_rows_give_an_empty_product() {
    for ty in [GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F32] {
        matvec(ty, &[], 0, 256, &random_vector(256, 2), &mut []).unwrap();
        for n in [0usize, 1, 8, 40] {
            let x = random_vector(n * 256, 3);
            let mut y: Vec<f32> = Vec::new();
            matmul(ty, &[], 0, 256, &x, n, &mut y).unwrap();
            for mode in [Activations::F32, Activations::Int8] {
                matmul_with(mode, ty, &[], 0, 256, &x, n, &mut y).unwrap();
            }
        }
    }
}

/// Rows a multiple of 256 long take the grouped batched path and the per-type row kernels (weights prepared once per 256
/// and shared by all tokens, per-256 activation scales) for every type, 32-weight blocks
/// included: within the int8 error of the exact product.
#[test]
fn batched_products_on_256_multiples_stay_within_int8_error_of_exact() {
    for ty in GgmlType::SUPPORTED {
        if ty.block_elems() == 1 {
            continue;
        }
        let (rows, cols, n) = (7, 768, 6);
        let w = random_blocks(ty, rows * cols / ty.block_elems(), 21);
        let xs = random_vector(n * cols, 4);
        let mut got = vec![0f32; n * rows];
        matmul(ty, &w, rows, cols, &xs, n, &mut got).unwrap();
        let mut exact = vec![0f32; n * rows];
        matmul_with(Activations::F32, ty, &w, rows, cols, &xs, n, &mut exact).unwrap();
        let scale = exact.iter().map(|v| v.abs()).fold(0f32, f32::max) + 1e-6;
        for (i, (a, b)) in got.iter().zip(&exact).enumerate() {
            assert!(
                (a - b).abs() <= 0.02 * scale,
                "{ty} [{i}]: {a} vs exact {b}"
            );
        }
        // The single-vector kernels (per-type AVX2 row kernels on 256-multiples) too.
        for t in 0..n {
            let mut y = vec![0f32; rows];
            matvec(ty, &w, rows, cols, &xs[t * cols..(t + 1) * cols], &mut y).unwrap();
            for (r, (a, b)) in y.iter().zip(&exact[t * rows..(t + 1) * rows]).enumerate() {
                assert!(
                    (a - b).abs() <= 0.02 * scale,
                    "{ty} matvec [{t}][{r}]: {a} vs {b}"
                );
            }
        }
    }
}

/// Several weights of one activation in one parallel loop give each weight's own mat-vec,
/// bit for bit, across types (int8 and float paths mixed) and row counts.
#[test]
fn matvec_many_equals_one_matvec_per_weight() {
    use localglm_quants::{matvec_many_with, MatvecPart};
    let cols = 256;
    let x = random_vector(cols, 5);
    let specs = [
        (GgmlType::Q4_1, 37),
        (GgmlType::Q8_0, 16),
        (GgmlType::F32, 5),
        (GgmlType::Q4_K, 33),
    ];
    let ws: Vec<Vec<u8>> = specs
        .iter()
        .enumerate()
        .map(|(i, &(ty, rows))| random_blocks(ty, rows * cols / ty.block_elems(), 40 + i as u64))
        .collect();
    for mode in [Activations::Int8, Activations::F32] {
        let mut ys: Vec<Vec<f32>> = specs.iter().map(|&(_, r)| vec![0f32; r]).collect();
        let mut parts: Vec<MatvecPart> = specs
            .iter()
            .zip(&ws)
            .zip(ys.iter_mut())
            .map(|((&(ty, _), w), y)| MatvecPart { ty, w, y })
            .collect();
        matvec_many_with(mode, &mut parts, &x).unwrap();
        for ((&(ty, rows), w), y) in specs.iter().zip(&ws).zip(&ys) {
            let mut want = vec![0f32; rows];
            matvec_with(mode, ty, w, rows, cols, &x, &mut want).unwrap();
            assert_eq!(y, &want, "{mode:?} {ty}");
        }
    }
}
