//! AVX-512 (VBMI, VNNI, BITALG) row kernels, for CPUs that have them (AMD Zen 4/5, Intel
//! Ice Lake and later); `kernels.rs` enters them only after runtime detection and
//! `LOCALGLM_SIMD=avx2` keeps them off so the AVX2 kernels stay tested on such machines.
//!
//! IQ2_XXS without per-weight lookups: every byte of its 256-entry grid is one of three values
//! (8, 25, 43), so an entry is 8 two-bit codes — 16 bits, split into two 256-byte tables that
//! four `vpermi2b` look up for a whole super-block at once. `vpmultishiftqb` then pulls each
//! weight's two bits into its own byte and one `vpermb` maps them to grid values. The 7-bit sign
//! fields come out of the same 64-byte load by another multishift, become 8-bit patterns through
//! the 128-entry sign table (`vpermi2b`), and `vpshufbitqmb` turns them into the 64-bit masks
//! that negate activations with one masked subtract. The 4-bit sub-block scales ride in the
//! VNNI `vpdpwssd`. About 60 vector instructions per 256 weights, against ~45 per 32 in the
//! AVX2 kernel's scalar-index loop.
//!
//! Everything is safe code except the unaligned loads (as in `simd.rs`).

#![cfg(target_arch = "x86_64")]

use crate::dequant::{f16_at, QK_K};
use crate::q8::Q8Act;
use crate::tables::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS};
use crate::GgmlType;
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// The grid byte of each two-bit code (code 3 never occurs).
const IQ2XXS_VALUES: [u8; 4] = [0x08, 0x19, 0x2b, 0];
/// The eight byte values of the IQ3_XXS grid.
const IQ3XXS_VALUES: [u8; 8] = [4, 12, 20, 28, 36, 44, 52, 62];

/// `acc + Σ pairs a·b` (i16 → i32), always as one `vpdpwssd`: LLVM otherwise may split the
/// intrinsic into `vpmaddwd` + `vpaddd` (it did in token loops, where the split doubled the
/// multiply-port work).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
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

/// Any 64-byte array as one vector (unaligned load).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load512<T: Copy, const N: usize>(v: &[T; N]) -> __m512i {
    const { assert!(std::mem::size_of::<[T; N]>() == 64) };
    // WORKAROUND: an unaligned load has no safe intrinsic; it reads exactly the 64 bytes of the
    // referenced array (checked at compile time above).
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_si512(v.as_ptr().cast())
    }
}

