//! Batched products (prefill) on AVX-512 VNNI as a register-tiled integer GEMM.
//!
//! The mat-vec kernels put 64 weights of *one* output in a vector, so every scale group costs
//! float work per token. Here a vector holds *16 tokens* of one output row: `vpdpbusd` takes a
//! 4-byte weight slice broadcast from memory against the 16 tokens' 4 activation bytes, and
//! the rows of a tile share each activation load. The integer sums of a scale group (16 or 32
//! weights) get one conversion and one FMA per row for all 16 tokens.
//!
//! - Activations ([`Panel`]): up to 16 tokens, quantized to int8 per 32 values (scale
//!   `max|x|/127`, stored as `x + 128` because VNNI's first operand is unsigned), laid out
//!   `[k/4][token][4]`; with the per-32 scales and, for formats with an additive term, the
//!   sums of each scale group's quantized values (`d·Σq`, see below).
//! - Weights ([`RowTile`]): up to 4 rows decoded once (whole rows, L1-sized) to int8 by the
//!   `decode_i8` decoders, with each group's f32 scale, bias and `−128·Σq` (the offset of the
//!   unsigned activations, the accumulator's starting value).
//!
//! Error: that of the per-32 int8 activation grid (|Δ| ≤ Σ|w|·d/2 per group, see `q8.rs`),
//! the bias part included: each group's sum is taken over the quantized values, so a row's
//! product is exactly `w · x̂` (why, in `q8.rs`); f32 rounding otherwise.

#![cfg(target_arch = "x86_64")]

use crate::decode_i8 as di8;
use crate::dequant::f16_at;
use crate::simd512::{Iq2sRegs, Iq2xsRegs, Iq3sRegs, IqBlock, IqRegs};

/// The shuffle tables of the formats with vectorized row decoders, loaded once per task.
// One lives on the stack per task; boxing would add an indirection to every table access.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Regs {
    Iq(IqRegs),
    Iq3s(Iq3sRegs),
    Iq2xs(Iq2xsRegs),
    Iq2s(Iq2sRegs),
    None,
}
use crate::rows_out::RowsOut;
use crate::simd_mem::{load128, load512, store256, store512};
use crate::GgmlType;
use std::arch::x86_64::*;

/// Tokens per panel: the 16 i32 lanes of a vector.
pub(crate) const PANEL: usize = 16;
/// Rows per register tile.
pub(crate) const TILE: usize = 4;
/// Rows a [`RowTile`] holds: the AVX-512 GEMM decodes this many at once and runs their
/// register tiles side by side over each k-block (see [`tile_rows`]).
pub(crate) const SLOTS: usize = 16;
/// Weights per k-block: a panel's 16 tokens × 512 bytes and the slots' 16 × 512 decoded
/// weights (8 KiB each) stay in L1 while every register tile of the slots runs over them.
pub(crate) const K_BLOCK: usize = 512;

/// Scale-group size of `ty` in this GEMM, or `None` where it is not an integer-path format.
/// IQ1_M's per-8 delta is in its quants (`decode_i8::iq1_m`), so its groups are its
/// 16-weight scales.
pub(crate) fn group_size(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::Q4_0
        | GgmlType::Q4_1
        | GgmlType::Q5_0
        | GgmlType::Q5_1
        | GgmlType::Q8_0
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::IQ2_XXS
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ1_S
        | GgmlType::IQ4_NL
        | GgmlType::IQ4_XS => Some(32),
        GgmlType::Q2_K
        | GgmlType::Q3_K
        | GgmlType::Q6_K
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ1_M => Some(16),
        _ => None,
    }
}

/// Up to [`PANEL`] tokens' activations, quantized and packed (see the module docs).
pub(crate) struct Panel {
    /// `[k/4][token][4]` bytes of `q + 128`.
    pub(crate) xu: Vec<u8>,
    /// `[k/32][token]` activation scales (0 for padding tokens).
    pub(crate) xd: Vec<f32>,
    /// `[k/group][token]` sums of each scale group's quantized values, `d·Σq` (empty unless the
    /// format has biases).
    pub(crate) xsum: Vec<f32>,
    /// Real tokens in this panel.
    pub(crate) n: usize,
}

