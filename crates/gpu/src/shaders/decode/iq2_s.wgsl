// 10-bit grid indices (8 bits in qs, 2 in qh), an explicit sign byte per group of 8, 4-bit
// scales per 16 weights.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    for (var l = 0u; l < 4u; l++) {
        let g = 4u * j + l;
        let index = b8(blk + 2u + g) | (((b8(blk + 66u + j) >> (2u * l)) & 3u) << 8u);
        let nibble = (b8(blk + 74u + j) >> (4u * (l / 2u))) & 15u;
        let db = d * (0.5 + f32(nibble)) * 0.25;
        let grid = IQ2S_GRID + 8u * index;
        let signs = b8(blk + 34u + g);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = db * f32(tb8(grid + k)) * sgn(signs, k);
        }
    }
}
