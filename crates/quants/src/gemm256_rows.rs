//! The AVX2 GEMM's weight decoders: a 256-weight block to eight vectors of signed int8 quants
//! stored straight into the [`RowTile`], with its per-group scales, biases and accumulator
//! starts — for the formats of the GLM-5.x quant mixes (Unsloth Dynamic's IQ1_S / IQ2_XS /
//! IQ2_S / IQ3_XXS experts, Q4_K–Q6_K and Q8_0 elsewhere), IQ2_XXS and IQ4_XS. Other formats take
//! `RowTile::generic_row` (the checked scalar decoders, about half the time of a 16-token
//! panel at these sizes). Each decoder yields exactly the quants `decode_i8` gives (tested).

#![cfg(target_arch = "x86_64")]

use crate::dequant::f16_at;
use crate::gemm512::RowTile;
use crate::simd::{iq4_table, nibbles32};
use crate::simd_mem::{load128, load256, store256};
use crate::tables::{IQ2S_GRID, IQ2XS_GRID, IQ3XXS_GRID};
use crate::GgmlType;
use std::arch::x86_64::*;

/// Whether [`RowTile::decode_avx2`] has a vector decoder for `ty` (else the generic one).
pub(crate) fn vectorized(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ1_S
            | GgmlType::IQ1_M
            | GgmlType::IQ2_XXS
            | GgmlType::IQ2_XS
            | GgmlType::IQ2_S
            | GgmlType::IQ3_XXS
            | GgmlType::IQ4_XS
            | GgmlType::Q8_0
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::IQ4_NL
    )
}

// The vectors built from scalars below are built in registers (`vmovq`/`vpinsrq`/
// `vinserti128`), never by storing the scalars to an array and loading it as one vector: a
// 32-byte load over four or eight smaller stores cannot take its bytes from the store buffer
// and waits for them to retire (a store-forwarding stall, some tens of cycles on Zen 3). That
// was 40 % of a 16-token IQ1_S product (`kbench 1536x2048 IQ1_S 50 16`, one thread).

/// Four 8-byte groups `g(0..4)` as one vector (group 0 in the low bytes). A closure, not an
/// array: `array::map` went uninlined (a call per block, its result through the stack).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn groups4(g: impl Fn(usize) -> u64) -> __m256i {
    _mm256_set_epi64x(g(3) as i64, g(2) as i64, g(1) as i64, g(0) as i64)
}

/// Eight 4-byte groups `m(0..8)` as one vector (group 0 in the low bytes).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn words8(m: impl Fn(usize) -> u32) -> __m256i {
    let m = |l: usize| m(l) as i32;
    _mm256_set_epi32(m(7), m(6), m(5), m(4), m(3), m(2), m(1), m(0))
}

/// Eight floats `f(k)`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn floats(f: impl Fn(usize) -> f32) -> __m256 {
    let v: [f32; 8] = std::array::from_fn(f);
    _mm256_setr_ps(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
}

