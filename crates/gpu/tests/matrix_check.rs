//! The matrix units' check when a device opens: where it passes they are used and the check
//! leaves nothing counted; a driver that miscomputes on them or refuses their kernels (a fault
//! put in: `MatrixFault`) costs their speed, never a wrong or failed product, and says why.
//!
//! On an adapter without f16 → f32 cooperative matrices (Debian 12's lavapipe) the tests print
//! why and pass; `scripts/test.sh` runs them again on Mesa 26's lavapipe with
//! `LOCALGLM_REQUIRE_COOP=1`, where their absence is a failure.

mod common;

use localglm_gpu::{CounterSnapshot, Gpu, GpuOptions, Matrices, MatrixFault};
use localglm_quants::GgmlType;

/// A device opened with `fault` in its matrix-unit kernels, or `None` (reason printed) where
/// the adapter has no such units.
fn open(fault: Option<MatrixFault>) -> Option<Gpu> {
    common::with_matrix_units(common::open(GpuOptions {
        matrices: Matrices::Always,
        matrix_fault: fault,
        ..GpuOptions::default()
    })?)
}

/// A Q8_0 weight of `rows` × `cols` with scale 1 and small integer quants, with its values.
fn integer_weight(rows: usize, cols: usize) -> (Vec<u8>, Vec<i32>) {
    let mut bytes = Vec::new();
    let mut values = Vec::new();
    for r in 0..rows {
        for g in 0..cols / 32 {
            bytes.extend_from_slice(&0x3c00u16.to_le_bytes());
            for i in 0..32 {
                let v = ((r * 5 + (g * 32 + i) * 13) % 15) as i32 - 7;
                bytes.push(v as i8 as u8);
                values.push(v);
            }
        }
    }
    (bytes, values)
}

/// A product of 40 tokens by a Q8_0 weight of small integers (exact in f16 and f32, so any
/// kernel gives the same sums): whether it ran on the matrix units, and that it was right.
fn product_is_exact(gpu: &Gpu) -> bool {
    let (rows, cols, n) = (40, 96, 40);
    let (bytes, w) = integer_weight(rows, cols);
    let xs: Vec<i32> = (0..n * cols).map(|i| (i * 7 % 11) as i32 - 5).collect();
    let qw = gpu
        .upload_weight("w", GgmlType::Q8_0, &bytes, 1, rows, cols)
        .unwrap();
    let x = gpu
        .upload_f32(&xs.iter().map(|&v| v as f32).collect::<Vec<_>>())
        .unwrap();
    let y = gpu.zeros(n * rows).unwrap();
    let before = gpu.counters().matrix_products;
    gpu.matmul(&qw, &x, 0, n, &y, 0).unwrap();
    let got = gpu.read_f32(&y).unwrap();
    for t in 0..n {
        for r in 0..rows {
            let want: i32 = (0..cols).map(|c| w[r * cols + c] * xs[t * cols + c]).sum();
            assert_eq!(got[t * rows + r], want as f32, "token {t} row {r}");
        }
    }
    gpu.counters().matrix_products > before
}

#[test]
fn the_matrix_units_pass_their_check_and_leave_nothing_counted() {
    let Some(gpu) = open(None) else { return };
    assert_eq!(gpu.matrix_fallback(), None);
    assert!(gpu.matrix_size().is_some(), "the check turned them off");
    assert_eq!(
        gpu.counters(),
        CounterSnapshot::default(),
        "the check's work was counted"
    );
    assert!(product_is_exact(&gpu), "the product did not use them");
}

/// With `fault` in the kernels the device uses the tile kernels, says why (`words` in the
/// reason), and its products stay exact.
fn falls_back(fault: MatrixFault, words: &str) {
    let Some(gpu) = open(Some(fault)) else { return };
    let why = gpu.matrix_fallback().expect("no reason given");
    eprintln!("{why}");
    assert!(
        why.contains("off on this device") && why.contains(words),
        "{why}"
    );
    assert_eq!(gpu.matrix_size(), None);
    assert!(!product_is_exact(&gpu), "the product still used them");
}

#[test]
fn a_driver_that_miscomputes_on_the_matrix_units_costs_their_speed_not_the_answer() {
    falls_back(MatrixFault::WrongSums, "gave");
}

#[test]
fn a_driver_that_refuses_the_matrix_unit_kernels_costs_their_speed_not_the_answer() {
    falls_back(MatrixFault::Refused, "refused");
}