/// Any 32-byte array as one vector (unaligned load).
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load256<T: Copy, const N: usize>(v: &[T; N]) -> __m256i {
    const { assert!(std::mem::size_of::<[T; N]>() == 32) };
    // WORKAROUND: as in `load512`: exactly the 32 bytes of the referenced array.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_loadu_si256(v.as_ptr().cast())
    }
}

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
    let words = _mm512_slli_epi64::<32>(_mm512_cvtepu32_epi64(crate::simd::load32u(
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
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<74>();
        *out = iq_row(blocks, a, |b| (decode_iq2xs(&r, b), f16_at(b, 0) * 0.125));
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
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<110>();
        *out = iq_row(blocks, a, |b| (decode_iq3s(&r, b), f16_at(b, 0)));
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
}

/// IQ2_S block (82 bytes: d, qs[32] index bytes, signs[32], qh[8], scales[8]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,bmi2")]
pub(crate) fn decode_iq2s(r: &Iq2sRegs, b: &[u8; 82]) -> IqBlock {
    let q = load512(&b[2..66].as_chunks::<64>().0[0]);
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    // Index bits 8 and 9 of group i are bits 2(i mod 4) and 2(i mod 4) + 1 of qh[i / 4].
    let qh = u64_at(66);
    let b8 = _cvtu64_mask64(_pext_u64(qh, 0x5555_5555_5555_5555));
    let b9 = _cvtu64_mask64(_pext_u64(qh, 0xaaaa_aaaa_aaaa_aaaa));
    let b7 = _mm512_movepi8_mask(q);
    let lookup = |t: &[__m512i; 16]| {
        let lower: &[__m512i; 8] = t[..8].try_into().expect("8 quarters");
        let upper: &[__m512i; 8] = t[8..].try_into().expect("8 quarters");
        _mm512_mask_blend_epi8(b9, lookup512(lower, q, b7, b8), lookup512(upper, q, b7, b8))
    };
    let lo = lookup(&r.lo);
    let hi = lookup(&r.hi);
    let sc = scales16(&b[74..82].try_into().expect("8 scale bytes"));
    IqBlock {
        grid: grid_quarters(lo, hi, &r.arrange, r.code_shift, r.values),
        neg: std::array::from_fn(|g| _cvtu64_mask64(u64_at(34 + 8 * g))),
        scale: r.scale_lane.map(|l| _mm512_permutexvar_epi16(l, sc)),
        sub_scales: _mm512_setzero_si512(),
        scales16: sc,
    }
}

/// IQ2_S rows · per-256 int8 activation.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg,bmi2")]
pub(crate) fn rows_iq2s(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = Iq2sRegs::load();
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<82>();
        *out = iq_row(blocks, a, |b| (decode_iq2s(&r, b), f16_at(b, 0) * 0.125));
    }
}

/// The 256 weights of an IQ1 block from the offset grid (`simd_lowbit::iq1_offset_grid`: per
/// weight `8·g ± 1 + 9`, unsigned), 64 per vector: indices computed in vectors, grid words
/// fetched by scalar loads (measured faster than `vpgatherdq` on this CPU).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn iq1_gather(grid: &[u64; 4096], idx: [__m512i; 2]) -> [__m512i; 4] {
    let mut at = [0u32; 32];
    let (halves, _) = at.as_chunks_mut::<16>();
    for (h, v) in halves.iter_mut().zip(idx) {
        // WORKAROUND: an unaligned store has no safe intrinsic; writes exactly 16 u32.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(h.as_mut_ptr().cast(), v)
        };
    }
    std::array::from_fn(|q| {
        let g = |k: usize| grid[at[8 * q + k] as usize & 4095] as i64;
        _mm512_set_epi64(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0))
    })
}

/// `Σ_q maddubs(u_q, x_q) · scale_q − 9·Σ_m coef_m·bsum16_m` as 16 i32 lanes: the IQ1 block sum
/// in units of `d/8` (the `−9` undoes the table's offset over each scale group).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn iq1_block_sum(
    u: &[__m512i; 4],
    scale: &[__m512i; 4],
    coef: __m256i,
    xq: &[i8; QK_K],
    a: &Q8Act,
    bi: usize,
) -> __m512i {
    let (xs, _) = xq.as_chunks::<64>();
    let mut s0 = _mm512_setzero_si512();
    let mut s1 = _mm512_setzero_si512();
    for k in (0..4).step_by(2) {
        s0 = dpwssd(s0, _mm512_maddubs_epi16(u[k], load512(&xs[k])), scale[k]);
        s1 = dpwssd(
            s1,
            _mm512_maddubs_epi16(u[k + 1], load512(&xs[k + 1])),
            scale[k + 1],
        );
    }
    let off = _mm256_madd_epi16(coef, crate::simd_lowbit::bsums(a, bi));
    let off9 = _mm256_add_epi32(_mm256_slli_epi32::<3>(off), off);
    _mm512_mask_sub_epi32(
        _mm512_add_epi32(s0, s1),
        0x00ff,
        _mm512_add_epi32(s0, s1),
        _mm512_castsi256_si512(off9),
    )
}