impl RowTile {
    /// Decodes `rows` (at most `SLOTS` rows of `row_bytes`) into slots 0.. of the tile.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn decode_avx2(&mut self, ty: GgmlType, rows: &[u8], row_bytes: usize) {
        for (r, row) in rows.chunks_exact(row_bytes).enumerate() {
            self.decode_row_avx2(ty, r, row);
        }
    }

    /// Decodes one row into slot `r` (also the AVX-512 GEMM's decoder for the formats it has
    /// no vector decoder of its own for, IQ1_S and IQ4_XS: the tile layouts are the same).
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn decode_row_avx2(&mut self, ty: GgmlType, r: usize, row: &[u8]) {
        {
            match ty {
                GgmlType::Q4_K => self.blocks::<144>(r, row, |b| q4k(b)),
                GgmlType::Q5_K => self.blocks::<176>(r, row, |b| q5k(b)),
                GgmlType::Q6_K => self.blocks::<210>(r, row, |b| q6k(b)),
                GgmlType::IQ1_S => self.blocks::<50>(r, row, |b| iq1s(b)),
                GgmlType::IQ1_M => self.blocks::<56>(r, row, |b| iq1m(b)),
                GgmlType::IQ2_XXS => self.blocks::<66>(r, row, |b| iq2xxs(b)),
                GgmlType::IQ2_XS => self.blocks::<74>(r, row, |b| iq2xs(b)),
                GgmlType::IQ2_S => self.blocks::<82>(r, row, |b| iq2s(b)),
                GgmlType::IQ3_XXS => self.blocks::<98>(r, row, |b| iq3xxs(b)),
                GgmlType::IQ4_XS => self.blocks::<136>(r, row, |b| iq4xs(b)),
                // Eight 32-weight blocks a unit; a row's last 1–7 blocks (SmolLM2's 576-wide
                // rows) through the scalar decoder.
                GgmlType::Q8_0 => self.units32::<272, 34>(ty, r, row, |b| q8_0(b)),
                GgmlType::Q4_0 => self.units32::<144, 18>(ty, r, row, |b| q4_0(b)),
                GgmlType::Q4_1 => self.units32::<160, 20>(ty, r, row, |b| q4_1(b)),
                GgmlType::IQ4_NL => self.units32::<144, 18>(ty, r, row, |b| iq4nl(b)),
                _ => self.generic_row(ty, r, row),
            }
        }
    }

    /// A row of a 32-weight format: whole units of eight blocks (`U` bytes) through `decode`,
    /// the rest (blocks of `B` bytes) through the scalar decoder.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn units32<const U: usize, const B: usize>(
        &mut self,
        ty: GgmlType,
        r: usize,
        row: &[u8],
        decode: impl Fn(&[u8; U]) -> Block,
    ) {
        let (units, _) = row.as_chunks::<U>();
        for (ui, u) in units.iter().enumerate() {
            self.put(r, 256 * ui, &decode(u));
        }
        if units.len() * 8 < row.len() / B {
            self.generic_blocks(ty, r, row, units.len() * 8);
        }
    }

    /// Every 256-weight block of row slot `r` through `decode`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn blocks<const B: usize>(&mut self, r: usize, row: &[u8], decode: impl Fn(&[u8; B]) -> Block) {
        let (blocks, _) = row.as_chunks::<B>();
        for (bi, b) in blocks.iter().enumerate() {
            self.put(r, 256 * bi, &decode(b));
        }
    }

    /// Stores a decoded block at weight `k0` of row slot `r`: the quants as words, and per
    /// group (the tile's 16 or 32) the scale, the bias and the start `−128·Σq`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn put(&mut self, r: usize, k0: usize, blk: &Block) {
        let at = (r * self.cols + k0) / 4;
        let (dst, _) = self.words[at..at + 64].as_chunks_mut::<8>();
        for (d, v) in dst.iter_mut().zip(&blk.w) {
            store256(d, *v);
        }
        // Per vector, the i32 sums of its two 16-byte halves (lanes 0–3 and 4–7) …
        let (ones8, ones16) = (_mm256_set1_epi8(1), _mm256_set1_epi16(1));
        let s: [__m256i; 8] = std::array::from_fn(|k| {
            _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, blk.w[k]), ones16)
        });
        // … folded to [v0 lo, v1 lo, v2 lo, v3 lo | v0 hi, …, v3 hi] and the same of v4–v7.
        let quad = |a: usize| {
            _mm256_hadd_epi32(
                _mm256_hadd_epi32(s[a], s[a + 1]),
                _mm256_hadd_epi32(s[a + 2], s[a + 3]),
            )
        };
        let (h0, h1) = (quad(0), quad(4));
        let (lo, hi) = (
            _mm256_permute2x128_si256::<0x20>(h0, h1),
            _mm256_permute2x128_si256::<0x31>(h0, h1),
        );
        let start =
            |v: __m256i| _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<7>(v));
        let store8 = |o: &mut [i32], v: __m256i| {
            let o: &mut [i32; 8] = o.try_into().expect("8 lanes");
            store256(o, v)
        };
        let store8f = |o: &mut [f32], v: __m256| {
            let o: &mut [f32; 8] = o.try_into().expect("8 lanes");
            store256(o, _mm256_castps_si256(v))
        };
        if self.group == 32 {
            let g0 = r * (self.cols / 32) + k0 / 32;
            store8(&mut self.start[g0..g0 + 8], start(_mm256_add_epi32(lo, hi)));
            store8f(&mut self.scale[g0..g0 + 8], blk.scale[0]);
            if self.has_bias {
                store8f(&mut self.bias[g0..g0 + 8], blk.bias);
            }
        } else {
            let g0 = r * (self.cols / 16) + k0 / 16;
            let (a, b) = (_mm256_unpacklo_epi32(lo, hi), _mm256_unpackhi_epi32(lo, hi));
            let first = _mm256_permute2x128_si256::<0x20>(a, b);
            let second = _mm256_permute2x128_si256::<0x31>(a, b);
            store8(&mut self.start[g0..g0 + 8], start(first));
            store8(&mut self.start[g0 + 8..g0 + 16], start(second));
            store8f(&mut self.scale[g0..g0 + 8], blk.scale[0]);
            store8f(&mut self.scale[g0 + 8..g0 + 16], blk.scale[1]);
        }
    }
}

