//! AVX-512 kernels of the IQ formats (see `simd512.rs` for the CPU features and helpers).
//!
//! IQ2_XXS without per-weight lookups: every byte of its 256-entry grid is one of three values
//! (8, 25, 43), so an entry is 8 two-bit codes — 16 bits, split into two 256-byte tables that
//! four `vpermi2b` look up for a whole super-block at once. `vpmultishiftqb` then pulls each
//! weight's two bits into its own byte and one `vpermb` maps them to grid values. The 7-bit sign
//! fields come out of the same 64-byte load by another multishift, become 8-bit patterns through
//! the 128-entry sign table (`vpermi2b`), and `vpshufbitqmb` turns them into the 64-bit masks
//! that negate activations with one masked subtract. The 4-bit sub-block scales ride in the
//! VNNI `vpdpwssd`. About 60 vector instructions per 256 weights, against ~45 per 32 in the
//! AVX2 kernel's scalar-index loop. IQ3_XXS (3-bit codes), IQ2_XS, IQ2_S and IQ3_S (larger
//! grids: more table quarters, selected by the high index bits; explicit sign bytes are the
//! masks as they stand) work the same way. IQ1_S / IQ1_M's 2048-entry grid is too large for
//! it: their offset-grid words are fetched by scalar loads.

#![cfg(target_arch = "x86_64")]

use crate::dequant::QK_K;
use crate::q8::Q8Act;
use crate::simd512::{dpwssd, load512};
use crate::simd_mem::f16c_at;
use crate::tables::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// The grid byte of each two-bit code (code 3 never occurs).
pub(crate) const IQ2XXS_VALUES: [u8; 4] = [0x08, 0x19, 0x2b, 0];
/// The eight byte values of the IQ3_XXS grid.
const IQ3XXS_VALUES: [u8; 8] = [4, 12, 20, 28, 36, 44, 52, 62];

/// Grid lookup by shuffles, for the formats whose 256-entry grid holds only a few distinct byte
/// values (IQ2_XXS: 8 weights per entry from {8, 25, 43}; IQ3_XXS: 4 weights per entry from
/// {4, 12, …, 62}): an entry becomes a code of 2 or 3 bits per weight, looked up as two byte
/// planes by `vpermi2b`, spread to one weight per byte by `vpmultishiftqb`, mapped to its value by
/// `vpermb`.
struct GridTables {
    /// Low / high byte of each entry's code, as 4 × 64-entry quarters.
    code_lo: [[u8; 64]; 4],
    code_hi: [[u8; 64]; 4],
    /// Per 64-weight quarter `g`: the (lo, hi) code bytes of each entry to where its weights'
    /// bit fields start (qword per 8-weight entry, dword per 4-weight entry).
    arrange: [[u8; 64]; 4],
    /// Byte `b` of every qword ← the bits of its weight's code.
    code_shift: [u8; 64],
    /// Code (in the low bits of the index) → grid byte.
    values: [u8; 64],
}

impl GridTables {
    /// `entries[e]` = the grid bytes of entry `e` (little-endian), `per` weights each.
    fn new(entries: &[u64; 256], per: usize, values: &[u8]) -> Self {
        let bits = if values.len() <= 4 { 2 } else { 3 };
        let mut t = GridTables {
            code_lo: [[0; 64]; 4],
            code_hi: [[0; 64]; 4],
            arrange: [[0; 64]; 4],
            code_shift: std::array::from_fn(|i| {
                let (entry, b) = ((i % 8) / per, (i % 8) % per);
                (8 * per * entry + bits * b) as u8
            }),
            values: std::array::from_fn(|i| {
                values.get(i & ((1 << bits) - 1)).copied().unwrap_or(0)
            }),
        };
        for (e, grid) in entries.iter().enumerate() {
            let code = (0..per).fold(0u32, |c, b| {
                let v = (grid >> (8 * b)) as u8;
                let k = values
                    .iter()
                    .position(|&x| x == v)
                    .expect("grid byte in value set");
                c | (k as u32) << (bits * b)
            });
            t.code_lo[e / 64][e % 64] = code as u8;
            t.code_hi[e / 64][e % 64] = (code >> 8) as u8;
        }
        let entries_per_quarter = 64 / per;
        for g in 0..4 {
            for q in 0..entries_per_quarter {
                let pos = match per {
                    // IQ2_XXS: group q of quarter g is sub-block 2g + q/4, index byte q mod 4.
                    8 => (8 * (2 * g + q / 4) + q % 4) as u8,
                    // IQ3_XXS: the index bytes are in weight order.
                    _ => (entries_per_quarter * g + q) as u8,
                };
                t.arrange[g][per * q] = pos;
                t.arrange[g][per * q + 1] = 64 + pos;
            }
        }
        t
    }
}

