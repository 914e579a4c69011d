// Two 9-bit grid indices (8 bits in qs, 1 in qh; 4 magnitudes each, one table word) per group
// of 8, an explicit sign byte per group, a 4-bit scale per sub-block; db = d·(1 + 2s).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let nibble = (b8(blk + 106u + j / 2u) >> (4u * (j % 2u))) & 15u;
    let db = d * f32(1u + 2u * nibble);
    let qh = b8(blk + 66u + j);
    let qa = b32(blk + 2u + 8u * j);
    let qb = b32(blk + 6u + 8u * j);
    let sg = b32(blk + 74u + 4u * j);
    for (var l = 0u; l < 4u; l++) {
        let q = select(qb, qa, l < 2u);
        let i1 = byte(q, (2u * l) % 4u) | (((qh >> (2u * l)) & 1u) << 8u);
        let i2 = byte(q, (2u * l + 1u) % 4u) | (((qh >> (2u * l + 1u)) & 1u) << 8u);
        let g1 = tw((IQ3S_GRID >> 2u) + i1);
        let g2 = tw((IQ3S_GRID >> 2u) + i2);
        let signs = byte(sg, l);
        for (var k = 0u; k < 4u; k++) {
            wv[8u * l + k] = db * f32(byte(g1, k)) * sgn(signs, k);
            wv[8u * l + 4u + k] = db * f32(byte(g2, k)) * sgn(signs, k + 4u);
        }
    }
}
