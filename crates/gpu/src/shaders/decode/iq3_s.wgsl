// Two 9-bit grid indices (8 bits in qs, 1 in qh) per group of 8, an explicit sign byte per
// group, a 4-bit scale per sub-block; db = d·(1 + 2s).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let nibble = (b8(blk + 106u + j / 2u) >> (4u * (j % 2u))) & 15u;
    let db = d * f32(1u + 2u * nibble);
    let qh = b8(blk + 66u + j);
    for (var l = 0u; l < 4u; l++) {
        let i1 = b8(blk + 2u + 8u * j + 2u * l) | (((qh >> (2u * l)) & 1u) << 8u);
        let i2 = b8(blk + 3u + 8u * j + 2u * l) | (((qh >> (2u * l + 1u)) & 1u) << 8u);
        let signs = b8(blk + 74u + 4u * j + l);
        for (var k = 0u; k < 4u; k++) {
            wv[8u * l + k] = db * f32(tb8(IQ3S_GRID + 4u * i1 + k)) * sgn(signs, k);
            wv[8u * l + 4u + k] = db * f32(tb8(IQ3S_GRID + 4u * i2 + k)) * sgn(signs, k + 4u);
        }
    }
}