/// The sign masks and sub-block scales of IQ2_XXS / IQ3_XXS: per 32 weights a u32 of four 7-bit
/// sign-pattern indices and a 4-bit scale, taken from the high half of qword `j` (sub-block `j`).
struct SignTables {
    /// `KSIGNS_IQ2XS` in two 64-entry halves.
    signs: [[u8; 64]; 2],
    /// Bytes 0–3 of qword `j` ← the four 7-bit sign fields of sub-block `j` (bits 32 + 7l).
    sign_shift: [u8; 64],
    /// Per quarter `g`: qword lane `q` ← sub-block `2g + q/4` (its pattern bytes).
    pattern_lane: [[u64; 8]; 4],
    /// Byte `b` of lane `q` ← bit `8(q mod 4) + b` (pattern byte `q mod 4`, bit `b`).
    bit_select: [u8; 64],
    /// Per quarter `g`: i16 lane `i` ← the scale word of sub-block `2g + i/16`.
    scale_lane: [[u16; 32]; 4],
}

impl SignTables {
    fn new() -> Self {
        let mut t = SignTables {
            signs: [[0; 64]; 2],
            sign_shift: std::array::from_fn(|i| if i % 8 < 4 { 32 + 7 * (i % 8) as u8 } else { 0 }),
            pattern_lane: std::array::from_fn(|g| std::array::from_fn(|q| (2 * g + q / 4) as u64)),
            bit_select: std::array::from_fn(|i| (8 * ((i / 8) % 4) + i % 8) as u8),
            scale_lane: std::array::from_fn(|g| {
                std::array::from_fn(|i| (4 * (2 * g + i / 16)) as u16)
            }),
        };
        for (k, &s) in KSIGNS_IQ2XS.iter().enumerate() {
            t.signs[k / 64][k % 64] = s;
        }
        t
    }
}

fn iq2xxs_tables() -> &'static (GridTables, SignTables) {
    static T: OnceLock<(GridTables, SignTables)> = OnceLock::new();
    T.get_or_init(|| {
        (
            GridTables::new(&IQ2XXS_GRID, 8, &IQ2XXS_VALUES[..3]),
            SignTables::new(),
        )
    })
}

fn iq3xxs_tables() -> &'static (GridTables, SignTables) {
    static T: OnceLock<(GridTables, SignTables)> = OnceLock::new();
    T.get_or_init(|| {
        let entries: [u64; 256] = std::array::from_fn(|e| IQ3XXS_GRID[e] as u64);
        (
            GridTables::new(&entries, 4, &IQ3XXS_VALUES),
            SignTables::new(),
        )
    })
}

/// The loop-invariant vectors of the IQ2_XXS / IQ3_XXS kernels, in registers.
pub(crate) struct IqRegs {
    lo: [__m512i; 4],
    hi: [__m512i; 4],
    arrange: [__m512i; 4],
    code_shift: __m512i,
    values: __m512i,
    signs: [__m512i; 2],
    sign_shift: __m512i,
    pattern_lane: [__m512i; 4],
    bit_select: __m512i,
    scale_lane: [__m512i; 4],
}

