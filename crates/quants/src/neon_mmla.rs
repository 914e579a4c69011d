//! The batched (prefill) product of the quantized types on aarch64 CPUs with FEAT_I8MM (Apple
//! M2 and later, Graviton 3, Neoverse V1/N2): `SMMLA` multiplies a 2×8 int8 matrix by an 8×2
//! one into a 2×2 block of i32 sums — two weight rows against two tokens, 32 multiply-adds an
//! instruction where `SDOT` does 16. Weight rows go in pairs (their blocks decoded by the
//! `neon_sb` or `neon_q32` decoders, eight-value halves of the two rows interleaved), tokens
//! in pairs (their quants interleaved the same way once per product). The 256-weight types sum
//! each 16- or 32-weight group's 2×2 block against its scales as the pair `[s_row0, s_row0,
//! s_row1, s_row1]` in integers, a block's sums `d_row · d256_token` per lane, minimums per
//! (row, token) from the activations' sums per 16 as in `neon_sb`; the 32-weight types convert
//! each 16-value group's block and multiply it by `d_row · d16_token`, as `neon_q32` does. An
//! odd last row or token is paired with itself and its copy dropped.
//!
//! Only products of more than `MATVEC_UP_TO` tokens come here (matmul.rs: smaller batches run
//! each token's mat-vec, to get decode's numbers); the integer sums are the SDOT kernels' and
//! the float ones differ in order only.

#![cfg(target_arch = "aarch64")]

use crate::neon::{pair_f32, zero, zero_i32, zero_q};
use crate::neon_q32::{q32_types, Decode32};
use crate::neon_sb::{min_isum, sb_types, Decode, Scales};
use crate::q8::Q8Act;
use crate::GgmlType;
use std::arch::aarch64::*;

/// `acc + A·Bᵀ` for A, B 2×8 int8 (rows of eight bytes), the 2×2 i32 result row-major.
#[inline]
#[target_feature(enable = "neon,i8mm")]
fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // WORKAROUND: inline assembly is `unsafe` (the intrinsic is not stable in Rust); this one
    // reads and writes registers only.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// The eight-value halves of two 16-value groups interleaved: `[u[0..8], v[0..8]]` and
/// `[u[8..16], v[8..16]]`.
#[inline(always)]
fn interleave(u: int8x16_t, v: int8x16_t) -> (int8x16_t, int8x16_t) {
    // WORKAROUND: NEON intrinsics are `unsafe` outside `#[target_feature]` functions, but NEON
    // is part of every aarch64 target (this module compiles for no other).
    #[allow(unsafe_code)]
    unsafe {
        let (u, v) = (vreinterpretq_s64_s8(u), vreinterpretq_s64_s8(v));
        (
            vreinterpretq_s8_s64(vzip1q_s64(u, v)),
            vreinterpretq_s8_s64(vzip2q_s64(u, v)),
        )
    }
}

/// Each token pair's per-256 quants, block by block: 32 vectors a block (group g's halves
/// interleaved at 2g and 2g + 1); the last token of an odd count paired with itself.
fn pack_tokens(acts: &[Q8Act], blocks: usize) -> Vec<[int8x16_t; 32]> {
    let n = acts.len();
    let mut out = Vec::with_capacity(n.div_ceil(2) * blocks);
    for p in 0..n.div_ceil(2) {
        let (a0, a1) = (&acts[2 * p], &acts[(2 * p + 1).min(n - 1)]);
        for b in 0..blocks {
            let (x0, _) = a0.q256[256 * b..256 * (b + 1)].as_chunks::<16>();
            let (x1, _) = a1.q256[256 * b..256 * (b + 1)].as_chunks::<16>();
            let mut v = [zero_q(); 32];
            for g in 0..16 {
                // WORKAROUND: as in `interleave`; the loads read exactly the 16-byte groups.
                #[allow(unsafe_code)]
                let (u, w) = unsafe { (vld1q_s8(x0[g].as_ptr()), vld1q_s8(x1[g].as_ptr())) };
                (v[2 * g], v[2 * g + 1]) = interleave(u, w);
            }
            out.push(v);
        }
    }
    out
}

