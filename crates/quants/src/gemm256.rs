//! Batched products (prefill) on AVX2: `gemm512`'s register-tiled integer GEMM for CPUs
//! without AVX-512 (most desktop Intel parts), on the same [`Panel`] and [`RowTile`] layouts.
//!
//! A vector holds 8 tokens of one output row (a 16-token panel is two halves). AVX2 has no
//! `vpdpbusd`; a 4-byte weight slice broadcast against the 8 tokens' 4 activation bytes is
//! `vpmaddubsw` (unsigned activations `x + 128` × signed weights, adjacent pairs summed to
//! i16 with saturation) and `vpmaddwd` by ones (pairs of i16 to the i32 lane). The i16 pair
//! cannot saturate when every weight satisfies |q| ≤ 64 (`2·255·64 = 32640 ≤ 32767`). The
//! formats with larger quants (Q8_0, IQ4_XS, IQ4_NL: "wide") take signed activations instead (the
//! panel byte with its top bit flipped) and the sign trick, `vpmaddubsw(|w|, sign(x, w))`,
//! `2·128·127 ≤ 32767`: one `vpabsb` per row and one `vpsignb` per product more, and no
//! `−128·Σq` start.
//!
//! Error: that of the per-32 int8 activation grid, as in `gemm512` (same panels, same sums).

#![cfg(target_arch = "x86_64")]

use crate::gemm512::{Panel, RowTile, K_BLOCK, PANEL, SLOTS, TILE};
use crate::rows_out::RowsOut;
use crate::simd_mem::{load256, store256};
use crate::GgmlType;
use std::arch::x86_64::*;

/// The largest |q| `decode_i8` gives for `ty` (tested against the decoders); `None` for the
/// formats without a GEMM here.
fn max_quant(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::Q8_0 => 128,
        GgmlType::IQ4_XS | GgmlType::IQ4_NL => 127,
        GgmlType::Q2_K => 3,
        GgmlType::Q3_K => 4,
        GgmlType::Q4_0 => 8,
        GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::IQ3_S => 15,
        GgmlType::Q5_0 => 16,
        GgmlType::Q5_1 | GgmlType::Q5_K => 31,
        GgmlType::Q6_K => 32,
        GgmlType::IQ1_S | GgmlType::IQ1_M => 9,
        GgmlType::IQ2_XXS | GgmlType::IQ2_XS | GgmlType::IQ2_S => 43,
        GgmlType::IQ3_XXS => 62,
        _ => return None,
    })
}

/// Scale-group size of `ty` here (`gemm512`'s), or `None` where neither GEMM has the format.
pub(crate) fn group_size(ty: GgmlType) -> Option<usize> {
    max_quant(ty).and(crate::gemm512::group_size(ty))
}

/// Whether `ty`'s quants need the signed-activation products (|q| > 64).
fn wide(ty: GgmlType) -> bool {
    max_quant(ty).is_some_and(|m| m > 64)
}

