//! Fused quantized mat-vec kernels: `y = W·x` straight from GGML blocks, never materialising W.
//!
//! * [`matvec`] — one activation vector (decode).
//! * [`crate::matmul`] — a batch of activation vectors (prefill; `matmul.rs`): each weight row
//!   is decoded once and dotted with every vector.
//! * [`matvec_indexed`] — MoE: a 3-D expert tensor and a list of expert ids, each with its own
//!   (or one shared) activation vector (`MUL_MAT_ID`).
//!
//! Two activation modes ([`Activations`]): `Int8` (default for the 19 quantized types) decodes
//! each block to int8 quants with per-16 scales and dots them with the activation quantized to
//! int8 per 16 values (see `q8` for its error budget); `F32` dequantizes blocks to f32 and keeps
//! activations exact (error: f32 rounding only, ~1e-6 of Σ|wᵢxᵢ|). F32/F16/BF16 weights always
//! use the f32 path.
//!
//! Invariant: the per-type inner loops are plain, portable Rust over fixed-size blocks. On
//! x86-64 the same source is additionally compiled with AVX2+FMA enabled and chosen at run time
//! when the CPU has them (and AVX-512 row kernels where present); on aarch64 every type has
//! NEON row kernels (`neon`: `SDOT` where the CPU has FEAT_DotProd, `SMMLA` for batches where
//! it has FEAT_I8MM), the portable loops left for `LOCALGLM_SIMD=off`.
//! Work is split over rows with rayon; results do not depend on the thread count.

use crate::decode_i8 as di8;
use crate::dequant::{self as dq, QK, QK_K};
use crate::q8::{dot_row_q8, dot_row_q8_multi, Q8Act};
#[cfg(target_arch = "x86_64")]
use crate::q8::{dot_row_q8_multi_simd, dot_row_q8_simd};
use crate::{GgmlType, QuantError};

/// Rows handed to one rayon task (keeps tasks ≳ 100 µs for typical row lengths).
pub(crate) const ROWS_PER_TASK: usize = 16;
/// Below this many weights a call runs on the calling thread.
pub(crate) const PARALLEL_MIN_WEIGHTS: usize = 1 << 16;

/// 16 independent accumulators: enough lanes for AVX-512/AVX2/NEON to vectorise the sum.
#[inline(always)]
fn dot_acc(acc: &mut [f32; 16], a: &[f32], b: &[f32]) {
    for (a16, b16) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += a16[i] * b16[i];
        }
    }
}

#[inline(always)]
fn hsum(acc: &[f32; 16]) -> f32 {
    let mut s8 = [0f32; 8];
    for i in 0..8 {
        s8[i] = acc[i] + acc[i + 8];
    }
    (s8[0] + s8[4]) + (s8[1] + s8[5]) + ((s8[2] + s8[6]) + (s8[3] + s8[7]))
}

/// Dot product of one quantized row with `x`, for block types of `N` weights and `B` bytes.
#[inline(always)]
fn dot_blocks<const B: usize, const N: usize>(
    row: &[u8],
    x: &[f32],
    deq: impl Fn(&[u8; B], &mut [f32; N]),
) -> f32 {
    let mut acc = [0f32; 16];
    let mut buf = [0f32; N];
    let (blocks, _) = row.as_chunks::<B>();
    let (xs, _) = x.as_chunks::<N>();
    for (b, xv) in blocks.iter().zip(xs) {
        deq(b, &mut buf);
        if N >= 16 {
            dot_acc(&mut acc, &buf, xv);
        } else {
            for i in 0..N {
                acc[i % 16] += buf[i] * xv[i];
            }
        }
    }
    hsum(&acc)
}

