//! Integer dot products: weights decoded per block to int8 quants with per-16 scales and per-8
//! biases (`decode_i8`), activations quantized to int8 with one scale per 16 values.
//!
//! Error budget (documented, tested): quantizing x_i to `d·round(x_i/d)` with
//! `d = max|x| / 127` over its 16-value group moves each product by at most `|w_i|·d/2`, so
//! `|y − (W·x)| ≤ Σ_i |w_i|·d_i/2` plus f32 rounding. For typical activations this is ~1e-4 of
//! Σ|w_i·x_i| at row lengths ≥ 256.
//!
//! The bias terms (a block's `m` in `w = d·q + m`: Q4_1, Q5_1, the K-quants' minimums) take the
//! sums of the *quantized* activations (`sum8`, `quad_s`, `bsum16`, `bsum8`), as llama.cpp's
//! q8_1 and q8_K do, so a product is exactly `w · x̂` and its error `Σ w_i·(x̂_i − x_i)`.
//! Exact sums of x look more precise but leave `Σ (w_i − m)·(x̂_i − x_i)`: `w − m = d·q`
//! with `q` in 0..15 is all of one sign, about 2–3× the size of a trained model's
//! zero-centred weights, so the rounding errors no longer cancel. On SmolLM2 Q4_1 that
//! doubled the error against `transformers` (mean |Δ log p| over the top 20: 0.30 with exact
//! sums, 0.145 with quantized ones; llama.cpp 0.126 on the same file).
//!
//! Most AVX2 kernels use a coarser activation grid, `q256` (one scale per 256 values,
//! llama.cpp's q8_K granularity; error bound as above with `d` taken over 256 values): the
//! row kernels of `simd.rs` and `simd_lowbit.rs` (mat-vec) and the batched (prefill) products
//! of 256-weight super-block types. The portable build keeps the 16-value grid.
//!
//! Invariant: `Q8Act` is built for a length that is a multiple of 32 (every quantized row is).

use std::sync::OnceLock;

/// `round(r)` (half away from zero) clamped to ±127, without a libm call: `as` truncates with
/// one instruction, so the half is added with the sign first (profiling showed `roundf` calls).
#[inline(always)]
fn round_i8(r: f32) -> i8 {
    let h = if r >= 0.0 { 0.5 } else { -0.5 };
    ((r + h) as i32).clamp(-127, 127) as i8
}