/// i16 lane `k` of quarter `g` ← word `per(g, k)` (scale selection controls).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn word_pick(per: impl Fn(usize, usize) -> usize) -> [__m512i; 4] {
    std::array::from_fn(|g| {
        let lanes: [u16; 32] = std::array::from_fn(|k| per(g, k) as u16);
        load512(&lanes)
    })
}

/// IQ1_S rows · per-256 int8 activation: 11-bit grid index and the sub-block's delta sign
/// gathered from the 32 KiB offset grid (four 8-qword gathers per block), 3-bit scales per 32
/// in `vpdpwssd`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq1s(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let grid = crate::simd_lowbit::iq1_offset_grid();
    // Quarter g, lane k: sub-block 2g + k/16 (its scale is word 2j of the i32 lanes).
    let pick = word_pick(|g, k| 2 * (2 * g + k / 16));
    // Lane i of each 16-index half: sub-block 4h + i/4, field shift 3·(i mod 4).
    let sub: [__m512i; 2] = std::array::from_fn(|h| {
        load512(&std::array::from_fn::<i32, 16, _>(|i| {
            (4 * h + i / 4) as i32
        }))
    });
    let shift = load512(&std::array::from_fn::<i32, 16, _>(|i| (3 * (i % 4)) as i32));
    let coef_pick = load256(&std::array::from_fn::<i16, 16, _>(|m| (2 * (m / 2)) as i16));
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<50>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let h = _mm512_cvtepu16_epi32(_mm256_castsi128_si256(crate::simd_lowbit::load16_u8(
                &b[34..50].as_chunks::<16>().0[0],
            )));
            let idx: [__m512i; 2] = std::array::from_fn(|half| {
                let q = _mm512_cvtepu8_epi32(crate::simd_lowbit::load16_u8(
                    &b[2 + 16 * half..18 + 16 * half].as_chunks::<16>().0[0],
                ));
                let hj = _mm512_permutexvar_epi32(sub[half], h);
                let hi3 = _mm512_and_si512(_mm512_srlv_epi32(hj, shift), _mm512_set1_epi32(7));
                let neg = _mm512_srli_epi32::<15>(hj);
                _mm512_or_si512(
                    q,
                    _mm512_or_si512(_mm512_slli_epi32::<8>(hi3), _mm512_slli_epi32::<11>(neg)),
                )
            });
            let u = iq1_gather(grid, idx);
            // 2·s + 1 per sub-block, in the low word of each i32 lane.
            let odd = _mm512_or_si512(
                _mm512_slli_epi32::<1>(_mm512_and_si512(
                    _mm512_srli_epi32::<12>(h),
                    _mm512_set1_epi32(7),
                )),
                _mm512_set1_epi32(1),
            );
            let scale = pick.map(|p| _mm512_permutexvar_epi16(p, odd));
            let coef = _mm256_permutexvar_epi16(coef_pick, _mm512_castsi512_si256(odd));
            let sum = iq1_block_sum(&u, &scale, coef, xq, a, bi);
            let d = f16_at(b, 0) * 0.125 * xd;
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// IQ1_M rows · per-256 int8 activation: per 8 weights a 4-bit field (3 index bits, the delta
/// sign) that, shifted by 8, is exactly the offset grid's upper index bits; 3-bit scales per 16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,f16c")]
pub(crate) fn rows_iq1m(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let grid = crate::simd_lowbit::iq1_offset_grid();
    // Quarter g, lane k: 16-weight group 4g + k/8.
    let pick = word_pick(|g, k| 4 * g + k / 8);
    // The scale words are bytes 48..56, i.e. words 4..8 of the 16 bytes at 40.
    let word_of = load256(&std::array::from_fn::<i16, 16, _>(|k| (4 + k / 4) as i16));
    let shift3 = load256(&std::array::from_fn::<i16, 16, _>(|k| (3 * (k % 4)) as i16));
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<56>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let qh = crate::simd_lowbit::load16_u8(&b[32..48].as_chunks::<16>().0[0]);
            // Nibble i (low first) of the 16 qh bytes belongs to group i.
            let nib = _mm_set1_epi8(15);
            let lo = _mm_and_si128(qh, nib);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(qh), nib);
            let fields = [_mm_unpacklo_epi8(lo, hi), _mm_unpackhi_epi8(lo, hi)];
            let idx: [__m512i; 2] = std::array::from_fn(|half| {
                let q = _mm512_cvtepu8_epi32(crate::simd_lowbit::load16_u8(
                    &b[16 * half..16 * half + 16].as_chunks::<16>().0[0],
                ));
                _mm512_or_si512(
                    q,
                    _mm512_slli_epi32::<8>(_mm512_cvtepu8_epi32(fields[half])),
                )
            });
            let u = iq1_gather(grid, idx);
            let sc: [u16; 4] =
                std::array::from_fn(|k| u16::from_le_bytes([b[48 + 2 * k], b[49 + 2 * k]]));
            let d = crate::dequant::f16_to_f32(
                (sc[0] >> 12)
                    | ((sc[1] >> 8) & 0x00f0)
                    | ((sc[2] >> 4) & 0x0f00)
                    | (sc[3] & 0xf000),
            );
            // Scale of 16-weight group k: 3 bits at 3·(k mod 4) of word k / 4, as 2·s + 1.
            let words = _mm256_castsi128_si256(crate::simd_lowbit::load16_u8(
                &b[40..56].as_chunks::<16>().0[0],
            ));
            let fields = _mm256_srlv_epi16(_mm256_permutexvar_epi16(word_of, words), shift3);
            let s16 = _mm256_or_si256(
                _mm256_slli_epi16::<1>(_mm256_and_si256(fields, _mm256_set1_epi16(7))),
                _mm256_set1_epi16(1),
            );
            let scale = pick.map(|p| _mm512_permutexvar_epi16(p, _mm512_castsi256_si512(s16)));
            let sum = iq1_block_sum(&u, &scale, s16, xq, a, bi);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * 0.125 * xd), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
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
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<66>();
        *out = iq_row(blocks, a, |b| (decode_iq2xxs(&r, b), f16_at(b, 0) * 0.125));
    }
}