/// A decoded 256-weight block: 8 × 32 signed quants, the scales (8 per-32 in `scale[0]`, or 16
/// per-16 in both) and the per-32 biases (formats with an additive term).
pub(crate) struct Block {
    w: [__m256i; 8],
    scale: [__m256; 2],
    bias: __m256,
}

/// Q4_K: 32-byte nibble runs (low nibbles weights 64k.., high 64k + 32..), 6-bit scales and
/// minimums per 32: `d·sc·q − dmin·m`.
#[target_feature(enable = "avx2,fma")]
fn q4k(b: &[u8; 144]) -> Block {
    let nib = _mm256_set1_epi8(15);
    let (qs, _) = b[16..144].as_chunks::<32>();
    let w = std::array::from_fn(|k| {
        let v = load256(&qs[k / 2]);
        let v = if k % 2 == 1 {
            _mm256_srli_epi16::<4>(v)
        } else {
            v
        };
        _mm256_and_si256(v, nib)
    });
    k_block(b, w)
}

/// Q5_K: Q4_K's nibbles with the fifth bit of sub-block j at bit j of each `qh` byte.
#[target_feature(enable = "avx2,fma")]
fn q5k(b: &[u8; 176]) -> Block {
    let nib = _mm256_set1_epi8(15);
    let one = _mm256_set1_epi8(1);
    let qh = load256(&b[16..48].as_chunks::<32>().0[0]);
    let (qs, _) = b[48..176].as_chunks::<32>();
    let w = std::array::from_fn(|k| {
        let v = load256(&qs[k / 2]);
        let v = if k % 2 == 1 {
            _mm256_srli_epi16::<4>(v)
        } else {
            v
        };
        let bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(k as i32)), one);
        _mm256_or_si256(_mm256_and_si256(v, nib), _mm256_slli_epi16::<4>(bit))
    });
    k_block(b, w)
}

/// The scales and biases of a Q4_K / Q5_K block (`d`, `dmin`, 12 packed bytes at 4).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn k_block<const B: usize>(b: &[u8; B], w: [__m256i; 8]) -> Block {
    let (sc, mn) = crate::simd_lowbit::k_scales_mins(&b[4..16]);
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scale = floats(|k| d * sc[k] as f32);
    Block {
        w,
        scale: [scale, scale],
        bias: floats(|k| -dmin * mn[k] as f32),
    }
}

/// Q6_K: per 128 weights, low nibbles of `ql` and two bits of `qh` at shifts 0, 2, 4, 6 make
/// weights 0–31, 32–63, 64–95, 96–127; `q − 32`; signed 8-bit scales per 16.
#[target_feature(enable = "avx2,fma")]
fn q6k(b: &[u8; 210]) -> Block {
    let nib = _mm256_set1_epi8(15);
    let three = _mm256_set1_epi8(3);
    let bias = _mm256_set1_epi8(32);
    let (ql, _) = b[..128].as_chunks::<32>();
    let (qh, _) = b[128..192].as_chunks::<32>();
    let w = std::array::from_fn(|k| {
        // Vector k: half n = k / 4, `ql` run 2n + k % 2, nibble and `qh` bit pair by k / 2 % 2.
        let (n, run, upper) = (k / 4, k % 2, (k / 2) % 2 == 1);
        let l = load256(&ql[2 * n + run]);
        let h = load256(&qh[n]);
        let (l, h) = if upper {
            (_mm256_srli_epi16::<4>(l), _mm256_srli_epi16::<4>(h))
        } else {
            (l, h)
        };
        let h = if run == 1 {
            _mm256_srli_epi16::<2>(h)
        } else {
            h
        };
        let top = _mm256_slli_epi16::<4>(_mm256_and_si256(h, three));
        _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l, nib), top), bias)
    });
    let d = f16_at(b, 208);
    let sc = load128(&b[192..208].as_chunks::<16>().0[0]);
    let widen = |v: __m128i| {
        _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)),
            _mm256_set1_ps(d),
        )
    };
    Block {
        w,
        scale: [widen(sc), widen(_mm_srli_si128::<8>(sc))],
        bias: _mm256_setzero_ps(),
    }
}

