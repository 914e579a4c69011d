//! AVX-512 (VBMI, VNNI, BITALG) row kernels, for CPUs that have them (AMD Zen 4/5, Intel
//! Ice Lake and later); `kernels.rs` enters them only after runtime detection and
//! `LOCALGLM_SIMD=avx2` keeps them off so the AVX2 kernels stay tested on such machines.
//!
//! This file: the shared helpers, the K-quant / Q8_0 kernels (quants unsigned into `maddubs` or
//! `vpdpbusd`, scales in `vpdpwssd` — Q2_K's in the weights — offsets and minimums through the
//! activation's 16-value sums) and the float formats. The IQ formats are in `simd512_iq.rs`
//! and `simd512_iq4.rs`.
//!
//! Everything is safe code except the unaligned loads (as in `simd.rs`).

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd_mem::f16c_at;
use crate::GgmlType;
use std::arch::x86_64::*;
use std::sync::OnceLock;

pub(crate) use crate::simd512_iq::*;
use crate::simd_mem::bytes;
pub(crate) use crate::simd_mem::{load256, load512};

/// `acc + Σ pairs a·b` (i16 → i32), always as one `vpdpwssd`: LLVM otherwise may split the
/// intrinsic into `vpmaddwd` + `vpaddd` (it did in token loops, where the split doubled the
/// multiply-port work).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    let mut r = acc;
    // WORKAROUND: inline assembly for one instruction of this function's own features; it
    // touches no memory.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!(
            "vpdpwssd {r}, {a}, {b}",
            r = inout(zmm_reg) r,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    r
}

/// i16 lane `k` of quarter `g` ← word `per(g, k)` (scale selection controls).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn word_pick(per: impl Fn(usize, usize) -> usize) -> [__m512i; 4] {
    std::array::from_fn(|g| {
        let lanes: [u16; 32] = std::array::from_fn(|k| per(g, k) as u16);
        load512(&lanes)
    })
}

/// Q8_0 rows · per-256 int8 activation: per 64 weights (two blocks) `|w|` against the
/// activations negated where `w < 0` (one masked subtract; AVX-512 has no `vpsignb`) in one
/// `vpdpbusd`, then one conversion and one FMA with the two blocks' scales (F16C-converted
/// eight at a time).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
pub(crate) fn rows_q8_0(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // Scale lanes of the 64-weight quarter g: blocks 2g (lanes 0–7) and 2g + 1 (lanes 8–15).
    let pick: [__m512i; 4] = std::array::from_fn(|g| {
        let lanes: [i32; 16] = std::array::from_fn(|i| (2 * g + i / 8) as i32);
        load512(&lanes)
    });
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        *out = q8_0_row(&pick, row, a);
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
fn q8_0_row(pick: &[__m512i; 4], row: &[u8], a: &Q8Act) -> f32 {
    let zero = _mm512_setzero_si512();
    let (blocks, _) = row.as_chunks::<34>();
    let (supers, _) = blocks.as_chunks::<8>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm512_setzero_ps();
    for ((sb, xq), &xd) in supers.iter().zip(xq).zip(&a.d256) {
        let halves: [u16; 8] = std::array::from_fn(|j| u16::from_le_bytes([sb[j][0], sb[j][1]]));
        let d8 = _mm256_cvtph_ps(_mm_set_epi16(
            halves[7] as i16,
            halves[6] as i16,
            halves[5] as i16,
            halves[4] as i16,
            halves[3] as i16,
            halves[2] as i16,
            halves[1] as i16,
            halves[0] as i16,
        ));
        let d8 = _mm512_castps256_ps512(d8);
        let (xs, _) = xq.as_chunks::<64>();
        let mut f = _mm512_setzero_ps();
        for g in 0..4 {
            let qs = |j: usize| &sb[j][2..].as_chunks::<32>().0[0];
            let wv = load32_pair(qs(2 * g), qs(2 * g + 1));
            let x = load512(&xs[g]);
            let xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(wv), zero, x);
            let p = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), xs);
            let sc = _mm512_permutexvar_ps(pick[g], d8);
            f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), sc, f);
        }
        acc = _mm512_fmadd_ps(f, _mm512_set1_ps(xd), acc);
    }
    _mm512_reduce_add_ps(acc)
}

