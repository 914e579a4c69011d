//! Decoding of weight blocks into the operands of integer dot products: int8 quants `q`, one f32
//! scale per 16 weights `s` and one f32 bias per 8 weights `bias`.
//!
//! Invariant: for every weight v of a block, `s[v / 16] * q[v] as f32 + bias[v / 8]` — the bias
//! term only where the decoder returned `true` — is the value [`crate::dequant`] produces for v.
//! Evaluated in f32 in that order it is the same value bit for bit (up to the sign of a zero)
//! whenever the block's f16 fields are finite: each scale and bias is computed with the reference's own f32 operations
//! (`d·sc`, `dmin·m`, `d·(0.5 + s)·0.25`, ...), the quants are the integers the reference
//! multiplies by, and the one regrouping is exact: IQ1's `dl·(g + δ)` = `(dl/8)·(8g ± 1)`
//! (g ∈ {−1, 0, 1}, δ = ±1/8; `dl/8` is exact and stays normal) rounds the same exact product
//! once.
//!
//! Geometry: a 256-weight block fills `q: [i8; 256]`, `s: [f32; 16]`, `bias: [f32; 32]`; a
//! 32-weight block `q: [i8; 32]`, `s: [f32; 2]`, `bias: [f32; 4]`. Formats whose scales cover 32
//! weights write the scale to both of its 16-weight slots (the same for biases and 8-weight slots).
//!
//! Return value: whether the format has a bias term at all. It is a constant per type
//! ([`has_bias`]), so once a decoder is inlined into a kernel the caller's bias branch folds
//! away. When it is `true` every `bias` entry is written (an entry may still be zero); when it is
//! `false` `bias` is left untouched and must be ignored.
//!
//! Each decoder takes fixed-size arrays and is `#[inline(always)]`, so a `#[target_feature]`
//! kernel gets it compiled with its own instruction set, without length checks or dispatch.
//! [`decode_block`] is the checked, dispatching entry point.

use crate::dequant::{f16_at, f16_to_f32, u16_at, u32_at, QK, QK_K};
use crate::tables::{
    IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, IQ4NL_LEVELS,
    KSIGNS_IQ2XS,
};
use crate::{GgmlType, QuantError};

/// Scales of a 256-weight (K- or I-quant) block: one per 16 weights.
pub const QK_K_SCALES: usize = QK_K / 16;
/// Biases of a 256-weight block: one per 8 weights.
pub const QK_K_BIASES: usize = QK_K / 8;
/// Scales of a 32-weight (legacy) block: one per 16 weights.
pub const QK_SCALES: usize = QK / 16;
/// Biases of a 32-weight block: one per 8 weights.
pub const QK_BIASES: usize = QK / 8;

/// Whether [`decode_block`] (and a per-type decoder of this module) handles `ty`: the 19
/// quantized weight types of [`GgmlType::SUPPORTED`], i.e. all but F32, F16 and BF16.
pub const fn supports(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::IQ4_NL
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ2_XXS
            | GgmlType::IQ2_XS
            | GgmlType::IQ2_S
            | GgmlType::IQ3_XXS
            | GgmlType::IQ3_S
            | GgmlType::IQ1_S
            | GgmlType::IQ1_M
            | GgmlType::IQ4_XS
    )
}

/// Whether the decoder of `ty` returns `true`, i.e. writes biases: the formats with an additive
/// term (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K). `false` for every other type, supported or not (IQ1_S
/// and IQ1_M keep their delta in the quants: see [`iq1_m`]).
pub const fn has_bias(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K
    )
}

/// Spreads the 8 bits of `bits` over 8 bytes: byte k is 1 if bit k is set, else 0.
#[inline(always)]
fn bit_bytes(bits: u8) -> u64 {
    const LANES: u64 = 0x0101_0101_0101_0101;
    // Byte k keeps only bit k of its copy of `bits`.
    let picked = (bits as u64).wrapping_mul(LANES) & 0x8040_2010_0804_0201;
    // Adding 0x7f to the low 7 bits of a byte sets its top bit iff they are non-zero; no byte
    // carries into the next (0x7f + 0x7f < 0x100).
    let low7 = 0x7f * LANES;
    let nonzero = (((picked & low7) + low7) | picked) & (0x80 * LANES);
    nonzero >> 7
}

