//! Every WGSL kernel against the CPU's dequantizer, for every one of the 22 GLM weight types:
//! the plain product (1 token = the decode mat-vec; 11 tokens = two tiles of the prefill
//! product; overwriting and accumulating into its output; with SwiGLU in its activation
//! staging, as a decoded token's down product runs), the MoE product with expert ids on
//! the device (per slot, and with the slots grouped by expert as a prefill runs it; per-slot
//! and shared activations), with and without subgroup operations, with weights split into
//! many small bindings, and with two weights paired into one (a FFN's gate and up).
//!
//! Tolerance: the bounds of `localglm_gpu::verify` (derived there), which `localglm gpu --check`
//! holds a user's device to as well.
//!
//! Runs on any adapter, software included (lavapipe in CI). Where there is none the test says
//! so and passes, unless `LOCALGLM_REQUIRE_GPU=1` (set by the test script where it installs
//! lavapipe), which turns a missing adapter into a failure.

use localglm_gpu::verify::{f32_bound, matrix_bound, reference_dot};
use localglm_gpu::{Gpu, GpuError, GpuOptions, HostWrap, Matrices, GPU_TYPES};
use localglm_quants::synth::{random_blocks, random_vector};
use localglm_quants::{dequantize_row, GgmlType};

mod common;

fn open(subgroups: bool, max_binding_bytes: Option<u64>) -> Option<Gpu> {
    common::open(GpuOptions {
        subgroups,
        max_binding_bytes,
        ..GpuOptions::default()
    })
}

/// Columns per row for `ty`: a few blocks, and a tail that is not a multiple of 32 for floats.
fn cols_for(ty: GgmlType) -> Vec<usize> {
    match ty.block_elems() {
        // The last of each spans more than one of the mat-vec kernel's 2048-column tiles.
        1 => vec![70, 300, 2100],
        32 => vec![32, 800, 2112],
        _ => vec![256, 2304],
    }
}

/// Rows of `w` dequantized by the CPU.
fn dequant_rows(ty: GgmlType, w: &[u8], rows: usize, cols: usize) -> Vec<Vec<f32>> {
    let rb = ty.row_bytes(cols).unwrap();
    (0..rows)
        .map(|r| {
            let mut row = vec![0f32; cols];
            dequantize_row(ty, &w[r * rb..(r + 1) * rb], &mut row).unwrap();
            row
        })
        .collect()
}

fn check_dot(what: &str, got: f32, row: &[f32], x: &[f32]) {
    let (want, scale) = reference_dot(row, x);
    let err = (got as f64 - want).abs();
    assert!(
        err <= f32_bound(row, x),
        "{what}: got {got}, want {want} (error {err:.3e}, scale {scale:.3e})"
    );
}

fn random_weight(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    random_blocks(ty, rows * cols / ty.block_elems(), seed)
}

fn plain_products(gpu: &Gpu, label: &str) {
    for ty in GPU_TYPES {
        // A row must fit one binding (the split tests' bindings hold a few KiB).
        let fits = |cols: usize| ty.row_bytes(cols).unwrap() as u64 <= gpu.max_binding_bytes();
        for cols in cols_for(ty).into_iter().filter(|&c| fits(c)) {
            for (rows, n) in [(1usize, 1usize), (37, 1), (301, 1), (37, 11)] {
                let w = random_weight(ty, rows, cols, (rows * 31 + cols) as u64);
                let xs = random_vector(n * cols, (rows + n) as u64);
                let qw = gpu.upload_weight("w", ty, &w, 1, rows, cols).unwrap();
                let x = gpu.upload_f32(&xs).unwrap();
                // Outputs written at an offset, to check x/y offsets too.
                let y = gpu.zeros(3 + n * rows).unwrap();
                gpu.matmul(&qw, &x, 0, n, &y, 3).unwrap();
                let got = gpu.read_f32(&y).unwrap();
                let ref_rows = dequant_rows(ty, &w, rows, cols);
                for t in 0..n {
                    for (r, row) in ref_rows.iter().enumerate() {
                        check_dot(
                            &format!("{label} {ty} {rows}x{cols} n={n} token {t} row {r}"),
                            got[3 + t * rows + r],
                            row,
                            &xs[t * cols..(t + 1) * cols],
                        );
                    }
                }
                // The accumulating form adds the same product to what is there: exactly twice.
                gpu.matmul_add(&qw, &x, 0, n, &y, 3).unwrap();
                let twice = gpu.read_f32(&y).unwrap();
                assert_eq!(twice[..3], [0.0; 3], "{label} {ty}: outside the output");
                for (i, (a, b)) in got.iter().zip(&twice).enumerate().skip(3) {
                    assert_eq!(
                        2.0 * a,
                        *b,
                        "{label} {ty} {rows}x{cols} n={n} matmul_add at {i}"
                    );
                }
            }
        }
    }
}