/// IQ3_XXS rows · per-256 int8 activation: IQ2_XXS's kernel with a 4-weight, 8-value grid.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,avx512bitalg")]
pub(crate) fn rows_iq3xxs(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    let r = IqRegs::iq3xxs();
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<98>();
        *out = iq_row(blocks, a, |b| (decode_iq3xxs(&r, b), f16_at(b, 0) * 0.25));
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
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
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
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
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
        let sc16 = _mm256_cvtepi8_epi16(crate::simd_lowbit::load16_u8(sc8));
        let sc = _mm512_castsi256_si512(sc16);
        let (xs, _) = xq.as_chunks::<64>();
        let mut sum = _mm512_setzero_si512();
        for n in 0..2 {
            let l = load512(&ql[n]);
            let h = crate::simd::load32u(&qh[n]);
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
        let d = f16_at(b, 208) * xd;
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc);
    }
    _mm512_reduce_add_ps(acc)
}

/// 32 weight bytes as the low or high half of a vector.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn load32_pair(lo: &[u8; 32], hi: &[u8; 32]) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load256(lo)), load256(hi))
}

/// Q2_K rows · per-256 int8 activation: 2-bit quants unsigned into `maddubs`, the 4-bit scales
/// per 16 in `vpdpwssd`, the `dmin·m` minimums once per block through the activation's 16-value
/// sums.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn rows_q2k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // Quarter g, lane k: 16-weight group 4g + k/8.
    let pick = word_pick(|g, k| 4 * g + k / 8);
    let three = _mm256_set1_epi8(3);
    let nib = _mm_set1_epi8(15);
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<84>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let sc = crate::simd_lowbit::load16_u8(&b[..16].as_chunks::<16>().0[0]);
            let s16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc, nib));
            let m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), nib));
            let (xs, _) = xq.as_chunks::<64>();
            let (qs, _) = b[16..80].as_chunks::<32>();
            let mut sums = [_mm512_setzero_si512(); 2];
            for g in 0..4 {
                // Weights 64g..64g + 64: bit pairs (2j, 2j + 2) of 32-byte chunk g/2, j = 2(g mod 2).
                let c = crate::simd::load32u(&qs[g / 2]);
                let (lo, hi) = if g % 2 == 0 {
                    (c, _mm256_srli_epi16::<2>(c))
                } else {
                    (_mm256_srli_epi16::<4>(c), _mm256_srli_epi16::<6>(c))
                };
                let q = _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(_mm256_and_si256(lo, three)),
                    _mm256_and_si256(hi, three),
                );
                let scale = _mm512_permutexvar_epi16(pick[g], _mm512_castsi256_si512(s16));
                let p = _mm512_maddubs_epi16(q, load512(&xs[g]));
                sums[g % 2] = dpwssd(sums[g % 2], p, scale);
            }
            let mins = _mm256_madd_epi16(m16, crate::simd_lowbit::bsums(a, bi));
            let total = _mm512_cvtepi32_ps(_mm512_add_epi32(sums[0], sums[1]));
            acc = _mm512_fmadd_ps(total, _mm512_set1_ps(f16_at(b, 80) * xd), acc);
            let m = _mm512_cvtepi32_ps(_mm512_zextsi256_si512(mins));
            acc = _mm512_fmadd_ps(m, _mm512_set1_ps(-(f16_at(b, 82) * xd)), acc);
        }
        *out = _mm512_reduce_add_ps(acc);
    }
}