/// Q8_0 rows whose length is not a multiple of 256 (e.g. GLM-5's 192-wide per-head `attn_k_b`,
/// SmolLM2's 576-wide head) against the per-16 activation grid (`Q8Act::q`, `d16x4`): per
/// pair of blocks, two 64-byte loads of the 68-byte span, one `vpermt2b` for the 64 quants and
/// one for the two scales spread over the lanes they scale (then one F16C conversion), one
/// `vpdpbusd` (signs moved to the activation) and one FMA with the activation's per-lane
/// scales (loaded); two accumulators alternate. (Earlier: the scales assembled by scalar
/// inserts, then gathered per 16 blocks with `vpgatherdd`, which is slow on this machine.)
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi,f16c")]
pub(crate) fn rows_q8_0_d16(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let zero = _mm512_setzero_si512();
    // Sources: bytes 0..64 of the pair and bytes 4..68. Quant byte i: block i/32's i%32.
    let src = |at: usize| {
        if at < 64 {
            at as u8
        } else {
            (64 + at - 4) as u8
        }
    };
    let pick_q = load512(&std::array::from_fn::<u8, 64, _>(|i| {
        src((i / 32) * 34 + 2 + i % 32)
    }));
    // 16-bit lane l < 16 (the low 256 bits): the scale of block l/8.
    let pick_d = load512(&std::array::from_fn::<u8, 64, _>(|i| {
        src(((i / 2) % 16 / 8) * 34 + i % 2)
    }));
    let (xq, _) = a.q.as_chunks::<64>();
    let (xd, _) = a.d16x4.as_chunks::<16>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (pairs, tail) = row.as_chunks::<68>();
        let mut acc = [_mm512_setzero_ps(); 2];
        for (j, pair) in pairs.iter().enumerate() {
            let va = load512(&pair[..64].as_chunks::<64>().0[0]);
            let vb = load512(&pair[4..].as_chunks::<64>().0[0]);
            let wv = _mm512_permutex2var_epi8(va, pick_q, vb);
            let d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi8(
                va, pick_d, vb,
            )));
            let x = load512(&xq[j]);
            let xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(wv), zero, x);
            let sum = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), xs);
            let sc = _mm512_mul_ps(d, _mm512_castsi512_ps(load512(&xd[j])));
            acc[j % 2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), sc, acc[j % 2]);
        }
        let mut total = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
        if let Some(b) = tail.first_chunk::<34>() {
            // An odd last block: two 16-weight groups, plain integer dots.
            let k0 = 64 * pairs.len();
            let dw = f16c_at(b, 0);
            for h in 0..2 {
                let dot: i32 = (0..16)
                    .map(|i| (b[2 + 16 * h + i] as i8 as i32) * a.q[k0 + 16 * h + i] as i32)
                    .sum();
                total += dw * a.d16[k0 / 16 + h] * dot as f32;
            }
        }
        *out = total;
    }
}

