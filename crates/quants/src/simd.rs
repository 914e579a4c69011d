//! Hand-vectorised AVX2 row dots for the formats where the portable decode-then-dot loop is
//! slow: the decoder's 8-byte stores feed 16/32-byte vector loads, which defeats store-to-load
//! forwarding (perf: IQ2_XXS ran at ~11 G weights/s on two cores). Here the decoded weights
//! never leave registers.
//!
//! Everything is safe code: value intrinsics inside `#[target_feature]` functions; callers are
//! themselves AVX2+FMA functions, entered only after runtime detection (`kernels.rs`).

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::tables::{IQ2XXS_GRID, IQ4NL_LEVELS, KSIGNS_IQ2XS};
use std::arch::x86_64::*;

use crate::simd_mem::{bytes, load128, load256};
use crate::GgmlType;

/// Integer sums of one 256-weight super-block's scaled sub-block products, split over two
/// accumulators (alternating sub-blocks) to halve the add dependency chain.
pub(crate) struct SuperBlockSums {
    s0: __m256i,
    s1: __m256i,
}

impl SuperBlockSums {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn new() -> Self {
        Self {
            s0: _mm256_setzero_si256(),
            s1: _mm256_setzero_si256(),
        }
    }

    /// Adds sub-block `j`'s i32 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn add(&mut self, j: usize, p: __m256i) {
        if j & 1 == 0 {
            self.s0 = _mm256_add_epi32(self.s0, p);
        } else {
            self.s1 = _mm256_add_epi32(self.s1, p);
        }
    }

    /// The integer sums (8 i32 lanes), for kernels that subtract an offset term first.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn total(self) -> __m256i {
        _mm256_add_epi32(self.s0, self.s1)
    }
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
    _mm_cvtss_f32(s)
}

/// Signed-weight × int8-activation products of 32 weights, summed per 4 → 8 i32 lanes
/// (lanes 0–3: weights 0–15, lanes 4–7: weights 16–31).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dot32(w: __m256i, x: __m256i) -> __m256i {
    let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    _mm256_madd_epi16(p16, _mm256_set1_epi16(1))
}

/// Sign masks for `_mm256_sign_epi8`: entry `k` holds, per byte, −1 where the IQ2 sign pattern
/// `KSIGNS_IQ2XS[k]` negates the weight and +1 elsewhere (1 KiB: L1-resident).
pub(crate) fn iq2_sign_masks() -> &'static [i64; 128] {
    static TABLE: std::sync::OnceLock<[i64; 128]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|k| {
            let signs = KSIGNS_IQ2XS[k];
            i64::from_le_bytes(std::array::from_fn(|b| {
                if signs >> b & 1 == 1 {
                    0xff
                } else {
                    1
                }
            }))
        })
    })
}

/// IQ2_XXS row · int8 activation (per-256 activation scale, like llama.cpp's q8_K): per 32
/// weights 4 grid words (2 KiB table, indexed by the code bytes) and a word of four 7-bit
/// sign indices and a 4-bit scale — the same word as IQ3_XXS's, so the signs and scales of a
/// block's eight sub-blocks come out of the same vector code
/// (`simd_lowbit::iq3xxs_signs_scales`), a block ahead, and a sub-block takes one shuffle for
/// its signs and one for its scale (the signs were computed per block before too, but read
/// back as words and spread per sub-block, the scale converted per sub-block: 11.3 → 13.3 G
/// weights/s, one Zen 3 thread at 512×14336). The masks negate the activations so the
/// unsigned grid feeds `maddubs` directly; one float FMA per 256 weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq2xxs(row: &[u8], a: &Q8Act) -> f32 {
    use crate::simd_lowbit::{controls, iq3xxs_negative, pick, sign_controls};
    let grid = &IQ2XXS_GRID;
    let pick_c = controls();
    let sign_c = sign_controls();
    let (blocks, _) = row.as_chunks::<66>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    let setup = |b: &[u8; 66]| {
        crate::simd_lowbit::iq3xxs_signs_scales(iq2xxs_words(&b[2..66].as_chunks::<64>().0[0]))
    };
    let z = _mm256_setzero_si256();
    let mut next = blocks.first().map_or((z, z), setup);
    for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
        let (signs, scales) = next;
        if let Some(nb) = blocks.get(bi + 1) {
            next = setup(nb);
        }
        let sub = |k: usize, q: &[u8; 8], x: &[i8; 32]| {
            let g = |l: usize| grid[q[l] as usize] as i64;
            let w = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let neg = iq3xxs_negative(signs, sign_c[k]);
            let xs = _mm256_sub_epi8(_mm256_xor_si256(load256(x), neg), neg);
            _mm256_madd_epi16(_mm256_maddubs_epi16(w, xs), pick(scales, pick_c[k]))
        };
        // Two sub-blocks (64 weights) a step, each into its own accumulator.
        let (pairs, _) = b[2..66].as_chunks::<16>();
        let (xs, _) = xq.as_chunks::<64>();
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        for (j, (pair, x)) in pairs.iter().zip(xs).enumerate() {
            let (words, _) = pair.as_chunks::<8>();
            let (x, _) = x.as_chunks::<32>();
            s0 = _mm256_add_epi32(s0, sub(2 * j, &words[0], &x[0]));
            s1 = _mm256_add_epi32(s1, sub(2 * j + 1, &words[1], &x[1]));
        }
        let d = crate::simd_mem::f16c_at(b, 0) * 0.125 * xd;
        let sum = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
        acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(d), acc);
    }
    hsum(acc)
}

