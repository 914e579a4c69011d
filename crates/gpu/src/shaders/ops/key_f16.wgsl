// Cache value c of row `row` (f16 cache: two values per word).
fn key(base: u32, stride: u32, row: u32, c: u32) -> f32 {
    let w = D[base + row * stride + c / 2u];
    let v = unpack2x16float(w);
    return select(v.x, v.y, (c & 1u) == 1u);
}