/// `round(v·id)` clamped to ±127 (half away from zero), as `q8.rs` rounds and as
/// [`Panel::new`] does in vectors (the tests' reference).
#[cfg(test)]
pub(crate) fn round_q(v: f32, id: f32) -> i32 {
    let h = if v >= 0.0 { 0.5 } else { -0.5 };
    ((v * id + h) as i32).clamp(-127, 127)
}

impl Panel {
    /// Packs `xs` (`n ≤ 16` rows of `cols`, cols a multiple of 32).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(crate) fn new(xs: &[f32], cols: usize, group: usize, sums: bool) -> Self {
        let n = xs.len() / cols;
        debug_assert!(n <= PANEL && cols.is_multiple_of(32));
        let mut p = Panel {
            xu: vec![128; cols * PANEL],
            xd: vec![0.0; cols / 32 * PANEL],
            xsum: if sums {
                vec![0.0; cols / group * PANEL]
            } else {
                Vec::new()
            },
            n,
        };
        let half = _mm512_set1_ps(0.5);
        let sign = _mm512_set1_epi32(i32::MIN);
        let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
        let (xu, _) = p.xu.as_chunks_mut::<4>();
        for (t, x) in xs.chunks_exact(cols).enumerate() {
            let (groups, _) = x.as_chunks::<32>();
            for (j, g) in groups.iter().enumerate() {
                let (a, b) = (floats(&g[..16]), floats(&g[16..]));
                let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
                let d = amax / 127.0;
                p.xd[j * PANEL + t] = d;
                let id = _mm512_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
                // round(v·id) half away from zero, as `round_q`, then + 128 as a byte.
                let quant = |v: __m512| {
                    let h = _mm512_castsi512_ps(_mm512_or_si512(
                        _mm512_castps_si512(half),
                        _mm512_and_si512(_mm512_castps_si512(v), sign),
                    ));
                    let q = _mm512_cvttps_epi32(_mm512_fmadd_ps(v, id, h));
                    let q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
                    _mm512_add_epi32(q, _mm512_set1_epi32(128))
                };
                let (qa, qb) = (quant(a), quant(b));
                let mut bytes = [0u8; 32];
                store16_u8(&mut bytes, qa, qb);
                for (i, quad) in bytes.as_chunks::<4>().0.iter().enumerate() {
                    xu[(8 * j + i) * PANEL + t] = *quad;
                }
                if sums {
                    // The sums of the quantized values (each stored + 128), as the products
                    // see them: see the module docs.
                    let (sa, sb) = (
                        _mm512_reduce_add_epi32(qa) - 16 * 128,
                        _mm512_reduce_add_epi32(qb) - 16 * 128,
                    );
                    if group == 32 {
                        p.xsum[j * PANEL + t] = d * (sa + sb) as f32;
                    } else {
                        p.xsum[2 * j * PANEL + t] = d * sa as f32;
                        p.xsum[(2 * j + 1) * PANEL + t] = d * sb as f32;
                    }
                }
            }
        }
        p
    }
}

/// The low bytes of 32 i32 lanes (values 0..=255) into `out`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store16_u8(out: &mut [u8; 32], a: __m512i, b: __m512i) {
    let lo = _mm512_cvtepi32_epi8(a);
    let hi = _mm512_cvtepi32_epi8(b);
    let both = _mm256_set_m128i(hi, lo);
    store256(out, both)
}

/// 16 floats of a slice exactly that long.
#[inline]
#[target_feature(enable = "avx512f")]
fn floats(v: &[f32]) -> __m512 {
    let v: &[f32; 16] = v.try_into().expect("16 floats");
    _mm512_castsi512_ps(load512(v))
}

