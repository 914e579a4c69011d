// Two 8-bit grid indices (4 magnitudes each, one table word) per group of 8; per sub-block a
// u32 of four 7-bit sign indices and a 4-bit scale; db = d·(0.5 + s)·0.5.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let a = b32(blk + 66u + 4u * j);
    let db = d * (0.5 + f32(a >> 28u)) * 0.5;
    let qa = b32(blk + 2u + 8u * j);
    let qb = b32(blk + 6u + 8u * j);
    for (var l = 0u; l < 4u; l++) {
        let q = select(qb, qa, l < 2u);
        let g1 = tw((IQ3XXS_GRID >> 2u) + byte(q, (2u * l) % 4u));
        let g2 = tw((IQ3XXS_GRID >> 2u) + byte(q, (2u * l + 1u) % 4u));
        let signs = ksigns((a >> (7u * l)) & 127u);
        for (var k = 0u; k < 4u; k++) {
            wv[8u * l + k] = db * f32(byte(g1, k)) * sgn(signs, k);
            wv[8u * l + 4u + k] = db * f32(byte(g2, k)) * sgn(signs, k + 4u);
        }
    }
}
