//! The MoE mat-vec (`MUL_MAT_ID`): the routed experts' rows of a decoded token, one job on the
//! thread team.

use crate::kernels::{activation, check, check_len, rows_dispatch, task_rows, Activations};
use crate::q8::Q8Act;
use crate::{GgmlType, QuantError};

/// A 3-D ggml expert tensor: `n_experts` matrices of `rows × cols` of type `ty`, back to back.
#[derive(Debug, Clone, Copy)]
pub struct Experts<'a> {
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub n_experts: usize,
    pub rows: usize,
    pub cols: usize,
}

/// MoE mat-vec (`MUL_MAT_ID`): for each `k`, `ys[k] = W[ids[k]]·x_k` where `x_k` is row `k` of
/// `xs` when `xs.len() == ids.len() × cols`, or the single shared vector when `xs.len() == cols`.
pub fn matvec_indexed(
    experts: Experts<'_>,
    ids: &[u32],
    xs: &[f32],
    ys: &mut [f32],
) -> Result<(), QuantError> {
    matvec_indexed_with(Activations::default(), experts, ids, xs, ys)
}

/// [`matvec_indexed`] with an explicit activation mode.
pub fn matvec_indexed_with(
    mode: Activations,
    experts: Experts<'_>,
    ids: &[u32],
    xs: &[f32],
    ys: &mut [f32],
) -> Result<(), QuantError> {
    let Experts {
        ty,
        data: w,
        n_experts,
        rows,
        cols,
    } = experts;
    let row_bytes = ty.row_bytes(cols)?;
    let expert_bytes = row_bytes * rows;
    check(ty, w, rows * n_experts, cols)?;
    check_len("ys", ys.len(), ids.len() * rows)?;
    let shared = xs.len() == cols;
    if !shared {
        check_len("xs", xs.len(), ids.len() * cols)?;
    }
    if let Some(&bad) = ids.iter().find(|&&e| e as usize >= n_experts) {
        return Err(QuantError::Shape {
            what: "expert id",
            expected: n_experts,
            actual: bad as usize,
        });
    }
    // Each expert's input quantized once (the shared one once for all), then every expert's
    // rows as one job on the team, like `matvec_many_with`: on rayon, the team's worker spun
    // beside the pool's threads on 2 cores and a GLM decode ran at about half speed.
    let input = |k: usize| match shared {
        true => xs,
        false => &xs[k * cols..(k + 1) * cols],
    };
    let acts: Vec<Option<Q8Act>> = (0..if shared { 1 } else { ids.len() })
        .map(|k| activation(ty, mode, input(k)))
        .collect();
    let per = task_rows(ys.len(), cols);
    let mut tasks = Vec::new();
    for (k, yk) in ys.chunks_mut(rows).enumerate() {
        let e = ids[k] as usize;
        let we = &w[e * expert_bytes..(e + 1) * expert_bytes];
        let act = acts[if shared { 0 } else { k }].as_ref();
        let chunks = yk.chunks_mut(per).zip(we.chunks(row_bytes * per));
        tasks.extend(chunks.map(|(yc, wc)| (yc, wc, input(k), act)));
    }
    crate::team::for_each(tasks, |(yc, wc, x, act)| {
        rows_dispatch(ty, wc, row_bytes, x, act, yc)
    });
    Ok(())
}