impl IqRegs {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    fn load((g, s): &(GridTables, SignTables)) -> Self {
        Self {
            lo: g.code_lo.each_ref().map(|v| load512(v)),
            hi: g.code_hi.each_ref().map(|v| load512(v)),
            arrange: g.arrange.each_ref().map(|v| load512(v)),
            code_shift: load512(&g.code_shift),
            values: load512(&g.values),
            signs: s.signs.each_ref().map(|v| load512(v)),
            sign_shift: load512(&s.sign_shift),
            pattern_lane: s.pattern_lane.each_ref().map(|l| {
                let [a, b, c, d, e, f, g, h] = l.map(|v| v as i64);
                _mm512_set_epi64(h, g, f, e, d, c, b, a)
            }),
            bit_select: load512(&s.bit_select),
            scale_lane: s.scale_lane.each_ref().map(|v| load512(v)),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    pub(crate) fn iq2xxs() -> Self {
        Self::load(iq2xxs_tables())
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    pub(crate) fn iq3xxs() -> Self {
        Self::load(iq3xxs_tables())
    }
}

/// One IQ2_XXS / IQ3_XXS super-block decoded for the products: per 64-weight quarter the
/// unsigned grid bytes, the sign mask (bit set ⇒ negate) and the i16 sub-block scales.
pub(crate) struct IqBlock {
    pub(crate) grid: [__m512i; 4],
    pub(crate) neg: [__mmask64; 4],
    scale: [__m512i; 4],
    /// `2·ls + 1` of the 8 sub-blocks, one per i64 lane (formats with a scale per 32).
    pub(crate) sub_scales: __m512i,
    /// `2·s + 1` of the 16 groups in i16 lanes 0..16 (formats with a scale per 16).
    pub(crate) scales16: __m512i,
}

/// Decodes a super-block from its 64 grid index bytes `idx` (where the non-index bytes are,
/// their lookups are never used) and `words` (sub-block `j`'s sign/scale u32 in the high half
/// of qword `j`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
fn decode_iq(r: &IqRegs, idx: __m512i, words: __m512i) -> IqBlock {
    let high = _mm512_movepi8_mask(idx);
    let lo = _mm512_mask_blend_epi8(
        high,
        _mm512_permutex2var_epi8(r.lo[0], idx, r.lo[1]),
        _mm512_permutex2var_epi8(r.lo[2], idx, r.lo[3]),
    );
    let hi = _mm512_mask_blend_epi8(
        high,
        _mm512_permutex2var_epi8(r.hi[0], idx, r.hi[1]),
        _mm512_permutex2var_epi8(r.hi[2], idx, r.hi[3]),
    );
    // Sign patterns: byte 8j + l ← pattern of group l of sub-block j.
    let fields = _mm512_multishift_epi64_epi8(r.sign_shift, words);
    let patterns = _mm512_permutex2var_epi8(r.signs[0], fields, r.signs[1]);
    // Scales 2·ls + 1 in the low word of each sub-block's qword.
    let ls = _mm512_srli_epi64::<60>(words);
    let sc = _mm512_or_si512(_mm512_slli_epi64::<1>(ls), _mm512_set1_epi64(1));
    IqBlock {
        grid: grid_quarters(lo, hi, &r.arrange, r.code_shift, r.values),
        neg: std::array::from_fn(|g| {
            let pat = _mm512_permutexvar_epi64(r.pattern_lane[g], patterns);
            _mm512_bitshuffle_epi64_mask(pat, r.bit_select)
        }),
        scale: r.scale_lane.map(|l| _mm512_permutexvar_epi16(l, sc)),
        sub_scales: sc,
        scales16: _mm512_setzero_si512(),
    }
}

/// Grid bytes of the four 64-weight quarters from the looked-up code planes: `arrange` moves
/// each entry's code bytes to where its weights' bit fields start, `vpmultishiftqb` gives each
/// weight its code in a byte, `vpermb` its value.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn grid_quarters(
    lo: __m512i,
    hi: __m512i,
    arrange: &[__m512i; 4],
    code_shift: __m512i,
    values: __m512i,
) -> [__m512i; 4] {
    arrange.map(|a| {
        let codes = _mm512_permutex2var_epi8(lo, a, hi);
        _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(code_shift, codes), values)
    })
}

/// IQ2_XXS block (66 bytes): 8 sub-blocks of 8 bytes, 4 grid indices then the sign/scale u32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn decode_iq2xxs(r: &IqRegs, b: &[u8; 66]) -> IqBlock {
    let q = load512(&b[2..].as_chunks::<64>().0[0]);
    decode_iq(r, q, q)
}

