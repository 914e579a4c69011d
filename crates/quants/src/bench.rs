//! Measurements for `localglm bench quants`: the machine's memory bandwidth and each type's
//! mat-vec throughput, measured in the same run so their ratio is meaningful.
//!
//! Invariant: every number is a best-of-`reps` wall-clock measurement on buffers far larger
//! than any cache (≥ 512 MiB by default), using all rayon threads, as the kernels do.

use crate::synth::{random_blocks, random_vector};
use crate::{GgmlType, QuantError};
use rayon::prelude::*;
use std::time::Instant;

/// Memory bandwidth of this machine, bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    /// Large parallel copy: (bytes read + bytes written) / time.
    pub copy_bytes_per_s: f64,
    /// Large parallel read (sum of words): bytes read / time.
    pub read_bytes_per_s: f64,
}

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Measures copy and read bandwidth on buffers of `bytes` each.
pub fn measure_bandwidth(bytes: usize, reps: usize) -> Bandwidth {
    let words = bytes / 8;
    let src: Vec<u64> = (0..words as u64)
        .into_par_iter()
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let mut dst = vec![0u64; words];
    const CHUNK: usize = 1 << 18;
    let copy = best_of(reps, || {
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    let mut sink = 0u64;
    let read = best_of(reps, || {
        sink ^= src
            .par_chunks(CHUNK)
            .map(|c| {
                let mut acc = [0u64; 8];
                for w in c.chunks_exact(8) {
                    for i in 0..8 {
                        acc[i] = acc[i].wrapping_add(w[i]);
                    }
                }
                acc.iter().fold(0u64, |a, b| a ^ b)
            })
            .reduce(|| 0, |a, b| a ^ b);
    });
    std::hint::black_box((sink, &dst));
    Bandwidth {
        copy_bytes_per_s: 2.0 * (words * 8) as f64 / copy,
        read_bytes_per_s: (words * 8) as f64 / read,
    }
}

/// One type's mat-vec result.
#[derive(Debug, Clone)]
pub struct MatvecResult {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub weight_bytes: usize,
    pub seconds: f64,
    /// Weight bytes streamed per second.
    pub bytes_per_s: f64,
    /// Weights per second.
    pub weights_per_s: f64,
}

/// Matrix size of a benchmark run.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    /// About this many weight bytes, rows of 4096 weights (far larger than any cache).
    Bytes(usize),
    /// An exact `rows × cols` shape (e.g. a peer's benchmark shape).
    Shape { rows: usize, cols: usize },
}

/// Mat-vec of a random `ty` matrix, best of `reps`; with `batch` > 1 the batched product with
/// that many activation vectors (the prefill path), `weights_per_s` then counting
/// multiply-adds (weights × vectors).
pub fn bench_matvec(
    ty: GgmlType,
    size: Size,
    reps: usize,
    batch: usize,
) -> Result<MatvecResult, QuantError> {
    let batch = batch.max(1);
    let (rows, cols) = match size {
        Size::Bytes(target) => ((target / ty.row_bytes(4096)?).max(1), 4096),
        Size::Shape { rows, cols } => (rows, cols),
    };
    ty.row_bytes(cols)?;
    let n_blocks = rows * cols / ty.block_elems();
    // Generate in parallel chunks (different seeds) to keep set-up short.
    let chunk_blocks = (1 << 22) / ty.block_bytes().max(1);
    let parts: Vec<Vec<u8>> = (0..n_blocks.div_ceil(chunk_blocks))
        .into_par_iter()
        .map(|i| random_blocks(ty, chunk_blocks.min(n_blocks - i * chunk_blocks), i as u64))
        .collect();
    let w: Vec<u8> = parts.concat();
    let x = random_vector(cols * batch, 1);
    let mut y = vec![0f32; rows * batch];
    crate::matmul(ty, &w, rows, cols, &x, batch, &mut y)?; // warm-up, page-in
    let seconds = best_of(reps, || {
        crate::matmul(ty, &w, rows, cols, &x, batch, &mut y).expect("checked above");
    });
    std::hint::black_box(&y);
    Ok(MatvecResult {
        ty,
        rows,
        cols,
        weight_bytes: w.len(),
        seconds,
        bytes_per_s: w.len() as f64 / seconds,
        weights_per_s: (rows * cols * batch) as f64 / seconds,
    })
}