/// Q5_K rows · per-256 int8 activation: nibble | fifth bit · 16 (0..=31, unsigned) into
/// `maddubs`, the 6-bit scales per 32 in `vpdpwssd`, the `dmin·m` minimums through `bsum16`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn rows_q5k(w: &[u8], row_bytes: usize, a: &Q8Act, y: &mut [f32]) {
    // Quarter g, lane k: sub-block 2g + k/16 (scales in words 0..8).
    let pick = word_pick(|g, k| 2 * g + k / 16);
    let nib = _mm256_set1_epi8(15);
    let one = _mm256_set1_epi8(1);
    for (row, out) in w.chunks_exact(row_bytes).zip(y.iter_mut()) {
        let (blocks, _) = row.as_chunks::<176>();
        let (xq, _) = a.q256.as_chunks::<QK_K>();
        let mut acc = _mm512_setzero_ps();
        for (bi, ((b, xq), &xd)) in blocks.iter().zip(xq).zip(&a.d256).enumerate() {
            let (sc, mn) = crate::simd_lowbit::k_scales_mins(&b[4..16]);
            let s8 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_set_epi64x(
                0,
                i64::from_le_bytes(sc),
            )));
            let m16 = crate::simd_lowbit::widen_u8(&std::array::from_fn(|k| mn[k / 2]));
            let qh = crate::simd::load32u(&b[16..48].as_chunks::<32>().0[0]);
            let (qs, _) = b[48..176].as_chunks::<32>();
            let (xs, _) = xq.as_chunks::<64>();
            let mut sums = [_mm512_setzero_si512(); 2];
            for g in 0..4 {
                let c = crate::simd::load32u(&qs[g]);
                // Fifth bits of sub-blocks 2g and 2g + 1: bits 2g, 2g + 1 of each qh byte.
                let h = |j: i32| {
                    let bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), one);
                    _mm256_slli_epi16::<4>(bit)
                };
                let lo = _mm256_or_si256(_mm256_and_si256(c, nib), h(2 * g as i32));
                let hi = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(c), nib),
                    h(2 * g as i32 + 1),
                );
                let q = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let p = _mm512_maddubs_epi16(q, load512(&xs[g]));
                sums[g % 2] = dpwssd(sums[g % 2], p, _mm512_permutexvar_epi16(pick[g], s8));
            }
            let mins = _mm256_madd_epi16(m16, crate::simd_lowbit::bsums(a, bi));
            let total = _mm512_cvtepi32_ps(_mm512_add_epi32(sums[0], sums[1]));
            acc = _mm512_fmadd_ps(total, _mm512_set1_ps(f16_at(b, 0) * xd), acc);
            let m = _mm512_cvtepi32_ps(_mm512_zextsi256_si512(mins));
            acc = _mm512_fmadd_ps(m, _mm512_set1_ps(-(f16_at(b, 2) * xd)), acc);
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
            GgmlType::F32 => load_f32x16(c),
            GgmlType::F16 => _mm512_cvtph_ps(load_u16x16(c)),
            _ => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(load_u16x16(
                c,
            )))),
        }
    };
    let scalar = |row: &[u8], k: usize| -> f32 {
        let o = width * k;
        match ty {
            GgmlType::F32 => f32::from_le_bytes([row[o], row[o + 1], row[o + 2], row[o + 3]]),
            GgmlType::F16 => crate::dequant::f16_to_f32(u16::from_le_bytes([row[o], row[o + 1]])),
            _ => crate::dequant::bf16_to_f32(u16::from_le_bytes([row[o], row[o + 1]])),
        }
    };
    let (xc, _) = x.as_chunks::<16>();
    let done = xc.len() * 16;
    let step = 16 * width;
    for (rows, ys) in w.chunks(4 * row_bytes).zip(y.chunks_mut(4)) {
        let r: Vec<&[u8]> = rows.chunks_exact(row_bytes).collect();
        let mut acc = [_mm512_setzero_ps(); 4];
        for (i, xv) in xc.iter().enumerate() {
            let xv = load_x16(xv);
            for (a, row) in acc.iter_mut().zip(&r) {
                *a = _mm512_fmadd_ps(widen(&row[i * step..(i + 1) * step]), xv, *a);
            }
        }
        for ((out, a), row) in ys.iter_mut().zip(acc).zip(&r) {
            let tail: f32 = x[done..]
                .iter()
                .enumerate()
                .map(|(k, xv)| scalar(row, done + k) * xv)
                .sum();
            *out = _mm512_reduce_add_ps(a) + tail;
        }
    }
}

