// A u16 per group of 8 (9-bit grid index, 7-bit sign index), 4-bit scales per 16 weights.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    for (var l = 0u; l < 4u; l++) {
        let g = 4u * j + l;
        let q = b16(blk + 2u + 2u * g);
        let nibble = (b8(blk + 66u + j) >> (4u * (l / 2u))) & 15u;
        let db = d * (0.5 + f32(nibble)) * 0.25;
        let grid = IQ2XS_GRID + 8u * (q & 511u);
        let signs = tb8(KSIGNS + (q >> 9u));
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = db * f32(tb8(grid + k)) * sgn(signs, k);
        }
    }
}