/// The eight sub-blocks' second words (sign fields and scale) of an IQ2_XXS block, in order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq2xxs_words(codes: &[u8; 64]) -> __m256i {
    let (halves, _) = codes.as_chunks::<32>();
    let (v0, v1) = (load256(&halves[0]), load256(&halves[1]));
    // The odd words of each 128-bit lane: sub-blocks 0, 1, 4, 5 | 2, 3, 6, 7; then in order.
    let odd = _mm256_castps_si256(_mm256_shuffle_ps::<0b11_01_11_01>(
        _mm256_castsi256_ps(v0),
        _mm256_castsi256_ps(v1),
    ));
    _mm256_permute4x64_epi64::<0b11_01_10_00>(odd)
}

/// A decoded block (`q`: int8 weights, `s`: one scale per 16) against its activation slice
/// (`xq`, `xd`), accumulated into 8 f32 lanes: no horizontal reduction per group — the
/// portable loop's per-16 horizontal sums dominated the batched (prefill) products.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn block_dot(q: &[i8], s: &[f32], xq: &[i8], xd: &[f32], mut acc: __m256) -> __m256 {
    let (qc, _) = q.as_chunks::<32>();
    let (xc, _) = xq.as_chunks::<32>();
    for (c, (w, x)) in qc.iter().zip(xc).enumerate() {
        let p = dot32(load256(w), load256(x));
        let s0 = s[2 * c] * xd[2 * c];
        let s1 = s[2 * c + 1] * xd[2 * c + 1];
        let scale = _mm256_set_ps(s1, s1, s1, s1, s0, s0, s0, s0);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
    }
    acc
}

/// A decoded 256-weight block ready to meet many activations: |w| and w (the sign source) per
/// 32 weights, and the per-16 weight scales laid out as the i32 lanes of [`dot32`].
pub(crate) struct Prepared {
    absw: [__m256i; 8],
    w: [__m256i; 8],
    scale: [__m256; 8],
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn prepare_block(q: &[i8], s: &[f32]) -> Prepared {
    let (qc, _) = q.as_chunks::<32>();
    let mut p = Prepared {
        absw: [_mm256_setzero_si256(); 8],
        w: [_mm256_setzero_si256(); 8],
        scale: [_mm256_setzero_ps(); 8],
    };
    for c in 0..qc.len().min(8) {
        let w = load256(&qc[c]);
        p.w[c] = w;
        p.absw[c] = _mm256_abs_epi8(w);
        let (s0, s1) = (s[2 * c], s[2 * c + 1]);
        p.scale[c] = _mm256_set_ps(s1, s1, s1, s1, s0, s0, s0, s0);
    }
    p
}

/// One token's per-256 activation slice against a prepared block: 6 vector ops per 32 weights.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn prepared_dot(p: &Prepared, xq: &[i8], xd: f32, acc: __m256) -> __m256 {
    let (xc, _) = xq.as_chunks::<32>();
    let mut blk = _mm256_setzero_ps();
    for (c, x) in xc.iter().enumerate().take(8) {
        let p16 = _mm256_maddubs_epi16(p.absw[c], _mm256_sign_epi8(load256(x), p.w[c]));
        let p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
        blk = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), p.scale[c], blk);
    }
    _mm256_fmadd_ps(blk, _mm256_set1_ps(xd), acc)
}