/// IQ1_S: per 32 weights four 11-bit grid indices, a 3-bit scale `dl = d·(2s + 1)` and a delta
/// sign; `decode_i8::iq1_s`'s form `8g ± 1` with `dl/8` (the unsigned grid holds `g + 1`:
/// `8(g + 1) − 8 ± 1`).
#[target_feature(enable = "avx2,fma")]
fn iq1s(b: &[u8; 50]) -> Block {
    let grid = crate::simd_lowbit::iq1_unsigned_grid();
    let d = f16_at(b, 0);
    let qh: [u16; 8] = std::array::from_fn(|j| u16::from_le_bytes([b[34 + 2 * j], b[35 + 2 * j]]));
    let qv = load128(&b[34..50].as_chunks::<16>().0[0]);
    let idx = crate::simd_lowbit::iq1s_indices(&b[2..34].as_chunks::<32>().0[0], qv);
    let (idx, _) = idx.as_chunks::<4>();
    let mut w = [_mm256_setzero_si256(); 8];
    for ((wj, i), h) in w.iter_mut().zip(idx).zip(qh) {
        // Each byte g + 1 ≤ 2, so the shift stays inside its byte; then −7 or −9 a byte.
        let g = _mm256_slli_epi64::<3>(groups4(|l| grid[i[l] as usize & 2047]));
        let add = _mm256_set1_epi8(if h & 0x8000 != 0 { -9 } else { -7 });
        *wj = _mm256_add_epi8(g, add);
    }
    let scale = floats(|j| d * (2 * ((qh[j] >> 12) & 7) + 1) as f32 * 0.125);
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// IQ1_M: per 8 weights an 11-bit grid index (a byte of `qs`, 3 bits of a `qh` nibble) and
/// the nibble's delta sign, per 16 a 3-bit scale; `decode_i8::iq1_m`'s form `8g ± 1` with
/// `dl/8` (the unsigned grid holds `g + 1`: `8(g + 1) − 8 ± 1`).
#[target_feature(enable = "avx2,fma")]
fn iq1m(b: &[u8; 56]) -> Block {
    let grid = crate::simd_lowbit::iq1_unsigned_grid();
    let sc: [u16; 4] = std::array::from_fn(|k| u16::from_le_bytes([b[48 + 2 * k], b[49 + 2 * k]]));
    let d = crate::dequant::f16_to_f32(
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000),
    );
    // Bytes of −7 (delta +1) and −9 (delta −1).
    let (plus, minus) = (0xf9f9_f9f9_f9f9_f9f9u64, 0xf7f7_f7f7_f7f7_f7f7u64);
    // A loop, not `array::from_fn`: its closure went uninlined.
    let mut w = [_mm256_setzero_si256(); 8];
    for (j, wj) in w.iter_mut().enumerate() {
        let n = |l: usize| (b[32 + (4 * j + l) / 2] >> (4 * (l % 2))) & 15;
        let g = groups4(|l| grid[b[4 * j + l] as usize | ((n(l) & 7) as usize) << 8]);
        let add = groups4(|l| if n(l) & 8 != 0 { minus } else { plus });
        // Each byte g + 1 ≤ 2, so the shift stays inside its byte.
        *wj = _mm256_add_epi8(_mm256_slli_epi64::<3>(g), add);
    }
    let scale = |h: usize| {
        floats(|k| {
            let i = 8 * h + k;
            d * (2 * ((sc[i / 4] >> (3 * (i % 4))) & 7) + 1) as f32 * 0.125
        })
    };
    Block {
        w,
        scale: [scale(0), scale(1)],
        bias: _mm256_setzero_ps(),
    }
}

/// IQ2_XXS: per 32 weights four grid bytes and a word of four 7-bit sign indices and a 4-bit
/// scale; the 256 KiB pre-signed table gives each 8 weights in one load.
#[target_feature(enable = "avx2,fma")]
fn iq2xxs(b: &[u8; 66]) -> Block {
    let signed = crate::decode_i8::iq2xxs_signed();
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut w = [_mm256_setzero_si256(); 8];
    for (j, wj) in w.iter_mut().enumerate() {
        let (a0, a1) = (u32_at(2 + 8 * j), u32_at(6 + 8 * j));
        *wj = groups4(|l| signed[((a0 >> (8 * l) & 255) << 7 | (a1 >> (7 * l) & 127)) as usize]);
    }
    let d = f16_at(b, 0) * 0.25;
    let scale = floats(|j| d * (0.5 + (u32_at(6 + 8 * j) >> 28) as f32));
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// The 16 per-16 scales `d·(0.5 + nibble)·0.25` of IQ2_XS / IQ2_S (nibbles at `at`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq2_scales16<const B: usize>(b: &[u8; B], at: usize) -> [__m256; 2] {
    let d = f16_at(b, 0) * 0.25;
    let s = |i: usize| d * (0.5 + ((b[at + i / 2] >> (4 * (i % 2))) & 15) as f32);
    [floats(s), floats(|i| s(i + 8))]
}

