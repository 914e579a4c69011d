// Two 8-bit grid indices (4 magnitudes each) per group of 8; per sub-block a u32 of four 7-bit
// sign indices and a 4-bit scale; db = d·(0.5 + s)·0.5.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let a = b32(blk + 66u + 4u * j);
    let db = d * (0.5 + f32(a >> 28u)) * 0.5;
    for (var l = 0u; l < 4u; l++) {
        let g1 = IQ3XXS_GRID + 4u * b8(blk + 2u + 8u * j + 2u * l);
        let g2 = IQ3XXS_GRID + 4u * b8(blk + 3u + 8u * j + 2u * l);
        let signs = tb8(KSIGNS + ((a >> (7u * l)) & 127u));
        for (var k = 0u; k < 4u; k++) {
            wv[8u * l + k] = db * f32(tb8(g1 + k)) * sgn(signs, k);
            wv[8u * l + 4u + k] = db * f32(tb8(g2 + k)) * sgn(signs, k + 4u);
        }
    }
}