/// 16-bit float rows (F16/BF16) decoded 64 at a time.
#[inline(always)]
fn dot_half(row: &[u8], x: &[f32], widen: impl Fn(u16) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut buf = [0f32; 64];
    let (blocks, _) = row.as_chunks::<128>();
    let (xs, _) = x.as_chunks::<64>();
    for (b, xv) in blocks.iter().zip(xs) {
        for i in 0..64 {
            buf[i] = widen(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
        }
        dot_acc(&mut acc, &buf, xv);
    }
    let mut s = hsum(&acc);
    let done = blocks.len() * 64;
    for (i, xv) in x[done..].iter().enumerate() {
        let o = (done + i) * 2;
        s += widen(u16::from_le_bytes([row[o], row[o + 1]])) * xv;
    }
    s
}

#[inline(always)]
fn dot_f32(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut buf = [0f32; 64];
    let (blocks, _) = row.as_chunks::<256>();
    let (xs, _) = x.as_chunks::<64>();
    for (b, xv) in blocks.iter().zip(xs) {
        let (vals, _) = b.as_chunks::<4>();
        for i in 0..64 {
            buf[i] = f32::from_le_bytes(vals[i]);
        }
        dot_acc(&mut acc, &buf, xv);
    }
    let mut s = hsum(&acc);
    let done = blocks.len() * 64;
    for (i, xv) in x[done..].iter().enumerate() {
        let o = (done + i) * 4;
        s += f32::from_le_bytes([row[o], row[o + 1], row[o + 2], row[o + 3]]) * xv;
    }
    s
}

/// How activations enter the dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activations {
    /// Quantize activations to int8 per 16 values and use integer dots (fast; default).
    #[default]
    Int8,
    /// Keep activations f32 and dequantize weights to f32 (exact to f32 rounding).
    F32,
}

/// Every `decode_i8` type's int8 block layout — (block bytes, weights, scales, biases, decoder)
/// — as a `match` over `$ty` whose arms call `$dot!(args…, layout…)`; one table for the plain,
/// batched and AVX2 builds of the row dot.
macro_rules! match_int8_type {
    ($ty:expr, $dot:ident, [$($arg:ident),*], $other:expr) => {
        match $ty {
            GgmlType::Q4_0 => $dot!($($arg),*, 18, QK, 2, 4, di8::q4_0),
            GgmlType::Q4_1 => $dot!($($arg),*, 20, QK, 2, 4, di8::q4_1),
            GgmlType::Q5_0 => $dot!($($arg),*, 22, QK, 2, 4, di8::q5_0),
            GgmlType::Q5_1 => $dot!($($arg),*, 24, QK, 2, 4, di8::q5_1),
            GgmlType::Q8_0 => $dot!($($arg),*, 34, QK, 2, 4, di8::q8_0),
            GgmlType::IQ4_NL => $dot!($($arg),*, 18, QK, 2, 4, di8::iq4_nl),
            GgmlType::Q2_K => $dot!($($arg),*, 84, QK_K, 16, 32, di8::q2_k),
            GgmlType::Q3_K => $dot!($($arg),*, 110, QK_K, 16, 32, di8::q3_k),
            GgmlType::Q4_K => $dot!($($arg),*, 144, QK_K, 16, 32, di8::q4_k),
            GgmlType::Q5_K => $dot!($($arg),*, 176, QK_K, 16, 32, di8::q5_k),
            GgmlType::Q6_K => $dot!($($arg),*, 210, QK_K, 16, 32, di8::q6_k),
            GgmlType::IQ2_XXS => $dot!($($arg),*, 66, QK_K, 16, 32, di8::iq2_xxs),
            GgmlType::IQ2_XS => $dot!($($arg),*, 74, QK_K, 16, 32, di8::iq2_xs),
            GgmlType::IQ2_S => $dot!($($arg),*, 82, QK_K, 16, 32, di8::iq2_s),
            GgmlType::IQ3_XXS => $dot!($($arg),*, 98, QK_K, 16, 32, di8::iq3_xxs),
            GgmlType::IQ3_S => $dot!($($arg),*, 110, QK_K, 16, 32, di8::iq3_s),
            GgmlType::IQ1_S => $dot!($($arg),*, 50, QK_K, 16, 32, di8::iq1_s),
            GgmlType::IQ1_M => $dot!($($arg),*, 56, QK_K, 16, 32, di8::iq1_m),
            GgmlType::IQ4_XS => $dot!($($arg),*, 136, QK_K, 16, 32, di8::iq4_xs),
            _ => $other, // unreachable: callers check `di8::supports`
        }
    };
}

/// One row · quantized activation, for the types `decode_i8` supports.
#[inline(always)]
fn dot_row_int8(ty: GgmlType, row: &[u8], a: &Q8Act) -> f32 {
    match_int8_type!(ty, dot_row_q8, [row, a], f32::NAN)
}

/// One row · many quantized activations (decode once per block), for `decode_i8` types.
#[inline(always)]
fn dot_row_int8_multi(ty: GgmlType, row: &[u8], acts: &[Q8Act], out: &mut [f32]) {
    match_int8_type!(
        ty,
        dot_row_q8_multi,
        [row, acts, out],
        out.iter_mut().for_each(|o| *o = f32::NAN)
    )
}

