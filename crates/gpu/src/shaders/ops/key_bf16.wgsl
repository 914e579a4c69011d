// Cache value c of row `row` (bf16 cache: two values per word, the first in the low half).
fn key(base: u32, stride: u32, row: u32, c: u32) -> f32 {
    let w = D[base + row * stride + c / 2u];
    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (c & 1u) == 1u));
}
