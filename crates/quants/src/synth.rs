//! Synthetic weights for tests and benchmarks: random blocks of any supported type whose
//! float fields (scales, mins, f16/bf16/f32 values) are finite and of ordinary magnitude, so
//! decoded weights never contain NaN or infinity.
//!
//! Invariant: the same (type, block count, seed) always gives the same bytes.

use crate::GgmlType;

/// A small, fast, seedable generator (xorshift64*), good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// f16 bits of a finite value in ±[2^-10, 2^-1) (typical quant scales).
fn small_f16(rng: &mut Rng) -> u16 {
    let exp = 5 + (rng.next_u64() % 9) as u16; // biased exponent 5..=13
    let mant = (rng.next_u64() & 0x3ff) as u16;
    let sign = ((rng.next_u64() & 1) as u16) << 15;
    sign | exp << 10 | mant
}

fn put_f16(block: &mut [u8], at: usize, v: u16) {
    block[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Offsets of the f16 scale fields of one block of `ty`.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ1_S
        | GgmlType::IQ4_XS => &[0],
        _ => &[],
    }
}

/// `n_blocks` random valid blocks of `ty` (for F32/F16/BF16: `n_blocks` values).
pub fn random_blocks(ty: GgmlType, n_blocks: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ ty.id() as u64);
    let bb = ty.block_bytes();
    let mut out = vec![0u8; n_blocks * bb];
    match ty {
        GgmlType::F32 => {
            for v in out.chunks_exact_mut(4) {
                v.copy_from_slice(&rng.unit().to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for v in out.chunks_exact_mut(2) {
                let bits = small_f16(&mut rng) + (5 << 10); // up to ~16
                v.copy_from_slice(&bits.to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for v in out.chunks_exact_mut(2) {
                let f = rng.unit();
                v.copy_from_slice(&((f.to_bits() >> 16) as u16).to_le_bytes());
            }
        }
        _ => {
            rng.fill(&mut out);
            for block in out.chunks_exact_mut(bb) {
                for &at in f16_fields(ty) {
                    put_f16(block, at, small_f16(&mut rng));
                }
                if ty == GgmlType::IQ1_M {
                    // The super-scale is an f16 spread over the top nibbles of the 4 u16 scales.
                    let d = small_f16(&mut rng);
                    for i in 0..4 {
                        let at = 48 + 2 * i;
                        let sc = u16::from_le_bytes([block[at], block[at + 1]]);
                        let nib = (d >> (4 * i)) & 0xf;
                        put_f16(block, at, (sc & 0x0fff) | nib << 12);
                    }
                }
            }
        }
    }
    out
}

/// A random activation vector in [-1, 1).
pub fn random_vector(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed.wrapping_add(0x5151));
    (0..n).map(|_| rng.unit()).collect()
}

/// The f64 dot of a quantized row (dequantized by the reference decoder) with the per-256 int8
/// activations `a` carries (`q256·d256`), and Σ|w·x| (the scale for rounding tolerances): what
/// a row kernel on the per-256 grid must reproduce up to f32 rounding.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn q256_reference_dot(ty: GgmlType, row: &[u8], a: &crate::q8::Q8Act) -> (f64, f64) {
    let w = crate::dequantize_to_vec(ty, row, a.q256.len()).expect("a valid row");
    let (mut want, mut scale) = (0f64, 0f64);
    for (i, wv) in w.iter().enumerate() {
        let xv = a.q256[i] as f64 * a.d256[i / 256] as f64;
        want += *wv as f64 * xv;
        scale += (*wv as f64 * xv).abs();
    }
    (want, scale)
}