/// IQ3_XXS block (98 bytes): 64 grid indices, then 8 sign/scale u32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn decode_iq3xxs(r: &IqRegs, b: &[u8; 98]) -> IqBlock {
    let q = load512(&b[2..66].as_chunks::<64>().0[0]);
    let words = _mm512_slli_epi64::<32>(_mm512_cvtepu32_epi64(crate::simd_mem::load256(
        &b[66..98].as_chunks::<32>().0[0],
    )));
    decode_iq(r, q, words)
}

/// IQ2_XS: per 8 weights a u16 of a 9-bit grid index (512 entries of {8, 25, 43}) and a 7-bit
/// sign-pattern index; a 4-bit scale per 16 weights. The same shuffle lookup as IQ2_XXS over
/// four 128-entry table quarters per code byte (selected by index bits 7 and 8).
struct Iq2xsTables {
    code_lo: [[u8; 64]; 8],
    code_hi: [[u8; 64]; 8],
    /// Per quarter `g`: qword lane `q` ← the code bytes of group `8g + q` (byte `2(8g + q)`).
    arrange: [[u8; 64]; 4],
    /// Per quarter `g`: byte 0 of lane `q` ← the sign pattern of group `8g + q`.
    pattern_pick: [[u8; 64]; 4],
    /// Byte `b` of each lane ← bit `b` (the lane's pattern byte).
    bit_select: [u8; 64],
    /// Per quarter `g`: i16 lane `k` ← scale `4g + k/8` (16-weight groups).
    scale_lane: [[u16; 32]; 4],
}

fn iq2xs_tables() -> &'static (Iq2xsTables, GridTables, SignTables) {
    static T: OnceLock<(Iq2xsTables, GridTables, SignTables)> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Iq2xsTables {
            code_lo: [[0; 64]; 8],
            code_hi: [[0; 64]; 8],
            arrange: [[0; 64]; 4],
            pattern_pick: [[0; 64]; 4],
            bit_select: std::array::from_fn(|i| (i % 8) as u8),
            scale_lane: std::array::from_fn(|g| std::array::from_fn(|k| (4 * g + k / 8) as u16)),
        };
        (t.code_lo, t.code_hi) = planes512(|e| IQ2XS_GRID[e], 8, &IQ2XXS_VALUES[..3]);
        for g in 0..4 {
            for q in 0..8 {
                let pos = (2 * (8 * g + q)) as u8;
                t.arrange[g][8 * q] = pos;
                t.arrange[g][8 * q + 1] = 64 + pos;
                t.pattern_pick[g][8 * q] = pos;
            }
        }
        // Code shift and values as IQ2_XXS's; the sign table as its.
        (
            t,
            GridTables::new(&IQ2XXS_GRID, 8, &IQ2XXS_VALUES[..3]),
            SignTables::new(),
        )
    })
}

/// The two code planes of a 512-entry grid as 8 × 64-entry quarters each.
type Planes512 = ([[u8; 64]; 8], [[u8; 64]; 8]);

/// Code planes of an `N`-quarter grid (64 entries a quarter).
fn planes<const N: usize>(
    entry: impl Fn(usize) -> u64,
    per: usize,
    values: &[u8],
) -> ([[u8; 64]; N], [[u8; 64]; N]) {
    let (mut lo, mut hi) = ([[0; 64]; N], [[0; 64]; N]);
    for part in 0..N / 4 {
        let entries: [u64; 256] = std::array::from_fn(|e| entry(256 * part + e));
        let g = GridTables::new(&entries, per, values);
        lo[4 * part..4 * part + 4].copy_from_slice(&g.code_lo);
        hi[4 * part..4 * part + 4].copy_from_slice(&g.code_hi);
    }
    (lo, hi)
}

