//! Bit-exactness against the reference dequantizer (PyPI `gguf` 0.19.0).
//!
//! The fixtures in `tests/fixtures/` are made by `scripts/make_quant_fixtures.py`: for each of the
//! 22 supported types, `<TYPE>.bin` holds random valid blocks and `<TYPE>.f32` the f32 values
//! `gguf.quants.dequantize` produced for them. Values are compared by bit pattern, so NaN
//! payloads, infinities and signed zeros must match too.

use localglm_quants::{dequantize_block, dequantize_row, GgmlType, QuantError};
use std::path::PathBuf;

struct Fixture {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    blocks: Vec<u8>,
    expected: Vec<u32>,
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn load_fixtures() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest is JSON");
    let entries = manifest["types"].as_array().expect("types array");
    entries
        .iter()
        .map(|e| {
            let name = e["type"].as_str().expect("type name");
            let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
            assert_eq!(
                u64::from(ty.id()),
                e["id"].as_u64().expect("id"),
                "{name}: id"
            );
            let rows = e["rows"].as_u64().expect("rows") as usize;
            let cols = e["cols"].as_u64().expect("cols") as usize;
            let blocks = std::fs::read(dir.join(format!("{name}.bin"))).expect("blocks");
            let raw = std::fs::read(dir.join(format!("{name}.f32"))).expect("expected values");
            let expected = raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>();
            assert_eq!(expected.len(), rows * cols, "{name}: expected length");
            assert_eq!(
                blocks.len(),
                rows * ty.row_bytes(cols).unwrap(),
                "{name}: blocks length"
            );
            Fixture {
                ty,
                rows,
                cols,
                blocks,
                expected,
            }
        })
        .collect()
}

fn first_mismatch(got: &[f32], want: &[u32]) -> Option<(usize, u32, u32)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g.to_bits() != **w)
        .map(|(i, (g, w))| (i, g.to_bits(), *w))
}

#[test]
fn fixtures_cover_every_supported_type() {
    let fixtures = load_fixtures();
    for ty in GgmlType::SUPPORTED {
        assert!(fixtures.iter().any(|f| f.ty == ty), "no fixture for {ty}");
    }
}

#[test]
fn rows_match_reference_bit_for_bit() {
    for f in load_fixtures() {
        let row_bytes = f.ty.row_bytes(f.cols).unwrap();
        for r in 0..f.rows {
            let src = &f.blocks[r * row_bytes..(r + 1) * row_bytes];
            let want = &f.expected[r * f.cols..(r + 1) * f.cols];
            let mut got = vec![0f32; f.cols];
            dequantize_row(f.ty, src, &mut got).unwrap();
            if let Some((i, g, w)) = first_mismatch(&got, want) {
                panic!(
                    "{} row {r} weight {i}: got {g:#010x}, reference {w:#010x}",
                    f.ty
                );
            }
        }
        // All rows at once: a row boundary is only a block boundary.
        let mut all = vec![0f32; f.rows * f.cols];
        dequantize_row(f.ty, &f.blocks, &mut all).unwrap();
        assert!(
            first_mismatch(&all, &f.expected).is_none(),
            "{} as one run",
            f.ty
        );
    }
}

#[test]
fn blocks_match_reference_bit_for_bit() {
    for f in load_fixtures() {
        let (bb, be) = (f.ty.block_bytes(), f.ty.block_elems());
        let mut out = vec![0f32; be];
        for (n, block) in f.blocks.chunks_exact(bb).enumerate() {
            dequantize_block(f.ty, block, &mut out).unwrap();
            let want = &f.expected[n * be..(n + 1) * be];
            if let Some((i, g, w)) = first_mismatch(&out, want) {
                panic!(
                    "{} block {n} weight {i}: got {g:#010x}, reference {w:#010x}",
                    f.ty
                );
            }
        }
    }
}

#[test]
fn wrong_lengths_are_errors_not_panics() {
    for f in load_fixtures() {
        let row_bytes = f.ty.row_bytes(f.cols).unwrap();
        let mut dst = vec![0f32; f.cols];
        for len in [0, row_bytes - 1, row_bytes + 1] {
            let src = vec![0u8; len];
            assert!(
                matches!(
                    dequantize_row(f.ty, &src, &mut dst),
                    Err(QuantError::LengthMismatch { expected, actual, .. })
                        if expected == row_bytes && actual == len
                ),
                "{}: {len} bytes accepted",
                f.ty
            );
        }
        if f.ty.block_elems() > 1 {
            let mut short = vec![0f32; f.cols - 1];
            assert!(
                matches!(
                    dequantize_row(f.ty, &f.blocks[..row_bytes], &mut short),
                    Err(QuantError::NotBlockMultiple { .. })
                ),
                "{}: partial block accepted",
                f.ty
            );
        }
        let mut one = vec![0f32; f.ty.block_elems()];
        let block = &f.blocks[..f.ty.block_bytes()];
        assert!(matches!(
            dequantize_block(f.ty, &block[..block.len() - 1], &mut one),
            Err(QuantError::BlockShape { .. })
        ));
    }
    for ty in GgmlType::ALL.into_iter().filter(|t| !t.is_supported()) {
        let src = vec![0u8; ty.block_bytes()];
        let mut dst = vec![0f32; ty.block_elems()];
        assert_eq!(
            dequantize_row(ty, &src, &mut dst),
            Err(QuantError::Unsupported(ty))
        );
    }
}
