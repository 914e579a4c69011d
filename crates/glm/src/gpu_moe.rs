//! The MoE layer on the GPU backend (a part of `gpu_ops`): routing, the routed experts' products
//! on the device or, for a layer whose experts stay in RAM, on the CPU kernels, and their
//! weighted sum added to the residual stream.

use super::{Act, GpuOps, BY_EXPERT_FROM};
use crate::pass::Site;
use crate::weights::{GateUp, MoeWeights};
use crate::GlmError;
use localglm_gpu::{Buffer, QWeight};

impl GpuOps<'_> {
    /// [`crate::pass::Ops::moe`] on the device.
    pub(super) fn moe_on_device(
        &mut self,
        at: Site,
        m: &MoeWeights,
        h: &Act,
        acc: Act,
    ) -> Result<Act, GlmError> {
        let c = &self.m.config;
        let g = self.g;
        let (n, d, e, k) = (h.rows, c.n_embd, c.n_expert, c.n_expert_used.max(1));
        let logits = self.get("logits_r", n * e)?;
        g.matmul(self.w(&m.router)?, &h.buf, h.off, n, &logits, 0)?;
        if self.gw.get(&m.down).is_none() {
            // Experts in RAM: the router's logits and the normed activations come back in one
            // read, the CPU runs the routed experts, and their sum comes back to be added.
            let mut back = g.read_f32_ranges(&[(&h.buf, h.off, n * d), (&logits, 0, n * e)])?;
            let (lv, hv) = (back.pop().expect("logits"), back.pop().expect("h"));
            let rows = |v: &[f32], w: usize| v.chunks_exact(w).map(<[f32]>::to_vec).collect();
            let (xs, logits): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (rows(&hv, d), rows(&lv, e));
            let mut routed = vec![0f32; n * d];
            let host = match at {
                Site::Trunk(i) => &self.m.vecs[i],
                Site::Mtp => &self.m.mtp.as_ref().expect("an MTP pass has its block").vecs,
            };
            self.m.moe_routed(m, host, &logits, &xs, &mut routed)?;
            let a = self.get("a", n * d)?;
            g.write_f32(&a, &routed)?;
            g.add(&acc.buf, acc.off, &a, 0, n * d)?;
            return Ok(acc);
        }
        let f = c.expert_ff;
        let slots = n * k;
        let ids = self.get("ids", slots)?;
        let wts = self.get("wts", slots)?;
        let bias = self.vecs(at)?.expert_bias.as_ref();
        let sigmoid = c.gating == crate::config::Gating::Sigmoid;
        g.route(
            &logits,
            0,
            bias,
            n,
            e,
            k,
            sigmoid,
            c.expert_norm,
            c.expert_scale,
            &ids,
            &wts,
        )?;
        // A batch groups its slots by expert first, so each expert's weights are read once per
        // 8 of its tokens; a decoded token reads its k directly.
        let groups = match n >= BY_EXPERT_FROM {
            true => {
                let groups = self.get("groups", e + 1 + slots)?;
                g.bucket(&ids, slots, e, &groups)?;
                Some(groups)
            }
            false => None,
        };
        let gu = self.get("gu", 2 * slots * f)?;
        let y = self.get("y", slots * d)?;
        let product =
            |wt: &QWeight, x: &Buffer, xo: usize, xs: usize, xd: usize, out: &Buffer, oo| {
                match &groups {
                    Some(gr) => g.matvec_by_expert(wt, gr, slots, x, xo, xs, xd, out, oo),
                    None => g.matvec_indexed_grouped(wt, &ids, slots, x, xo, xs, xd, out, oo),
                }
            };
        // Where slot s's gate and up products sit in `gu`: (stride between slots, up − gate).
        let pair = match &m.gate_up {
            GateUp::Separate { gate, up } => self.gw.stack(&[gate, up]),
            GateUp::Fused(_) => None,
        };
        let (stride, up) = match (&m.gate_up, pair) {
            (GateUp::Separate { .. }, Some(pair)) => {
                product(pair, &h.buf, h.off, d, k, &gu, 0)?;
                (2 * f, f)
            }
            (GateUp::Separate { gate, up }, None) => {
                product(self.w(gate)?, &h.buf, h.off, d, k, &gu, 0)?;
                product(self.w(up)?, &h.buf, h.off, d, k, &gu, slots * f)?;
                (f, slots * f)
            }
            (GateUp::Fused(t), _) => {
                product(self.w(t)?, &h.buf, h.off, d, k, &gu, 0)?;
                (2 * f, f)
            }
        };
        let act = match groups {
            Some(_) => Some(self.get("act", slots * f)?),
            None => None,
        };
        let down = self.w(&m.down)?;
        match (&groups, &act) {
            (Some(gr), Some(act)) => {
                g.silu_mul(act, 0, &gu, 0, up, stride, slots, f)?;
                g.matvec_by_expert(down, gr, slots, act, 0, f, 1, &y, 0)?;
            }
            // Per slot (a few tokens): SwiGLU inside the down product's activation staging.
            _ => g.matvec_indexed_swiglu(down, &ids, slots, &gu, 0, stride, up, &y, 0)?,
        }
        g.combine(&acc.buf, acc.off, &y, 0, &wts, 0, n, d, k)?;
        Ok(acc)
    }
}
