//! Tests of the AVX-512 GEMM, and the f64 reference both GEMMs are checked against.

use super::*;
use crate::synth::{random_blocks, random_vector};

/// Asserts that `ys` (n × rows) holds `W·x̂` for every row and token: the decoded `scale·q`
/// and bias of `decode_i8` in f64 against the per-32 int8 activations a panel holds, to
/// 1e-5 of the terms' absolute sum (the two GEMMs' shared test).
pub(crate) fn assert_matches_reference(
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    ys: &[f32],
) {
    let n = xs.len() / cols;
    let row_bytes = ty.row_bytes(cols).unwrap();
    let be = ty.block_elems();
    let (mut q, mut s, mut b) = (vec![0i8; be], vec![0f32; be / 16], vec![0f32; be / 8]);
    for t in 0..n {
        let x = &xs[t * cols..(t + 1) * cols];
        let mut xq = vec![0f64; cols];
        for (j, g) in x.chunks_exact(32).enumerate() {
            let d = g.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (i, &v) in g.iter().enumerate() {
                xq[32 * j + i] = round_q(v, id) as f64 * d as f64;
            }
        }
        for r in 0..rows {
            let row = &w[r * row_bytes..(r + 1) * row_bytes];
            let (mut want, mut scale) = (0f64, 0f64);
            for (bi, blk) in row.chunks_exact(ty.block_bytes()).enumerate() {
                let has_bias = di8::decode_block(ty, blk, &mut q, &mut s, &mut b).unwrap();
                for i in 0..be {
                    let k = bi * be + i;
                    let mut v = s[i / 16] as f64 * q[i] as f64 * xq[k];
                    if has_bias {
                        v += b[i / 8] as f64 * xq[k];
                    }
                    want += v;
                    scale += v.abs();
                }
            }
            let got = ys[t * rows + r] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * scale,
                "{ty} {cols}: row {r} token {t}: got {got} want {want} (Σ|terms| {scale})"
            );
        }
    }
}

/// Every format of the GEMM against its own arithmetic in f64: the decoded `scale·q` and the
/// bias against the per-32 int8 activations the panel holds.
#[test]
fn gemm_matches_the_decoded_products() {
    if !crate::simd512::available() {
        return;
    }
    for ty in GgmlType::SUPPORTED {
        let Some(group) = group_size(ty) else {
            continue;
        };
        // Two slot blocks (16 rows, then 5: tiles of 4 and 1), two and a half k-blocks,
        // a full panel and a partial one.
        let (rows, cols, n) = (21usize, 1280usize, 21usize);
        let w = random_blocks(ty, rows * cols / ty.block_elems(), 3);
        let row_bytes = ty.row_bytes(cols).unwrap();
        let xs = random_vector(n * cols, 9);
        // WORKAROUND: the features were detected above.
        #[allow(unsafe_code)]
        let panels: Vec<Panel> = xs
            .chunks(PANEL * cols)
            .map(|c| unsafe { Panel::new(c, cols, group, di8::has_bias(ty)) })
            .collect();
        let mut ys = vec![0f32; n * rows];
        // WORKAROUND: the features were detected above.
        #[allow(unsafe_code)]
        unsafe {
            let out = &mut RowsOut::split(&mut ys, rows, rows)[0];
            rows_times_panels(ty, &w, row_bytes, cols, &panels, out)
        };
        assert_matches_reference(ty, &w, rows, cols, &xs, &ys);
    }
}