/// Q6_K rows · per-256 int8 activation: the 6-bit quants (0..=63, unsigned) straight into
/// `maddubs`, the signed 8-bit scales per 16 in `vpdpwssd`, the `−32` offset once per block
/// through the activation's 16-value sums (`Σ s·bsum16`).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) fn rows_q6k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // i16 lane i of quarter k ← scale 4k + i/8 (16-weight groups 4k..4k + 4).
    let pick: [__m512i; 4] = std::array::from_fn(|k| {
        let lanes: [u16; 32] = std::array::from_fn(|i| (4 * k + i / 8) as u16);
        load512(&lanes)
    });
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        *out = q6k_row(&pick, row, a);
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn q6k_row(pick: &[__m512i; 4], row: &[u8], a: &Q8Act) -> f32 {
    let nib = _mm512_set1_epi8(15);
    let three = _mm512_set1_epi8(3);
    let (blocks, _) = row.as_chunks::<210>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm512_setzero_ps();
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (ql, _) = b[..128].as_chunks::<64>();
        let (qh, _) = b[128..192].as_chunks::<32>();
        let sc8 = &b[192..208].as_chunks::<16>().0[0];
        // Scales as 16 signed i16 (low half of a vector).
        let sc16 = _mm256_cvtepi8_epi16(crate::simd_mem::load128(sc8));
        let sc = _mm512_castsi256_si512(sc16);
        let (xs, _) = xq.as_chunks::<64>();
        let mut sum = _mm512_setzero_si512();
        for n in 0..2 {
            let l = load512(&ql[n]);
            let h = crate::simd_mem::load256(&qh[n]);
            // Weights 128n + 0..64: low nibbles, high bits (h >> 0, h >> 2); + 64..128: high
            // nibbles, (h >> 4, h >> 6).
            let h01 = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h), _mm256_srli_epi16::<2>(h));
            let h23 = _mm512_srli_epi16::<4>(h01);
            let q0 = _mm512_or_si512(
                _mm512_and_si512(l, nib),
                _mm512_slli_epi16::<4>(_mm512_and_si512(h01, three)),
            );
            let q1 = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16::<4>(l), nib),
                _mm512_slli_epi16::<4>(_mm512_and_si512(h23, three)),
            );
            for (k, q) in [(2 * n, q0), (2 * n + 1, q1)] {
                let p = _mm512_maddubs_epi16(q, load512(&xs[k]));
                sum = dpwssd(sum, p, _mm512_permutexvar_epi16(pick[k], sc));
            }
        }
        // −32 · Σ_g s_g · Σ x over group g.
        let off = _mm256_madd_epi16(sc16, crate::simd_lowbit::bsums(a, bi));
        let off = _mm512_castsi256_si512(_mm256_slli_epi32::<5>(off));
        let mask = 0x00ff;
        let sum = _mm512_mask_sub_epi32(sum, mask, sum, off);
        let d = f16c_at(b, 208) * xd;
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
    }
    _mm512_reduce_add_ps(acc)
}

/// Two 32-byte arrays (weights or activations) as the low and high halves of a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn load32_pair<T: Copy>(lo: &[T; 32], hi: &[T; 32]) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load256(lo)), load256(hi))
}

/// Q4_K rows (144-byte blocks: f16 `d`, `dmin`, 12 bytes of 6-bit scales and minimums, 128
/// bytes of nibbles) · per-256 int8 activation: the Q5_K kernel without fifth bits.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn rows_q4k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_k45::<144, false>(w, row_bytes, a, y)
}

/// Q5_K rows (176-byte blocks: as Q4_K's with 32 bytes of fifth bits before the nibbles).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn rows_q5k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    rows_k45::<176, true>(w, row_bytes, a, y)
}