/// AVX2 build of `dot_row_int8`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_row_int8_avx2(ty: GgmlType, row: &[u8], a: &Q8Act) -> f32 {
    match_int8_type!(ty, dot_row_q8_simd, [row, a], f32::NAN)
}

/// AVX2 build of `dot_row_int8_multi`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_row_int8_multi_avx2(ty: GgmlType, row: &[u8], acts: &[Q8Act], out: &mut [f32]) {
    match_int8_type!(
        ty,
        dot_row_q8_multi_simd,
        [row, acts, out],
        out.iter_mut().for_each(|o| *o = f32::NAN)
    )
}

/// One row · x for a supported type (lengths already validated by the caller).
#[inline(always)]
fn dot_row(ty: GgmlType, row: &[u8], x: &[f32], act: Option<&Q8Act>) -> f32 {
    if let Some(a) = act {
        return dot_row_int8(ty, row, a);
    }
    match ty {
        GgmlType::F32 => dot_f32(row, x),
        GgmlType::F16 => dot_half(row, x, dq::f16_to_f32),
        GgmlType::BF16 => dot_half(row, x, dq::bf16_to_f32),
        GgmlType::Q4_0 => dot_blocks::<18, QK>(row, x, dq::q4_0),
        GgmlType::Q4_1 => dot_blocks::<20, QK>(row, x, dq::q4_1),
        GgmlType::Q5_0 => dot_blocks::<22, QK>(row, x, dq::q5_0),
        GgmlType::Q5_1 => dot_blocks::<24, QK>(row, x, dq::q5_1),
        GgmlType::Q8_0 => dot_blocks::<34, QK>(row, x, dq::q8_0),
        GgmlType::IQ4_NL => dot_blocks::<18, QK>(row, x, dq::iq4_nl),
        GgmlType::Q2_K => dot_blocks::<84, QK_K>(row, x, dq::q2_k),
        GgmlType::Q3_K => dot_blocks::<110, QK_K>(row, x, dq::q3_k),
        GgmlType::Q4_K => dot_blocks::<144, QK_K>(row, x, dq::q4_k),
        GgmlType::Q5_K => dot_blocks::<176, QK_K>(row, x, dq::q5_k),
        GgmlType::Q6_K => dot_blocks::<210, QK_K>(row, x, dq::q6_k),
        GgmlType::IQ2_XXS => dot_blocks::<66, QK_K>(row, x, dq::iq2_xxs),
        GgmlType::IQ2_XS => dot_blocks::<74, QK_K>(row, x, dq::iq2_xs),
        GgmlType::IQ2_S => dot_blocks::<82, QK_K>(row, x, dq::iq2_s),
        GgmlType::IQ3_XXS => dot_blocks::<98, QK_K>(row, x, dq::iq3_xxs),
        GgmlType::IQ3_S => dot_blocks::<110, QK_K>(row, x, dq::iq3_s),
        GgmlType::IQ1_S => dot_blocks::<50, QK_K>(row, x, dq::iq1_s),
        GgmlType::IQ1_M => dot_blocks::<56, QK_K>(row, x, dq::iq1_m),
        GgmlType::IQ4_XS => dot_blocks::<136, QK_K>(row, x, dq::iq4_xs),
        _ => f32::NAN, // unreachable: callers check `is_supported`
    }
}

/// Rows `w` (each `row_bytes`) times `x` into `y`, plain build.
#[inline(always)]
fn rows_into(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    act: Option<&Q8Act>,
    y: &mut [f32],
) {
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        *out = dot_row(ty, row, x, act);
    }
}