/// A slice of exactly 8 lanes as an array.
#[inline(always)]
fn lanes8<T>(o: &mut [T]) -> &mut [T; 8] {
    o.try_into().expect("8 lanes")
}

/// 16 floats into an array.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_f32(o: &mut [f32; 16], v: __m512) {
    store512(o, _mm512_castps_si512(v))
}

/// 16 floats from an array.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_f32(v: &[f32; 16]) -> __m512 {
    _mm512_castsi512_ps(load512(v))
}

/// 8 floats into a slice of exactly 8.
#[inline]
#[target_feature(enable = "avx512f")]
fn store8_f32(o: &mut [f32], v: __m256) {
    store256(lanes8(o), _mm256_castps_si256(v))
}

/// A tile of decoded weight rows: int8 quants and, per scale group, the f32 scale, the f32
/// bias and the accumulator start `−128·Σq`.
pub(crate) struct RowTile {
    q: Vec<i8>,
    /// `q` as little-endian 4-byte words, the broadcast operand of `vpdpbusd`.
    pub(crate) words: Vec<i32>,
    pub(crate) scale: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) start: Vec<i32>,
    pub(crate) has_bias: bool,
    pub(crate) cols: usize,
    pub(crate) group: usize,
}

impl RowTile {
    pub(crate) fn new(ty: GgmlType, cols: usize) -> Option<Self> {
        let group = group_size(ty)?;
        let groups = cols / group * SLOTS;
        Some(RowTile {
            // One row of scratch for the generic decoder.
            q: vec![0; cols],
            words: vec![0; cols / 4 * SLOTS],
            scale: vec![0.0; groups],
            bias: vec![0.0; groups],
            start: vec![0; groups],
            has_bias: di8::has_bias(ty),
            cols,
            group,
        })
    }

