//! Batched products `Y = X·Wᵀ` (prefill, verification passes): a few tokens as each token's
//! own mat-vec row group by row group (bit for bit decode's numbers), more on the batched
//! kernels — the AVX-512 VNNI GEMM (`gemm512`), the int8 multi-vector rows, or f32 — with
//! every weight row decoded once for the batch.

use crate::decode_i8 as di8;
use crate::kernels::{
    activation, check, check_len, rows_dispatch, rows_multi_dispatch, task_rows, Activations,
    PARALLEL_MIN_WEIGHTS, ROWS_PER_TASK,
};
use crate::q8::Q8Act;
use crate::{GgmlType, QuantError};
use rayon::prelude::*;

/// `Y = X·Wᵀ` for a batch: `xs` is `n × cols` (row-major), `ys` is `n × rows`.
/// Each weight row is dotted with all `n` vectors while it is hot in cache.
pub fn matmul(
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    n: usize,
    ys: &mut [f32],
) -> Result<(), QuantError> {
    matmul_with(Activations::default(), ty, w, rows, cols, xs, n, ys)
}

/// Batches up to this many tokens run [`matmul_with`] as the single-token mat-vec of each
/// token, row group by row group (see [`matvec_tokens`]): exactly the numbers decoding the
/// tokens one at a time gives — which a speculative verification pass must reproduce for greedy
/// drafting to change nothing — with each weight read from memory once.
pub const MATVEC_UP_TO: usize = 4;

/// [`matmul`] with an explicit activation mode.
#[allow(clippy::too_many_arguments)]
pub fn matmul_with(
    mode: Activations,
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    n: usize,
    ys: &mut [f32],
) -> Result<(), QuantError> {
    matmul_from(MATVEC_UP_TO, mode, ty, w, rows, cols, xs, n, ys)
}

/// [`matmul_with`] for products whose tokens need not get decode's numbers (a prefill's
/// per-expert products): the batched kernels from 3 tokens, where for most block types they
/// outrun per-token mat-vecs (IQ2_XXS at 4 tokens, one thread: 16.8 against 11.8 G
/// multiply-adds/s), on their own activation grid.
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched_with(
    mode: Activations,
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    n: usize,
    ys: &mut [f32],
) -> Result<(), QuantError> {
    matmul_from(2, mode, ty, w, rows, cols, xs, n, ys)
}

/// The product, with batches of up to `per_token` tokens as each token's mat-vec.
#[allow(clippy::too_many_arguments)]
fn matmul_from(
    per_token: usize,
    mode: Activations,
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    xs: &[f32],
    n: usize,
    ys: &mut [f32],
) -> Result<(), QuantError> {
    let row_bytes = check(ty, w, rows, cols)?;
    check_len("xs", xs.len(), n * cols)?;
    check_len("ys", ys.len(), n * rows)?;
    if rows == 0 || n == 0 {
        return Ok(()); // An empty product (and no row block to split `ys` into).
    }
    if n <= per_token {
        // The GEMMs tile tokens in panels (16 on AVX-512) on their own activation grid: a few
        // tokens paid for a panel's work (1.5–9× a mat-vec's time per token at 2 tokens,
        // `localglm bench quants --batch 2`), and their int8 logits differed from decode's by
        // up to ~1 on the GLM bench model, enough to flip greedy near-ties.
        matvec_tokens(mode, ty, w, row_bytes, cols, xs, ys);
        return Ok(());
    }
    // The batched kernels run on rayon: the team's workers park rather than spin beside them.
    crate::team::release();
    #[cfg(target_arch = "x86_64")]
    if mode == Activations::Int8 && x86_gemm(ty, w, row_bytes, rows, cols, xs, n, ys) {
        return Ok(());
    }
    if mode == Activations::Int8 && di8::supports(ty) {
        // Integer path: every weight block is decoded once for the whole batch.
        let acts: Vec<Q8Act> = xs.chunks_exact(cols).map(Q8Act::new).collect();
        transposed_tasks(w, row_bytes, rows, cols, n, ys, |yc, wc| {
            rows_multi_dispatch(ty, wc, row_bytes, &acts, yc)
        });
        return Ok(());
    }
    let acts: Vec<Option<Q8Act>> = xs
        .chunks_exact(cols)
        .map(|xv| activation(ty, mode, xv))
        .collect();
    transposed_tasks(w, row_bytes, rows, cols, n, ys, |yc, wc| {
        let mut col = vec![0f32; yc.len() / n];
        for (t, xv) in xs.chunks_exact(cols).enumerate() {
            rows_dispatch(ty, wc, row_bytes, xv, acts[t].as_ref(), &mut col);
            for (r, v) in col.iter().enumerate() {
                yc[r * n + t] = *v;
            }
        }
    });
    Ok(())
}