/// The same loop compiled with AVX2 and FMA enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_into_avx2(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    act: Option<&Q8Act>,
    y: &mut [f32],
) {
    // The legacy 4/5-bit types, any row length (per-32 activations, the per-16 grid for a
    // row's last 1-3 blocks); F16C converts their scales eight at a time.
    let legacy: Option<RowKernel> = match ty {
        GgmlType::Q4_0 => Some(crate::simd_q4::rows_q4_0),
        GgmlType::Q4_1 => Some(crate::simd_q4::rows_q4_1),
        GgmlType::Q5_0 => Some(crate::simd_q4::rows_q5_0),
        GgmlType::Q5_1 => Some(crate::simd_q4::rows_q5_1),
        _ => None,
    };
    if let (Some(rows), Some(a), true) = (legacy, act, have_f16c()) {
        // WORKAROUND: F16C was detected just above; AVX2+FMA are this function's own.
        #[allow(unsafe_code)]
        unsafe {
            rows(w, row_bytes, a, y)
        };
        return;
    }
    // Formats with their own row kernel on per-256 activations (where the row allows them);
    // they need F16C too (every AVX2 CPU has it, checked all the same) for their block scales.
    let f16c_kernel: Option<unsafe fn(&[u8], &Q8Act) -> f32> = match (ty, act) {
        (_, Some(a)) if a.q256.is_empty() => None,
        (GgmlType::IQ2_XXS, _) => Some(crate::simd::dot_iq2xxs),
        (GgmlType::IQ2_XS, _) => Some(crate::simd_lowbit::dot_iq2xs),
        (GgmlType::IQ4_XS, _) => Some(crate::simd::dot_iq4xs),
        (GgmlType::IQ4_NL, _) => Some(crate::simd::dot_iq4nl),
        (GgmlType::Q8_0, _) => Some(crate::simd::dot_q8_0),
        (GgmlType::Q2_K, _) => Some(crate::simd_lowbit::dot_q2k),
        (GgmlType::Q3_K, _) => Some(crate::simd_lowbit::dot_q3k),
        (GgmlType::Q4_K, _) => Some(crate::simd_lowbit::dot_q4k),
        (GgmlType::Q5_K, _) => Some(crate::simd_lowbit::dot_q5k),
        (GgmlType::Q6_K, _) => Some(crate::simd_lowbit::dot_q6k),
        (GgmlType::IQ1_S, _) => Some(crate::simd_lowbit::dot_iq1s),
        (GgmlType::IQ1_M, _) => Some(crate::simd_lowbit::dot_iq1m),
        (GgmlType::IQ2_S, _) => Some(crate::simd_lowbit::dot_iq2s),
        (GgmlType::IQ3_XXS, _) => Some(crate::simd_lowbit::dot_iq3xxs),
        (GgmlType::IQ3_S, _) => Some(crate::simd_lowbit::dot_iq3s),
        _ => None,
    };
    if let (Some(dot), Some(a), true) = (f16c_kernel, act, have_f16c()) {
        for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
            // WORKAROUND: F16C was detected just above; AVX2+FMA are this function's own.
            #[allow(unsafe_code)]
            unsafe {
                *out = dot(row, a);
            }
        }
        return;
    }
    // The float rows, four at a time (F16C: every AVX2 CPU has it, checked all the same).
    if act.is_none() && matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) && have_f16c()
    {
        // WORKAROUND: F16C was detected on this CPU just above (`have_f16c`); AVX2+FMA are
        // this function's own features.
        #[allow(unsafe_code)]
        unsafe {
            crate::simd::rows_float(ty, w, row_bytes, x, y)
        };
        return;
    }
    if let Some(a) = act {
        for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
            *out = dot_row_int8_avx2(ty, row, a);
        }
        return;
    }
    rows_into(ty, w, row_bytes, x, act, y)
}

/// Rows × many activations into `yt` (rows × n, row-major), plain build.
#[inline(always)]
fn rows_multi(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &[Q8Act], yt: &mut [f32]) {
    let n = acts.len();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.chunks_exact_mut(n)) {
        dot_row_int8_multi(ty, row, acts, out);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_multi_avx2(ty: GgmlType, w: &[u8], row_bytes: usize, acts: &[Q8Act], yt: &mut [f32]) {
    let n = acts.len();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(yt.chunks_exact_mut(n)) {
        dot_row_int8_multi_avx2(ty, row, acts, out);
    }
}

pub(crate) fn rows_multi_dispatch(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    acts: &[Q8Act],
    yt: &mut [f32],
) {
    #[cfg(target_arch = "aarch64")]
    if crate::neon::rows_multi(ty, w, row_bytes, acts, yt) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // WORKAROUND: as in `rows_dispatch`: the features were detected on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            rows_multi_avx2(ty, w, row_bytes, acts, yt)
        };
        return;
    }
    rows_multi(ty, w, row_bytes, acts, yt)
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn have_f16c() -> bool {
    use std::sync::OnceLock;
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| simd_allowed() && is_x86_feature_detected!("f16c"))
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn have_avx2() -> bool {
    use std::sync::OnceLock;
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        simd_allowed() && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    })
}