/// Q4_K / Q5_K rows · per-256 int8 activation: nibble (| fifth bit · 16) unsigned into
/// `maddubs`, the 6-bit scales per 32 in `vpdpwssd`, the `dmin·m` minimums through `bsum16`.
///
/// 128 weights a step: 64 quant bytes (sub-blocks 4h..4h + 4) as two vectors, the low nibbles
/// (sub-blocks 4h and 4h + 2) and the high ones (4h + 1, 4h + 3), each in place; Q5_K's fifth
/// bits from the 32 `qh` bytes (held in both halves of a register) by one variable dword
/// rotate that lands each sub-block's bit on bit 4 and one `vpternlogd` that merges it; the
/// activations put in the same order (two 256-bit halves a vector). No byte shuffles, and
/// one scale permute per 64 weights.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn rows_k45<const B: usize, const FIFTH: bool>(
    w: &[u8],
    row_bytes: usize,
    a: &Q8Act,
    y: &mut [f32],
) {
    let qs_at = if FIFTH { 48 } else { 16 };
    // Vector v = 2h + (0 low nibbles, 1 high): sub-blocks 4h + v % 2 (bytes 0–31) and
    // 4h + 2 + v % 2 (bytes 32–63).
    let sub = |v: usize, half: usize| 4 * (v / 2) + v % 2 + 2 * half;
    let pick = word_pick(|v, k| sub(v, k / 16));
    // Rotating each dword left by (4 − bit) mod 32 puts bit `bit` of every byte on its bit 4.
    let rot: [__m512i; 4] = std::array::from_fn(|v| {
        let r: [u32; 16] = std::array::from_fn(|i| (36 - sub(v, i / 8) as u32) % 32);
        load512(&r)
    });
    let nib = _mm512_set1_epi8(15);
    let bit4 = _mm512_set1_epi8(16);
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<B>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let (sc, mn) = crate::simd_lowbit::k_scales_mins(&b[4..16]);
            let s8 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_set_epi64x(
                0,
                i64::from_le_bytes(sc),
            )));
            let m16 = crate::simd_lowbit::widen_u8(&std::array::from_fn(|k| mn[k / 2]));
            let qh = match FIFTH {
                true => _mm512_broadcast_i64x4(load256(bytes::<32>(&b[16..48]))),
                false => _mm512_setzero_si512(),
            };
            let (qs, _) = b[qs_at..qs_at + 128].as_chunks::<64>();
            let (xs, _) = xq.as_chunks::<32>();
            let mut sums = [_mm512_setzero_si512(); 2];
            for (h, c) in qs.iter().enumerate() {
                let c = load512(c);
                let planes = [
                    _mm512_and_si512(c, nib),
                    _mm512_and_si512(_mm512_srli_epi16::<4>(c), nib),
                ];
                for (p, plane) in planes.into_iter().enumerate() {
                    let v = 2 * h + p;
                    let q = match FIFTH {
                        // plane | (fifth & 16)
                        true => _mm512_ternarylogic_epi32::<0xF8>(
                            plane,
                            _mm512_rolv_epi32(qh, rot[v]),
                            bit4,
                        ),
                        false => plane,
                    };
                    let x = load32_pair(&xs[4 * h + p], &xs[4 * h + 2 + p]);
                    let prod = _mm512_maddubs_epi16(q, x);
                    sums[p] = dpwssd(sums[p], prod, _mm512_permutexvar_epi16(pick[v], s8));
                }
            }
            let mins = _mm256_madd_epi16(m16, crate::simd_lowbit::bsums(a, bi));
            let total = _mm512_cvtepi32_ps(_mm512_add_epi32(sums[0], sums[1]));
            acc = _mm512_fmadd_ps(total, _mm512_set1_ps(f16c_at(b, 0) * xd), acc);
            let m = _mm512_cvtepi32_ps(_mm512_zextsi256_si512(mins));
            acc = _mm512_fmadd_ps(m, _mm512_set1_ps(-(f16c_at(b, 2) * xd)), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// F32 / F16 / BF16 rows · f32 x (exact mode): four rows at a time, so each activation load
/// (x is larger than L1 for wide rows) serves four FMAs; F16 through F16C, BF16 by zero
/// extension and a 16-bit shift.
#[target_feature(enable = "avx512f,avx512bw,f16c")]
pub(crate) fn rows_float(ty: GgmlType, w: &[u8], row_bytes: usize, x: &[f32], y: &mut [f32]) {
    let width = if ty == GgmlType::F32 { 4 } else { 2 };
    let widen = |c: &[u8]| -> __m512 {
        match ty {
            GgmlType::F32 => _mm512_castsi512_ps(load512(bytes::<64>(c))),
            GgmlType::F16 => _mm512_cvtph_ps(load256(bytes::<32>(c))),
            _ => {
                let h = load256(bytes::<32>(c));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
            }
        }
    };
    let (xc, _) = x.as_chunks::<16>();
    let done = xc.len() * 16;
    let step = 16 * width;
    // No software prefetch here: a whole row's lines asked for at once (8 KiB rows and up)
    // measured ~2x slower than the hardware prefetchers alone.
    for (rows, ys) in w.chunks(4 * row_bytes).zip(y.chunks_mut(4)) {
        let n = ys.len();
        let r: [&[u8]; 4] = std::array::from_fn(|k| &rows[row_bytes * k.min(n - 1)..][..row_bytes]);
        let r = &r[..n];
        let mut acc = [_mm512_setzero_ps(); 4];
        for (i, xv) in xc.iter().enumerate() {
            let xv = _mm512_castsi512_ps(load512(xv));
            for (a, row) in acc.iter_mut().zip(r) {
                *a = _mm512_fmadd_ps(widen(&row[i * step..(i + 1) * step]), xv, *a);
            }
        }
        for ((out, a), row) in ys.iter_mut().zip(acc).zip(r) {
            *out = _mm512_reduce_add_ps(a) + crate::simd_mem::float_tail(ty, row, x, done);
        }
    }
}

/// Whether this CPU runs the kernels of this module (and `LOCALGLM_SIMD` allows them).
pub(crate) fn available() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        crate::kernels::simd_allowed()
            && std::env::var("LOCALGLM_SIMD").map_or(true, |v| v != "avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512bitalg")
            && is_x86_feature_detected!("f16c")
            && is_x86_feature_detected!("bmi2")
            && is_x86_feature_detected!("avx512vl")
    })
}

