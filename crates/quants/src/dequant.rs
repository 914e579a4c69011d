//! Dequantization of every GGML weight type a GLM GGUF can hold, block by block.
//!
//! Invariant: for every input, the f32 results are bit-identical to PyPI `gguf` 0.19.0
//! `gguf.quants.dequantize`, which is ggml's reference scalar dequantizer written in numpy. To
//! keep that true, each formula multiplies and adds in f32 in the same order as the reference
//! (e.g. `(d·sc)·q − dmin·m`, never `d·(sc·q)`; Rust never fuses a multiply-add unless asked),
//! and f16 fields are widened exactly, NaN payloads included (see [`f16_to_f32`]).
//!
//! The per-type functions ([`q4_k`], [`iq2_xxs`], ...) take fixed-size arrays so that a fused
//! kernel can call them on one block and a stack buffer with no allocation, no length checks and
//! no type dispatch. [`dequantize_block`] and [`dequantize_row`] are the checked entry points.

use crate::tables::{
    IQ1S_DELTA, IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID,
    KSIGNS_IQ2XS, KVALUES_IQ4NL,
};
use crate::{GgmlType, QuantError};

/// Weights per legacy block (`QK4_0`, `QK8_0`, `QK4_NL`, ...).
pub const QK: usize = 32;
/// Weights per K-/I-quant super-block (`QK_K`).
pub const QK_K: usize = 256;

/// Widens an IEEE binary16 bit pattern to f32, exactly.
///
/// Zeros, subnormals and infinities map to the equal f32 value. NaNs keep their sign and payload
/// (shifted into the top of the f32 mantissa) and are **not** quieted — the behaviour of numpy's
/// `astype(np.float32)`, and therefore of the reference. (ggml's F16C path would quiet a signaling
/// NaN; no valid block has a NaN scale, so the difference is confined to garbage input.)
#[inline]
pub const fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    if exp == 0 {
        // ±man · 2^-24: the product of an integer below 2^10 and a power of two is exact.
        let mag = man as f32 * (1.0 / 16_777_216.0);
        f32::from_bits(sign | mag.to_bits())
    } else if exp == 31 {
        f32::from_bits(sign | 0x7f80_0000 | (man << 13))
    } else {
        f32::from_bits(sign | ((exp + 112) << 23) | (man << 13))
    }
}

/// Widens a bfloat16 bit pattern to f32 (it becomes the upper half of the f32).
#[inline]
pub const fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[inline(always)]
pub(crate) fn u16_at<const B: usize>(b: &[u8; B], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn u32_at<const B: usize>(b: &[u8; B], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn f16_at<const B: usize>(b: &[u8; B], at: usize) -> f32 {
    f16_to_f32(u16_at(b, at))
}

/// `±1.0` for sign bit `k` of `signs` (bit set ⇒ negative), multiplied in last as the reference
/// does.
#[inline(always)]
fn sign(signs: u8, k: usize) -> f32 {
    if (signs >> k) & 1 != 0 {
        -1.0
    } else {
        1.0
    }
}

/// Eight weights `db · mag[k] · (±1)` of one lattice group.
#[inline(always)]
fn signed_group(out: &mut [f32; 8], db: f32, mags: [u8; 8], signs: u8) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = db * mags[k] as f32 * sign(signs, k);
    }
}

/// Eight weights `dl · (grid[k] + delta)` of one IQ1 group.
#[inline(always)]
fn iq1_group(out: &mut [f32; 8], dl: f32, grid: &[i8; 8], delta: f32) {
    for (o, &g) in out.iter_mut().zip(grid) {
        *o = dl * (g as f32 + delta);
    }
}