fn indexed_products(gpu: &Gpu, label: &str) {
    // 11 rows: a full and a partial block of the mat-vec kernel's 8 rows per workgroup.
    let (experts, rows) = (5usize, 11usize);
    let ids_v = [3u32, 0, 3, 4];
    // Grouped by expert: 21 slots, expert 3 with 11 of them (two tiles of 8), expert 1 none,
    // and one id out of range (its slot left alone), 3 slots sharing each activation row.
    let many = expert_ids(21);
    for ty in GPU_TYPES {
        let cols = cols_for(ty)[1];
        let w = random_weight(ty, experts * rows, cols, 7 + cols as u64);
        let qw = gpu
            .upload_weight("experts", ty, &w, experts, rows, cols)
            .unwrap();
        let ref_rows = dequant_rows(ty, &w, experts * rows, cols);
        let ids = gpu.upload_u32(&ids_v).unwrap();
        for per_slot in [true, false] {
            let nx = if per_slot { ids_v.len() * cols } else { cols };
            let xs = random_vector(nx, cols as u64);
            let x = gpu.upload_f32(&xs).unwrap();
            let y = gpu.zeros(ids_v.len() * rows).unwrap();
            gpu.matvec_indexed(&qw, &ids, ids_v.len(), &x, 0, per_slot, &y, 0)
                .unwrap();
            let got = gpu.read_f32(&y).unwrap();
            for (s, &e) in ids_v.iter().enumerate() {
                let xv = if per_slot {
                    &xs[s * cols..(s + 1) * cols]
                } else {
                    &xs[..]
                };
                for r in 0..rows {
                    check_dot(
                        &format!("{label} {ty} indexed per_slot={per_slot} slot {s} row {r}"),
                        got[s * rows + r],
                        &ref_rows[e as usize * rows + r],
                        xv,
                    );
                }
            }
        }
        let what = format!("{label} {ty}");
        let shape = (experts, rows, cols);
        check_by_expert(gpu, &what, &qw, &ref_rows, shape, &many, 3, check_dot);
    }
}

/// Expert ids of `slots` slots over 5 experts: 3 of every 7 to expert 3, expert 1 none, and
/// slot 12's id out of range.
fn expert_ids(slots: u32) -> Vec<u32> {
    (0..slots)
        .map(|s| match s % 7 {
            0..=2 => 3,
            3 => 0,
            4 => 2,
            5 if s == 12 => 9,
            _ => 4,
        })
        .collect()
}

