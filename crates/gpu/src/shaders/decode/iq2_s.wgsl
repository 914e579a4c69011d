// 10-bit grid indices (8 bits in qs, 2 in qh), an explicit sign byte per group of 8, 4-bit
// scales per 16 weights.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let qs = b32(blk + 2u + 4u * j);
    let sg = b32(blk + 34u + 4u * j);
    let qh = b8(blk + 66u + j);
    let sc = b8(blk + 74u + j);
    for (var l = 0u; l < 4u; l++) {
        let index = byte(qs, l) | (((qh >> (2u * l)) & 3u) << 8u);
        let db = d * (0.5 + f32((sc >> (4u * (l / 2u))) & 15u)) * 0.25;
        let grid = (IQ2S_GRID >> 2u) + 2u * index;
        let g = vec2<u32>(tw(grid), tw(grid + 1u));
        let signs = byte(sg, l);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = db * f32(byte(g[k / 4u], k % 4u)) * sgn(signs, k);
        }
    }
}