/// Two rows' scale vectors (lanes: groups) as one vector per group, `[s0, s0, s1, s1]`.
#[inline(always)]
fn scale_pairs(s0: &[int32x4_t; 4], s1: &[int32x4_t; 4], vectors: usize) -> [int32x4_t; 16] {
    let mut out = [zero_i32(); 16];
    for k in 0..vectors {
        // WORKAROUND: as in `interleave`.
        #[allow(unsafe_code)]
        unsafe {
            let lo = vzip1q_s32(s0[k], s1[k]);
            let hi = vzip2q_s32(s0[k], s1[k]);
            out[4 * k] = vzip1q_s32(lo, lo);
            out[4 * k + 1] = vzip2q_s32(lo, lo);
            out[4 * k + 2] = vzip1q_s32(hi, hi);
            out[4 * k + 3] = vzip2q_s32(hi, hi);
        }
    }
    out
}

/// `[a, b, a, b]`.
#[inline(always)]
fn alternate(a: f32, b: f32) -> float32x4_t {
    // WORKAROUND: as in `interleave`.
    #[allow(unsafe_code)]
    unsafe {
        let v = vset_lane_f32::<1>(b, vdup_n_f32(a));
        vcombine_f32(v, v)
    }
}

/// Rows of `T`'s blocks × the activations `acts` (all with per-256 quants) into `yt` (rows ×
/// n, row-major), two rows by two tokens a step.
#[inline(always)]
fn rows_mmla<const B: usize, T: Decode<B>>(
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    let n = acts.len();
    let rows = yt.len() / n;
    let blocks = row_bytes / B;
    let packed = pack_tokens(acts, blocks);
    let pairs = n.div_ceil(2);
    let mut accs = vec![zero(); pairs];
    let row = |r: usize| {
        let (b, _) = w[r * row_bytes..(r + 1) * row_bytes].as_chunks::<B>();
        b
    };
    for r in (0..rows).step_by(2) {
        let r1 = (r + 1).min(rows - 1);
        let (row0, row1) = (row(r), row(r1));
        accs.fill(zero());
        for bi in 0..blocks {
            let (b0, b1) = (&row0[bi], &row1[bi]);
            let mut a = [zero_q(); 32];
            for j in 0..8 {
                let ((p0, p1), (q0, q1)) = (T::pair32(b0, j), T::pair32(b1, j));
                (a[4 * j], a[4 * j + 1]) = interleave(p0, q0);
                (a[4 * j + 2], a[4 * j + 3]) = interleave(p1, q1);
            }
            let (s0, s1) = (Scales::of::<B, T>(b0), Scales::of::<B, T>(b1));
            let sc = scale_pairs(&s0.sc, &s1.sc, if T::PER32 { 2 } else { 4 });
            let dp = pair_f32(s0.d, s1.d);
            let dminp = pair_f32(-s0.dmin, -s1.dmin);
            for (p, acc) in accs.iter_mut().enumerate() {
                let x = &packed[p * blocks + bi];
                let mut isum = zero_i32();
                // WORKAROUND: `smmla` is compiled for FEAT_I8MM, which `rows` detected before
                // entering the function this inlines into; the rest is NEON, as in
                // `interleave`.
                #[allow(unsafe_code)]
                unsafe {
                    if T::PER32 {
                        for k in 0..8 {
                            let mut m = smmla(zero_i32(), a[4 * k], x[4 * k]);
                            for i in 1..4 {
                                m = smmla(m, a[4 * k + i], x[4 * k + i]);
                            }
                            isum = vmlaq_s32(isum, m, sc[k]);
                        }
                    } else {
                        for g in 0..16 {
                            let m = smmla(zero_i32(), a[2 * g], x[2 * g]);
                            let m = smmla(m, a[2 * g + 1], x[2 * g + 1]);
                            isum = vmlaq_s32(isum, m, sc[g]);
                        }
                    }
                    let (t0, t1) = (&acts[2 * p], &acts[(2 * p + 1).min(n - 1)]);
                    let xd = alternate(t0.d256[bi], t1.d256[bi]);
                    *acc = vfmaq_f32(*acc, vcvtq_f32_s32(isum), vmulq_f32(dp, xd));
                    if T::MINS {
                        let m = |s: &Scales, t: &Q8Act| {
                            let bs = &t.bsum16[16 * bi..16 * bi + 16];
                            vaddvq_s32(min_isum(T::PER32, &s.mins, bs))
                        };
                        let v = [m(&s0, t0), m(&s0, t1), m(&s1, t0), m(&s1, t1)];
                        let mv = vcvtq_f32_s32(vld1q_s32(v.as_ptr()));
                        *acc = vfmaq_f32(*acc, mv, vmulq_f32(dminp, xd));
                    }
                }
            }
        }
        put(yt, n, r, r1, &accs);
    }
}