/// Bits 2j.. of every quant byte moved down to bits 0–1 (higher bits left for the caller to
/// mask): step j of the 2-bit K-quants (Q2_K, Q3_K).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn crumbs_down(q: __m512i, j: usize) -> __m512i {
    match j {
        0 => q,
        1 => _mm512_srli_epi16::<2>(q),
        2 => _mm512_srli_epi16::<4>(q),
        _ => _mm512_srli_epi16::<6>(q),
    }
}

/// Q2_K rows (84-byte blocks of 256: 16 scale bytes — a 4-bit scale and a 4-bit minimum per
/// 16 weights — 64 bytes of 2-bit quants, f16 `d` and `dmin`; weight `d·s·q − dmin·m`).
///
/// The scales go into the weights before the dot: per block one 64-byte table holds `k·s` for
/// k = 0..=3 of each of the 16 scale groups (one `vpermb` spreading the scales, two masked
/// adds), and per 64 weights the quants (bits 2j of all 64 quant bytes: weights 32j.. of both
/// 128-weight halves) plus their group's table offset (one shift, one `vpternlogd`) index it
/// with one `vpermb`; the products `s·q ≤ 45` go into one `vpdpbusd` against the two halves'
/// activations, all four steps into one integer sum, converted once per block. The minimums
/// go through the activations' 16-value sums (one `vpmaddwd`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c")]
pub(crate) fn rows_q2k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // Byte i of step j's quants lies in 128-bit lane l = i / 16, which holds scale group
    // 8·(l / 2) + 2j + l % 2 (weights 128·(l / 2) + 32j + 16·(l % 2) ..); its table entries
    // start at byte 4 × that group.
    let offsets: [__m512i; 4] = std::array::from_fn(|j| {
        let b: [u8; 64] = std::array::from_fn(|i| {
            let l = i / 16;
            (4 * (8 * (l / 2) + 2 * j + l % 2)) as u8
        });
        load512(&b)
    });
    let spread: [u8; 64] = std::array::from_fn(|i| (i / 4) as u8);
    let spread = load512(&spread);
    // Table bytes with k = 1 or 3 (one s), k = 2 or 3 (2s).
    let (once, twice): (__mmask64, __mmask64) = (0xAAAA_AAAA_AAAA_AAAA, 0xCCCC_CCCC_CCCC_CCCC);
    let three = _mm512_set1_epi8(3);
    let low4 = _mm_set1_epi8(15);
    let (sums, _) = a.bsum16.as_chunks::<16>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<84>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        let mut acc_min = _mm256_setzero_ps();
        for (((b, xq), &xd), s16) in blocks.iter().zip(xq).zip(&a.d256).zip(sums) {
            let sm = crate::simd_mem::load128(bytes::<16>(&b[..16]));
            let s = _mm_and_si128(sm, low4);
            let m = _mm_and_si128(_mm_srli_epi16::<4>(sm), low4);
            let srep = _mm512_permutexvar_epi8(spread, _mm512_castsi128_si512(s));
            let table = _mm512_add_epi8(
                _mm512_maskz_mov_epi8(once, srep),
                _mm512_maskz_add_epi8(twice, srep, srep),
            );
            let q = load512(bytes::<64>(&b[16..80]));
            let (xs, _) = xq.as_chunks::<32>();
            let mut isum = _mm512_setzero_si512();
            for (j, off) in offsets.iter().enumerate() {
                let shifted = crumbs_down(q, j);
                // (shifted & 3) | offset
                let idx = _mm512_ternarylogic_epi32::<0xEA>(shifted, three, *off);
                let wq = _mm512_permutexvar_epi8(idx, table);
                let x = load32_pair(&xs[j], &xs[4 + j]);
                isum = _mm512_dpbusd_epi32(isum, wq, x);
            }
            let mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(m), load256(s16));
            let dm = crate::simd_lowbit::d_dmin(b, 80, xd);
            let (d, dmin) = (
                _mm512_broadcastss_ps(dm),
                _mm256_broadcastss_ps(_mm_movehdup_ps(dm)),
            );
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, acc);
            acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), dmin, acc_min);
        }
        *out = _mm512_reduce_add_ps(acc) - crate::simd::hsum(acc_min);
    }
}

