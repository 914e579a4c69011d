// Per sub-block two u32s: four 8-bit grid indices, then four 7-bit sign indices and a 4-bit
// scale; db = d·(0.5 + s)·0.25. A grid entry is 8 bytes: two table words.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let a0 = b32(blk + 2u + 8u * j);
    let a1 = b32(blk + 6u + 8u * j);
    let db = d * (0.5 + f32(a1 >> 28u)) * 0.25;
    for (var l = 0u; l < 4u; l++) {
        let grid = (IQ2XXS_GRID >> 2u) + 2u * byte(a0, l);
        let g = vec2<u32>(tw(grid), tw(grid + 1u));
        let signs = ksigns((a1 >> (7u * l)) & 127u);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = db * f32(byte(g[k / 4u], k % 4u)) * sgn(signs, k);
        }
    }
}