/// Applies sign byte `signs` (bit k set ⇒ element k negated) to 8 magnitudes packed one per byte.
///
/// Branch-free two's complement negation under a byte mask, `(m ^ 0xff) + 1`: no carry crosses
/// a byte because every grid magnitude is at least 1 and at most 127.
#[inline(always)]
fn signed_group(mags: u64, signs: u8) -> [i8; 8] {
    let ones = bit_bytes(signs);
    let mask = ones * 0xff;
    ((mags ^ mask) + ones).to_le_bytes().map(|x| x as i8)
}

/// Q4_0 (32 weights): `q = nibble − 8` ∈ −8..=7, `s = d`, no bias.
#[inline(always)]
pub fn q4_0(
    b: &[u8; GgmlType::Q4_0.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    _bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let x = b[2 + j];
        q[j] = (x & 15) as i8 - 8;
        q[j + 16] = (x >> 4) as i8 - 8;
    }
    *s = [d; QK_SCALES];
    false
}

/// Q4_1 (32 weights): `q = nibble` ∈ 0..=15, `s = d`, `bias = m`.
#[inline(always)]
pub fn q4_1(
    b: &[u8; GgmlType::Q4_1.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    for j in 0..16 {
        let x = b[4 + j];
        q[j] = (x & 15) as i8;
        q[j + 16] = (x >> 4) as i8;
    }
    *s = [d; QK_SCALES];
    *bias = [m; QK_BIASES];
    true
}

/// The 5-bit quants of a Q5_0/Q5_1 block minus `offset`: nibbles from `qs`, the fifth bit of
/// weight j is bit j of the little-endian u32 `qh`.
#[inline(always)]
fn q5_quants(qs: &[u8], qh: &[u8], offset: i8, q: &mut [i8; QK]) {
    // A per-byte mask test vectorizes better than shifting a u32 by 32 different amounts.
    let mut high = [0u8; QK];
    for (j, h) in high.iter_mut().enumerate() {
        *h = if qh[j / 8] & (1 << (j % 8)) != 0 {
            16
        } else {
            0
        };
    }
    for j in 0..16 {
        let x = qs[j];
        q[j] = ((x & 15) | high[j]) as i8 - offset;
        q[j + 16] = ((x >> 4) | high[j + 16]) as i8 - offset;
    }
}

/// Q5_0 (32 weights): `q = (nibble | fifth bit << 4) − 16` ∈ −16..=15, `s = d`, no bias.
#[inline(always)]
pub fn q5_0(
    b: &[u8; GgmlType::Q5_0.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    _bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    q5_quants(&b[6..22], &b[2..6], 16, q);
    *s = [d; QK_SCALES];
    false
}

/// Q5_1 (32 weights): `q = nibble | fifth bit << 4` ∈ 0..=31, `s = d`, `bias = m`.
#[inline(always)]
pub fn q5_1(
    b: &[u8; GgmlType::Q5_1.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    q5_quants(&b[8..24], &b[4..8], 0, q);
    *s = [d; QK_SCALES];
    *bias = [m; QK_BIASES];
    true
}

/// Q8_0 (32 weights): `q = qs` ∈ −128..=127 (all of i8), `s = d`, no bias.
#[inline(always)]
pub fn q8_0(
    b: &[u8; GgmlType::Q8_0.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    _bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    for (j, v) in q.iter_mut().enumerate() {
        *v = b[2 + j] as i8;
    }
    *s = [d; QK_SCALES];
    false
}

/// Replaces every nibble value n (0..=15) in `q` by `kvalues_iq4nl[n]`, branch-free: the
/// running sum `K[0] + Σ_{t=1..=15} [n ≥ t]·(K[t] − K[t−1])` of compare masks vectorizes across
/// the whole array (the partial sums rise monotonically from −127 to 113: no overflow).
#[inline(always)]
fn iq4_levels<const N: usize>(q: &mut [i8; N]) {
    const K: [i8; 16] = IQ4NL_LEVELS;
    for v in q.iter_mut() {
        let n = *v;
        let mut level = K[0];
        for t in 1..16 {
            level += if n >= t as i8 { K[t] - K[t - 1] } else { 0 };
        }
        *v = level;
    }
}

/// IQ4_NL (32 weights): `q = kvalues_iq4nl[nibble]` ∈ −127..=113, `s = d`, no bias.
#[inline(always)]
pub fn iq4_nl(
    b: &[u8; GgmlType::IQ4_NL.block_bytes()],
    q: &mut [i8; QK],
    s: &mut [f32; QK_SCALES],
    _bias: &mut [f32; QK_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let x = b[2 + j];
        q[j] = (x & 15) as i8;
        q[j + 16] = (x >> 4) as i8;
    }
    iq4_levels(q);
    *s = [d; QK_SCALES];
    false
}

/// Q2_K: `q` ∈ 0..=3, `s = d·(sc & 15)` and `bias = −dmin·(sc >> 4)` per 16 weights.
#[inline(always)]
pub fn q2_k(
    b: &[u8; GgmlType::Q2_K.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 80);
    let dmin = f16_at(b, 82);
    // Weight 128h + 32j + l is bit pair j of qs[32h + l].
    for h in 0..2 {
        for j in 0..4 {
            for l in 0..32 {
                q[128 * h + 32 * j + l] = ((b[16 + 32 * h + l] >> (2 * j)) & 3) as i8;
            }
        }
    }
    for i in 0..QK_K_SCALES {
        let sc = b[i];
        s[i] = d * (sc & 15) as f32;
        let m = -(dmin * (sc >> 4) as f32);
        bias[2 * i] = m;
        bias[2 * i + 1] = m;
    }
    true
}

/// Q3_K: `q = (q2 | hb << 2) − 4` ∈ −4..=3 (i.e. `q2 − 4·!hb`), `s = d·S` per 16 weights with
/// the signed 6-bit scale S; no bias.
#[inline(always)]
pub fn q3_k(
    b: &[u8; GgmlType::Q3_K.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 108);
    // Weight 128h + 32j + l: bit pair j of qs[32h + l], high bit (4h + j) of hmask[l].
    for h in 0..2 {
        for j in 0..4 {
            for l in 0..32 {
                let q2 = (b[32 + 32 * h + l] >> (2 * j)) & 3;
                let hb = (b[l] >> (4 * h + j)) & 1;
                q[128 * h + 32 * j + l] = (q2 | hb << 2) as i8 - 4;
            }
        }
    }
    for (i, v) in s.iter_mut().enumerate() {
        let low = if i < 8 {
            b[96 + i] & 15
        } else {
            b[96 + i - 8] >> 4
        };
        let high = (b[104 + i % 4] >> (2 * (i / 4))) & 3;
        *v = d * ((low | high << 4) as i32 - 32) as f32;
    }
    false
}

/// The 6-bit (scale, min) pair of 32-weight sub-block `j` from the 12 scale bytes of Q4_K/Q5_K
/// starting at `at`.
#[inline(always)]
fn k_pair<const B: usize>(b: &[u8; B], at: usize, j: usize) -> (u8, u8) {
    let sc = |k: usize| b[at + k];
    if j < 4 {
        (sc(j) & 63, sc(j + 4) & 63)
    } else {
        (
            (sc(j + 4) & 15) | (sc(j - 4) >> 6) << 4,
            (sc(j + 4) >> 4) | (sc(j) >> 6) << 4,
        )
    }
}

/// The scales and biases of Q4_K/Q5_K: `s = d·sc` and `bias = −dmin·m` per 32 weights.
#[inline(always)]
fn k_scales<const B: usize>(
    b: &[u8; B],
    s: &mut [f32; QK_K_SCALES],
    bias: &mut [f32; QK_K_BIASES],
) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    for j in 0..8 {
        let (sc, m) = k_pair(b, 4, j);
        let dl = d * sc as f32;
        let ml = -(dmin * m as f32);
        s[2 * j] = dl;
        s[2 * j + 1] = dl;
        bias[4 * j..4 * j + 4].copy_from_slice(&[ml; 4]);
    }
}

/// Q4_K: `q = nibble` ∈ 0..=15, `s = d·sc` and `bias = −dmin·m` per 32 weights.
#[inline(always)]
pub fn q4_k(
    b: &[u8; GgmlType::Q4_K.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    bias: &mut [f32; QK_K_BIASES],
) -> bool {
    // Byte chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high nibbles.
    for c in 0..4 {
        for l in 0..32 {
            let x = b[16 + 32 * c + l];
            q[64 * c + l] = (x & 15) as i8;
            q[64 * c + 32 + l] = (x >> 4) as i8;
        }
    }
    k_scales(b, s, bias);
    true
}

/// Q5_K: `q = nibble | fifth bit << 4` ∈ 0..=31, `s = d·sc` and `bias = −dmin·m` per 32
/// weights.
#[inline(always)]
pub fn q5_k(
    b: &[u8; GgmlType::Q5_K.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    bias: &mut [f32; QK_K_BIASES],
) -> bool {
    // As Q4_K; weight l of sub-block j takes bit j of qh[l] as its fifth bit. Two passes over
    // contiguous runs (nibbles, then fifth bits per sub-block) keep both loops vectorized.
    for c in 0..4 {
        for l in 0..32 {
            let x = b[48 + 32 * c + l];
            q[64 * c + l] = (x & 15) as i8;
            q[64 * c + 32 + l] = (x >> 4) as i8;
        }
    }
    let qh: &[u8; 32] = b[16..48].try_into().expect("32 bytes");
    for j in 0..8 {
        for l in 0..32 {
            q[32 * j + l] |= (((qh[l] >> j) & 1) << 4) as i8;
        }
    }
    k_scales(b, s, bias);
    true
}

/// Q6_K: `q = (low 4 bits | high 2 bits << 4) − 32` ∈ −32..=31, `s = d·scales[v / 16]`; no
/// bias.
#[inline(always)]
pub fn q6_k(
    b: &[u8; GgmlType::Q6_K.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 208);
    for h in 0..2 {
        for l in 0..32 {
            let lo = b[64 * h + l];
            let hi = b[64 * h + 32 + l];
            let hb = b[128 + 32 * h + l];
            let v = 128 * h + l;
            q[v] = ((lo & 15) | (hb & 3) << 4) as i8 - 32;
            q[v + 32] = ((hi & 15) | ((hb >> 2) & 3) << 4) as i8 - 32;
            q[v + 64] = ((lo >> 4) | ((hb >> 4) & 3) << 4) as i8 - 32;
            q[v + 96] = ((hi >> 4) | ((hb >> 6) & 3) << 4) as i8 - 32;
        }
    }
    for (i, v) in s.iter_mut().enumerate() {
        *v = d * (b[192 + i] as i8) as f32;
    }
    false
}

/// `d·(0.5 + nibble)·0.25` for the 16 scale nibbles of IQ2_XS/IQ2_S at `at` (low nibble first):
/// scale i covers weights 16i..16i + 16.
#[inline(always)]
fn iq2_scales<const B: usize>(b: &[u8; B], at: usize, s: &mut [f32; QK_K_SCALES]) {
    let d = f16_at(b, 0);
    for (i, v) in s.iter_mut().enumerate() {
        let nibble = (b[at + i / 2] >> (4 * (i % 2))) & 15;
        *v = d * (0.5 + nibble as f32) * 0.25;
    }
}

/// IQ2_XXS: `q = ±iq2xxs_grid` magnitude ∈ {8, 25, 43}, `s = d·(0.5 + s4)·0.25` per 32 weights;
/// no bias.
#[inline(always)]
pub fn iq2_xxs(
    b: &[u8; GgmlType::IQ2_XXS.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let signed = iq2xxs_signed();
    let (groups, _) = q.as_chunks_mut::<8>();
    for j in 0..8 {
        let a0 = u32_at(b, 2 + 8 * j);
        let a1 = u32_at(b, 6 + 8 * j);
        let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
        s[2 * j] = db;
        s[2 * j + 1] = db;
        for l in 0..4 {
            let idx = (((a0 >> (8 * l)) & 255) << 7) | ((a1 >> (7 * l)) & 127);
            groups[4 * j + l] = signed[idx as usize].to_le_bytes().map(|x| x as i8);
        }
    }
    false
}

/// Every IQ2_XXS grid point under every sign pattern, pre-applied: index `grid << 7 | signs`
/// (32768 × 8 bytes = 256 KiB, L2-resident). One load per 8 weights instead of a grid load, a
/// sign-table load and the byte-mask arithmetic — profiling showed IQ2_XXS decode-bound.
pub(crate) fn iq2xxs_signed() -> &'static [u64; 32768] {
    static TABLE: std::sync::OnceLock<Box<[u64; 32768]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u64; 32768]);
        for (g, grid) in IQ2XXS_GRID.iter().enumerate() {
            for (k, signs) in KSIGNS_IQ2XS.iter().enumerate() {
                t[(g << 7) | k] = u64::from_le_bytes(signed_group(*grid, *signs).map(|x| x as u8));
            }
        }
        t
    })
}

/// IQ2_XS: `q = ±iq2xs_grid` magnitude ∈ {8, 25, 43}, `s = d·(0.5 + s4)·0.25` per 16 weights;
/// no bias.
#[inline(always)]
pub fn iq2_xs(
    b: &[u8; GgmlType::IQ2_XS.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let (groups, _) = q.as_chunks_mut::<8>();
    for (g, out) in groups.iter_mut().enumerate() {
        let x = u16_at(b, 2 + 2 * g);
        *out = signed_group(
            IQ2XS_GRID[(x & 511) as usize],
            KSIGNS_IQ2XS[(x >> 9) as usize],
        );
    }
    iq2_scales(b, 66, s);
    false
}

/// IQ2_S: `q = ±iq2s_grid` magnitude ∈ {8, 25, 43} (explicit sign bytes), `s = d·(0.5 +
/// s4)·0.25` per 16 weights; no bias.
#[inline(always)]
pub fn iq2_s(
    b: &[u8; GgmlType::IQ2_S.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let (groups, _) = q.as_chunks_mut::<8>();
    for (g, out) in groups.iter_mut().enumerate() {
        let high = (b[66 + g / 4] >> (2 * (g % 4))) & 3;
        let index = b[2 + g] as usize | (high as usize) << 8;
        *out = signed_group(IQ2S_GRID[index], b[34 + g]);
    }
    iq2_scales(b, 74, s);
    false
}

/// IQ3_XXS: `q = ±iq3xxs_grid` magnitude ∈ {4, 12, …, 52, 62}, `s = d·(0.5 + s4)·0.5` per 32
/// weights; no bias.
#[inline(always)]
pub fn iq3_xxs(
    b: &[u8; GgmlType::IQ3_XXS.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let (groups, _) = q.as_chunks_mut::<8>();
    for j in 0..8 {
        let a = u32_at(b, 66 + 4 * j);
        let db = d * (0.5 + (a >> 28) as f32) * 0.5;
        s[2 * j] = db;
        s[2 * j + 1] = db;
        for l in 0..4 {
            let g1 = IQ3XXS_GRID[b[2 + 8 * j + 2 * l] as usize] as u64;
            let g2 = IQ3XXS_GRID[b[3 + 8 * j + 2 * l] as usize] as u64;
            let signs = KSIGNS_IQ2XS[((a >> (7 * l)) & 127) as usize];
            groups[4 * j + l] = signed_group(g1 | g2 << 32, signs);
        }
    }
    false
}

/// IQ3_S: `q = ±iq3s_grid` magnitude ∈ {1, 3, …, 15} (explicit sign bytes), `s = d·(1 + 2·s4)`
/// per 32 weights; no bias.
#[inline(always)]
pub fn iq3_s(
    b: &[u8; GgmlType::IQ3_S.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let (groups, _) = q.as_chunks_mut::<8>();
    for j in 0..8 {
        let nibble = (b[106 + j / 2] >> (4 * (j % 2))) & 15;
        let db = d * (1 + 2 * nibble as u32) as f32;
        s[2 * j] = db;
        s[2 * j + 1] = db;
        let qh = b[66 + j] as usize;
        for l in 0..4 {
            let i1 = b[2 + 8 * j + 2 * l] as usize | ((qh >> (2 * l)) & 1) << 8;
            let i2 = b[3 + 8 * j + 2 * l] as usize | ((qh >> (2 * l + 1)) & 1) << 8;
            let mags = IQ3S_GRID[i1] as u64 | (IQ3S_GRID[i2] as u64) << 32;
            groups[4 * j + l] = signed_group(mags, b[74 + 4 * j + l]);
        }
    }
    false
}

/// IQ1_S: `q = 8·g ± 1` ∈ {−9, −7, −1, 1, 7, 9} (g the iq1s_grid value ∈ {−1, 0, 1}, ±1 the
/// delta sign of its sub-block), `s = dl/8` with `dl = d·(2·s3 + 1)` per 32 weights; no bias:
/// as [`iq1_m`], `(dl/8)·(8g ± 1)` is the reference's `dl·(g ± 1/8)` bit for bit, and the
/// batched products need no bias term and no activation sums.
#[inline(always)]
pub fn iq1_s(
    b: &[u8; GgmlType::IQ1_S.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let (groups, _) = q.as_chunks_mut::<8>();
    for j in 0..8 {
        let h = u16_at(b, 34 + 2 * j);
        let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
        s[2 * j] = dl * 0.125;
        s[2 * j + 1] = dl * 0.125;
        let delta = if h & 0x8000 != 0 { -1 } else { 1 };
        for l in 0..4 {
            let index = b[2 + 4 * j + l] as usize | (((h >> (3 * l)) & 7) as usize) << 8;
            groups[4 * j + l] = IQ1S_GRID[index].map(|g| 8 * g + delta);
        }
    }
    false
}

/// IQ1_M: `q = 8·g ± 1` ∈ {−9, −7, −1, 1, 7, 9} (g the iq1s_grid value ∈ {−1, 0, 1}, ±1 the
/// delta sign of its group of 8), `s = dl/8` with `dl = d·(2·s3 + 1)` per 16 weights; no bias.
/// The delta changes every 8 weights, under the 16-weight scale, so it lives in the quants:
/// `(dl/8)·(8g ± 1)` is the reference's `dl·(g ± 1/8)` bit for bit (`dl/8` is exact, and both
/// round the same exact product), and the batched GEMMs need no per-8 bias.
#[inline(always)]
pub fn iq1_m(
    b: &[u8; GgmlType::IQ1_M.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let d = f16_to_f32(
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000),
    );
    let (groups, _) = q.as_chunks_mut::<8>();
    let with_delta = |grid: &[i8; 8], negative: bool| -> [i8; 8] {
        let delta = if negative { -1 } else { 1 };
        grid.map(|g| 8 * g + delta)
    };
    for i in 0..QK_K_SCALES {
        // Weights 16i..16i + 16: scale bits 3(i % 4).. of scales[i / 4]; groups 2i and 2i + 1
        // take the low and high nibble of qh[i] (3 index bits, then the delta sign).
        let dl = d * (2 * ((sc[i / 4] >> (3 * (i % 4))) & 7) + 1) as f32;
        s[i] = dl * 0.125;
        let n = b[32 + i];
        let lo = &IQ1S_GRID[b[2 * i] as usize | ((n & 7) as usize) << 8];
        let hi = &IQ1S_GRID[b[2 * i + 1] as usize | (((n >> 4) & 7) as usize) << 8];
        groups[2 * i] = with_delta(lo, n & 0x08 != 0);
        groups[2 * i + 1] = with_delta(hi, n & 0x80 != 0);
    }
    false
}

/// IQ4_XS: `q = kvalues_iq4nl[nibble]` ∈ −127..=113, `s = d·(ls − 32)` per 32 weights with the
/// 6-bit ls; no bias.
#[inline(always)]
pub fn iq4_xs(
    b: &[u8; GgmlType::IQ4_XS.block_bytes()],
    q: &mut [i8; QK_K],
    s: &mut [f32; QK_K_SCALES],
    _bias: &mut [f32; QK_K_BIASES],
) -> bool {
    let d = f16_at(b, 0);
    let scales_h = u16_at(b, 2);
    for j in 0..8 {
        let low = (b[4 + j / 2] >> (4 * (j % 2))) & 15;
        let high = ((scales_h >> (2 * j)) & 3) as u8;
        let dl = d * ((low | high << 4) as i32 - 32) as f32;
        s[2 * j] = dl;
        s[2 * j + 1] = dl;
    }
    // Sub-block j: bytes 16j..16j + 16 of qs, low nibbles first.
    for j in 0..8 {
        for l in 0..16 {
            let x = b[8 + 16 * j + l];
            q[32 * j + l] = (x & 15) as i8;
            q[32 * j + 16 + l] = (x >> 4) as i8;
        }
    }
    iq4_levels(q);
    false
}

/// Runs a fixed-size decoder on slices whose lengths the caller has checked; `None` if they do
/// not match after all.
#[inline(always)]
fn on_slices<const B: usize, const N: usize, const S: usize, const G: usize>(
    block: &[u8],
    q: &mut [i8],
    s: &mut [f32],
    bias: &mut [f32],
    f: impl Fn(&[u8; B], &mut [i8; N], &mut [f32; S], &mut [f32; G]) -> bool,
) -> Option<bool> {
    let (Ok(b), Ok(q), Ok(s), Ok(bias)) = (
        <&[u8; B]>::try_from(block),
        <&mut [i8; N]>::try_from(q),
        <&mut [f32; S]>::try_from(s),
        <&mut [f32; G]>::try_from(bias),
    ) else {
        return None;
    };
    Some(f(b, q, s, bias))
}

/// Decodes one block of type `ty` into quants `q` (`block_elems` of them), scales `s` (one per
/// 16 weights) and biases `bias` (one per 8 weights); returns [`has_bias`]`(ty)`, and `bias` is
/// written only when that is `true`.
///
/// A kernel that already knows its type should call the fixed-size decoder of that type
/// ([`q4_k`], ...) directly and skip the dispatch and the checks.
///
/// # Errors
/// [`QuantError::Unsupported`] unless [`supports`]`(ty)`; [`QuantError::BlockShape`] if `block`
/// or `q` has the wrong length; [`QuantError::Shape`] if `s` or `bias` has.
pub fn decode_block(
    ty: GgmlType,
    block: &[u8],
    q: &mut [i8],
    s: &mut [f32],
    bias: &mut [f32],
) -> Result<bool, QuantError> {
    if !supports(ty) {
        return Err(QuantError::Unsupported(ty));
    }
    let n = ty.block_elems();
    let shape = QuantError::BlockShape {
        ty,
        block_bytes: ty.block_bytes(),
        block_elems: n,
        got_bytes: block.len(),
        got_elems: q.len(),
    };
    if block.len() != ty.block_bytes() || q.len() != n {
        return Err(shape);
    }
    for (what, expected, actual) in [("scales", n / 16, s.len()), ("biases", n / 8, bias.len())] {
        if actual != expected {
            return Err(QuantError::Shape {
                what,
                expected,
                actual,
            });
        }
    }
    let written = match ty {
        GgmlType::Q4_0 => on_slices(block, q, s, bias, q4_0),
        GgmlType::Q4_1 => on_slices(block, q, s, bias, q4_1),
        GgmlType::Q5_0 => on_slices(block, q, s, bias, q5_0),
        GgmlType::Q5_1 => on_slices(block, q, s, bias, q5_1),
        GgmlType::Q8_0 => on_slices(block, q, s, bias, q8_0),
        GgmlType::IQ4_NL => on_slices(block, q, s, bias, iq4_nl),
        GgmlType::Q2_K => on_slices(block, q, s, bias, q2_k),
        GgmlType::Q3_K => on_slices(block, q, s, bias, q3_k),
        GgmlType::Q4_K => on_slices(block, q, s, bias, q4_k),
        GgmlType::Q5_K => on_slices(block, q, s, bias, q5_k),
        GgmlType::Q6_K => on_slices(block, q, s, bias, q6_k),
        GgmlType::IQ2_XXS => on_slices(block, q, s, bias, iq2_xxs),
        GgmlType::IQ2_XS => on_slices(block, q, s, bias, iq2_xs),
        GgmlType::IQ2_S => on_slices(block, q, s, bias, iq2_s),
        GgmlType::IQ3_XXS => on_slices(block, q, s, bias, iq3_xxs),
        GgmlType::IQ3_S => on_slices(block, q, s, bias, iq3_s),
        GgmlType::IQ1_S => on_slices(block, q, s, bias, iq1_s),
        GgmlType::IQ1_M => on_slices(block, q, s, bias, iq1_m),
        GgmlType::IQ4_XS => on_slices(block, q, s, bias, iq4_xs),
        _ => return Err(QuantError::Unsupported(ty)),
    };
    written.ok_or(shape)
}

#[cfg(test)]
#[path = "decode_i8_tests.rs"]
mod tests;