/// Q3_K rows (110-byte blocks: 32 `hmask` bytes, 64 bytes of 2-bit quants, 12 bytes of
/// 6-bit scales, f16 `d`; weight `d·(S − 32)·(q + 4·h − 4)`) · per-256 int8 activation.
///
/// As Q2_K's quants, 64 weights a step j: bits 2j of all 64 quant bytes (weights 32j.. of both
/// 128-weight halves); their high bits are bits j and 4 + j of the 32 `hmask` bytes (held in
/// both halves of a register), landed on bit 2 by one variable dword rotate and merged by one
/// `vpternlogd`, so `u = q + 4h` (0..=7) goes unsigned into `maddubs`; the signed scales per
/// 16 ride in `vpdpwssd`, the `−4` offset through the activations' 16-value sums.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_q3k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // i16 lane p of step j: half p / 16, weight 32j + (2p mod 32) of it: scale group
    // 8·(p / 16) + 2j + (p mod 16) / 8.
    let pick = word_pick(|j, p| 8 * (p / 16) + 2 * j + (p % 16) / 8);
    // Rotating a dword left by (2 − bit) mod 32 puts bit `bit` of each byte on its bit 2.
    let rot: [__m512i; 4] = std::array::from_fn(|j| {
        let r: [u32; 16] = std::array::from_fn(|i| (34 - (j + 4 * (i / 8)) as u32) % 32);
        load512(&r)
    });
    let three = _mm512_set1_epi8(3);
    let bit2 = _mm512_set1_epi8(4);
    let (sums, _) = a.bsum16.as_chunks::<16>();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<110>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (((b, xq), &xd), s16) in blocks.iter().zip(xq).zip(&a.d256).zip(sums) {
            let sc16 = crate::simd_lowbit::q3k_scales(b);
            let sc = _mm512_castsi256_si512(sc16);
            let hm = _mm512_broadcast_i64x4(load256(bytes::<32>(&b[..32])));
            let q = load512(bytes::<64>(&b[32..96]));
            let (xs, _) = xq.as_chunks::<32>();
            let mut isum = [_mm512_setzero_si512(); 2];
            for j in 0..4 {
                // (q & 3) | (rotated & 4)
                let u = _mm512_ternarylogic_epi32::<0xF8>(
                    _mm512_and_si512(crumbs_down(q, j), three),
                    _mm512_rolv_epi32(hm, rot[j]),
                    bit2,
                );
                let p = _mm512_maddubs_epi16(u, load32_pair(&xs[j], &xs[4 + j]));
                isum[j % 2] = dpwssd(isum[j % 2], p, _mm512_permutexvar_epi16(pick[j], sc));
            }
            // Σ S·(u − 4)·x = Σ S·u·x − 4·Σ S·bsum.
            let off = _mm256_slli_epi32::<2>(_mm256_madd_epi16(sc16, load256(s16)));
            let total = _mm512_sub_epi32(
                _mm512_add_epi32(isum[0], isum[1]),
                _mm512_zextsi256_si512(off),
            );
            let d = f16c_at(b, 108) * xd;
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(d), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};
    use crate::GgmlType;

    /// The per-16 Q8_0 kernel (rows not a multiple of 256) against the f64 dot of the
    /// dequantized row with the per-16 int8 activations, odd block counts included.
    #[test]
    fn q8_0_on_the_per_16_grid_matches_the_dequantized_dot() {
        if !available() {
            return;
        }
        for (seed, cols) in [
            (1u64, 32usize),
            (2, 96),
            (3, 192),
            (4, 384),
            (5, 576),
            (6, 1056),
        ] {
            let ty = GgmlType::Q8_0;
            let row = random_blocks(ty, cols / 32, seed);
            let a = Q8Act::new(&random_vector(cols, seed + 20));
            let w = crate::dequantize_to_vec(ty, &row, cols).unwrap();
            let (mut want, mut scale) = (0f64, 0f64);
            for (i, wv) in w.iter().enumerate() {
                let xv = a.q[i] as f64 * a.d16[i / 16] as f64;
                want += *wv as f64 * xv;
                scale += (*wv as f64 * xv).abs();
            }
            let mut y = [0f32];
            // WORKAROUND: the features were detected by `available()` above.
            #[allow(unsafe_code)]
            unsafe {
                rows_q8_0_d16(&row, row.len(), &a, &mut y)
            };
            let got = y[0] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * scale,
                "{cols}: got {got} want {want}"
            );
        }
    }

    /// Each row kernel against the f64 dot of the dequantized row with the int8 activations it
    /// actually sees: only f32 rounding may differ.
    #[test]
    fn row_kernels_match_the_dequantized_dot_up_to_rounding() {
        if !available() {
            return;
        }
        type Rows = unsafe fn(&[u8], usize, &Q8Act, &mut [f32]);
        let kernels: [(GgmlType, Rows); 11] = [
            (GgmlType::IQ2_XXS, rows_iq2xxs),
            (GgmlType::Q2_K, rows_q2k),
            (GgmlType::Q3_K, rows_q3k),
            (GgmlType::Q4_K, rows_q4k),
            (GgmlType::Q5_K, rows_q5k),
            (GgmlType::IQ2_S, crate::simd512_iq2s::rows_iq2s),
            (GgmlType::IQ3_S, rows_iq3s),
            (GgmlType::IQ2_XS, rows_iq2xs),
            (GgmlType::IQ3_XXS, rows_iq3xxs),
            (GgmlType::Q8_0, rows_q8_0),
            (GgmlType::Q6_K, rows_q6k),
        ];
        for (ty, kernel) in kernels {
            for (seed, cols) in [(1u64, 256usize), (2, 768), (3, 4096)] {
                let row = random_blocks(ty, cols / ty.block_elems(), seed);
                let x = random_vector(cols, seed + 10);
                let a = Q8Act::new(&x);
                let (want, scale) = crate::synth::q256_reference_dot(ty, &row, &a);
                let mut y = [0f32];
                // WORKAROUND: the features were detected by `available()` above.
                #[allow(unsafe_code)]
                unsafe {
                    kernel(&row, row.len(), &a, &mut y)
                };
                let got = y[0] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * scale,
                    "{ty} {cols}: got {got} want {want} (Σ|w·x| {scale})"
                );
            }
        }
    }
}
