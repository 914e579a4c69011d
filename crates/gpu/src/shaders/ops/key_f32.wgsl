// Cache value c of row `row` (f32 cache: one word per value).
fn key(base: u32, stride: u32, row: u32, c: u32) -> f32 {
    return bitcast<f32>(D[base + row * stride + c]);
}
