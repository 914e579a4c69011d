// 11-bit indices into the ternary iq1s grid (8 signed bytes per entry: two table words); per
// sub-block a u16 with the 3 high index bits of each group, a 3-bit scale and the sign of the
// ±0.125 delta: (d·(2s + 1))·(grid + delta).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let h = b16(blk + 34u + 2u * j);
    let dl = d * f32(2u * ((h >> 12u) & 7u) + 1u);
    let delta = select(0.125, -0.125, (h & 0x8000u) != 0u);
    let qs = b32(blk + 2u + 4u * j);
    for (var l = 0u; l < 4u; l++) {
        let index = byte(qs, l) | (((h >> (3u * l)) & 7u) << 8u);
        let grid = (IQ1S_GRID >> 2u) + 2u * index;
        let g = vec2<u32>(tw(grid), tw(grid + 1u));
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = dl * (sx8(g[k / 4u] >> (8u * (k % 4u))) + delta);
        }
    }
}