/// `LOCALGLM_SIMD=off` forces the portable kernels, so that they are tested and benchmarked on
/// every CPU. Read once per process.
pub fn simd_allowed() -> bool {
    use std::sync::OnceLock;
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var("LOCALGLM_SIMD").map_or(true, |v| v != "off"))
}

/// The AVX-512 row kernel for `ty`, where this CPU has one (per-256 activations only).
#[cfg(target_arch = "x86_64")]
type RowKernel = unsafe fn(&[u8], usize, &Q8Act, &mut [f32]);

#[cfg(target_arch = "x86_64")]
fn avx512_row_kernel(ty: GgmlType, act: Option<&Q8Act>) -> Option<RowKernel> {
    let a = act?;
    if !crate::simd512::available() {
        return None;
    }
    match ty {
        // Kernels on the per-16 grid, for any row length.
        GgmlType::Q4_0 => return Some(crate::simd512_q4::rows_q4_0_d16),
        GgmlType::Q4_1 => return Some(crate::simd512_q4::rows_q4_1_d16),
        _ => {}
    }
    if a.q256.is_empty() {
        // Rows not a multiple of 256: Q8_0 has a kernel on the per-16 grid too.
        return (ty == GgmlType::Q8_0).then_some(crate::simd512::rows_q8_0_d16 as RowKernel);
    }
    match ty {
        GgmlType::IQ2_XXS => Some(crate::simd512::rows_iq2xxs),
        GgmlType::IQ3_XXS => Some(crate::simd512::rows_iq3xxs),
        GgmlType::IQ2_XS => Some(crate::simd512::rows_iq2xs),
        GgmlType::IQ3_S => Some(crate::simd512::rows_iq3s),
        GgmlType::IQ2_S => Some(crate::simd512_iq2s::rows_iq2s),
        GgmlType::Q8_0 => Some(crate::simd512::rows_q8_0),
        GgmlType::Q6_K => Some(crate::simd512::rows_q6k),
        GgmlType::Q2_K => Some(crate::simd512::rows_q2k),
        GgmlType::Q3_K => Some(crate::simd512::rows_q3k),
        GgmlType::Q4_K => Some(crate::simd512::rows_q4k),
        GgmlType::Q5_K => Some(crate::simd512::rows_q5k),
        GgmlType::IQ4_NL => Some(crate::simd512_iq4::rows_iq4nl),
        GgmlType::IQ4_XS => Some(crate::simd512_iq4::rows_iq4xs),
        _ => None,
    }
}

/// The mat-vec row loop on the fastest kernel this CPU has for `ty`; every row loop takes its
/// rows through `prefetch::rows`, which asks for each row's lines ahead of it.
pub(crate) fn rows_dispatch(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    act: Option<&Q8Act>,
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if act.is_none()
        && matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
        && crate::simd512::available()
    {
        // WORKAROUND: as below: the features were detected by `available()`.
        #[allow(unsafe_code)]
        unsafe {
            crate::simd512::rows_float(ty, w, row_bytes, x, y)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let (Some(rows), Some(a)) = (avx512_row_kernel(ty, act), act) {
        // WORKAROUND: as below: `avx512_row_kernel` returns kernels only after detecting
        // their features on this CPU.
        #[allow(unsafe_code)]
        unsafe {
            rows(w, row_bytes, a, y)
        };
        return;
    }
    #[cfg(target_arch = "aarch64")]
    match act {
        Some(a) if crate::neon::rows(ty, w, row_bytes, a, y) => return,
        None if crate::neon::rows_float(ty, w, row_bytes, x, y) => return,
        _ => {}
    }
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // WORKAROUND: calling a `#[target_feature]` function needs `unsafe`; the features it
        // enables were detected on this CPU just above, which is the whole safety contract.
        #[allow(unsafe_code)]
        unsafe {
            rows_into_avx2(ty, w, row_bytes, x, act, y)
        };
        return;
    }
    rows_into(ty, w, row_bytes, x, act, y)
}

pub(crate) fn check(ty: GgmlType, w: &[u8], rows: usize, cols: usize) -> Result<usize, QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    let row_bytes = ty.row_bytes(cols)?;
    let need = row_bytes
        .checked_mul(rows)
        .ok_or(QuantError::SizeOverflow { ty, n_elems: cols })?;
    if w.len() != need {
        return Err(QuantError::LengthMismatch {
            ty,
            n_elems: rows * cols,
            expected: need,
            actual: w.len(),
        });
    }
    Ok(row_bytes)
}