/// [`prepared_dot`] for four tokens at once: each weight vector is loaded once for all four.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn prepared_dot4(p: &Prepared, xq: [&[i8]; 4], xd: [f32; 4], acc: &mut [__m256; 4]) {
    let ones = _mm256_set1_epi16(1);
    let mut blk = [_mm256_setzero_ps(); 4];
    let xc = xq.map(|x| x.as_chunks::<32>().0);
    for (c, ((absw, w), scale)) in p.absw.iter().zip(&p.w).zip(&p.scale).enumerate() {
        for (b, x) in blk.iter_mut().zip(&xc) {
            let p16 = _mm256_maddubs_epi16(*absw, _mm256_sign_epi8(load256(&x[c]), *w));
            let p32 = _mm256_madd_epi16(p16, ones);
            *b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), *scale, *b);
        }
    }
    for ((a, b), d) in acc.iter_mut().zip(blk).zip(xd) {
        *a = _mm256_fmadd_ps(b, _mm256_set1_ps(d), *a);
    }
}

pub(crate) use std::arch::x86_64::{__m256, _mm256_setzero_ps};

/// The 16 IQ4 levels in both 128-bit lanes, for `pshufb` (the IQ4 rows and the GEMM's IQ4
/// decoders).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn iq4_table() -> __m256i {
    _mm256_broadcastsi128_si256(crate::simd_mem::load128(&IQ4NL_LEVELS))
}

/// 16 packed nibble bytes → 32 unsigned weights in order (low nibbles = weights 0–15, high =
/// 16–31): the 16 bytes loaded into both 128-bit lanes at once, the high lane shifted down by 4
/// (one variable shift) and masked — two vector µops where splitting the nibbles in 128 bits
/// and joining the halves took four (IQ4_XS 19.7 → 22.3–22.9, IQ4_NL 16.6–17.5 → 18.7–19.2 G
/// weights/s on one Zen 3 thread). The mat-vec rows and the GEMM's block decoders share it.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn nibbles32(qs: &[u8; 16]) -> __m256i {
    let q = _mm256_broadcastsi128_si256(crate::simd_mem::load128(qs));
    let down = _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    _mm256_and_si256(down, _mm256_set1_epi8(15))
}

/// 16 packed nibble bytes → 32 IQ4 weights via one byte shuffle of [`nibbles32`].
#[inline]
#[target_feature(enable = "avx2,fma")]
fn iq4_weights(qs: &[u8; 16], table: __m256i) -> __m256i {
    _mm256_shuffle_epi8(table, nibbles32(qs))
}

/// IQ4_NL row (32-weight blocks) · per-256 int8 activation: the levels by one byte shuffle.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq4nl(row: &[u8], a: &Q8Act) -> f32 {
    let table = iq4_table();
    dot_blocks32::<18>(row, a, |b| {
        iq4_weights(&b[2..].as_chunks::<16>().0[0], table)
    })
}

/// A row of 32-weight blocks, each an f16 scale and then its weights (`weights` gives the 32
/// signed weights), · per-256 int8 activation: two blocks a step into two accumulators, the
/// eight block scales of a 256-weight group converted at once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_blocks32<const B: usize>(
    row: &[u8],
    a: &Q8Act,
    weights: impl Fn(&[u8; B]) -> __m256i,
) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let (blocks, _) = row.as_chunks::<B>();
    let (groups, _) = blocks.as_chunks::<8>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    for ((blocks, xq), &xd) in groups.iter().zip(xq).zip(&a.d256) {
        let dv = group_scales(blocks, xd);
        let (xs, _) = xq.as_chunks::<32>();
        let dot = |b: &[u8; B], x: &[i8; 32]| {
            let w = weights(b);
            let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(load256(x), w));
            _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones))
        };
        for k in 0..4 {
            let (i, j) = (2 * k, 2 * k + 1);
            acc0 = _mm256_fmadd_ps(dot(&blocks[i], &xs[i]), _mm256_set1_ps(dv[i]), acc0);
            acc1 = _mm256_fmadd_ps(dot(&blocks[j], &xs[j]), _mm256_set1_ps(dv[j]), acc1);
        }
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

/// The f16 scales (leading 2 bytes) of the 8 blocks that share one per-256 activation scale
/// `xd`, times `xd`, converted at once by F16C: a software conversion per 32-weight block was
/// a tenth of IQ4_NL's time.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn group_scales<const B: usize>(blocks: &[[u8; B]], xd: f32) -> [f32; 8] {
    let h: [i16; 8] = std::array::from_fn(|j| i16::from_le_bytes([blocks[j][0], blocks[j][1]]));
    let d8 = _mm256_mul_ps(_mm256_cvtph_ps(load128(&h)), _mm256_set1_ps(xd));
    let mut dv = [0f32; 8];
    crate::simd_mem::store256(&mut dv, _mm256_castps_si256(d8));
    dv
}