impl Panel {
    /// [`Panel::new`] on AVX2: the same bytes, scales and sums (`xs`: `n ≤ 16` rows of `cols`,
    /// cols a multiple of 32).
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn new_avx2(xs: &[f32], cols: usize, group: usize, sums: bool) -> Self {
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
        let half = _mm256_set1_ps(0.5);
        let sign = _mm256_set1_epi32(i32::MIN);
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
        let (xu, _) = p.xu.as_chunks_mut::<4>();
        for (t, x) in xs.chunks_exact(cols).enumerate() {
            let (groups, _) = x.as_chunks::<32>();
            for (j, g) in groups.iter().enumerate() {
                let (g8, _) = g.as_chunks::<8>();
                let v: [__m256; 4] = std::array::from_fn(|i| _mm256_castsi256_ps(load256(&g8[i])));
                let m = _mm256_max_ps(
                    _mm256_max_ps(_mm256_and_ps(v[0], abs), _mm256_and_ps(v[1], abs)),
                    _mm256_max_ps(_mm256_and_ps(v[2], abs), _mm256_and_ps(v[3], abs)),
                );
                let mut lanes = [0f32; 8];
                store256(&mut lanes, _mm256_castps_si256(m));
                let d = lanes.iter().fold(0f32, |a, &b| a.max(b)) / 127.0;
                p.xd[j * PANEL + t] = d;
                let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
                // round(v·id) half away from zero, as `gemm512::round_q`.
                let mut q = [[0i32; 8]; 4];
                for (qv, v) in q.iter_mut().zip(v) {
                    let h = _mm256_castsi256_ps(_mm256_or_si256(
                        _mm256_castps_si256(half),
                        _mm256_and_si256(_mm256_castps_si256(v), sign),
                    ));
                    let r = _mm256_cvttps_epi32(_mm256_fmadd_ps(v, id, h));
                    store256(qv, _mm256_min_epi32(_mm256_max_epi32(r, lo), hi));
                }
                let q = q.as_flattened();
                for (i, quad) in q.chunks_exact(4).enumerate() {
                    xu[(8 * j + i) * PANEL + t] = std::array::from_fn(|k| (quad[k] + 128) as u8);
                }
                if sums {
                    let (sa, sb): (i32, i32) = (q[..16].iter().sum(), q[16..].iter().sum());
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

/// 8 floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn floats8(v: &[f32; 8]) -> __m256 {
    _mm256_castsi256_ps(load256(v))
}

/// `R` decoded rows (slots `r0..r0 + R` of `tile`) × one panel over the scale groups `gs`,
/// added to `f` (`f[r][h]`: tokens `8h..8h + 8` of row `r0 + r`): its 16 tokens, or its first
/// 8 where `TWO` is false (a panel of at most 8 pays for no padding). `S` = group / 4
/// steps per scale group, a constant so that the loops unroll with the accumulators in
/// registers (an iterator over them kept them on the stack: half the speed). `K` steps'
/// `vpmaddubsw` pairs are summed in i16 before one `vpmaddwd` widens them ([`k_steps`]: as
/// many as |q| allows), which frees a multiply port: +5–10 % at 64 tokens (IQ1_S, Q4_K, Q6_K;
/// one Zen 3 thread); with the 4-row tiles that spilled it had measured nothing.
#[allow(clippy::needless_range_loop)] // indexed loops: see above
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tile_panel<const R: usize, const TWO: bool, const S: usize, const WIDE: bool, const K: usize>(
    tile: &RowTile,
    r0: usize,
    p: &Panel,
    gs: std::ops::Range<usize>,
    fio: &mut [[__m256; 2]],
) {
    let per_row = tile.cols / (4 * S);
    let ones = _mm256_set1_epi16(1);
    let flip = _mm256_set1_epi8(-128);
    let mut f: [[__m256; 2]; R] = std::array::from_fn(|r| fio[r]);
    let (xu, _) = p.xu.as_chunks::<{ 4 * PANEL }>();
    let (xu, _) = xu.as_chunks::<S>();
    let (xd, _) = p.xd.as_chunks::<PANEL>();
    let (xs, _) = p.xsum.as_chunks::<PANEL>();
    let words: [&[[i32; S]]; R] = std::array::from_fn(|r| {
        let w = &tile.words[(r0 + r) * tile.cols / 4..(r0 + r + 1) * tile.cols / 4];
        w.as_chunks::<S>().0
    });
    for g in gs {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        if !WIDE {
            for r in 0..R {
                acc[r][0] = _mm256_set1_epi32(tile.start[(r0 + r) * per_row + g]);
                acc[r][1] = acc[r][0];
            }
        }
        let xg = &xu[g];
        let wg: [&[i32; S]; R] = std::array::from_fn(|r| &words[r][g]);
        // The step count opaque to the compiler for full panels (not for the wide formats,
        // which lost 2–8 %, nor half panels, Q6_K −5 %): fully unrolled, LLVM ordered a
        // group's work by accumulator, each of the 16 activation vectors kept live across both
        // rows and spilled; as a counted loop, the steps run in order (+6–12 % at 32–64
        // tokens, +2–10 % at 16; one Zen 3 thread).
        let k_run = if WIDE || !TWO {
            K
        } else {
            std::hint::black_box(K)
        };
        for s0 in (0..S).step_by(K) {
            // Up to K steps' `vpmaddubsw` pairs summed in i16 (they cannot overflow there:
            // `k_steps`), then widened once.
            let mut h = [[_mm256_setzero_si256(); 2]; R];
            for s in s0..(s0 + k_run).min(S) {
                let (xh, _) = xg[s].as_chunks::<32>();
                let x0 = load256(&xh[0]);
                let x1 = if TWO { load256(&xh[1]) } else { x0 };
                // Wide formats: the activations signed again (q + 128 with its top bit flipped).
                let (x0, x1) = if WIDE {
                    (_mm256_xor_si256(x0, flip), _mm256_xor_si256(x1, flip))
                } else {
                    (x0, x1)
                };
                for r in 0..R {
                    let w = _mm256_set1_epi32(wg[r][s]);
                    let (a, x0, x1) = if WIDE {
                        let a = _mm256_abs_epi8(w);
                        (a, _mm256_sign_epi8(x0, w), _mm256_sign_epi8(x1, w))
                    } else {
                        (w, x0, x1)
                    };
                    // Half `$h`'s products into its i32 accumulator, or its i16 sum when
                    // K > 1 (a macro, not a loop over the halves: see above).
                    macro_rules! half {
                        ($h:literal, $x:expr) => {{
                            let p = if WIDE {
                                _mm256_maddubs_epi16(a, $x)
                            } else {
                                _mm256_maddubs_epi16($x, a)
                            };
                            if K == 1 {
                                acc[r][$h] =
                                    _mm256_add_epi32(acc[r][$h], _mm256_madd_epi16(p, ones));
                            } else {
                                h[r][$h] = _mm256_add_epi16(h[r][$h], p);
                            }
                        }};
                    }
                    half!(0, x0);
                    if TWO {
                        half!(1, x1);
                    }
                }
            }
            if K > 1 {
                for r in 0..R {
                    acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(h[r][0], ones));
                    if TWO {
                        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(h[r][1], ones));
                    }
                }
            }
        }
        let (d8, _) = xd[g * S / 8].as_chunks::<8>();
        let (d0, d1) = (floats8(&d8[0]), floats8(&d8[1]));
        for r in 0..R {
            let sc = _mm256_set1_ps(tile.scale[(r0 + r) * per_row + g]);
            let a = acc[r];
            f[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[0]), _mm256_mul_ps(d0, sc), f[r][0]);
            if TWO {
                f[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[1]), _mm256_mul_ps(d1, sc), f[r][1]);
            }
        }
        if tile.has_bias {
            let (s8, _) = xs[g].as_chunks::<8>();
            let (s0, s1) = (floats8(&s8[0]), floats8(&s8[1]));
            for r in 0..R {
                let b = _mm256_set1_ps(tile.bias[(r0 + r) * per_row + g]);
                f[r][0] = _mm256_fmadd_ps(s0, b, f[r][0]);
                if TWO {
                    f[r][1] = _mm256_fmadd_ps(s1, b, f[r][1]);
                }
            }
        }
    }
    fio[..R].copy_from_slice(&f);
}