    /// Decodes `rows` (at most [`SLOTS`] rows of `row_bytes`) into slots 0.. of the tile.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,f16c,bmi2")]
    pub(crate) fn decode(&mut self, ty: GgmlType, rows: &[u8], row_bytes: usize, regs: &Regs) {
        use crate::simd512::{
            decode_iq2s, decode_iq2xs, decode_iq2xxs, decode_iq3s, decode_iq3xxs,
        };
        let fast = self.cols.is_multiple_of(256);
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            match (ty, regs) {
                (GgmlType::IQ2_XXS, Regs::Iq(g)) => {
                    self.iq_row(r, row, |b| (decode_iq2xxs(g, b), f16_at(b, 0) * 0.125))
                }
                (GgmlType::IQ3_XXS, Regs::Iq(g)) => {
                    self.iq_row(r, row, |b| (decode_iq3xxs(g, b), f16_at(b, 0) * 0.25))
                }
                (GgmlType::IQ3_S, Regs::Iq3s(g)) => {
                    self.iq_row(r, row, |b| (decode_iq3s(g, b), f16_at(b, 0)))
                }
                (GgmlType::IQ2_XS, Regs::Iq2xs(g)) => {
                    self.iq_row(r, row, |b| (decode_iq2xs(g, b), f16_at(b, 0) * 0.125))
                }
                (GgmlType::IQ2_S, Regs::Iq2s(g)) => {
                    self.iq_row(r, row, |b| (decode_iq2s(g, b), f16_at(b, 0) * 0.125))
                }
                (GgmlType::Q8_0, _) if fast => self.q8_0_row(r, row),
                (GgmlType::Q4_K, _) => self.q4k_row(r, row),
                (GgmlType::Q5_K, _) => self.q5k_row(r, row),
                (GgmlType::Q6_K, _) => self.q6k_row(r, row),
                // The AVX2 decoders (IQ1_S, IQ4_XS; the same tile layout) before the scalar
                // ones: IQ1_S's prefill on AVX-512 was slower than on AVX2 alone.
                _ if crate::gemm256_rows::vectorized(ty) => self.decode_row_avx2(ty, r, row),
                _ => self.generic_row(ty, r, row),
            }
        }
    }

    /// Stores 256 decoded weights (4 vectors) of row slot `r` at weight `k0`, with the eight
    /// per-32 accumulator starts.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn put256(&mut self, r: usize, k0: usize, w: &[__m512i; 4]) {
        let at = (r * self.cols + k0) / 4;
        let (dst, _) = self.words[at..at + 64].as_chunks_mut::<16>();
        for (d, v) in dst.iter_mut().zip(w) {
            store512(d, *v);
        }
        let g0 = r * (self.cols / 32) + k0 / 32;
        let start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<7>(sums32(w)));
        store256(lanes8(&mut self.start[g0..g0 + 8]), start);
    }

    /// [`put256`](Self::put256) for tiles of per-16 groups: the words and the sixteen per-16
    /// accumulator starts; returns the index of the first of the sixteen groups.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn put256_by16(&mut self, r: usize, k0: usize, w: &[__m512i; 4]) -> usize {
        let at = (r * self.cols + k0) / 4;
        let (dst, _) = self.words[at..at + 64].as_chunks_mut::<16>();
        for (d, v) in dst.iter_mut().zip(w) {
            store512(d, *v);
        }
        let g0 = r * (self.cols / 16) + k0 / 16;
        let start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<7>(sums16(w)));
        store512(
            &mut self.start[g0..g0 + 16].as_chunks_mut::<16>().0[0],
            start,
        );
        g0
    }

    /// A row of a shuffle-lookup IQ format: `decode` gives each block's vectors and the factor
    /// of its scales `2·s + 1` (IQ2: `d/8`, IQ3_XXS: `d/4`, IQ3_S: `d` — the reference's
    /// `d·(0.5 + s)·0.25`, `·0.5`, `d·(1 + 2s)` with the same single rounding). The scales
    /// cover 32 weights (`sub_scales`) or, where the tile's group is 16, 16 (`scales16`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,f16c,bmi2")]
    fn iq_row<const B: usize>(
        &mut self,
        r: usize,
        row: &[u8],
        decode: impl Fn(&[u8; B]) -> (IqBlock, f32),
    ) {
        let zero = _mm512_setzero_si512();
        let (blocks, _) = row.as_chunks::<B>();
        for (bi, b) in blocks.iter().enumerate() {
            let (blk, d) = decode(b);
            let w: [__m512i; 4] = std::array::from_fn(|g| {
                _mm512_mask_sub_epi8(blk.grid[g], blk.neg[g], zero, blk.grid[g])
            });
            if self.group == 32 {
                self.put256(r, 256 * bi, &w);
                let odd = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(blk.sub_scales));
                let g0 = r * (self.cols / 32) + 8 * bi;
                let scales = _mm256_mul_ps(odd, _mm256_set1_ps(d));
                store256(
                    lanes8(&mut self.scale[g0..g0 + 8]),
                    _mm256_castps_si256(scales),
                );
            } else {
                let g0 = self.put256_by16(r, 256 * bi, &w);
                let wide = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(blk.scales16));
                let scales = _mm512_mul_ps(_mm512_cvtepi32_ps(wide), _mm512_set1_ps(d));
                store_f32(
                    &mut self.scale[g0..g0 + 16].as_chunks_mut::<16>().0[0],
                    scales,
                );
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    fn q8_0_row(&mut self, r: usize, row: &[u8]) {
        let (blocks, _) = row.as_chunks::<34>();
        let (supers, _) = blocks.as_chunks::<8>();
        for (si, sb) in supers.iter().enumerate() {
            let qs = |i: usize| &sb[i][2..].as_chunks::<32>().0[0];
            let w: [__m512i; 4] =
                std::array::from_fn(|g| crate::simd512::load32_pair(qs(2 * g), qs(2 * g + 1)));
            self.put256(r, 256 * si, &w);
            let g0 = r * (self.cols / 32) + 8 * si;
            let halves: [u16; 8] =
                std::array::from_fn(|j| u16::from_le_bytes([sb[j][0], sb[j][1]]));
            store8_f32(
                &mut self.scale[g0..g0 + 8],
                _mm256_cvtph_ps(load128(&halves)),
            );
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn q4k_row(&mut self, r: usize, row: &[u8]) {
        let nib = _mm256_set1_epi8(15);
        let (blocks, _) = row.as_chunks::<144>();
        for (bi, b) in blocks.iter().enumerate() {
            let (qs, _) = b[16..144].as_chunks::<32>();
            let w: [__m512i; 4] = std::array::from_fn(|k| {
                let v = crate::simd_mem::load256(&qs[k]);
                let lo = _mm256_and_si256(v, nib);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib);
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            });
            self.put256(r, 256 * bi, &w);
            self.k_scales(r, bi, b);
        }
    }

    /// Q5_K: Q4_K's nibbles with the fifth bit of sub-block j at bit j of each `qh` byte; the
    /// same 6-bit scales and minimums.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn q5k_row(&mut self, r: usize, row: &[u8]) {
        let nib = _mm256_set1_epi8(15);
        let one = _mm256_set1_epi8(1);
        let (blocks, _) = row.as_chunks::<176>();
        for (bi, b) in blocks.iter().enumerate() {
            let qh = crate::simd_mem::load256(&b[16..48].as_chunks::<32>().0[0]);
            let fifth = |j: i32| {
                let bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), one);
                _mm256_slli_epi16::<4>(bit)
            };
            let (qs, _) = b[48..176].as_chunks::<32>();
            let w: [__m512i; 4] = std::array::from_fn(|k| {
                let v = crate::simd_mem::load256(&qs[k]);
                let lo = _mm256_or_si256(_mm256_and_si256(v, nib), fifth(2 * k as i32));
                let hi = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib),
                    fifth(2 * k as i32 + 1),
                );
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            });
            self.put256(r, 256 * bi, &w);
            self.k_scales(r, bi, b);
        }
    }

    /// The eight per-32 scales `d·sc` and biases `−dmin·m` of a Q4_K / Q5_K block (`d`,
    /// `dmin`, then the 12 packed 6-bit scale and minimum bytes).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn k_scales<const B: usize>(&mut self, r: usize, bi: usize, b: &[u8; B]) {
        let (sc, mn) = crate::simd_lowbit::k_scales_mins(&b[4..16]);
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let g0 = r * (self.cols / 32) + 8 * bi;
        let widen = |v: [u8; 8]| {
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi64x(
                0,
                i64::from_le_bytes(v),
            )))
        };
        let scales = _mm256_mul_ps(_mm256_set1_ps(d), widen(sc));
        let biases = _mm256_mul_ps(_mm256_set1_ps(-dmin), widen(mn));
        store256(
            lanes8(&mut self.scale[g0..g0 + 8]),
            _mm256_castps_si256(scales),
        );
        store256(
            lanes8(&mut self.bias[g0..g0 + 8]),
            _mm256_castps_si256(biases),
        );
    }

    /// Q6_K (per-16 scale groups): per 128 weights, low nibbles of `ql` and two bits of `qh`
    /// at shifts 0, 2, 4, 6 make weights 0–31, 32–63, 64–95, 96–127; `q − 32` signed.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn q6k_row(&mut self, r: usize, row: &[u8]) {
        use crate::simd_mem::load256;
        let nib = _mm256_set1_epi8(15);
        let three = _mm256_set1_epi8(3);
        let bias = _mm512_set1_epi8(32);
        let (blocks, _) = row.as_chunks::<210>();
        for (bi, b) in blocks.iter().enumerate() {
            let (ql, _) = b[..128].as_chunks::<32>();
            let (qh, _) = b[128..192].as_chunks::<32>();
            let w: [__m512i; 4] = std::array::from_fn(|k| {
                let (n, upper) = (k / 2, k % 2 == 1);
                let (lo, hi) = (load256(&ql[2 * n]), load256(&ql[2 * n + 1]));
                let (lo, hi) = if upper {
                    (_mm256_srli_epi16::<4>(lo), _mm256_srli_epi16::<4>(hi))
                } else {
                    (lo, hi)
                };
                let h = load256(&qh[n]);
                let h = if upper { _mm256_srli_epi16::<4>(h) } else { h };
                let top = |v: __m256i| _mm256_slli_epi16::<4>(_mm256_and_si256(v, three));
                let a = _mm256_or_si256(_mm256_and_si256(lo, nib), top(h));
                let c = _mm256_or_si256(_mm256_and_si256(hi, nib), top(_mm256_srli_epi16::<2>(h)));
                let q = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), c);
                _mm512_sub_epi8(q, bias)
            });
            let g0 = self.put256_by16(r, 256 * bi, &w);
            let sc = _mm512_cvtepi8_epi32(load128(&b[192..208].as_chunks::<16>().0[0]));
            let scales = _mm512_mul_ps(_mm512_cvtepi32_ps(sc), _mm512_set1_ps(f16_at(b, 208)));
            store_f32(
                &mut self.scale[g0..g0 + 16].as_chunks_mut::<16>().0[0],
                scales,
            );
        }
    }

    /// Any format through the checked `decode_i8` decoders.
    pub(crate) fn generic_row(&mut self, ty: GgmlType, r: usize, row: &[u8]) {
        self.generic_blocks(ty, r, row, 0);
    }

    /// [`generic_row`](Self::generic_row) from block `from` of the row on (the blocks before
    /// it already decoded by a vector decoder).
    pub(crate) fn generic_blocks(&mut self, ty: GgmlType, r: usize, row: &[u8], from: usize) {
        let be = ty.block_elems();
        let mut s = vec![0f32; be / 16];
        let mut bias = vec![0f32; be / 8];
        let per_row = self.cols / self.group;
        let group = self.group;
        let q = &mut self.q[..self.cols];
        let blocks = row
            .chunks_exact(ty.block_bytes())
            .zip(q.chunks_exact_mut(be))
            .enumerate()
            .skip(from);
        for (bi, (blk, qb)) in blocks {
            di8::decode_block(ty, blk, qb, &mut s, &mut bias)
                .expect("row bytes were checked by the caller");
            for (g, qg) in qb.chunks_exact(group).enumerate() {
                let at = r * per_row + bi * be / group + g;
                self.scale[at] = s[g * group / 16];
                self.bias[at] = if self.has_bias {
                    bias[g * group / 8]
                } else {
                    0.0
                };
                self.start[at] = -128 * qg.iter().map(|&v| v as i32).sum::<i32>();
            }
        }
        let words = &mut self.words[r * self.cols / 4..(r + 1) * self.cols / 4];
        let done = from * be / 4;
        for (wd, b) in words.iter_mut().zip(self.q.chunks_exact(4)).skip(done) {
            *wd = i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
        }
    }
}