pub(crate) fn check_len(what: &'static str, got: usize, want: usize) -> Result<(), QuantError> {
    if got != want {
        return Err(QuantError::Shape {
            what,
            expected: want,
            actual: got,
        });
    }
    Ok(())
}

/// The quantized activation for `x`, when `ty` and `mode` use the integer path.
pub(crate) fn activation(ty: GgmlType, mode: Activations, x: &[f32]) -> Option<Q8Act> {
    (mode == Activations::Int8 && di8::supports(ty)).then(|| Q8Act::new(x))
}

/// `y = W·x` with `W` `rows × cols` of type `ty` (row-major, rows along ne1), default mode.
pub fn matvec(
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), QuantError> {
    matvec_with(Activations::default(), ty, w, rows, cols, x, y)
}

/// [`matvec`] with an explicit activation mode.
pub fn matvec_with(
    mode: Activations,
    ty: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), QuantError> {
    let row_bytes = check(ty, w, rows, cols)?;
    check_len("x", x.len(), cols)?;
    check_len("y", y.len(), rows)?;
    let act = activation(ty, mode, x);
    matvec_rows(ty, w, row_bytes, x, act.as_ref(), y);
    Ok(())
}

/// The row loop of a checked mat-vec, on the [`crate::team`] when large.
fn matvec_rows(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    act: Option<&Q8Act>,
    y: &mut [f32],
) {
    if y.len() * x.len() < PARALLEL_MIN_WEIGHTS {
        rows_dispatch(ty, w, row_bytes, x, act, y);
        return;
    }
    let per = task_rows(y.len(), x.len());
    let tasks: Vec<_> = y.chunks_mut(per).zip(w.chunks(row_bytes * per)).collect();
    crate::team::for_each(tasks, |(yc, wc)| {
        rows_dispatch(ty, wc, row_bytes, x, act, yc)
    });
}

/// Rows per task of a mat-vec on the team: about 8 tasks per thread so that a slow thread
/// is balanced out, but never under [`ROWS_PER_TASK`] rows or ~32k weights (a task claim
/// costs a contended atomic, ~0.1 µs).
pub(crate) fn task_rows(rows: usize, cols: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_count = rows.div_ceil(8 * threads);
    let by_size = (1usize << 15).div_ceil(cols.max(1));
    by_count
        .max(by_size)
        .max(ROWS_PER_TASK)
        .next_multiple_of(ROWS_PER_TASK)
}

/// One weight of [`matvec_many_with`]: `y = W·x`, `W` `y.len() × x.len()` of type `ty`.
pub struct MatvecPart<'a> {
    pub ty: GgmlType,
    pub w: &'a [u8],
    pub y: &'a mut [f32],
}

/// Several mat-vecs of one activation (a layer's q/k/v, or gate/up) as one parallel loop: the
/// activation quantized once, and one fork-join for all the rows instead of one per weight —
/// for a small model the wake-ups of the second thread cost more than some products.
pub fn matvec_many_with(
    mode: Activations,
    parts: &mut [MatvecPart<'_>],
    x: &[f32],
) -> Result<(), QuantError> {
    let mut row_bytes = Vec::with_capacity(parts.len());
    for p in parts.iter() {
        row_bytes.push(check(p.ty, p.w, p.y.len(), x.len())?);
    }
    let act = (mode == Activations::Int8 && parts.iter().any(|p| di8::supports(p.ty)))
        .then(|| Q8Act::new(x));
    let act_for = |ty| act.as_ref().filter(|_| di8::supports(ty));
    let all_rows = parts.iter().map(|p| p.y.len()).sum::<usize>();
    let per = task_rows(all_rows, x.len());
    let mut tasks = Vec::new();
    for (p, &rb) in parts.iter_mut().zip(&row_bytes) {
        let chunks = p.y.chunks_mut(per).zip(p.w.chunks(rb * per));
        tasks.extend(chunks.map(|(yc, wc)| (p.ty, rb, yc, wc)));
    }
    crate::team::for_each(tasks, |(ty, rb, yc, wc)| {
        rows_dispatch(ty, wc, rb, x, act_for(ty), yc)
    });
    Ok(())
}