/// Rows `r` and `r1` (the same row for an odd last one) of every token pair's 2×2 sums into
/// `yt` (rows × n), an odd last token's copy dropped.
fn put(yt: &mut [f32], n: usize, r: usize, r1: usize, accs: &[float32x4_t]) {
    for (p, acc) in accs.iter().enumerate() {
        let mut v = [0f32; 4];
        // WORKAROUND: a store has no safe intrinsic; `v` is exactly the four lanes.
        #[allow(unsafe_code)]
        unsafe {
            vst1q_f32(v.as_mut_ptr(), *acc)
        };
        let t = 2 * p;
        yt[r * n + t] = v[0];
        yt[r1 * n + t] = v[2];
        if t + 1 < n {
            yt[r * n + t + 1] = v[1];
            yt[r1 * n + t + 1] = v[3];
        }
    }
}

/// A token pair's activations of one 32-weight block for `SMMLA`: each 16-value group's halves
/// interleaved, the groups' scales as `[x0, x1, x0, x1]`, the block's quantized sums likewise
/// (for Q4_1/Q5_1's minimum).
struct Pair32 {
    q: [int8x16_t; 4],
    xd: [float32x4_t; 2],
    sums: float32x4_t,
}

/// Each token pair's per-16 quants, block by block (the last token of an odd count paired with
/// itself).
fn pack_tokens32(acts: &[Q8Act], blocks: usize) -> Vec<Pair32> {
    let n = acts.len();
    let mut out = Vec::with_capacity(n.div_ceil(2) * blocks);
    for p in 0..n.div_ceil(2) {
        let (a0, a1) = (&acts[2 * p], &acts[(2 * p + 1).min(n - 1)]);
        for k in 0..blocks {
            let (x0, _) = a0.q[32 * k..32 * k + 32].as_chunks::<16>();
            let (x1, _) = a1.q[32 * k..32 * k + 32].as_chunks::<16>();
            // WORKAROUND: as in `interleave`; the loads read exactly the 16-byte groups.
            #[allow(unsafe_code)]
            let ((q0, q1), (q2, q3)) = unsafe {
                (
                    interleave(vld1q_s8(x0[0].as_ptr()), vld1q_s8(x1[0].as_ptr())),
                    interleave(vld1q_s8(x0[1].as_ptr()), vld1q_s8(x1[1].as_ptr())),
                )
            };
            out.push(Pair32 {
                q: [q0, q1, q2, q3],
                xd: [
                    alternate(a0.d16[2 * k], a1.d16[2 * k]),
                    alternate(a0.d16[2 * k + 1], a1.d16[2 * k + 1]),
                ],
                sums: alternate(a0.sum32[k], a1.sum32[k]),
            });
        }
    }
    out
}

/// Rows of `T`'s 32-weight blocks × the activations `acts` into `yt` (rows × n, row-major),
/// two rows by two tokens a step: per 16-value group two `SMMLA`, its 2×2 sums converted and
/// multiplied by `d_row · d16_token`.
#[inline(always)]
fn rows_mmla32<const B: usize, T: Decode32<B>>(
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    let n = acts.len();
    let rows = yt.len() / n;
    let blocks = row_bytes / B;
    let packed = pack_tokens32(acts, blocks);
    let mut accs = vec![zero(); n.div_ceil(2)];
    let row = |r: usize| {
        let (b, _) = w[r * row_bytes..(r + 1) * row_bytes].as_chunks::<B>();
        b
    };
    for r in (0..rows).step_by(2) {
        let r1 = (r + 1).min(rows - 1);
        let (row0, row1) = (row(r), row(r1));
        accs.fill(zero());
        for k in 0..blocks {
            let ((p0, p1), (q0, q1)) = (T::quants(&row0[k]), T::quants(&row1[k]));
            let ((a0, a1), (a2, a3)) = (interleave(p0, q0), interleave(p1, q1));
            let ((d0, m0), (d1, m1)) = (T::dm(&row0[k]), T::dm(&row1[k]));
            let (dp, mp) = (pair_f32(d0, d1), pair_f32(m0, m1));
            for (p, acc) in accs.iter_mut().enumerate() {
                let x = &packed[p * blocks + k];
                // WORKAROUND: as in `rows_mmla`: FEAT_I8MM detected before entering.
                #[allow(unsafe_code)]
                unsafe {
                    let g0 = smmla(smmla(zero_i32(), a0, x.q[0]), a1, x.q[1]);
                    let g1 = smmla(smmla(zero_i32(), a2, x.q[2]), a3, x.q[3]);
                    *acc = vfmaq_f32(*acc, vcvtq_f32_s32(g0), vmulq_f32(dp, x.xd[0]));
                    *acc = vfmaq_f32(*acc, vcvtq_f32_s32(g1), vmulq_f32(dp, x.xd[1]));
                    if T::MIN {
                        *acc = vfmaq_f32(*acc, mp, x.sums);
                    }
                }
            }
        }
        put(yt, n, r, r1, &accs);
    }
}