fn planes512(entry: impl Fn(usize) -> u64, per: usize, values: &[u8]) -> Planes512 {
    planes::<8>(entry, per, values)
}

/// The loop-invariant vectors of the IQ2_XS kernel.
pub(crate) struct Iq2xsRegs {
    lo: [__m512i; 8],
    hi: [__m512i; 8],
    arrange: [__m512i; 4],
    pattern_pick: [__m512i; 4],
    bit_select: __m512i,
    scale_lane: [__m512i; 4],
    code_shift: __m512i,
    values: __m512i,
    signs: [__m512i; 2],
}

impl Iq2xsRegs {
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    pub(crate) fn load() -> Self {
        let (t, g, s) = iq2xs_tables();
        Self {
            lo: t.code_lo.each_ref().map(|v| load512(v)),
            hi: t.code_hi.each_ref().map(|v| load512(v)),
            arrange: t.arrange.each_ref().map(|v| load512(v)),
            pattern_pick: t.pattern_pick.each_ref().map(|v| load512(v)),
            bit_select: load512(&t.bit_select),
            scale_lane: t.scale_lane.each_ref().map(|v| load512(v)),
            code_shift: load512(&g.code_shift),
            values: load512(&g.values),
            signs: s.signs.each_ref().map(|v| load512(v)),
        }
    }
}

/// One code plane of 512 entries: four `vpermi2b` quarters chosen by index bits 7 and 8.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn lookup512(t: &[__m512i; 8], idx: __m512i, b7: __mmask64, b8: __mmask64) -> __m512i {
    let low = _mm512_mask_blend_epi8(
        b7,
        _mm512_permutex2var_epi8(t[0], idx, t[1]),
        _mm512_permutex2var_epi8(t[2], idx, t[3]),
    );
    let high = _mm512_mask_blend_epi8(
        b7,
        _mm512_permutex2var_epi8(t[4], idx, t[5]),
        _mm512_permutex2var_epi8(t[6], idx, t[7]),
    );
    _mm512_mask_blend_epi8(b8, low, high)
}

/// Eight bytes of 4-bit scales (low nibble first, one per 16 weights) as `2·s + 1` in i16
/// lanes 0..16 of a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn scales16(bytes: &[u8; 8]) -> __m512i {
    let sb = u64::from_le_bytes(*bytes);
    let nib = _mm_set_epi64x(
        ((sb >> 4) & 0x0f0f_0f0f_0f0f_0f0f) as i64,
        (sb & 0x0f0f_0f0f_0f0f_0f0f) as i64,
    );
    // Interleave low and high nibbles into natural order, widen, 2·s + 1.
    let natural = _mm_unpacklo_epi8(nib, _mm_srli_si128::<8>(nib));
    _mm512_castsi256_si512(_mm256_or_si256(
        _mm256_slli_epi16::<1>(_mm256_cvtepu8_epi16(natural)),
        _mm256_set1_epi16(1),
    ))
}