/// IQ4_XS row · per-256 int8 activation: `pshufb` levels, the 6-bit signed sub-block scale in
/// the widening `madd`, one float FMA per 256 weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_iq4xs(row: &[u8], a: &Q8Act) -> f32 {
    let table = iq4_table();
    let (blocks, _) = row.as_chunks::<136>();
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm256_setzero_ps();
    for ((b, xq), &xd) in blocks.iter().zip(xq).zip(&a.d256) {
        let d = crate::simd_mem::f16c_at(b, 0) * xd;
        let scales_h = u16::from_le_bytes([b[2], b[3]]);
        // Two sub-blocks a step into two accumulators (their low scale bits one byte).
        let (xs, _) = xq.as_chunks::<64>();
        let (qs, _) = b[8..].as_chunks::<32>();
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        for (k, ((q, x), &low)) in qs.iter().zip(xs).zip(&b[4..8]).enumerate() {
            let high = (scales_h >> (4 * k)) as u8;
            let (q, _) = q.as_chunks::<16>();
            let (x, _) = x.as_chunks::<32>();
            let sub = |q: &[u8; 16], x: &[i8; 32], scale: u8| {
                let w = iq4_weights(q, table);
                let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(load256(x), w));
                _mm256_madd_epi16(p16, _mm256_set1_epi16(scale as i16 - 32))
            };
            s0 = _mm256_add_epi32(s0, sub(&q[0], &x[0], (low & 15) | (high & 3) << 4));
            s1 = _mm256_add_epi32(s1, sub(&q[1], &x[1], (low >> 4) | (high >> 2 & 3) << 4));
        }
        let sum = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
        acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(d), acc);
    }
    hsum(acc)
}

/// 8 floats as one vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load8f(x: &[f32; 8]) -> __m256 {
    _mm256_castsi256_ps(load256(x))
}

/// F32 / F16 / BF16 rows · f32 x (exact mode), as the AVX-512 `rows_float`: four rows at a
/// time (eight for the 2-byte types), so each activation load (x outgrows L1 for wide rows)
/// serves four or eight FMAs — one row at a time re-read x from L2 for every row (session 23:
/// F32 3.07 → 6.20 G weights/s). F16 through F16C, BF16 by zero extension and a 16-bit shift;
/// no software prefetch (the hardware prefetchers follow the streams; asking for the lines
/// 512–2048 bytes ahead cost 10 % on Zen 3). The groups are whole (`R` a constant, the last
/// rows one at a time): a group of up to four rows with its length known only at run time
/// kept F16 and BF16 at 8.2 and 7.6 G weights/s on one Zen 3 thread (4096×14336); whole
/// groups of eight take them to 12.8 and 12.7 (of four, about 10); F32 the same either way.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn rows_float(ty: GgmlType, w: &[u8], row_bytes: usize, x: &[f32], y: &mut [f32]) {
    let group = if ty == GgmlType::F32 { 4 } else { 8 };
    let whole = (y.len() / group) * group;
    let (w_groups, w_rest) = w.split_at(whole * row_bytes);
    let (y_groups, y_rest) = y.split_at_mut(whole);
    if group == 4 {
        float_groups::<4>(ty, w_groups, row_bytes, x, y_groups);
    } else {
        float_groups::<8>(ty, w_groups, row_bytes, x, y_groups);
    }
    float_groups::<1>(ty, w_rest, row_bytes, x, y_rest);
}

/// [`rows_float`] over whole groups of `R` rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn float_groups<const R: usize>(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let width = if ty == GgmlType::F32 { 4 } else { 2 };
    let widen = |c: &[u8]| -> __m256 {
        match ty {
            GgmlType::F32 => _mm256_castsi256_ps(load256(bytes::<32>(c))),
            GgmlType::F16 => _mm256_cvtph_ps(load128(bytes::<16>(c))),
            _ => {
                let h = _mm256_cvtepu16_epi32(load128(bytes::<16>(c)));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(h))
            }
        }
    };
    let (xc, _) = x.as_chunks::<8>();
    let done = xc.len() * 8;
    let step = 8 * width;
    for (rows, ys) in w.chunks_exact(R * row_bytes).zip(y.chunks_exact_mut(R)) {
        let r: [&[u8]; R] = std::array::from_fn(|k| &rows[row_bytes * k..][..done * width]);
        let mut acc = [_mm256_setzero_ps(); R];
        for (i, xv) in xc.iter().enumerate() {
            let xv = load8f(xv);
            for (a, row) in acc.iter_mut().zip(&r) {
                *a = _mm256_fmadd_ps(widen(&row[i * step..(i + 1) * step]), xv, *a);
            }
        }
        for (k, (out, a)) in ys.iter_mut().zip(acc).enumerate() {
            let row = &rows[row_bytes * k..][..row_bytes];
            *out = hsum(a) + crate::simd_mem::float_tail(ty, row, x, done);
        }
    }
}