/// IQ2_XS: 16-bit codes per 8 weights (9-bit grid index, 7-bit sign index).
#[target_feature(enable = "avx2,fma")]
fn iq2xs(b: &[u8; 74]) -> Block {
    let masks = crate::simd::iq2_sign_masks();
    let (codes, _) = b[2..66].as_chunks::<8>();
    let mut w = [_mm256_setzero_si256(); 8];
    for (wj, c) in w.iter_mut().zip(codes) {
        // The four codes as an array, the lookups straight into the vector.
        let code: [u16; 4] = std::array::from_fn(|l| u16::from_le_bytes([c[2 * l], c[2 * l + 1]]));
        let mags = groups4(|l| IQ2XS_GRID[(code[l] & 511) as usize]);
        let signs = groups4(|l| masks[(code[l] >> 9) as usize] as u64);
        *wj = _mm256_sign_epi8(mags, signs);
    }
    Block {
        w,
        scale: iq2_scales16(b, 66),
        bias: _mm256_setzero_ps(),
    }
}

/// IQ2_S: 10-bit grid indices (8 bits in `qs`, 2 in `qh`) and an explicit sign byte per 8.
#[target_feature(enable = "avx2,fma")]
fn iq2s(b: &[u8; 82]) -> Block {
    let (qs, _) = b[2..34].as_chunks::<4>();
    let (signs, _) = b[34..66].as_chunks::<4>();
    let mut w = [_mm256_setzero_si256(); 8];
    for (j, (wj, (q, sg))) in w.iter_mut().zip(qs.iter().zip(signs)).enumerate() {
        let hi = b[66 + j] as usize;
        let mags = groups4(|l| IQ2S_GRID[q[l] as usize | (hi >> (2 * l) & 3) << 8]);
        *wj = crate::simd_lowbit::negate_by_sign_bytes(mags, *sg);
    }
    Block {
        w,
        scale: iq2_scales16(b, 74),
        bias: _mm256_setzero_ps(),
    }
}

