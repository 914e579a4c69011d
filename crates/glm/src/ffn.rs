//! The routed experts of the GLM MoE (spec §B.6) on the CPU kernels: sigmoid routing (bias only
//! for selection, normalised top-k weights × scale), per token for decode, grouped by expert
//! for prefill. Both backends use it: the CPU's `moe` op, and the GPU's for a layer whose
//! experts stay in RAM. (The shared expert and dense FFNs are `pass::dense`.)

use crate::config::Gating;
use crate::model::{LayerVecs, Model};
use crate::weights::{GateUp, MoeWeights, QTensor};
use crate::GlmError;
use localglm_quants::{matmul_batched_with, matvec_indexed_with};
use rayon::prelude::*;

impl Model {
    /// The routed experts on the CPU kernels: `out[t] += Σ_j w_j · expert_j(xs[t])`, the
    /// experts and weights chosen from the router's `logits` (the shared expert not included).
    pub(crate) fn moe_routed(
        &self,
        m: &MoeWeights,
        v: &LayerVecs,
        logits: &[Vec<f32>],
        xs: &[Vec<f32>],
        out: &mut [f32],
    ) -> Result<(), GlmError> {
        let c = &self.config;
        let mode = self.opts.activations;
        let (n, d) = (xs.len(), c.n_embd);
        if n > crate::model::SMALL_BATCH {
            return self.moe_batched(m, v, logits, xs, out);
        }
        let f = c.expert_ff;
        let k = c.n_expert_used;
        let mut g = vec![0f32; k * f];
        let mut u = vec![0f32; k * f];
        let mut y = vec![0f32; k * d];
        for t in 0..n {
            let (ids, wts) = self.route(&logits[t], v.expert_bias.as_deref());
            let xt = &xs[t];
            match &m.gate_up {
                GateUp::Separate { gate, up } => {
                    matvec_indexed_with(mode, gate.stacked(&self.gguf), &ids, xt, &mut g)?;
                    matvec_indexed_with(mode, up.stacked(&self.gguf), &ids, xt, &mut u)?;
                }
                GateUp::Fused(gu) => {
                    let mut both = vec![0f32; k * 2 * f];
                    matvec_indexed_with(mode, gu.stacked(&self.gguf), &ids, xt, &mut both)?;
                    for e in 0..k {
                        g[e * f..(e + 1) * f].copy_from_slice(&both[e * 2 * f..e * 2 * f + f]);
                        u[e * f..(e + 1) * f]
                            .copy_from_slice(&both[e * 2 * f + f..(e + 1) * 2 * f]);
                    }
                }
            }
            for (gv, uv) in g.iter_mut().zip(&u) {
                *gv = silu(*gv) * uv;
            }
            matvec_indexed_with(mode, m.down.stacked(&self.gguf), &ids, &g, &mut y)?;
            let o = &mut out[t * d..(t + 1) * d];
            for (e, w) in wts.iter().enumerate() {
                for (ov, yv) in o.iter_mut().zip(&y[e * d..(e + 1) * d]) {
                    *ov += w * yv;
                }
            }
        }
        Ok(())
    }