/// IQ2_XS block (74 bytes) decoded for the products (`sub_scales` unused: scales are per 16).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn decode_iq2xs(r: &Iq2xsRegs, b: &[u8; 74]) -> IqBlock {
    let q = load512(&b[2..66].as_chunks::<64>().0[0]);
    // Index bits 0–7 sit in the even bytes; bit 8 is bit 0 of the odd byte.
    let b7 = _mm512_movepi8_mask(q);
    let b8 = _mm512_test_epi8_mask(_mm512_srli_epi16::<8>(q), _mm512_set1_epi8(1));
    let lo = lookup512(&r.lo, q, b7, b8);
    let hi = lookup512(&r.hi, q, b7, b8);
    let patterns = _mm512_permutex2var_epi8(r.signs[0], _mm512_srli_epi16::<9>(q), r.signs[1]);
    // Scales 2·s + 1, one per 16 weights, in the i16 lanes 0..16.
    let sc = scales16(&b[66..74].try_into().expect("8 scale bytes"));
    IqBlock {
        grid: grid_quarters(lo, hi, &r.arrange, r.code_shift, r.values),
        neg: std::array::from_fn(|g| {
            let pat = _mm512_permutexvar_epi8(r.pattern_pick[g], patterns);
            _mm512_bitshuffle_epi64_mask(pat, r.bit_select)
        }),
        scale: r.scale_lane.map(|l| _mm512_permutexvar_epi16(l, sc)),
        sub_scales: _mm512_setzero_si512(),
        scales16: sc,
    }
}

/// IQ2_XS rows · per-256 int8 activation.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn rows_iq2xs(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = Iq2xsRegs::load();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<74>();
        *out = iq_row(blocks, a, |b| (decode_iq2xs(&r, b), f16c_at(b, 0) * 0.125));
    }
}

/// The eight byte values of the IQ3_S grid.
const IQ3S_VALUES: [u8; 8] = [1, 3, 5, 7, 9, 11, 13, 15];

/// IQ3_S: 9-bit grid indices (512 entries of 4 weights from {1, 3, …, 15}; bit 8 from `qh`),
/// explicit sign bytes in weight order (they are the negate masks as they stand), a 4-bit
/// scale per 32 weights.
pub(crate) struct Iq3sRegs {
    lo: [__m512i; 8],
    hi: [__m512i; 8],
    arrange: [__m512i; 4],
    code_shift: __m512i,
    values: __m512i,
    scale_lane: [__m512i; 4],
}

fn iq3s_tables() -> &'static (Planes512, GridTables, SignTables) {
    static T: OnceLock<(Planes512, GridTables, SignTables)> = OnceLock::new();
    T.get_or_init(|| {
        let first: [u64; 256] = std::array::from_fn(|e| IQ3S_GRID[e] as u64);
        (
            planes512(|e| IQ3S_GRID[e] as u64, 4, &IQ3S_VALUES),
            GridTables::new(&first, 4, &IQ3S_VALUES),
            SignTables::new(),
        )
    })
}

impl Iq3sRegs {
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    pub(crate) fn load() -> Self {
        let ((lo, hi), g, s) = iq3s_tables();
        Self {
            lo: lo.each_ref().map(|v| load512(v)),
            hi: hi.each_ref().map(|v| load512(v)),
            arrange: g.arrange.each_ref().map(|v| load512(v)),
            code_shift: load512(&g.code_shift),
            values: load512(&g.values),
            scale_lane: s.scale_lane.each_ref().map(|v| load512(v)),
        }
    }
}

/// IQ3_S block (110 bytes: d, qs[64], qh[8], signs[32], scales[4]) decoded for the products.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn decode_iq3s(r: &Iq3sRegs, b: &[u8; 110]) -> IqBlock {
    let q = load512(&b[2..66].as_chunks::<64>().0[0]);
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    // Bit 8 of index i is bit i mod 8 of qh[i / 8]: the 8 qh bytes are that mask.
    let b8 = _cvtu64_mask64(u64_at(66));
    let b7 = _mm512_movepi8_mask(q);
    let lo = lookup512(&r.lo, q, b7, b8);
    let hi = lookup512(&r.hi, q, b7, b8);
    let sw = u32::from_le_bytes(b[106..110].try_into().expect("4 scale bytes")) as u64;
    // Nibble j (low nibble first) is the scale of sub-block j; 2·s + 1 per i64 lane.
    let spread = (0..8).fold(0u64, |acc, j| acc | ((sw >> (4 * j)) & 15) << (8 * j));
    let ls = _mm512_cvtepu8_epi64(_mm_set_epi64x(0, spread as i64));
    let sc = _mm512_or_si512(_mm512_slli_epi64::<1>(ls), _mm512_set1_epi64(1));
    IqBlock {
        grid: grid_quarters(lo, hi, &r.arrange, r.code_shift, r.values),
        neg: std::array::from_fn(|g| _cvtu64_mask64(u64_at(74 + 8 * g))),
        scale: r.scale_lane.map(|l| _mm512_permutexvar_epi16(l, sc)),
        sub_scales: sc,
        scales16: _mm512_setzero_si512(),
    }
}