/// IQ3_XXS: per 32 weights eight grid bytes (4 magnitudes each) and a word of four 7-bit sign
/// indices and a 4-bit scale `d·(0.5 + s)·0.5`.
#[target_feature(enable = "avx2,fma")]
fn iq3xxs(b: &[u8; 98]) -> Block {
    let masks = crate::simd::iq2_sign_masks();
    let aux =
        |j: usize| u32::from_le_bytes([b[66 + 4 * j], b[67 + 4 * j], b[68 + 4 * j], b[69 + 4 * j]]);
    let (qs, _) = b[2..66].as_chunks::<8>();
    let mut w = [_mm256_setzero_si256(); 8];
    for (j, (wj, q)) in w.iter_mut().zip(qs).enumerate() {
        // Eight grid words from the eight index bytes, as plain loads into one vector.
        let mags = words8(|l| IQ3XXS_GRID[q[l] as usize]);
        let a = aux(j);
        let m = |l: usize| masks[((a >> (7 * l)) & 127) as usize] as u64;
        *wj = _mm256_sign_epi8(mags, groups4(m));
    }
    let d = f16_at(b, 0) * 0.5;
    let scale = floats(|j| d * (0.5 + (aux(j) >> 28) as f32));
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// Q8_0, eight 32-weight blocks: the quants as they are, the f16 scale of each block.
#[target_feature(enable = "avx2,fma")]
fn q8_0(b: &[u8; 272]) -> Block {
    let (blocks, _) = b.as_chunks::<34>();
    let w = std::array::from_fn(|k| load256(&blocks[k][2..].as_chunks::<32>().0[0]));
    let scale = floats(|k| f16_at(&blocks[k], 0));
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// Eight Q4_0 / Q4_1 blocks (`B` bytes each, the nibbles at `at`): low nibbles weights 0–15 of
/// a block, high ones 16–31.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn nibble_blocks<const U: usize, const B: usize>(b: &[u8; U], at: usize) -> [__m256i; 8] {
    let (blocks, _) = b.as_chunks::<B>();
    std::array::from_fn(|k| nibbles32(&blocks[k][at..at + 16].as_chunks::<16>().0[0]))
}

/// Q4_0, eight blocks: `d·(n − 8)`.
#[target_feature(enable = "avx2,fma")]
fn q4_0(b: &[u8; 144]) -> Block {
    let eight = _mm256_set1_epi8(8);
    let w = nibble_blocks::<144, 18>(b, 2).map(|v| _mm256_sub_epi8(v, eight));
    let (blocks, _) = b.as_chunks::<18>();
    let scale = floats(|k| f16_at(&blocks[k], 0));
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// Q4_1, eight blocks: `d·n + m`.
#[target_feature(enable = "avx2,fma")]
fn q4_1(b: &[u8; 160]) -> Block {
    let (blocks, _) = b.as_chunks::<20>();
    let scale = floats(|k| f16_at(&blocks[k], 0));
    Block {
        w: nibble_blocks::<160, 20>(b, 4),
        scale: [scale, scale],
        bias: floats(|k| f16_at(&blocks[k], 2)),
    }
}

/// IQ4_NL, eight blocks: Q4_0's nibbles mapped to the non-linear levels by one `vpshufb`,
/// times `d`.
#[target_feature(enable = "avx2,fma")]
fn iq4nl(b: &[u8; 144]) -> Block {
    let table = iq4_table();
    let w = nibble_blocks::<144, 18>(b, 2).map(|v| _mm256_shuffle_epi8(table, v));
    let (blocks, _) = b.as_chunks::<18>();
    let scale = floats(|k| f16_at(&blocks[k], 0));
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

/// IQ4_XS: per 32 weights 16 bytes of nibbles (low nibbles first) mapped to the non-linear
/// levels by one `vpshufb`, and a 6-bit scale `d·(ls − 32)`.
#[target_feature(enable = "avx2,fma")]
fn iq4xs(b: &[u8; 136]) -> Block {
    let table = iq4_table();
    let (qs, _) = b[8..136].as_chunks::<16>();
    let w = std::array::from_fn(|j| _mm256_shuffle_epi8(table, nibbles32(&qs[j])));
    let d = f16_at(b, 0);
    let high = u16::from_le_bytes([b[2], b[3]]);
    let scale = floats(|j| {
        let low = (b[4 + j / 2] >> (4 * (j % 2))) & 15;
        let ls = low as i32 | (((high >> (2 * j)) & 3) as i32) << 4;
        d * (ls - 32) as f32
    });
    Block {
        w,
        scale: [scale, scale],
        bias: _mm256_setzero_ps(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::random_blocks;

    /// Each vector decoder fills the tile exactly as the checked scalar decoders do: the same
    /// quants and accumulator starts, the same scales and biases up to f32 rounding.
    #[test]
    fn vector_decoders_match_the_generic_rows() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: no AVX2");
            return;
        }
        let types: Vec<GgmlType> = GgmlType::SUPPORTED
            .into_iter()
            .filter(|&t| vectorized(t))
            .collect();
        assert_eq!(types.len(), 14);
        // 576: a row of seven whole units and two blocks of a 32-weight format (SmolLM2's).
        let shapes = types.iter().flat_map(|&ty| {
            let tail = ty.block_elems() == 32;
            [(ty, 1024usize)]
                .into_iter()
                .chain(tail.then_some((ty, 576)))
        });
        for (ty, cols) in shapes {
            let row_bytes = ty.row_bytes(cols).unwrap();
            let w = random_blocks(ty, 4 * cols / ty.block_elems(), 7);
            let mut fast = RowTile::new(ty, cols).unwrap();
            let mut want = RowTile::new(ty, cols).unwrap();
            // WORKAROUND: the features were detected above.
            #[allow(unsafe_code)]
            unsafe {
                fast.decode_avx2(ty, &w, row_bytes)
            };
            for (r, row) in w.chunks_exact(row_bytes).enumerate() {
                want.generic_row(ty, r, row);
            }
            assert!(fast.words == want.words, "{ty}: quants");
            assert!(fast.start == want.start, "{ty}: starts");
            let close = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs().max(1e-30))
            };
            assert!(close(&fast.scale, &want.scale), "{ty}: scales");
            assert!(close(&fast.bias, &want.bias), "{ty}: biases");
        }
    }
}