/// 16 activations as one vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_x16(v: &[f32; 16]) -> __m512 {
    // WORKAROUND: an unaligned load has no safe intrinsic; reads exactly the 16 floats.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_ps(v.as_ptr())
    }
}

/// 16 floats from 64 bytes (a slice of at least 64).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_f32x16(c: &[u8]) -> __m512 {
    let c: &[u8; 64] = c[..64].try_into().expect("64 bytes");
    // WORKAROUND: an unaligned load has no safe intrinsic; reads exactly the 64 bytes.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_ps(c.as_ptr().cast())
    }
}

/// 16 u16 from 32 bytes.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_u16x16(c: &[u8]) -> __m256i {
    let c: &[u8; 32] = c[..32].try_into().expect("32 bytes");
    // WORKAROUND: as in `load_f32x16`.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_loadu_si256(c.as_ptr().cast())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{random_blocks, random_vector};
    use crate::GgmlType;

    #[test]
    fn every_iq2xxs_grid_byte_is_one_of_three_values() {
        for e in IQ2XXS_GRID {
            for b in e.to_le_bytes() {
                assert!(IQ2XXS_VALUES[..3].contains(&b), "{e:#x}");
            }
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
            (GgmlType::Q5_K, rows_q5k),
            (GgmlType::Q2_K, rows_q2k),
            (GgmlType::IQ1_S, rows_iq1s),
            (GgmlType::IQ1_M, rows_iq1m),
            (GgmlType::IQ2_S, rows_iq2s),
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