#[target_feature(enable = "neon,i8mm")]
fn rows_typed(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &[Q8Act], yt: &mut [f32]) -> bool {
    macro_rules! go {
        ($B:literal, $T:ty) => {
            rows_mmla::<$B, $T>(w, row_bytes, acts, yt)
        };
    }
    macro_rules! go32 {
        ($B:literal, $T:ty) => {
            rows_mmla32::<$B, $T>(w, row_bytes, acts, yt)
        };
    }
    if ty.block_elems() == 32 {
        q32_types!(ty, go32);
    } else {
        sb_types!(ty, go);
    }
    true
}

/// Whether this CPU has FEAT_I8MM (and SIMD kernels are allowed).
pub(crate) fn have_i8mm() -> bool {
    use std::sync::OnceLock;
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        crate::kernels::simd_allowed() && std::arch::is_aarch64_feature_detected!("i8mm")
    })
}

/// Rows `w` (each `row_bytes`) × the activations `acts` (two or more; with per-256 quants for
/// the 256-weight types) into `yt` (rows × n, row-major) on `SMMLA`, where this CPU has
/// FEAT_I8MM and `ty` is a quantized type; `false` (nothing written) otherwise.
pub(crate) fn rows(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) -> bool {
    let per256 = ty.block_elems() == 256;
    if acts.len() < 2 || (per256 && acts.iter().any(|a| a.q256.is_empty())) || !have_i8mm() {
        return false;
    }
    // WORKAROUND: calling a `#[target_feature]` function needs `unsafe`; `i8mm` was detected
    // on this CPU just above, which is the whole safety contract.
    #[allow(unsafe_code)]
    unsafe {
        rows_typed(ty, w, row_bytes, acts, yt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};

    /// On a CPU with I8MM (QEMU's `-cpu max` in CI), every quantized type's SMMLA product
    /// equals the SDOT kernels' batched product up to f32 summation order (both sum the same
    /// integers), with odd row and token counts; says so where the CPU lacks I8MM.
    #[test]
    fn smmla_products_equal_the_sdot_ones() {
        if !have_i8mm() {
            eprintln!("this CPU has no I8MM: SMMLA products not checked");
            return;
        }
        let (n_rows, cols, n) = (7, 768, 5);
        let mut checked = 0;
        for ty in GgmlType::SUPPORTED {
            if ty.block_elems() == 1 {
                continue;
            }
            let w = random_blocks(ty, n_rows * cols / ty.block_elems(), 13);
            let acts: Vec<Q8Act> = random_vector(n * cols, 6)
                .chunks_exact(cols)
                .map(Q8Act::new)
                .collect();
            let row_bytes = ty.row_bytes(cols).unwrap();
            let (mut mm, mut sd) = (vec![0f32; n_rows * n], vec![0f32; n_rows * n]);
            assert!(rows(ty, &w, row_bytes, &acts, &mut mm), "{ty}");
            assert!(
                crate::neon::rows_dot(ty, &w, row_bytes, &acts, &mut sd),
                "{ty}"
            );
            let scale = sd.iter().fold(0f32, |m, v| m.max(v.abs())) + 1e-6;
            for (i, (a, b)) in mm.iter().zip(&sd).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "{ty} [{i}]: {a} vs {b}");
            }
            checked += 1;
        }
        assert_eq!(checked, 19);
        eprintln!("SMMLA products of {checked} types checked");
    }
}