/// IQ3_S rows · per-256 int8 activation.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn rows_iq3s(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = Iq3sRegs::load();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<110>();
        *out = iq_row(blocks, a, |b| (decode_iq3s(&r, b), f16c_at(b, 0)));
    }
}

/// IQ2_S: 10-bit grid indices (1024 entries of {8, 25, 43}; bits 8–9 from `qh`), explicit
/// sign bytes in weight order, 4-bit scales per 16 weights.
pub(crate) struct Iq2sRegs {
    lo: [__m512i; 16],
    hi: [__m512i; 16],
    arrange: [__m512i; 4],
    code_shift: __m512i,
    values: __m512i,
    scale_lane: [__m512i; 4],
}

type Planes1024 = ([[u8; 64]; 16], [[u8; 64]; 16]);

/// IQ2_S's code planes, its `arrange` (the 32 index bytes are in weight order: group `8g + q`
/// at byte `8g + q`) and the IQ2 code shift / values.
fn iq2s_tables() -> &'static (Planes1024, [[u8; 64]; 4], GridTables) {
    static T: OnceLock<(Planes1024, [[u8; 64]; 4], GridTables)> = OnceLock::new();
    T.get_or_init(|| {
        let mut arrange = [[0u8; 64]; 4];
        for (g, a) in arrange.iter_mut().enumerate() {
            for q in 0..8 {
                a[8 * q] = (8 * g + q) as u8;
                a[8 * q + 1] = (64 + 8 * g + q) as u8;
            }
        }
        let values = &IQ2XXS_VALUES[..3];
        let planes = planes::<16>(|e| IQ2S_GRID[e], 8, values);
        (planes, arrange, GridTables::new(&IQ2XXS_GRID, 8, values))
    })
}

impl Iq2sRegs {
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
    pub(crate) fn load() -> Self {
        let ((lo, hi), arrange, g) = iq2s_tables();
        Self {
            lo: lo.each_ref().map(|v| load512(v)),
            hi: hi.each_ref().map(|v| load512(v)),
            arrange: arrange.each_ref().map(|v| load512(v)),
            code_shift: load512(&g.code_shift),
            values: load512(&g.values),
            scale_lane: iq2xs_tables().0.scale_lane.each_ref().map(|v| load512(v)),
        }
    }

    /// The low and high code planes (weights 0–3 and 4–7 of each entry, two bits a weight) of
    /// the 64 grid indices whose bits 0–7 are the bytes of `q` and bits 8 and 9 the bits of
    /// `b8` and `b9`: eight `vpermi2b` a plane, chosen by index bits 7, 8 and 9.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(crate) fn codes(&self, q: __m512i, b8: u64, b9: u64) -> (__m512i, __m512i) {
        let (b7, b8, b9) = (
            _mm512_movepi8_mask(q),
            _cvtu64_mask64(b8),
            _cvtu64_mask64(b9),
        );
        let lookup = |t: &[__m512i; 16]| {
            let lower: &[__m512i; 8] = t[..8].try_into().expect("8 quarters");
            let upper: &[__m512i; 8] = t[8..].try_into().expect("8 quarters");
            _mm512_mask_blend_epi8(b9, lookup512(lower, q, b7, b8), lookup512(upper, q, b7, b8))
        };
        (lookup(&self.lo), lookup(&self.hi))
    }
}