/// [`tile_panel`] for `r` rows (slots `r0..r0 + r`), the panel's size and the tile's group.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tile_panel_any(
    tile: &RowTile,
    wide: bool,
    k: usize,
    r0: usize,
    r: usize,
    p: &Panel,
    gs: std::ops::Range<usize>,
    f: &mut [[__m256; 2]; TILE],
) {
    // A full panel's four rows as two tiles of two: four rows by 16 tokens keep 8 int and 8
    // float accumulators, all 16 AVX2 registers, and spilled (+3–7 % at 16 tokens, one Zen 3
    // thread). Not for the wide formats, whose extra sign work per row gains from 4 rows
    // sharing each activation load (Q8_0 lost 15 % split).
    // Rows r0, r0 + 1 as one tile, then the `$R` rows after them as another.
    macro_rules! two_tiles {
        ($S:literal, $W:literal, $K:literal, $R:literal) => {{
            let (a, b) = f.split_at_mut(2);
            tile_panel::<2, true, $S, $W, $K>(tile, r0, p, gs.clone(), a);
            tile_panel::<$R, true, $S, $W, $K>(tile, r0 + 2, p, gs, b)
        }};
    }
    macro_rules! by_rows {
        ($S:literal, $W:literal, $K:literal) => {
            match (r, p.n > 8) {
                (4, true) if $W => tile_panel::<4, true, $S, $W, $K>(tile, r0, p, gs, f),
                (4, true) => two_tiles!($S, $W, $K, 2),
                (4, false) => tile_panel::<4, false, $S, $W, $K>(tile, r0, p, gs, f),
                (3, _) if $W => tile_panel::<3, true, $S, $W, $K>(tile, r0, p, gs, f),
                (3, _) => two_tiles!($S, $W, $K, 1),
                (2, _) => tile_panel::<2, true, $S, $W, $K>(tile, r0, p, gs, f),
                _ => tile_panel::<1, true, $S, $W, $K>(tile, r0, p, gs, f),
            }
        };
    }
    // The wide formats (Q8_0, IQ4_XS, IQ4_NL) have per-32 groups.
    match (tile.group == 16, wide, k) {
        (true, _, 1) => by_rows!(4, false, 1),
        (true, _, 2) => by_rows!(4, false, 2),
        (true, _, _) => by_rows!(4, false, 4),
        (false, false, 1) => by_rows!(8, false, 1),
        (false, false, 2) => by_rows!(8, false, 2),
        (false, false, 4) => by_rows!(8, false, 4),
        (false, false, _) => by_rows!(8, false, 8),
        (false, true, _) => by_rows!(8, true, 1),
    }
}

