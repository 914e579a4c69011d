// A u16 per group of 8 (9-bit grid index, 7-bit sign index), 4-bit scales per 16 weights.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let qa = b32(blk + 2u + 8u * j);
    let qb = b32(blk + 6u + 8u * j);
    let sc = b8(blk + 66u + j);
    for (var l = 0u; l < 4u; l++) {
        let q = (select(qb, qa, l < 2u) >> (16u * (l % 2u))) & 0xffffu;
        let db = d * (0.5 + f32((sc >> (4u * (l / 2u))) & 15u)) * 0.25;
        let grid = (IQ2XS_GRID >> 2u) + 2u * (q & 511u);
        let g = vec2<u32>(tw(grid), tw(grid + 1u));
        let signs = ksigns(q >> 9u);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = db * f32(byte(g[k / 4u], k % 4u)) * sgn(signs, k);
        }
    }
}