/// The sum of each 32 bytes (signed) of 256 weights in four vectors: 8 sums, sub-block order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn sums32(w: &[__m512i; 4]) -> __m256i {
    let v = sums16(w);
    _mm512_castsi512_si256(pair_sums(v, v))
}

/// The sum of each 16 bytes (signed) of 256 weights in four vectors: 16 sums, group order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn sums16(w: &[__m512i; 4]) -> __m512i {
    let ones = _mm512_set1_epi8(1);
    // Per vector: 16 lanes of 4-byte sums, 4 lanes per 16-weight group; halve twice.
    let s: [__m512i; 4] =
        std::array::from_fn(|g| _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, w[g]));
    pair_sums(pair_sums(s[0], s[1]), pair_sums(s[2], s[3]))
}

/// Lane `i` ← lanes `2i` + `2i + 1` of `a ++ b`.
#[inline]
#[target_feature(enable = "avx512f")]
fn pair_sums(a: __m512i, b: __m512i) -> __m512i {
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    _mm512_add_epi32(
        _mm512_permutex2var_epi32(a, even, b),
        _mm512_permutex2var_epi32(a, odd, b),
    )
}

/// `R` decoded rows (slots `r0..r0 + R` of `tile`) × one panel over the scale groups `gs`
/// (`S` = group / 4 steps of 4 weights each), added to `f` (lane `t` of `f[r]`: token `t`,
/// row `r0 + r`).
///
/// Each row keeps two accumulator chains, even and odd steps, added at the group's end:
/// `vpdpbusd`'s latency (5 cycles on Intel) over one chain per row held four rows to a
/// step per 5 cycles, under the one-a-cycle throughput.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile_panel<const R: usize, const S: usize>(
    tile: &RowTile,
    r0: usize,
    p: &Panel,
    gs: std::ops::Range<usize>,
    f: &mut [__m512; TILE],
) {
    let (cols, group) = (tile.cols, tile.group);
    debug_assert_eq!(group, 4 * S);
    let per_row = cols / group;
    let (xu, _) = p.xu.as_chunks::<{ 4 * PANEL }>();
    let (xu, _) = xu.as_chunks::<S>();
    let (xd, _) = p.xd.as_chunks::<PANEL>();
    let (xs, _) = p.xsum.as_chunks::<PANEL>();
    let words: [&[[i32; S]]; R] = std::array::from_fn(|r| {
        let row = &tile.words[(r0 + r) * cols / 4..(r0 + r + 1) * cols / 4];
        row.as_chunks::<S>().0
    });
    let at = |r: usize, g: usize| (r0 + r) * per_row + g;
    let mut fr: [__m512; R] = std::array::from_fn(|r| f[r]);
    for g in gs {
        let mut even: [__m512i; R] =
            std::array::from_fn(|r| _mm512_set1_epi32(tile.start[at(r, g)]));
        let mut odd = [_mm512_setzero_si512(); R];
        let (xg, wg) = (&xu[g], words.map(|w| &w[g]));
        for s in (0..S).step_by(2) {
            let (x0, x1) = (
                crate::simd512::load512(&xg[s]),
                crate::simd512::load512(&xg[s + 1]),
            );
            for (a, w) in even.iter_mut().zip(wg) {
                *a = _mm512_dpbusd_epi32(*a, x0, _mm512_set1_epi32(w[s]));
            }
            for (a, w) in odd.iter_mut().zip(wg) {
                *a = _mm512_dpbusd_epi32(*a, x1, _mm512_set1_epi32(w[s + 1]));
            }
        }
        let d = load_f32(&xd[g * group / 32]);
        for (r, fr) in fr.iter_mut().enumerate() {
            let a = _mm512_add_epi32(even[r], odd[r]);
            let sc = _mm512_mul_ps(d, _mm512_set1_ps(tile.scale[at(r, g)]));
            *fr = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), sc, *fr);
        }
        if tile.has_bias {
            let sums = load_f32(&xs[g]);
            for (r, fr) in fr.iter_mut().enumerate() {
                *fr = _mm512_fmadd_ps(sums, _mm512_set1_ps(tile.bias[at(r, g)]), *fr);
            }
        }
    }
    f[..R].copy_from_slice(&fr);
}