/// The MoE product grouped by expert (`bucket`, then `matvec_by_expert`) for slots with expert
/// `ids`, against the CPU's rows `ref_rows` of a `(experts, rows, cols)` weight by `check`:
/// with each activation row shared by 3 slots, and with one row shared by all; a slot whose
/// id is out of range keeps what its output held.
#[allow(clippy::too_many_arguments)]
fn check_by_expert(
    gpu: &Gpu,
    label: &str,
    qw: &localglm_gpu::QWeight,
    ref_rows: &[Vec<f32>],
    (experts, rows, cols): (usize, usize, usize),
    many: &[u32],
    seed: u64,
    check: fn(&str, f32, &[f32], &[f32]),
) {
    let ids = gpu.upload_u32(many).unwrap();
    let groups = gpu.zeros(experts + 1 + many.len()).unwrap();
    gpu.bucket(&ids, many.len(), experts, &groups).unwrap();
    for x_div in [3usize, 0] {
        let nx = match x_div {
            0 => cols,
            d => many.len().div_ceil(d) * cols,
        };
        let xs = random_vector(nx, seed + x_div as u64);
        let x = gpu.upload_f32(&xs).unwrap();
        let y = gpu.upload_f32(&vec![7.0; many.len() * rows]).unwrap();
        gpu.matvec_by_expert(qw, &groups, many.len(), &x, 0, cols, x_div, &y, 0)
            .unwrap();
        let got = gpu.read_f32(&y).unwrap();
        for (s, &e) in many.iter().enumerate() {
            let xv = match s.checked_div(x_div) {
                Some(row) => &xs[row * cols..(row + 1) * cols],
                None => &xs[..],
            };
            for r in 0..rows {
                let what = format!("{label} by expert x_div={x_div} slot {s} row {r}");
                let at = s * rows + r;
                match ref_rows.get(e as usize * rows + r) {
                    Some(row) if (e as usize) < experts => check(&what, got[at], row, xv),
                    _ => assert_eq!(got[at], 7.0, "{what}: left alone"),
                }
            }
        }
    }
}

#[test]
fn every_type_matches_the_cpu_with_subgroups_where_available() {
    let Some(gpu) = open(true, None) else { return };
    eprintln!(
        "adapter: {} ({}, subgroups {:?}, used: {})",
        gpu.adapter().name,
        gpu.adapter().backend,
        gpu.adapter().subgroup_sizes,
        gpu.uses_subgroups()
    );
    gpu.compile_all().unwrap();
    plain_products(&gpu, "subgroups");
    indexed_products(&gpu, "subgroups");
}

#[test]
fn every_type_matches_the_cpu_without_subgroups() {
    let Some(gpu) = open(false, None) else { return };
    assert!(!gpu.uses_subgroups());
    gpu.compile_all().unwrap();
    plain_products(&gpu, "shared-memory");
    indexed_products(&gpu, "shared-memory");
}

#[test]
fn weights_split_over_small_bindings_give_the_same_results() {
    // 8 KiB bindings: every weight above a few rows is split, expert stacks mid-expert too.
    let Some(gpu) = open(true, Some(8 << 10)) else {
        return;
    };
    let w = random_weight(GgmlType::Q8_0, 301, 800, 1);
    let qw = gpu
        .upload_weight("w", GgmlType::Q8_0, &w, 1, 301, 800)
        .unwrap();
    assert!(qw.chunks() > 10, "{} chunks", qw.chunks());
    plain_products(&gpu, "split");
    indexed_products(&gpu, "split");
}

/// The layout of weights read in place from host pages (Metal on unified memory): each chunk
/// a buffer over the whole pages around its rows, the rows `skew` bytes in. Emulated here by
/// copies in that layout, with 1 KiB pages and 8 KiB bindings so weights split too, and rows
/// starting at odd addresses.
#[test]
#[allow(unsafe_code)]
fn weights_in_the_in_place_layout_give_the_same_results() {
    let Some(gpu) = common::open(GpuOptions {
        max_binding_bytes: Some(8 << 10),
        host_wrap: HostWrap::Emulate { page: 1024 },
        ..GpuOptions::default()
    }) else {
        return;
    };
    plain_products(&gpu, "host pages");
    indexed_products(&gpu, "host pages");
    for ty in GPU_TYPES {
        let cols = cols_for(ty)[1];
        let rows = 9;
        let w = random_weight(ty, rows, cols, 5);
        let mut host = vec![0u8; w.len() + 3];
        host[3..].copy_from_slice(&w);
        // SAFETY: `host` outlives the weight (and emulation copies anyway).
        let qw = unsafe { gpu.upload_weight_in_place("w", ty, &host[3..], 1, rows, cols) }.unwrap();
        assert!(!qw.in_place(), "emulated: copied");
        let xs = random_vector(cols, 9);
        let x = gpu.upload_f32(&xs).unwrap();
        let y = gpu.zeros(rows).unwrap();
        gpu.matmul(&qw, &x, 0, 1, &y, 0).unwrap();
        let got = gpu.read_f32(&y).unwrap();
        for (r, row) in dequant_rows(ty, &w, rows, cols).iter().enumerate() {
            check_dot(
                &format!("host pages {ty} odd start row {r}"),
                got[r],
                row,
                &xs,
            );
        }
    }
}