/// The register-tiled integer GEMM where this CPU and `ty` have one: AVX-512 VNNI
/// (`gemm512`), else AVX2 (`gemm256`), activations packed once in 16-token panels. False
/// (nothing written) otherwise.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn x86_gemm(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    cols: usize,
    xs: &[f32],
    n: usize,
    ys: &mut [f32],
) -> bool {
    use crate::gemm512::{Panel, PANEL};
    if !cols.is_multiple_of(32) {
        return false;
    }
    let bias = di8::has_bias(ty);
    let chunks = xs.par_chunks(PANEL * cols);
    if crate::simd512::available() {
        let Some(group) = crate::gemm512::group_size(ty) else {
            return false;
        };
        // WORKAROUND (both blocks): `simd512::available()` detected the features just above.
        #[allow(unsafe_code)]
        let panels: Vec<Panel> = chunks
            .map(|c| unsafe { Panel::new(c, cols, group, bias) })
            .collect();
        row_block_tasks(w, row_bytes, rows, cols, n, ys, |out, wc| {
            #[allow(unsafe_code)]
            unsafe {
                crate::gemm512::rows_times_panels(ty, wc, row_bytes, cols, &panels, out)
            }
        });
        return true;
    }
    let Some(group) = crate::gemm256::group_size(ty).filter(|_| crate::kernels::have_avx2()) else {
        return false;
    };
    // WORKAROUND (both blocks): `have_avx2()` detected the features just above.
    #[allow(unsafe_code)]
    let panels: Vec<Panel> = chunks
        .map(|c| unsafe { Panel::new_avx2(c, cols, group, bias) })
        .collect();
    row_block_tasks(w, row_bytes, rows, cols, n, ys, |out, wc| {
        #[allow(unsafe_code)]
        unsafe {
            crate::gemm256::rows_times_panels(ty, wc, row_bytes, cols, &panels, out)
        }
    });
    true
}

/// Runs `task(block of ys's rows, those weight rows)` over blocks of [`ROWS_PER_TASK`] rows
/// (in parallel when large), each writing its rows of every token straight into `ys`
/// (`n × rows`).
fn row_block_tasks(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    cols: usize,
    n: usize,
    ys: &mut [f32],
    task: impl Fn(&mut crate::rows_out::RowsOut, &[u8]) + Sync,
) {
    use crate::rows_out::RowsOut;
    if rows * cols * n < PARALLEL_MIN_WEIGHTS {
        task(&mut RowsOut::split(ys, rows, rows)[0], w);
    } else {
        RowsOut::split(ys, rows, ROWS_PER_TASK)
            .into_par_iter()
            .zip(w.par_chunks(row_bytes * ROWS_PER_TASK))
            .for_each(|(mut out, wc)| task(&mut out, wc));
    }
}

/// [`row_block_tasks`] for kernels that write a block's rows × n (row-major): each task's
/// block goes into `ys` (`n × rows`) while it is in cache. (A rows × n scratch for the whole
/// product, zeroed, then transposed in a pass of its own, was ~8 % of a prefill where the
/// GEMMs used it.)
fn transposed_tasks(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    cols: usize,
    n: usize,
    ys: &mut [f32],
    task: impl Fn(&mut [f32], &[u8]) + Sync,
) {
    row_block_tasks(w, row_bytes, rows, cols, n, ys, |out, wc| {
        let mut yt = vec![0f32; out.rows() * n];
        task(&mut yt, wc);
        out.put_transposed(&yt);
    });
}

/// The mat-vecs of a few tokens (`xs` n × cols into `ys` n × rows, checked): each row chunk
/// of `kernels::matvec_rows`'s tasks is run for every token while it is in cache, with the same
/// kernel, chunking and activation quantization as one token's mat-vec, so each token's
/// output is bit-identical to its own [`crate::matvec_with`].
fn matvec_tokens(
    mode: Activations,
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    cols: usize,
    xs: &[f32],
    ys: &mut [f32],
) {
    let rows = w.len() / row_bytes;
    let tokens: Vec<(&[f32], Option<Q8Act>)> = xs
        .chunks_exact(cols)
        .map(|x| (x, activation(ty, mode, x)))
        .collect();
    let per = if rows * cols < PARALLEL_MIN_WEIGHTS {
        rows
    } else {
        task_rows(rows, cols)
    };
    let mut outs: Vec<_> = ys
        .chunks_exact_mut(rows)
        .map(|y| y.chunks_mut(per))
        .collect();
    let tasks: Vec<(Vec<&mut [f32]>, &[u8])> = w
        .chunks(row_bytes * per)
        .map(|wc| (outs.iter_mut().filter_map(Iterator::next).collect(), wc))
        .collect();
    let run = |(yc, wc): (Vec<&mut [f32]>, &[u8])| {
        for ((x, act), y) in tokens.iter().zip(yc) {
            rows_dispatch(ty, wc, row_bytes, x, act.as_ref(), y);
        }
    };
    if tasks.len() == 1 {
        tasks.into_iter().for_each(run);
    } else {
        crate::team::for_each(tasks, run);
    }
}