/// [`tile_panel`] for `r` (1..=4) rows and the tile's group size.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile_panel_any(
    tile: &RowTile,
    r0: usize,
    r: usize,
    p: &Panel,
    gs: std::ops::Range<usize>,
    f: &mut [__m512; TILE],
) {
    macro_rules! by_rows {
        ($S:literal) => {
            match r {
                1 => tile_panel::<1, $S>(tile, r0, p, gs, f),
                2 => tile_panel::<2, $S>(tile, r0, p, gs, f),
                3 => tile_panel::<3, $S>(tile, r0, p, gs, f),
                _ => tile_panel::<4, $S>(tile, r0, p, gs, f),
            }
        };
    }
    if tile.group == 16 {
        by_rows!(4)
    } else {
        by_rows!(8)
    }
}

/// Rows `w` (each `row_bytes`, type `ty`, `cols` weights) × all panels into `out`'s rows
/// (as many as `w` has) of every token. `ty` must have a [`group_size`].
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,f16c,bmi2")]
pub(crate) fn rows_times_panels(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    cols: usize,
    panels: &[Panel],
    out: &mut RowsOut,
) {
    with_tile(ty, cols, |tile| {
        tile_rows(tile, ty, w, row_bytes, panels, out)
    });
}

/// Runs `f` on this thread's row tile for `ty` and `cols` (made when the last product's shape
/// differs; nothing runs for a format without a GEMM). One tile per worker thread, shared by
/// the AVX-512 and AVX2 GEMMs and kept across products of the same shape: allocating and
/// zeroing it per task (~20 KiB, a hundred thousand tasks per prefill) showed in profiles.
pub(crate) fn with_tile(ty: GgmlType, cols: usize, f: impl FnOnce(&mut RowTile)) {
    thread_local! {
        static TILE: std::cell::RefCell<Option<RowTile>> = const { std::cell::RefCell::new(None) };
    }
    TILE.with_borrow_mut(|slot| {
        let fits = slot.as_ref().is_some_and(|t| {
            t.cols == cols && Some(t.group) == group_size(ty) && t.has_bias == di8::has_bias(ty)
        });
        if !fits {
            *slot = RowTile::new(ty, cols);
        }
        if let Some(tile) = slot.as_mut() {
            f(tile);
        }
    });
}