/// Q4_0: `d·(nibble − 8)`; low nibbles are weights 0–15, high nibbles 16–31.
#[inline(always)]
pub fn q4_0(b: &[u8; GgmlType::Q4_0.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = d * ((q & 15) as i32 - 8) as f32;
        y[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
    }
}

/// Q4_1: `d·nibble + m`.
#[inline(always)]
pub fn q4_1(b: &[u8; GgmlType::Q4_1.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = d * (q & 15) as f32 + m;
        y[j + 16] = d * (q >> 4) as f32 + m;
    }
}

/// Q5_0: `d·(q − 16)`, the fifth bit of weight j being bit j of the u32 `qh`.
#[inline(always)]
pub fn q5_0(b: &[u8; GgmlType::Q5_0.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    let qh = u32_at(b, 2);
    for j in 0..16 {
        let q = b[6 + j];
        let lo = (q & 15) as u32 | ((qh >> j) & 1) << 4;
        let hi = (q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (lo as i32 - 16) as f32;
        y[j + 16] = d * (hi as i32 - 16) as f32;
    }
}

/// Q5_1: `d·q + m` with 5-bit q.
#[inline(always)]
pub fn q5_1(b: &[u8; GgmlType::Q5_1.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32_at(b, 4);
    for j in 0..16 {
        let q = b[8 + j];
        let lo = (q & 15) as u32 | ((qh >> j) & 1) << 4;
        let hi = (q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
        y[j] = d * lo as f32 + m;
        y[j + 16] = d * hi as f32 + m;
    }
}

/// Q8_0: `d·qs[j]` with signed bytes.
#[inline(always)]
pub fn q8_0(b: &[u8; GgmlType::Q8_0.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    for (j, o) in y.iter_mut().enumerate() {
        *o = (b[2 + j] as i8) as f32 * d;
    }
}

/// IQ4_NL: `d·kvalues_iq4nl[nibble]`; low nibbles are weights 0–15, high nibbles 16–31.
#[inline(always)]
pub fn iq4_nl(b: &[u8; GgmlType::IQ4_NL.block_bytes()], y: &mut [f32; QK]) {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = d * KVALUES_IQ4NL[(q & 15) as usize] as f32;
        y[j + 16] = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
    }
}

/// Q2_K: 16 sub-blocks of 16 with a 4-bit scale and 4-bit min each; `(d·sc)·q − dmin·m`.
#[inline(always)]
pub fn q2_k(b: &[u8; GgmlType::Q2_K.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 80);
    let dmin = f16_at(b, 82);
    for (s, out) in y.chunks_exact_mut(16).enumerate() {
        let sc = b[s];
        let dl = d * (sc & 15) as f32;
        let ml = dmin * (sc >> 4) as f32;
        // Weight v = 16s + i sits in byte 32h + l at bit pair j (h = v/128, j = v%128/32, l = v%32).
        let v0 = 16 * s;
        let base = 16 + 32 * (v0 / 128) + v0 % 32;
        let shift = 2 * ((v0 % 128) / 32);
        for (i, o) in out.iter_mut().enumerate() {
            let q = (b[base + i] >> shift) & 3;
            *o = dl * q as f32 - ml;
        }
    }
}

/// Q3_K: 2 low bits in `qs`, an inverted high bit in `hmask`, 16 signed 6-bit scales;
/// `(d·S)·(q2 − 4·!hb)`.
#[inline(always)]
pub fn q3_k(b: &[u8; GgmlType::Q3_K.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 108);
    let sc = &b[96..108];
    for (s, out) in y.chunks_exact_mut(16).enumerate() {
        let low = if s < 8 { sc[s] & 15 } else { sc[s - 8] >> 4 };
        let high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        let dl = d * ((low | high << 4) as i32 - 32) as f32;
        let v0 = 16 * s;
        let base = 32 + 32 * (v0 / 128) + v0 % 32;
        let shift = 2 * ((v0 % 128) / 32);
        let hshift = v0 / 32;
        for (i, o) in out.iter_mut().enumerate() {
            let l = v0 % 32 + i;
            let q2 = ((b[base + i] >> shift) & 3) as i32;
            let hb = (b[l] >> hshift) & 1;
            let q = if hb != 0 { q2 } else { q2 - 4 };
            *o = dl * q as f32;
        }
    }
}

/// The 6-bit (scale, min) pair of sub-block `j` in the 12-byte Q4_K/Q5_K scale field.
#[inline(always)]
fn k_scale_min(sc: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (sc[j] & 63, sc[j + 4] & 63)
    } else {
        (
            (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4),
            (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4),
        )
    }
}

/// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min; `(d·sc)·q − dmin·m`.
#[inline(always)]
pub fn q4_k(b: &[u8; GgmlType::Q4_K.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    for (j, out) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = k_scale_min(scales, j);
        let dl = d * sc as f32;
        let ml = dmin * m as f32;
        let qs = &b[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for (o, &q) in out.iter_mut().zip(qs) {
            *o = dl * ((q >> shift) & 15) as f32 - ml;
        }
    }
}

/// Q5_K: Q4_K plus a fifth bit per weight (`qh[l]` bit j); `(d·sc)·q − dmin·m`.
#[inline(always)]
pub fn q5_k(b: &[u8; GgmlType::Q5_K.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    for (j, out) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = k_scale_min(scales, j);
        let dl = d * sc as f32;
        let ml = dmin * m as f32;
        let qs = &b[48 + 32 * (j / 2)..48 + 32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for ((o, &q), &h) in out.iter_mut().zip(qs).zip(qh) {
            let q = ((q >> shift) & 15) | ((h >> j) & 1) << 4;
            *o = dl * q as f32 - ml;
        }
    }
}

/// Q6_K: 4 low bits in `ql`, 2 high bits in `qh`, signed 8-bit scales per 16; `(d·sc)·(q − 32)`.
#[inline(always)]
pub fn q6_k(b: &[u8; GgmlType::Q6_K.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 208);
    let mut dl = [0f32; 16];
    for (s, v) in dl.iter_mut().enumerate() {
        *v = d * (b[192 + s] as i8) as f32;
    }
    for h in 0..2 {
        let ql = &b[64 * h..64 * h + 64];
        let qh = &b[128 + 32 * h..128 + 32 * h + 32];
        for l in 0..32 {
            let hb = qh[l];
            let q = [
                (ql[l] & 15) | (hb & 3) << 4,
                (ql[l + 32] & 15) | ((hb >> 2) & 3) << 4,
                (ql[l] >> 4) | ((hb >> 4) & 3) << 4,
                (ql[l + 32] >> 4) | ((hb >> 6) & 3) << 4,
            ];
            for (t, &q) in q.iter().enumerate() {
                let v = 128 * h + 32 * t + l;
                y[v] = dl[v / 16] * (q as i32 - 32) as f32;
            }
        }
    }
}

/// IQ2_XXS: per sub-block two u32s — four 8-bit grid indices, then four 7-bit sign indices and
/// a 4-bit scale; `db = d·(0.5 + s)·0.25`.
#[inline(always)]
pub fn iq2_xxs(b: &[u8; GgmlType::IQ2_XXS.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for j in 0..8 {
        let a0 = u32_at(b, 2 + 8 * j);
        let a1 = u32_at(b, 6 + 8 * j);
        let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
        for l in 0..4 {
            let grid = IQ2XXS_GRID[((a0 >> (8 * l)) & 255) as usize].to_le_bytes();
            let signs = KSIGNS_IQ2XS[((a1 >> (7 * l)) & 127) as usize];
            signed_group(&mut groups[4 * j + l], db, grid, signs);
        }
    }
}

/// IQ2_XS: a u16 per group (9-bit grid index, 7-bit sign index), 4-bit scales per 16 weights.
#[inline(always)]
pub fn iq2_xs(b: &[u8; GgmlType::IQ2_XS.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for (g, out) in groups.iter_mut().enumerate() {
        let (j, l) = (g / 4, g % 4);
        let q = u16_at(b, 2 + 2 * g);
        let nibble = (b[66 + j] >> (4 * (l / 2))) & 15;
        let db = d * (0.5 + nibble as f32) * 0.25;
        let grid = IQ2XS_GRID[(q & 511) as usize].to_le_bytes();
        signed_group(out, db, grid, KSIGNS_IQ2XS[(q >> 9) as usize]);
    }
}

/// IQ2_S: 10-bit grid indices (8 bits in `qs`, 2 in `qh`), an explicit sign byte per group,
/// 4-bit scales per 16 weights.
#[inline(always)]
pub fn iq2_s(b: &[u8; GgmlType::IQ2_S.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for (g, out) in groups.iter_mut().enumerate() {
        let (j, l) = (g / 4, g % 4);
        let index = b[2 + g] as usize | (((b[66 + j] >> (2 * l)) & 3) as usize) << 8;
        let nibble = (b[74 + j] >> (4 * (l / 2))) & 15;
        let db = d * (0.5 + nibble as f32) * 0.25;
        signed_group(out, db, IQ2S_GRID[index].to_le_bytes(), b[34 + g]);
    }
}

/// IQ3_XXS: two 8-bit grid indices (4 magnitudes each) per group; per sub-block a u32 of four
/// 7-bit sign indices and a 4-bit scale; `db = d·(0.5 + s)·0.5`.
#[inline(always)]
pub fn iq3_xxs(b: &[u8; GgmlType::IQ3_XXS.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for j in 0..8 {
        let a = u32_at(b, 66 + 4 * j);
        let db = d * (0.5 + (a >> 28) as f32) * 0.5;
        for l in 0..4 {
            let g1 = IQ3XXS_GRID[b[2 + 8 * j + 2 * l] as usize].to_le_bytes();
            let g2 = IQ3XXS_GRID[b[3 + 8 * j + 2 * l] as usize].to_le_bytes();
            let mags = [g1[0], g1[1], g1[2], g1[3], g2[0], g2[1], g2[2], g2[3]];
            let signs = KSIGNS_IQ2XS[((a >> (7 * l)) & 127) as usize];
            signed_group(&mut groups[4 * j + l], db, mags, signs);
        }
    }
}

/// IQ3_S: two 9-bit grid indices (8 bits in `qs`, 1 in `qh`) per group, an explicit sign byte
/// per group, a 4-bit scale per sub-block; `db = d·(1 + 2s)`.
#[inline(always)]
pub fn iq3_s(b: &[u8; GgmlType::IQ3_S.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for j in 0..8 {
        let nibble = (b[106 + j / 2] >> (4 * (j % 2))) & 15;
        let db = d * (1 + 2 * nibble as u32) as f32;
        let qh = b[66 + j] as usize;
        for l in 0..4 {
            let i1 = b[2 + 8 * j + 2 * l] as usize | ((qh >> (2 * l)) & 1) << 8;
            let i2 = b[3 + 8 * j + 2 * l] as usize | ((qh >> (2 * l + 1)) & 1) << 8;
            let g1 = IQ3S_GRID[i1].to_le_bytes();
            let g2 = IQ3S_GRID[i2].to_le_bytes();
            let mags = [g1[0], g1[1], g1[2], g1[3], g2[0], g2[1], g2[2], g2[3]];
            signed_group(&mut groups[4 * j + l], db, mags, b[74 + 4 * j + l]);
        }
    }
}

/// IQ1_S: 11-bit indices into the ternary `iq1s_grid`; per sub-block a u16 with the 3 high
/// index bits of each group, a 3-bit scale and the sign of the ±0.125 delta;
/// `(d·(2s + 1))·(grid + delta)`.
#[inline(always)]
pub fn iq1_s(b: &[u8; GgmlType::IQ1_S.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let (groups, _) = y.as_chunks_mut::<8>();
    for j in 0..8 {
        let h = u16_at(b, 34 + 2 * j);
        let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
        let delta = if h & 0x8000 != 0 {
            -IQ1S_DELTA
        } else {
            IQ1S_DELTA
        };
        for l in 0..4 {
            let index = b[2 + 4 * j + l] as usize | (((h >> (3 * l)) & 7) as usize) << 8;
            iq1_group(&mut groups[4 * j + l], dl, &IQ1S_GRID[index], delta);
        }
    }
}

/// IQ1_M: like IQ1_S with a 3-bit scale per 16 weights, a delta sign per group, and the f16
/// super-scale assembled from the top nibbles of the four scale u16s.
#[inline(always)]
pub fn iq1_m(b: &[u8; GgmlType::IQ1_M.block_bytes()], y: &mut [f32; QK_K]) {
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let d = f16_to_f32(
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000),
    );
    let (groups, _) = y.as_chunks_mut::<8>();
    for j in 0..8 {
        for l in 0..4 {
            let s = (sc[j / 2] >> (6 * (j % 2) + 3 * (l / 2))) & 7;
            let dl = d * (2 * s + 1) as f32;
            let n = (b[32 + 2 * j + l / 2] >> (4 * (l % 2))) & 15;
            let index = b[4 * j + l] as usize | ((n & 7) as usize) << 8;
            let delta = if n & 8 != 0 { -IQ1S_DELTA } else { IQ1S_DELTA };
            iq1_group(&mut groups[4 * j + l], dl, &IQ1S_GRID[index], delta);
        }
    }
}

/// IQ4_XS: IQ4_NL quants with a signed 6-bit scale per sub-block of 32; `(d·(ls − 32))·k`.
#[inline(always)]
pub fn iq4_xs(b: &[u8; GgmlType::IQ4_XS.block_bytes()], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 0);
    let scales_h = u16_at(b, 2);
    for (j, out) in y.chunks_exact_mut(32).enumerate() {
        let low = ((b[4 + j / 2] >> (4 * (j % 2))) & 15) as i32;
        let high = ((scales_h >> (2 * j)) & 3) as i32;
        let dl = d * ((low | high << 4) - 32) as f32;
        let qs = &b[8 + 16 * j..8 + 16 * j + 16];
        let (lo, hi) = out.split_at_mut(16);
        for ((a, c), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
            *a = dl * KVALUES_IQ4NL[(q & 15) as usize] as f32;
            *c = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
        }
    }
}

/// Applies a fixed-size block decoder to every block of a length-checked row.
#[inline(always)]
fn each_block<const B: usize, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; B], &mut [f32; N]),
) {
    let (blocks, _) = src.as_chunks::<B>();
    let (outs, _) = dst.as_chunks_mut::<N>();
    for (b, y) in blocks.iter().zip(outs) {
        f(b, y);
    }
}

/// Dequantizes one row (or any run of whole blocks) of type `ty` from `src` into `dst`;
/// `dst.len()` is the number of weights.
///
/// # Errors
/// [`QuantError::Unsupported`] for types outside [`GgmlType::SUPPORTED`];
/// [`QuantError::NotBlockMultiple`] if `dst.len()` is not a whole number of blocks;
/// [`QuantError::LengthMismatch`] unless `src.len() == ty.row_bytes(dst.len())`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    let expected = ty.row_bytes(dst.len())?;
    if src.len() != expected {
        return Err(QuantError::LengthMismatch {
            ty,
            n_elems: dst.len(),
            expected,
            actual: src.len(),
        });
    }
    match ty {
        GgmlType::F32 => each_block(src, dst, |b: &[u8; 4], y: &mut [f32; 1]| {
            y[0] = f32::from_le_bytes(*b)
        }),
        GgmlType::F16 => each_block(src, dst, |b: &[u8; 2], y: &mut [f32; 1]| {
            y[0] = f16_to_f32(u16::from_le_bytes(*b))
        }),
        GgmlType::BF16 => each_block(src, dst, |b: &[u8; 2], y: &mut [f32; 1]| {
            y[0] = bf16_to_f32(u16::from_le_bytes(*b))
        }),
        GgmlType::Q4_0 => each_block(src, dst, q4_0),
        GgmlType::Q4_1 => each_block(src, dst, q4_1),
        GgmlType::Q5_0 => each_block(src, dst, q5_0),
        GgmlType::Q5_1 => each_block(src, dst, q5_1),
        GgmlType::Q8_0 => each_block(src, dst, q8_0),
        GgmlType::IQ4_NL => each_block(src, dst, iq4_nl),
        GgmlType::Q2_K => each_block(src, dst, q2_k),
        GgmlType::Q3_K => each_block(src, dst, q3_k),
        GgmlType::Q4_K => each_block(src, dst, q4_k),
        GgmlType::Q5_K => each_block(src, dst, q5_k),
        GgmlType::Q6_K => each_block(src, dst, q6_k),
        GgmlType::IQ2_XXS => each_block(src, dst, iq2_xxs),
        GgmlType::IQ2_XS => each_block(src, dst, iq2_xs),
        GgmlType::IQ2_S => each_block(src, dst, iq2_s),
        GgmlType::IQ3_XXS => each_block(src, dst, iq3_xxs),
        GgmlType::IQ3_S => each_block(src, dst, iq3_s),
        GgmlType::IQ1_S => each_block(src, dst, iq1_s),
        GgmlType::IQ1_M => each_block(src, dst, iq1_m),
        GgmlType::IQ4_XS => each_block(src, dst, iq4_xs),
        // Every other type was refused by `is_supported` above.
        _ => return Err(QuantError::Unsupported(ty)),
    }
    Ok(())
}

/// Dequantizes `n_elems` weights of type `ty` from `src` into a new vector.
///
/// # Errors
/// As [`dequantize_row`].
pub fn dequantize_to_vec(ty: GgmlType, src: &[u8], n_elems: usize) -> Result<Vec<f32>, QuantError> {
    // Validate before allocating, so a corrupt length cannot trigger a huge allocation.
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    let expected = ty.row_bytes(n_elems)?;
    if src.len() != expected {
        return Err(QuantError::LengthMismatch {
            ty,
            n_elems,
            expected,
            actual: src.len(),
        });
    }
    let mut out = vec![0f32; n_elems];
    dequantize_row(ty, src, &mut out)?;
    Ok(out)
}

/// Dequantizes exactly one block: `block.len()` must be [`GgmlType::block_bytes`] and
/// `out.len()` [`GgmlType::block_elems`] (1 for F32/F16/BF16).
///
/// Allocation-free; a kernel that already knows its type should call the fixed-size function of
/// that type ([`q4_k`], ...) directly and skip the dispatch.
///
/// # Errors
/// [`QuantError::Unsupported`] for types outside [`GgmlType::SUPPORTED`];
/// [`QuantError::BlockShape`] if either slice has the wrong length.
pub fn dequantize_block(ty: GgmlType, block: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    if block.len() != ty.block_bytes() || out.len() != ty.block_elems() {
        return Err(QuantError::BlockShape {
            ty,
            block_bytes: ty.block_bytes(),
            block_elems: ty.block_elems(),
            got_bytes: block.len(),
            got_elems: out.len(),
        });
    }
    dequantize_row(ty, block, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_is_exact() {
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x83ff), -1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        // NaNs keep their payload unquieted, as numpy does.
        assert_eq!(f16_to_f32(0x7c01).to_bits(), 0x7f80_2000);
        assert_eq!(f16_to_f32(0xfe00).to_bits(), 0xffc0_0000);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0x0001).to_bits(), 0x0001_0000);
    }

    #[test]
    fn hand_built_blocks() {
        // Q8_0 with d = 0.5: y = 0.5·qs.
        let mut b = [0u8; 34];
        b[..2].copy_from_slice(&0x3800u16.to_le_bytes());
        for (j, v) in b[2..].iter_mut().enumerate() {
            *v = (j as i8 - 16) as u8;
        }
        let mut y = [0f32; 32];
        q8_0(&b, &mut y);
        assert_eq!(y[0], -8.0);
        assert_eq!(y[31], 7.5);

        // Q4_0 with d = 1: low nibble 0 → −8, high nibble 15 → 7.
        let mut b = [0xf0u8; 18];
        b[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        let mut y = [0f32; 32];
        q4_0(&b, &mut y);
        assert!(y[..16].iter().all(|&v| v == -8.0));
        assert!(y[16..].iter().all(|&v| v == 7.0));

        // IQ4_NL with d = 1 and every byte 0x8f: low nibble 15 → 113, high nibble 8 → 1.
        let mut b = [0x8fu8; 18];
        b[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        let mut y = [0f32; 32];
        iq4_nl(&b, &mut y);
        assert!(y[..16].iter().all(|&v| v == 113.0));
        assert!(y[16..].iter().all(|&v| v == 1.0));

        // IQ2_XXS with d = 1, all indices/signs 0, scale nibble 0: db = 0.125, grid 8 → 1.0.
        let mut b = [0u8; 66];
        b[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        let mut y = [0f32; 256];
        iq2_xxs(&b, &mut y);
        assert!(y.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn checked_entry_points_reject_bad_shapes() {
        let mut out = [0f32; 256];
        assert!(matches!(
            dequantize_row(GgmlType::Q4_K, &[0; 143], &mut out),
            Err(QuantError::LengthMismatch {
                expected: 144,
                actual: 143,
                ..
            })
        ));
        assert!(matches!(
            dequantize_row(GgmlType::Q4_K, &[0; 144], &mut out[..255]),
            Err(QuantError::NotBlockMultiple { .. })
        ));
        assert!(matches!(
            dequantize_row(GgmlType::Q8_K, &[0; 292], &mut out),
            Err(QuantError::Unsupported(GgmlType::Q8_K))
        ));
        assert!(matches!(
            dequantize_block(GgmlType::Q4_K, &[0; 144], &mut out[..32]),
            Err(QuantError::BlockShape { .. })
        ));
        assert!(dequantize_block(GgmlType::Q4_K, &[0; 144], &mut out).is_ok());
        assert!(dequantize_row(GgmlType::F16, &[], &mut []).is_ok());
        assert!(matches!(
            dequantize_to_vec(GgmlType::Q8_0, &[0; 34], usize::MAX / 32 * 32),
            Err(QuantError::SizeOverflow { .. })
        ));
    }
}