/// Symmetric int8 quantization of `x` in groups of `group` values: `q = round(x/d)` with
/// `d = max|x| / 127` per group (sixteen at a time with AVX-512, to the same bytes).
pub(crate) fn quantize_groups(x: &[f32], group: usize, q: &mut [i8], d: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if group.is_multiple_of(16) && crate::simd512::available() {
        // WORKAROUND: `available()` checked the AVX-512 features the function is built for.
        #[allow(unsafe_code)]
        unsafe {
            crate::simd512_q4::quantize_groups(x, group, q, d)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if group.is_multiple_of(8) && crate::kernels::have_avx2() {
        // WORKAROUND: `have_avx2()` detected the features the function is built for.
        #[allow(unsafe_code)]
        unsafe {
            crate::simd_q4::quantize_groups(x, group, q, d)
        };
        return;
    }
    quantize_scalar(x, group, q, d);
}

/// [`quantize_groups`] one value at a time (every CPU; the reference of the vector one).
pub(crate) fn quantize_scalar(x: &[f32], group: usize, q: &mut [i8], d: &mut [f32]) {
    for ((xg, qg), dg) in x.chunks_exact(group).zip(q.chunks_exact_mut(group)).zip(d) {
        let amax = xg.iter().fold(0f32, |m, v| m.max(v.abs()));
        *dg = amax / 127.0;
        let id = if *dg > 0.0 { 1.0 / *dg } else { 0.0 };
        for (qv, v) in qg.iter_mut().zip(xg) {
            *qv = round_i8(v * id);
        }
    }
}

/// Whether this CPU runs the kernels that read `Q8Act::q_quads` (the legacy 4/5-bit rows of
/// AVX-512 and AVX2).
fn quads_used() -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::simd512::available() || crate::kernels::have_avx2();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// An activation vector quantized for integer dots.
#[derive(Debug, Clone, Default)]
pub struct Q8Act {
    /// Quantized values, one per input value.
    pub q: Vec<i8>,
    /// Scale of each 16-value group.
    pub d16: Vec<f32>,
    /// Sum of each 8-value group of the quantized values, `d16·Σq` (for bias terms; why
    /// not the exact sum of x: the module docs).
    pub sum8: Vec<f32>,
    /// Sum of each 32-value group (the sum of four `sum8`), for the offsets of 32-weight
    /// blocks.
    pub sum32: Vec<f32>,
    /// `d16` with each scale repeated 4 times: the scale of every i32 lane of a 32-weight
    /// block's `vpdpbusd` (lane i sums values 4i..4i + 4), loaded rather than shuffled.
    pub d16x4: Vec<f32>,
    /// The values quantized with one scale per 32 (a Q4 block's width: llama.cpp's q8_0/q8_1
    /// grid for Q4_0/Q4_1; error bound as above with `d` taken over 32 values), in the order
    /// the AVX-512 Q4 kernels unpack four 32-weight blocks to: per 128 values, the first 16 of
    /// each block (the blocks' low nibbles), then the last 16 of each (high nibbles). A last
    /// 32–96 values (fewer than four blocks) are not included. Empty on CPUs without those
    /// kernels.
    pub q_quads: Vec<i8>,
    /// The blocks of `q_quads` once each: their scale (the kernels spread them to their
    /// lanes; copies per lane read from memory were four times the bytes, and a wide row's
    /// activations then outgrew L1: Q4_0 at 4096×14336 ran ~13 instead of ~23 G weights/s
    /// on one Zen 4 thread).
    pub quad_d: Vec<f32>,
    /// The blocks of `q_quads` once each: `d·Σq`.
    pub quad_s: Vec<f32>,
    /// The same values quantized with one scale per 256 (llama.cpp's q8_K granularity), for
    /// kernels that accumulate a whole super-block in integers (empty unless the length is a
    /// multiple of 256).
    pub q256: Vec<i8>,
    /// Scale of each 256-value group.
    pub d256: Vec<f32>,
    /// Integer sum of each 16 values of `q256` (|sum| ≤ 16·127): the row kernels fold weight
    /// offsets and minimums (`dmin·m`, IQ1's `δ`, Q3_K's `−4`) through these instead of
    /// touching the activations again.
    pub bsum16: Vec<i16>,
    /// Integer sum of each 8 values of `q256` (|sum| ≤ 8·127): IQ1_M's per-group delta.
    pub bsum8: Vec<i16>,
    /// `q256` in the AVX-512 IQ2_S rows' order (see [`Q8Act::q256_by8`]), built on first use.
    by8: OnceLock<Vec<i8>>,
}

impl Q8Act {
    /// Quantizes `x` (length a multiple of 16).
    pub fn new(x: &[f32]) -> Self {
        let mut a = Q8Act::default();
        a.quantize(x);
        a
    }

    /// Re-quantizes into this buffer (no allocation after the first use).
    pub fn quantize(&mut self, x: &[f32]) {
        let n = x.len();
        self.by8.take();
        self.q.resize(n, 0);
        self.d16.resize(n / 16, 0.0);
        self.sum8.resize(n / 8, 0.0);
        quantize_groups(x, 16, &mut self.q, &mut self.d16);
        for (g, (s, qg)) in self.sum8.iter_mut().zip(self.q.chunks_exact(8)).enumerate() {
            *s = self.d16[g / 2] * qg.iter().map(|&v| i32::from(v)).sum::<i32>() as f32;
        }
        self.sum32.clear();
        self.sum32
            .extend(self.sum8.chunks_exact(4).map(|s| s.iter().sum::<f32>()));
        self.d16x4.clear();
        self.d16x4.extend(self.d16.iter().flat_map(|&d| [d; 4]));
        // Only the x86 legacy 4/5-bit kernels read the quads: elsewhere (NEON, portable) the
        // pass is skipped and they stay empty.
        let quads = if quads_used() { n / 128 } else { 0 };
        self.q_quads.resize(quads * 128, 0);
        self.quad_d.resize(quads * 4, 0.0);
        self.quad_s.resize(quads * 4, 0.0);
        let mut d32 = [0f32; 4];
        let parts = x
            .chunks_exact(128)
            .zip(self.q_quads.chunks_exact_mut(128))
            .zip(self.quad_d.chunks_exact_mut(4))
            .zip(self.quad_s.chunks_exact_mut(4));
        for (((xq, q), qd), qs) in parts {
            let mut q32 = [0i8; 128];
            quantize_groups(xq, 32, &mut q32, &mut d32);
            for b in 0..4 {
                let block = &q32[32 * b..32 * b + 32];
                q[16 * b..16 * b + 16].copy_from_slice(&block[..16]);
                q[64 + 16 * b..64 + 16 * b + 16].copy_from_slice(&block[16..]);
                // The block's quantized sum (module docs).
                let sum = block.iter().map(|&v| i32::from(v)).sum::<i32>();
                qd[b] = d32[b];
                qs[b] = d32[b] * sum as f32;
            }
        }
        if n.is_multiple_of(256) {
            self.q256.resize(n, 0);
            self.d256.resize(n / 256, 0.0);
            quantize_groups(x, 256, &mut self.q256, &mut self.d256);
            self.bsum8.clear();
            self.bsum8.extend(
                self.q256
                    .chunks_exact(8)
                    .map(|g| g.iter().map(|&v| v as i16).sum::<i16>()),
            );
            self.bsum16.clear();
            self.bsum16
                .extend(self.bsum8.chunks_exact(2).map(|p| p[0] + p[1]));
        } else {
            self.q256.clear();
            self.d256.clear();
            self.bsum16.clear();
            self.bsum8.clear();
        }
    }

    /// `q256` in the order of the AVX-512 IQ2_S rows (`simd512_iq2s`): per two super-blocks
    /// (the second all zeros past an odd count) eight runs of 64 values, run `v` holding value
    /// `v` of each 8-value group — the first block's 32 groups, then the second's. Built on
    /// first use, once per quantized vector (the threads of a product share it).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the AVX-512 rows' alone
    pub(crate) fn q256_by8(&self) -> &[i8] {
        self.by8.get_or_init(|| {
            let mut out = vec![0i8; (self.q256.len() / 256).div_ceil(2) * 512];
            for (b, xb) in self.q256.chunks_exact(256).enumerate() {
                let base = 512 * (b / 2) + 32 * (b % 2);
                for (g, xg) in xb.chunks_exact(8).enumerate() {
                    for (v, &x) in xg.iter().enumerate() {
                        out[base + 64 * v + g] = x;
                    }
                }
            }
            out
        })
    }
}

/// Dot of one row of `$B`-byte, `$N`-weight blocks with a quantized activation: `$S = N/16`
/// scales and `$G = N/8` biases per block; `$decode` (a `decode_i8` function) fills them and
/// says whether the block has biases.
///
/// A macro rather than a generic function taking the decoder as `impl Fn`: profiling showed the
/// `Fn::call` shim left out of line — and compiled without the caller's AVX2 features — costing
/// ~40 % of the kernel. The macro calls the `#[inline(always)]` decoder directly.
macro_rules! dot_row_q8 {
    ($row:expr, $act:expr, $B:literal, $N:expr, $S:literal, $G:literal, $decode:path) => {{
        let act: &$crate::q8::Q8Act = $act;
        let mut q = [0i8; $N];
        let mut s = [0f32; $S];
        let mut bias = [0f32; $G];
        let mut isum = [0i32; $S];
        // Element-wise accumulators: a scalar running sum would be a serial dependency chain
        // (float adds do not reassociate), which profiling showed dominating the K-quant kernels.
        let mut acc = [0f32; $S];
        let mut acc_bias = [0f32; $G];
        let (blocks, _) = $row.as_chunks::<$B>();
        let (xq, _) = act.q.as_chunks::<{ $N }>();
        let (xd, _) = act.d16.as_chunks::<$S>();
        let (xs, _) = act.sum8.as_chunks::<$G>();
        for (((blk, xq), xd), xs) in blocks.iter().zip(xq).zip(xd).zip(xs) {
            let has_bias = $decode(blk, &mut q, &mut s, &mut bias);
            for g in 0..$S {
                let mut t = 0i32;
                for i in 0..16 {
                    t += (q[16 * g + i] as i16 * xq[16 * g + i] as i16) as i32;
                }
                isum[g] = t;
            }
            for g in 0..$S {
                acc[g] += s[g] * xd[g] * isum[g] as f32;
            }
            if has_bias {
                for g in 0..$G {
                    acc_bias[g] += bias[g] * xs[g];
                }
            }
        }
        acc.iter().sum::<f32>() + acc_bias.iter().sum::<f32>()
    }};
}
pub(crate) use dot_row_q8;

/// One weight row against many quantized activations: each block is decoded once and dotted
/// with every activation (prefill: decode cost divided by the batch). `$out[t]` receives
/// row · x_t.
macro_rules! dot_row_q8_multi {
    ($row:expr, $acts:expr, $out:expr, $B:literal, $N:expr, $S:literal, $G:literal, $decode:path) => {{
        let acts: &[$crate::q8::Q8Act] = $acts;
        let out: &mut [f32] = $out;
        let mut q = [0i8; $N];
        let mut s = [0f32; $S];
        let mut bias = [0f32; $G];
        out.iter_mut().for_each(|o| *o = 0.0);
        let (blocks, _) = $row.as_chunks::<$B>();
        for (bi, blk) in blocks.iter().enumerate() {
            let has_bias = $decode(blk, &mut q, &mut s, &mut bias);
            for (a, o) in acts.iter().zip(out.iter_mut()) {
                let xq = &a.q[bi * $N..(bi + 1) * $N];
                let xd = &a.d16[bi * $S..(bi + 1) * $S];
                let mut part = [0f32; $S];
                for g in 0..$S {
                    let mut t = 0i32;
                    for k in 0..16 {
                        t += (q[16 * g + k] as i16 * xq[16 * g + k] as i16) as i32;
                    }
                    part[g] = s[g] * xd[g] * t as f32;
                }
                let mut v = part.iter().sum::<f32>();
                if has_bias {
                    let xs = &a.sum8[bi * $G..(bi + 1) * $G];
                    for g in 0..$G {
                        v += bias[g] * xs[g];
                    }
                }
                *o += v;
            }
        }
    }};
}
pub(crate) use dot_row_q8_multi;

/// [`dot_row_q8`] with the block dot in vector registers: `$zero()` is an empty accumulator,
/// `$dot(&q, &s, xq, xd, acc)` adds a block, `$hsum(acc)` sums the lanes. The SIMD builds
/// below name their functions; each expands only inside functions compiled for its features.
#[cfg(target_arch = "x86_64")]
macro_rules! dot_row_q8_vec {
    ($zero:path, $dot:path, $hsum:path, $row:expr, $act:expr, $B:literal, $N:expr, $S:literal, $G:literal, $decode:path) => {{
        let act: &$crate::q8::Q8Act = $act;
        let mut q = [0i8; $N];
        let mut s = [0f32; $S];
        let mut bias = [0f32; $G];
        let mut acc = $zero();
        let mut acc_bias = [0f32; $G];
        let (blocks, _) = $row.as_chunks::<$B>();
        let (xq, _) = act.q.as_chunks::<{ $N }>();
        let (xd, _) = act.d16.as_chunks::<$S>();
        let (xs, _) = act.sum8.as_chunks::<$G>();
        for (((blk, xq), xd), xs) in blocks.iter().zip(xq).zip(xd).zip(xs) {
            let has_bias = $decode(blk, &mut q, &mut s, &mut bias);
            acc = $dot(&q, &s, xq, xd, acc);
            if has_bias {
                for g in 0..$G {
                    acc_bias[g] += bias[g] * xs[g];
                }
            }
        }
        $hsum(acc) + acc_bias.iter().sum::<f32>()
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use dot_row_q8_vec;

/// [`dot_row_q8`] with the block dot in AVX2 (`crate::simd::block_dot`); expands only inside
/// `#[target_feature(enable = "avx2,fma")]` functions.
#[cfg(target_arch = "x86_64")]
macro_rules! dot_row_q8_simd {
    ($($args:tt)*) => {
        $crate::q8::dot_row_q8_vec!(
            $crate::simd::_mm256_setzero_ps,
            $crate::simd::block_dot,
            $crate::simd::hsum,
            $($args)*
        )
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use dot_row_q8_simd;

/// [`dot_row_q8_multi`] with the block dot in AVX2. When every activation has per-256
/// scales, the weight side is prepared once per 256 weights (|w|, sign source, per-16 scale
/// lanes) — one super-block, or eight consecutive 32-weight blocks — and shared by all tokens,
/// four tokens at a time; otherwise each block meets each token through `block_dot`.
#[cfg(target_arch = "x86_64")]
macro_rules! dot_row_q8_multi_simd {
    ($row:expr, $acts:expr, $out:expr, $B:literal, $N:expr, $S:literal, $G:literal, $decode:path) => {{
        let acts: &[$crate::q8::Q8Act] = $acts;
        let out: &mut [f32] = $out;
        let mut accs = vec![$crate::simd::_mm256_setzero_ps(); acts.len()];
        // Bias terms accumulate element-wise per token (independent lanes): a running scalar
        // sum is a serial FMA chain of 32 per block per token.
        let mut baccs = vec![[0f32; 32]; acts.len()];
        out.iter_mut().for_each(|o| *o = 0.0);
        let (blocks, _) = $row.as_chunks::<$B>();
        const PER_GROUP: usize = 256 / $N;
        let grouped =
            blocks.len().is_multiple_of(PER_GROUP) && acts.iter().all(|a| !a.q256.is_empty());
        if grouped {
            let mut qg = [0i8; 256];
            let mut sg = [0f32; 16];
            let mut bg = [0f32; 32];
            for (gi, grp) in blocks.chunks_exact(PER_GROUP).enumerate() {
                let mut any_bias = false;
                for (k, blk) in grp.iter().enumerate() {
                    let mut qb = [0i8; $N];
                    let mut sb = [0f32; $S];
                    let mut bb = [0f32; $G];
                    any_bias |= $decode(blk, &mut qb, &mut sb, &mut bb);
                    qg[$N * k..$N * (k + 1)].copy_from_slice(&qb);
                    sg[$S * k..$S * (k + 1)].copy_from_slice(&sb);
                    bg[$G * k..$G * (k + 1)].copy_from_slice(&bb);
                }
                let prep = $crate::simd::prepare_block(&qg, &sg);
                let full = acts.len() / 4 * 4;
                for t in (0..full).step_by(4) {
                    let xq = |k: usize| &acts[t + k].q256[gi * 256..(gi + 1) * 256];
                    let xd = [0, 1, 2, 3].map(|k| acts[t + k].d256[gi]);
                    let (a4, _) = accs[t..t + 4].as_chunks_mut::<4>();
                    $crate::simd::prepared_dot4(
                        &prep,
                        [xq(0), xq(1), xq(2), xq(3)],
                        xd,
                        &mut a4[0],
                    );
                }
                for t in full..acts.len() {
                    let a = &acts[t];
                    let xq = &a.q256[gi * 256..(gi + 1) * 256];
                    accs[t] = $crate::simd::prepared_dot(&prep, xq, a.d256[gi], accs[t]);
                }
                if any_bias {
                    for (a, ba) in acts.iter().zip(baccs.iter_mut()) {
                        let xs = &a.sum8[gi * 32..(gi + 1) * 32];
                        for g in 0..32 {
                            ba[g] += bg[g] * xs[g];
                        }
                    }
                }
            }
        } else {
            let mut q = [0i8; $N];
            let mut s = [0f32; $S];
            let mut bias = [0f32; $G];
            for (bi, blk) in blocks.iter().enumerate() {
                let has_bias = $decode(blk, &mut q, &mut s, &mut bias);
                for ((a, o), acc) in acts.iter().zip(out.iter_mut()).zip(accs.iter_mut()) {
                    let xq = &a.q[bi * $N..(bi + 1) * $N];
                    let xd = &a.d16[bi * $S..(bi + 1) * $S];
                    *acc = $crate::simd::block_dot(&q, &s, xq, xd, *acc);
                    if has_bias {
                        let xs = &a.sum8[bi * $G..(bi + 1) * $G];
                        for g in 0..$G {
                            *o += bias[g] * xs[g];
                        }
                    }
                }
            }
        }
        for ((o, acc), ba) in out.iter_mut().zip(accs).zip(&baccs) {
            *o += $crate::simd::hsum(acc) + ba.iter().sum::<f32>();
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use dot_row_q8_multi_simd;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_is_within_half_a_step() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) * 0.37)
            .collect();
        let a = Q8Act::new(&x);
        for (i, v) in x.iter().enumerate() {
            let d = a.d16[i / 16];
            assert!((a.q[i] as f32 * d - v).abs() <= d / 2.0 + 1e-7, "{i}");
        }
        // The bias sums are those of the quantized values (module docs).
        for (g, s) in a.sum8.iter().enumerate() {
            let q: i32 = a.q[8 * g..8 * g + 8].iter().map(|&v| i32::from(v)).sum();
            assert_eq!(*s, a.d16[g / 2] * q as f32);
        }
        let z = Q8Act::new(&[0.0; 32]);
        assert!(z.q.iter().all(|&q| q == 0) && z.d16.iter().all(|&d| d == 0.0));
    }
}