    /// Prefill MoE: tokens grouped by expert, so each expert's weights are decoded once for
    /// all the tokens routed to it (batched products instead of one mat-vec per token).
    fn moe_batched(
        &self,
        m: &MoeWeights,
        v: &LayerVecs,
        logits: &[Vec<f32>],
        xs: &[Vec<f32>],
        out: &mut [f32],
    ) -> Result<(), GlmError> {
        let c = &self.config;
        let mode = self.opts.activations;
        let (d, f) = (c.n_embd, c.expert_ff);
        let mut per_expert: Vec<Vec<(usize, f32)>> = vec![Vec::new(); c.n_expert];
        for (t, l) in logits.iter().enumerate() {
            let (ids, wts) = self.route(l, v.expert_bias.as_deref());
            for (e, w) in ids.into_iter().zip(wts) {
                per_expert[e as usize].push((t, w));
            }
        }
        let slice = |t: &QTensor, e: usize, rows: usize| -> Result<&[u8], GlmError> {
            let bytes = t.bytes(&self.gguf);
            let per = t.ty().row_bytes(t.cols())? * rows;
            Ok(&bytes[e * per..(e + 1) * per])
        };
        // Experts side by side, each one's products on one worker at a time (inside, the
        // products still split their rows when a worker is free): one parallel loop instead
        // of three per expert, each a fork/join of a few hundred µs on ~16 tokens. The
        // outputs are added in expert order, as one at a time did (the same numbers).
        let expert = |e: usize, toks: &Vec<(usize, f32)>| -> Result<Option<Vec<f32>>, GlmError> {
            if toks.is_empty() {
                return Ok(None);
            }
            let ne = toks.len();
            let mut xe = Vec::with_capacity(ne * d);
            for &(t, _) in toks {
                xe.extend_from_slice(&xs[t]);
            }
            let mut g = vec![0f32; ne * f];
            let mut u = vec![0f32; ne * f];
            match &m.gate_up {
                GateUp::Separate { gate, up } => {
                    matmul_batched_with(
                        mode,
                        gate.ty(),
                        slice(gate, e, f)?,
                        f,
                        d,
                        &xe,
                        ne,
                        &mut g,
                    )?;
                    matmul_batched_with(mode, up.ty(), slice(up, e, f)?, f, d, &xe, ne, &mut u)?;
                }
                GateUp::Fused(gu) => {
                    let mut both = vec![0f32; ne * 2 * f];
                    matmul_batched_with(
                        mode,
                        gu.ty(),
                        slice(gu, e, 2 * f)?,
                        2 * f,
                        d,
                        &xe,
                        ne,
                        &mut both,
                    )?;
                    for t in 0..ne {
                        g[t * f..(t + 1) * f].copy_from_slice(&both[t * 2 * f..t * 2 * f + f]);
                        u[t * f..(t + 1) * f]
                            .copy_from_slice(&both[t * 2 * f + f..(t + 1) * 2 * f]);
                    }
                }
            }
            for (gv, uv) in g.iter_mut().zip(&u) {
                *gv = silu(*gv) * uv;
            }
            let mut y = vec![0f32; ne * d];
            matmul_batched_with(
                mode,
                m.down.ty(),
                slice(&m.down, e, d)?,
                d,
                f,
                &g,
                ne,
                &mut y,
            )?;
            Ok(Some(y))
        };
        let ys: Vec<Option<Vec<f32>>> = per_expert
            .par_iter()
            .enumerate()
            .map(|(e, toks)| localglm_quants::team::on_rayon(|| expert(e, toks)))
            .collect::<Result<_, _>>()?;
        for (toks, y) in per_expert.iter().zip(ys) {
            let Some(y) = y else { continue };
            for (i, &(t, w)) in toks.iter().enumerate() {
                for (o, yv) in out[t * d..(t + 1) * d]
                    .iter_mut()
                    .zip(&y[i * d..(i + 1) * d])
                {
                    *o += w * yv;
                }
            }
        }
        Ok(())
    }

    /// Expert choice for one token: ids and final weights.
    fn route(&self, logits: &[f32], bias: Option<&[f32]>) -> (Vec<u32>, Vec<f32>) {
        let c = &self.config;
        let scores: Vec<f32> = match c.gating {
            Gating::Sigmoid => logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect(),
            Gating::Softmax => {
                let mx = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = logits.iter().map(|&z| (z - mx).exp()).collect();
                let s: f32 = e.iter().sum();
                e.into_iter().map(|v| v / s).collect()
            }
        };
        let sel: Vec<f32> = match bias {
            Some(b) => scores.iter().zip(b).map(|(s, b)| s + b).collect(),
            None => scores.clone(),
        };
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        let k = c.n_expert_used.min(order.len());
        order.select_nth_unstable_by(k - 1, |&a, &b| sel[b as usize].total_cmp(&sel[a as usize]));
        let ids: Vec<u32> = order[..k].to_vec();
        let mut w: Vec<f32> = ids.iter().map(|&e| scores[e as usize]).collect();
        if c.expert_norm {
            let s: f32 = w.iter().sum::<f32>() + 1e-20;
            w.iter_mut().for_each(|v| *v /= s);
        }
        w.iter_mut().for_each(|v| *v *= c.expert_scale);
        (ids, w)
    }
}

fn silu(z: f32) -> f32 {
    z / (1.0 + (-z).exp())
}