/// Q8_0 row · per-256 int8 activation: the weight bytes go straight into `maddubs` (no decode
/// copy), one float FMA per 32 weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q8_0(row: &[u8], a: &Q8Act) -> f32 {
    dot_blocks32::<34>(row, a, |b| load256(&b[2..].as_chunks::<32>().0[0]))
}

/// Q4_0, Q4_1, Q5_0 and Q5_1 blocks · per-16 int8 activation (`Q8Act::q`, `d16x4`, `sum32`)
/// from block `first` of the activation on: a row's last 1–3 blocks after `simd_q4`'s
/// two-block steps (the whole row where it is shorter than 128 weights). A block's 32 quants
/// unsigned (nibbles, for Q5 the fifth bit spread from `qh` by one shuffle and one compare)
/// into one `maddubs` and one widening `madd`; the activation's per-16 scales are the eight
/// lanes' float factors, one FMA with `d` per block. The offsets (`−8d`, `−16d` or `m`) meet
/// the activation's per-32 sums eight blocks at a time, their scales converted by F16C.
/// `B`: block bytes; `M`: an f16 `m` follows `d`; `H`: a 32-bit `qh` follows (Q5).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_blocks<const B: usize, const M: bool, const H: bool>(
    blocks: &[[u8; B]],
    first: usize,
    a: &Q8Act,
) -> f32 {
    let ones = _mm256_set1_epi16(1);
    // Byte i of the spread `qh` is its byte i / 8; OR-ing every bit but bit i % 8 leaves
    // all ones exactly where bit i is set.
    let spread = load256(&std::array::from_fn::<u8, 32, _>(|i| (i / 8) as u8));
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
    let fifth = _mm256_set1_epi8(16);
    let qs_at = 2 + 2 * M as usize + 4 * H as usize;
    // Q4_0's `q − 8`, Q5_0's `q − 16`: the offset in units of `d`.
    let off_d = _mm256_set1_ps(if H { -16.0 } else { -8.0 });
    let (xs, _) = a.q[32 * first..].as_chunks::<32>();
    let (ds, _) = a.d16x4[8 * first..].as_chunks::<8>();
    // Two accumulators, alternating blocks: one FMA chain a block was the limit.
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut offsets = _mm256_setzero_ps();
    let half = |b: &[u8; B], at: usize| i16::from_le_bytes([b[at], b[at + 1]]);
    let groups = blocks.chunks(8).zip(xs.chunks(8)).zip(ds.chunks(8));
    for (g, ((group, xg), dg)) in groups.enumerate() {
        let n = group.len();
        let at = first + 8 * g;
        let d8 = _mm256_cvtph_ps(load128(&std::array::from_fn::<i16, 8, _>(|j| {
            if j < n {
                half(&group[j], 0)
            } else {
                0
            }
        })));
        let s8 = load8f(&std::array::from_fn(|j| {
            if j < n {
                a.sum32[at + j]
            } else {
                0.0
            }
        }));
        let k8 = if M {
            _mm256_cvtph_ps(load128(&std::array::from_fn::<i16, 8, _>(|j| {
                if j < n {
                    half(&group[j], 2)
                } else {
                    0
                }
            })))
        } else {
            _mm256_mul_ps(d8, off_d)
        };
        offsets = _mm256_fmadd_ps(k8, s8, offsets);
        let mut dv = [0f32; 8];
        crate::simd_mem::store256(&mut dv, _mm256_castps_si256(d8));
        for (j, ((b, x), d16)) in group.iter().zip(xg).zip(dg).enumerate() {
            let mut q = nibbles32(&b[qs_at..qs_at + 16].as_chunks::<16>().0[0]);
            if H {
                let h = 2 + 2 * M as usize;
                let qh = i32::from_le_bytes([b[h], b[h + 1], b[h + 2], b[h + 3]]);
                let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
                let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi8(-1));
                q = _mm256_or_si256(q, _mm256_and_si256(set, fifth));
            }
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, load256(x)), ones);
            let scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(p), load8f(d16));
            acc[j & 1] = _mm256_fmadd_ps(scaled, _mm256_set1_ps(dv[j]), acc[j & 1]);
        }
    }
    hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), offsets))
}