/// How many steps' `vpmaddubsw` pairs (each at most `2·255·max|q|`) sum in i16 without
/// overflow: a power of two, at most a scale group's steps.
fn k_steps(ty: GgmlType) -> usize {
    let (Some(m), Some(group)) = (max_quant(ty), group_size(ty)) else {
        return 1;
    };
    if wide(ty) {
        return 1;
    }
    let fit = 32767 / (2 * 255 * m as usize);
    [8, 4, 2, 1]
        .into_iter()
        .find(|&k| k <= fit && k <= group / 4)
        .unwrap_or(1)
}

/// Rows `w` (each `row_bytes`, type `ty`, `cols` weights) × all panels into `out`'s rows
/// (as many as `w` has) of every token. `ty` must have a [`group_size`].
#[target_feature(enable = "avx2,fma")]
pub(crate) fn rows_times_panels(
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    cols: usize,
    panels: &[Panel],
    out: &mut RowsOut,
) {
    crate::gemm512::with_tile(ty, cols, |tile| {
        tile_rows(tile, ty, w, row_bytes, panels, out)
    });
}

/// [`rows_times_panels`] with a tile of the right shape.
#[target_feature(enable = "avx2,fma")]
fn tile_rows(
    tile: &mut RowTile,
    ty: GgmlType,
    w: &[u8],
    row_bytes: usize,
    panels: &[Panel],
    out: &mut RowsOut,
) {
    let wide = wide(ty);
    let k = k_steps(ty);
    debug_assert!(!wide || tile.group == 32);
    let per_row = tile.cols / tile.group;
    let block = K_BLOCK / tile.group;
    let mut res = [[0f32; PANEL]; SLOTS];
    for (s0, rows) in (0..).step_by(SLOTS).zip(w.chunks(row_bytes * SLOTS)) {
        tile.decode_avx2(ty, rows, row_bytes);
        let r_here = rows.len() / row_bytes;
        let mut t0 = 0;
        for p in panels {
            // As in `gemm512`: each k-block of the panel is loaded once for all the slots.
            let zero = _mm256_setzero_ps();
            let mut f = [[[zero; 2]; TILE]; SLOTS / TILE];
            for g0 in (0..per_row).step_by(block) {
                let gs = g0..(g0 + block).min(per_row);
                for (t, ft) in f.iter_mut().enumerate().take(r_here.div_ceil(TILE)) {
                    let r0 = t * TILE;
                    let r = (r_here - r0).min(TILE);
                    tile_panel_any(tile, wide, k, r0, r, p, gs.clone(), ft);
                }
            }
            for (o, v) in res.iter_mut().zip(f.iter().flatten()).take(r_here) {
                let (o8, _) = o.as_chunks_mut::<8>();
                store256(&mut o8[0], _mm256_castps_si256(v[0]));
                store256(&mut o8[1], _mm256_castps_si256(v[1]));
            }
            out.put(s0, t0, &res, r_here, p.n);
            t0 += p.n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_i8 as di8;
    use crate::synth::{random_blocks, random_vector};

    fn have_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// The bound that keeps `vpmaddubsw` from saturating: every format here decodes to
    /// |q| ≤ 64 (random blocks cover the full range of each field).
    #[test]
    fn decoded_quants_fit_the_i16_pairs() {
        for ty in GgmlType::SUPPORTED {
            if group_size(ty).is_none() {
                continue;
            }
            let be = ty.block_elems();
            let w = random_blocks(ty, 64, 5);
            let (mut q, mut s, mut b) = (vec![0i8; be], vec![0f32; be / 16], vec![0f32; be / 8]);
            let bound = max_quant(ty).unwrap();
            let mut seen = 0;
            for blk in w.chunks_exact(ty.block_bytes()) {
                di8::decode_block(ty, blk, &mut q, &mut s, &mut b).unwrap();
                let max = q.iter().map(|v| v.unsigned_abs() as u32).max().unwrap();
                assert!(max <= bound, "{ty}: |q| = {max}, bound {bound}");
                seen = seen.max(max);
            }
            // The bound is the format's own (reached), not a loose one; a wide format's
            // products are bounded by 2·128·127 (the activations' ±127).
            assert_eq!(seen, bound, "{ty}");
            assert!(bound <= 64 || (wide(ty) && bound <= 128 && group_size(ty) == Some(32)));
            // The i16 sums of `k_steps` steps' pairs (activations up to 255) do not overflow,
            // and the steps divide a scale group's.
            let k = k_steps(ty) as u32;
            assert!(
                wide(ty) || k * 2 * 255 * bound <= i16::MAX as u32,
                "{ty}: {k} steps"
            );
            assert!(
                (group_size(ty).unwrap() / 4).is_multiple_of(k as usize),
                "{ty}"
            );
            assert!(!wide(ty) || k == 1, "{ty}");
        }
    }

    /// Every format against its own arithmetic in f64 (as `gemm512`'s test): the decoded
    /// `scale·q` and the bias against the per-32 int8 activations the panel holds; the panel
    /// bytes equal the AVX-512 panel's where that exists.
    #[test]
    fn gemm_matches_the_decoded_products() {
        if !have_avx2() {
            eprintln!("skipped: no AVX2");
            return;
        }
        // Two and a half k-blocks, and a second row length: off the 256 grid for the
        // 32-weight formats (Q8_0's generic decoder), one and a half k-blocks for the others.
        let shapes = |ty: GgmlType| [1280usize, if ty.block_elems() == 32 { 96 } else { 768 }];
        for (ty, cols) in GgmlType::SUPPORTED
            .into_iter()
            .flat_map(|ty| shapes(ty).map(|c| (ty, c)))
        {
            let Some(group) = group_size(ty) else {
                continue;
            };
            // Two slot blocks (16 rows, then 5: tiles of 4 and 1).
            let (rows, n) = (21usize, 21usize);
            let w = random_blocks(ty, rows * cols / ty.block_elems(), 3);
            let row_bytes = ty.row_bytes(cols).unwrap();
            let xs = random_vector(n * cols, 9);
            let bias = di8::has_bias(ty);
            // WORKAROUND: the features were detected above.
            #[allow(unsafe_code)]
            let panels: Vec<Panel> = xs
                .chunks(PANEL * cols)
                .map(|c| unsafe { Panel::new_avx2(c, cols, group, bias) })
                .collect();
            if crate::simd512::available() {
                for (c, p) in xs.chunks(PANEL * cols).zip(&panels) {
                    // WORKAROUND: `available()` detected the features.
                    #[allow(unsafe_code)]
                    let q = unsafe { Panel::new(c, cols, group, bias) };
                    assert!(
                        q.xu == p.xu && q.xd == p.xd && q.xsum == p.xsum,
                        "{ty} panel"
                    );
                }
            }
            let mut ys = vec![0f32; n * rows];
            // WORKAROUND: the features were detected above.
            #[allow(unsafe_code)]
            unsafe {
                let out = &mut RowsOut::split(&mut ys, rows, rows)[0];
                rows_times_panels(ty, &w, row_bytes, cols, &panels, out)
            };
            crate::gemm512::tests::assert_matches_reference(ty, &w, rows, cols, &xs, &ys);
        }
    }
}