#[test]
fn gpu_time_times_a_pass_and_leaves_its_results_alone() {
    let Some(gpu) = open(true, None) else { return };
    let (ty, rows, cols) = (GgmlType::Q4_K, 19, 512);
    let w = random_weight(ty, rows, cols, 11);
    let xs = random_vector(cols, 12);
    let qw = gpu.upload_weight("w", ty, &w, 1, rows, cols).unwrap();
    let x = gpu.upload_f32(&xs).unwrap();
    let y = gpu.zeros(rows).unwrap();
    let t = gpu.gpu_time(|| gpu.matmul(&qw, &x, 0, 1, &y, 0)).unwrap();
    match t {
        Some(s) => assert!(s > 0.0 && s < 10.0, "{s} s"),
        None => assert!(!gpu.has_timestamps()),
    }
    let got = gpu.read_f32(&y).unwrap();
    for (r, row) in dequant_rows(ty, &w, rows, cols).iter().enumerate() {
        check_dot(&format!("timed {ty} row {r}"), got[r], row, &xs);
    }
}

/// SwiGLU in f32 as the CPU computes it (the GPU's `exp` may differ in the last bits: within
/// the products' tolerance).
fn silu_mul(g: f32, u: f32) -> f32 {
    g / (1.0 + (-g).exp()) * u
}