/// Index bits 8 and 9 of IQ2_S's 32 groups from the block's 8 `qh` bytes (group `i`'s are bits
/// `2(i mod 4)` and `2(i mod 4) + 1` of `qh[i / 4]`), as two 32-bit masks.
#[inline]
#[target_feature(enable = "bmi2")]
pub(crate) fn iq2s_high_bits(qh: &[u8; 8]) -> (u64, u64) {
    let qh = u64::from_le_bytes(*qh);
    (
        _pext_u64(qh, 0x5555_5555_5555_5555),
        _pext_u64(qh, 0xaaaa_aaaa_aaaa_aaaa),
    )
}

/// IQ2_S block (82 bytes: d, qs[32] index bytes, signs[32], qh[8], scales[8]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,bmi2")]
pub(crate) fn decode_iq2s(r: &Iq2sRegs, b: &[u8; 82]) -> IqBlock {
    // The sign bytes' lookups (lanes 32..64) are never used.
    let q = load512(&b[2..66].as_chunks::<64>().0[0]);
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let (b8, b9) = iq2s_high_bits(b[66..74].try_into().expect("8 qh bytes"));
    let (lo, hi) = r.codes(q, b8, b9);
    let sc = scales16(&b[74..82].try_into().expect("8 scale bytes"));
    IqBlock {
        grid: grid_quarters(lo, hi, &r.arrange, r.code_shift, r.values),
        neg: std::array::from_fn(|g| _cvtu64_mask64(u64_at(34 + 8 * g))),
        scale: r.scale_lane.map(|l| _mm512_permutexvar_epi16(l, sc)),
        sub_scales: _mm512_setzero_si512(),
        scales16: sc,
    }
}

/// A decoded block against one token's 256 int8 activations: the super-block's i32 sums.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
fn iq_block_dot(b: &IqBlock, xq: &[i8; QK_K]) -> __m512i {
    let (xs, _) = xq.as_chunks::<64>();
    let zero = _mm512_setzero_si512();
    let mut s0 = zero;
    let mut s1 = zero;
    for g in 0..4 {
        let x = load512(&xs[g]);
        let xs = _mm512_mask_sub_epi8(x, b.neg[g], zero, x);
        let p = _mm512_maddubs_epi16(b.grid[g], xs);
        if g & 1 == 0 {
            s0 = dpwssd(s0, p, b.scale[g]);
        } else {
            s1 = dpwssd(s1, p, b.scale[g]);
        }
    }
    _mm512_add_epi32(s0, s1)
}

/// IQ2_XXS rows · per-256 int8 activation (see the module docs), into `y`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn rows_iq2xxs(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = IqRegs::iq2xxs();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<66>();
        *out = iq_row(blocks, a, |b| (decode_iq2xxs(&r, b), f16c_at(b, 0) * 0.125));
    }
}

/// IQ3_XXS rows · per-256 int8 activation: IQ2_XXS's kernel with a 4-weight, 8-value grid.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn rows_iq3xxs(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = IqRegs::iq3xxs();
    for (row, out) in crate::prefetch::rows(w, row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<98>();
        *out = iq_row(blocks, a, |b| (decode_iq3xxs(&r, b), f16c_at(b, 0) * 0.25));
    }
}

/// One row of blocks: `decode` gives each block's vectors and its factor of `2·ls + 1`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
fn iq_row<const B: usize>(
    blocks: &[[u8; B]],
    a: &Q8Act,
    decode: impl Fn(&[u8; B]) -> (IqBlock, f32),
) -> f32 {
    let (xq, _) = a.q256.as_chunks::<QK_K>();
    let mut acc = _mm512_setzero_ps();
    for ((b, xq), &xd) in blocks.iter().zip(xq).zip(&a.d256) {
        let (blk, d) = decode(b);
        let sums = iq_block_dot(&blk, xq);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(d * xd), acc);
    }
    _mm512_reduce_add_ps(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_iq2xxs_grid_byte_is_one_of_three_values() {
        for e in IQ2XXS_GRID {
            for b in e.to_le_bytes() {
                assert!(IQ2XXS_VALUES[..3].contains(&b), "{e:#x}");
            }
        }
    }
}