/// [`rows_times_panels`] with a tile of the right shape.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,f16c,bmi2")]
fn tile_rows(
    tile: &mut RowTile,
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    panels: &[Panel],
    out: &mut RowsOut,
) {
    let regs = match ty {
        GgmlType::IQ2_XXS => Regs::Iq(IqRegs::iq2xxs()),
        GgmlType::IQ3_XXS => Regs::Iq(IqRegs::iq3xxs()),
        GgmlType::IQ3_S => Regs::Iq3s(Iq3sRegs::load()),
        GgmlType::IQ2_XS => Regs::Iq2xs(Iq2xsRegs::load()),
        GgmlType::IQ2_S => Regs::Iq2s(Iq2sRegs::load()),
        _ => Regs::None,
    };
    let per_row = tile.cols / tile.group;
    let block = K_BLOCK / tile.group;
    let mut res = [[0f32; PANEL]; SLOTS];
    for (s0, rows) in (0..).step_by(SLOTS).zip(w.chunks(row_bytes * SLOTS)) {
        tile.decode(ty, rows, row_bytes, &regs);
        let r_here = rows.len() / row_bytes;
        let mut t0 = 0;
        for p in panels {
            // Each k-block of the panel is loaded into L1 once for all the slots' tiles.
            let mut f = [[_mm512_setzero_ps(); TILE]; SLOTS / TILE];
            for g0 in (0..per_row).step_by(block) {
                let gs = g0..(g0 + block).min(per_row);
                for (t, ft) in f.iter_mut().enumerate().take(r_here.div_ceil(TILE)) {
                    let r0 = t * TILE;
                    tile_panel_any(tile, r0, (r_here - r0).min(TILE), p, gs.clone(), ft);
                }
            }
            for (o, v) in res.iter_mut().zip(f.iter().flatten()).take(r_here) {
                store_f32(o, *v);
            }
            out.put(s0, t0, &res, r_here, p.n);
            t0 += p.n;
        }
    }
}

#[cfg(test)]
#[path = "gemm512_tests.rs"]
pub(crate) mod tests;