/// The down product with SwiGLU in its activation staging (a decoded token's FFN): plain and
/// per MoE slot (gate and up in separate runs, or interleaved as a fused gate_up weight writes
/// them), against the CPU, with and without subgroups, over one and several 2048-column tiles.
#[test]
fn swiglu_inside_the_down_product_matches_the_cpu() {
    for subgroups in [true, false] {
        let Some(gpu) = open(subgroups, None) else {
            return;
        };
        for ty in [
            GgmlType::Q4_K,
            GgmlType::IQ2_XXS,
            GgmlType::IQ1_S,
            GgmlType::Q8_0,
            GgmlType::F16,
        ] {
            for cols in cols_for(ty) {
                let what = format!("subgroups={subgroups} {ty} cols={cols}");
                let rows = 37;
                let w = random_weight(ty, rows, cols, cols as u64);
                let qw = gpu.upload_weight("down", ty, &w, 1, rows, cols).unwrap();
                let ref_rows = dequant_rows(ty, &w, rows, cols);
                // Gate at 5, up 3 floats after its end.
                let (gate_off, up_off) = (5, 5 + cols + 3);
                let guv = random_vector(up_off + cols, rows as u64);
                let act: Vec<f32> = (0..cols)
                    .map(|c| silu_mul(guv[gate_off + c], guv[up_off + c]))
                    .collect();
                let gu = gpu.upload_f32(&guv).unwrap();
                let y = gpu.zeros(2 + rows).unwrap();
                gpu.matvec_swiglu_add(&qw, &gu, gate_off, up_off, &y, 2)
                    .unwrap();
                let got = gpu.read_f32(&y).unwrap();
                for (r, row) in ref_rows.iter().enumerate() {
                    check_dot(&format!("{what} row {r}"), got[2 + r], row, &act);
                }
                // It adds to the output: a second call doubles it exactly.
                gpu.matvec_swiglu_add(&qw, &gu, gate_off, up_off, &y, 2)
                    .unwrap();
                let twice = gpu.read_f32(&y).unwrap();
                assert_eq!(twice[..2], [0.0; 2], "{what}: outside the output");
                for i in 2..2 + rows {
                    assert_eq!(2.0 * got[i], twice[i], "{what}: accumulated at {i}");
                }
                assert!(matches!(
                    gpu.matvec_swiglu_add(&qw, &gu, gate_off, gate_off + cols - 1, &y, 2),
                    Err(GpuError::Shape { .. })
                ));
            }
            // Per slot: 5 experts of 11 rows, 4 slots.
            let (experts, rows, cols) = (5usize, 11usize, cols_for(ty)[1]);
            let ids_v = [3u32, 0, 3, 4];
            let slots = ids_v.len();
            let w = random_weight(ty, experts * rows, cols, 11 + cols as u64);
            let qw = gpu
                .upload_weight("experts", ty, &w, experts, rows, cols)
                .unwrap();
            let ref_rows = dequant_rows(ty, &w, experts * rows, cols);
            let ids = gpu.upload_u32(&ids_v).unwrap();
            // (stride between slots, up after gate): separate gate and up runs; interleaved.
            for (stride, up) in [(cols, slots * cols), (2 * cols, cols)] {
                let guv = random_vector(slots * 2 * cols, stride as u64);
                let gu = gpu.upload_f32(&guv).unwrap();
                let y = gpu.zeros(slots * rows).unwrap();
                gpu.matvec_indexed_swiglu(&qw, &ids, slots, &gu, 0, stride, up, &y, 0)
                    .unwrap();
                let got = gpu.read_f32(&y).unwrap();
                for (s, &e) in ids_v.iter().enumerate() {
                    let act: Vec<f32> = (0..cols)
                        .map(|c| silu_mul(guv[s * stride + c], guv[s * stride + up + c]))
                        .collect();
                    for r in 0..rows {
                        check_dot(
                            &format!("subgroups={subgroups} {ty} stride {stride} slot {s} row {r}"),
                            got[s * rows + r],
                            &ref_rows[e as usize * rows + r],
                            &act,
                        );
                    }
                }
            }
        }
    }
}

/// Two weights uploaded as a pair (a FFN's gate and up) give, per token or slot, the first
/// weight's products and then the second's, expert by expert: decode, prefill and the MoE
/// product, in one binding and in bindings that cut through experts.
#[test]
fn a_paired_weight_gives_both_products() {
    for max_binding in [None, Some(4096)] {
        let Some(gpu) = open(true, max_binding) else {
            return;
        };
        for ty in [
            GgmlType::Q4_K,
            GgmlType::IQ2_XXS,
            GgmlType::Q8_0,
            GgmlType::F16,
        ] {
            let (experts, rows, cols) = (3, 5, cols_for(ty)[1]);
            let a = random_weight(ty, experts * rows, cols, 11);
            let b = random_weight(ty, experts * rows, cols, 12);
            let (ra, rb) = (
                dequant_rows(ty, &a, experts * rows, cols),
                dequant_rows(ty, &b, experts * rows, cols),
            );
            // Row r of expert e of the pair.
            let pair_row = |e: usize, r: usize| match r < rows {
                true => &ra[e * rows + r],
                false => &rb[e * rows + r - rows],
            };
            let label = format!("{ty} binding {max_binding:?}");
            let ids_v = [2u32, 0, 1, 2];
            let pair = gpu
                .upload_weight_pair("gate_up", ty, &a, &b, experts, rows, cols)
                .unwrap();
            assert_eq!((pair.rows(), pair.experts()), (2 * rows, experts));
            let ids = gpu.upload_u32(&ids_v).unwrap();
            let xs = random_vector(cols, 5);
            let x = gpu.upload_f32(&xs).unwrap();
            let y = gpu.zeros(ids_v.len() * 2 * rows).unwrap();
            gpu.matvec_indexed(&pair, &ids, ids_v.len(), &x, 0, false, &y, 0)
                .unwrap();
            let got = gpu.read_f32(&y).unwrap();
            for (s, &e) in ids_v.iter().enumerate() {
                for r in 0..2 * rows {
                    let what = format!("{label} slot {s} row {r}");
                    check_dot(&what, got[s * 2 * rows + r], pair_row(e as usize, r), &xs);
                }
            }
            let one = &a[..rows * ty.row_bytes(cols).unwrap()];
            let two = &b[..rows * ty.row_bytes(cols).unwrap()];
            let pair = gpu
                .upload_weight_pair("gate_up", ty, one, two, 1, rows, cols)
                .unwrap();
            for n in [1, 11] {
                let xs = random_vector(n * cols, 6);
                let x = gpu.upload_f32(&xs).unwrap();
                let y = gpu.zeros(n * 2 * rows).unwrap();
                gpu.matmul(&pair, &x, 0, n, &y, 0).unwrap();
                let got = gpu.read_f32(&y).unwrap();
                for t in 0..n {
                    for r in 0..2 * rows {
                        check_dot(
                            &format!("{label} {n} tokens, token {t} row {r}"),
                            got[t * 2 * rows + r],
                            pair_row(0, r),
                            &xs[t * cols..(t + 1) * cols],
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let Some(gpu) = open(true, None) else { return };
    let w = random_weight(GgmlType::Q4_K, 4, 256, 2);
    assert!(matches!(
        gpu.upload_weight("w", GgmlType::Q4_K, &w[..w.len() - 1], 1, 4, 256),
        Err(GpuError::Shape { .. })
    ));
    assert!(matches!(
        gpu.upload_weight("w", GgmlType::Q4_K, &w, 1, 4, 250),
        Err(GpuError::Shape { .. })
    ));
    assert!(matches!(
        gpu.upload_weight("w", GgmlType::Q8_K, &w, 1, 4, 256),
        Err(GpuError::Unsupported(GgmlType::Q8_K))
    ));
    let qw = gpu
        .upload_weight("w", GgmlType::Q4_K, &w, 1, 4, 256)
        .unwrap();
    let x = gpu.upload_f32(&[0.0; 255]).unwrap();
    let y = gpu.zeros(4).unwrap();
    assert!(matches!(
        gpu.matmul(&qw, &x, 0, 1, &y, 0),
        Err(GpuError::Shape { what: "x", .. })
    ));
}

#[test]
fn counters_count_dispatches_submissions_and_weight_bytes() {
    let Some(gpu) = open(true, None) else { return };
    let w = random_weight(GgmlType::Q4_K, 16, 512, 3);
    let qw = gpu
        .upload_weight("w", GgmlType::Q4_K, &w, 1, 16, 512)
        .unwrap();
    let x = gpu.upload_f32(&random_vector(512, 1)).unwrap();
    let y = gpu.zeros(16).unwrap();
    let before = gpu.counters();
    for _ in 0..3 {
        gpu.matmul(&qw, &x, 0, 1, &y, 0).unwrap();
    }
    gpu.read_f32(&y).unwrap();
    let d = gpu.counters().since(&before);
    assert_eq!(d.dispatches, 3);
    assert_eq!(
        d.submissions, 1,
        "three products and a read-back are one submission"
    );
    assert_eq!(d.weight_bytes, 3 * w.len() as u64);
    assert_eq!(d.readback_bytes, 16 * 4);
}

#[test]
fn a_buffer_beyond_the_device_is_an_out_of_memory_error_naming_the_fixes() {
    let Some(gpu) = open(true, None) else { return };
    let too_big = (gpu.adapter().max_buffer_bytes / 4 + 1) as usize;
    match gpu.zeros(too_big) {
        Err(e @ GpuError::OutOfMemory { .. }) => {
            let text = e.to_string();
            assert!(text.contains("--cpu-moe"), "{text}");
            assert!(text.contains("q8_0"), "{text}");
        }
        other => panic!("expected out of memory, got {other:?}"),
    }
    // The device is still usable afterwards.
    let y = gpu.upload_f32(&[1.0, 2.0]).unwrap();
    assert_eq!(gpu.read_f32(&y).unwrap(), [1.0, 2.0]);
}

/// Work wgpu rejects outside an error scope (here a product whose output is its input: one
/// buffer bound read-only and read-write) is an error at the next read-back, where wgpu's
/// default is a panic; the device goes on with the next work.
#[test]
fn work_the_device_rejects_is_an_error_at_the_read_back_not_a_panic() {
    let Some(gpu) = open(true, None) else { return };
    let w = random_weight(GgmlType::Q8_0, 2, 32, 5);
    let qw = gpu
        .upload_weight("w", GgmlType::Q8_0, &w, 1, 2, 32)
        .unwrap();
    let xs = random_vector(64, 6);
    let x = gpu.upload_f32(&xs).unwrap();
    gpu.matmul(&qw, &x, 0, 1, &x, 40).unwrap();
    match gpu.read_f32(&x) {
        Err(GpuError::Lost(why)) => assert!(why.contains("conflicting usages"), "{why}"),
        other => panic!("expected the rejected work as an error, got {other:?}"),
    }
    let y = gpu.zeros(2).unwrap();
    gpu.matmul(&qw, &x, 0, 1, &y, 0).unwrap();
    let got = gpu.read_f32(&y).unwrap();
    let rows = dequant_rows(GgmlType::Q8_0, &w, 2, 32);
    for (r, row) in rows.iter().enumerate() {
        let want: f32 = row.iter().zip(&xs).map(|(a, b)| a * b).sum();
        assert!(
            (got[r] - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "row {r}"
        );
    }
}

#[test]
fn every_op_shader_compiles() {
    let Some(gpu) = open(true, None) else { return };
    gpu.compile_ops().unwrap();
}

/// The matrix-unit kernels' tolerance (f16 inputs; `localglm_gpu::verify`).
fn check_dot_f16(what: &str, got: f32, row: &[f32], x: &[f32]) {
    let (want, scale) = reference_dot(row, x);
    let err = (got as f64 - want).abs();
    assert!(
        err <= matrix_bound(row, x),
        "{what}: got {got}, want {want} (error {err:.3e}, scale {scale:.3e})"
    );
}

/// A device whose many-token products run on its matrix units (`Matrices::Always`), or `None`
/// where the adapter has none (`common::with_matrix_units`).
fn open_matrices(max_binding_bytes: Option<u64>) -> Option<Gpu> {
    let gpu = common::with_matrix_units(common::open(GpuOptions {
        matrices: Matrices::Always,
        max_binding_bytes,
        ..GpuOptions::default()
    })?)?;
    assert!(
        gpu.matrix_size().is_some(),
        "the adapter has matrix units but the device does not use them: {:?}",
        gpu.matrix_fallback()
    );
    Some(gpu)
}

/// Every quantized type's product on the matrix units against the CPU: 40 tokens (a full tile
/// of 32 and a partial one) over 37 rows (a full tile and a partial one), overwriting and
/// accumulating; and the MoE product grouped by expert, one expert with 36 slots (two tiles),
/// one with none, an id out of range, 3 slots per activation row and one shared row; with
/// whole weights and with weights split over 8 KiB bindings (chunks ending mid-tile and
/// mid-expert).
#[test]
fn matrix_unit_products_match_the_cpu_where_the_adapter_has_them() {
    for binding in [None, Some(8u64 << 10)] {
        let Some(gpu) = open_matrices(binding) else {
            return;
        };
        let label = format!(
            "matrices {0}x{0}x{0} bindings {binding:?}",
            gpu.matrix_size().unwrap_or(0)
        );
        eprintln!("{label}: {}", gpu.adapter().name);
        for ty in GPU_TYPES.into_iter().filter(|t| t.block_elems() > 1) {
            let cols = cols_for(ty)[1];
            let (rows, n) = (37, 40);
            let w = random_weight(ty, rows, cols, 3 + cols as u64);
            let xs = random_vector(n * cols, 4);
            let qw = gpu.upload_weight("w", ty, &w, 1, rows, cols).unwrap();
            let x = gpu.upload_f32(&xs).unwrap();
            let y = gpu.zeros(3 + n * rows).unwrap();
            let before = gpu.counters().matrix_products;
            gpu.matmul(&qw, &x, 0, n, &y, 3).unwrap();
            assert!(
                gpu.counters().matrix_products > before,
                "{label} {ty}: not on them"
            );
            let got = gpu.read_f32(&y).unwrap();
            let ref_rows = dequant_rows(ty, &w, rows, cols);
            for t in 0..n {
                for (r, row) in ref_rows.iter().enumerate() {
                    let xv = &xs[t * cols..(t + 1) * cols];
                    let what = format!("{label} {ty} token {t} row {r}");
                    check_dot_f16(&what, got[3 + t * rows + r], row, xv);
                }
            }
            gpu.matmul_add(&qw, &x, 0, n, &y, 3).unwrap();
            let twice = gpu.read_f32(&y).unwrap();
            assert_eq!(twice[..3], [0.0; 3], "{label} {ty}: outside the output");
            for (i, (a, b)) in got.iter().zip(&twice).enumerate().skip(3) {
                assert_eq!(2.0 * a, *b, "{label} {ty} matmul_add at {i}");
            }
            grouped_on_matrices(&gpu, &label, ty, cols);
        }
        per_head_on_matrices(&gpu, &label);
    }
}

/// MLA's per-head products as a prompt runs them: 48 tokens × 4 heads, each head an "expert"
/// of 64 rows by one block's columns, the slots grouped by head on the host, each token's
/// heads reading strided parts of its row (q_nope of [q_nope ; q_pe]).
fn per_head_on_matrices(gpu: &Gpu, label: &str) {
    let (ty, heads, rows, cols, stride, n) = (GgmlType::Q8_0, 4usize, 64usize, 32usize, 64, 48);
    let w = random_weight(ty, heads * rows, cols, 21);
    let qw = gpu.upload_weight("k_b", ty, &w, heads, rows, cols).unwrap();
    let ref_rows = dequant_rows(ty, &w, heads * rows, cols);
    let slots = (0..heads).flat_map(|h| (0..n).map(move |t| (t * heads + h) as u32));
    let groups: Vec<u32> = (0..=heads).map(|h| (h * n) as u32).chain(slots).collect();
    let groups = gpu.upload_u32(&groups).unwrap();
    let xs = random_vector(n * heads * stride, 22);
    let x = gpu.upload_f32(&xs).unwrap();
    let y = gpu.zeros(n * heads * rows).unwrap();
    gpu.matvec_by_expert(&qw, &groups, n * heads, &x, 0, stride, 1, &y, 0)
        .unwrap();
    let got = gpu.read_f32(&y).unwrap();
    for s in 0..n * heads {
        let h = s % heads;
        for r in 0..rows {
            let what = format!("{label} per head: slot {s} row {r}");
            let xv = &xs[s * stride..s * stride + cols];
            check_dot_f16(&what, got[s * rows + r], &ref_rows[h * rows + r], xv);
        }
    }
}

fn grouped_on_matrices(gpu: &Gpu, label: &str, ty: GgmlType, cols: usize) {
    let (experts, rows) = (5usize, 11usize);
    let many = expert_ids(84);
    let w = random_weight(ty, experts * rows, cols, 7 + cols as u64);
    let qw = gpu
        .upload_weight("experts", ty, &w, experts, rows, cols)
        .unwrap();
    let ref_rows = dequant_rows(ty, &w, experts * rows, cols);
    let what = format!("{label} {ty}");
    let shape = (experts, rows, cols);
    check_by_expert(gpu, &what, &qw, &ref_rows, shape, &many, 5, check_dot_f16);
}
