// 11-bit indices into the ternary iq1s grid; per sub-block a u16 with the 3 high index bits of
// each group, a 3-bit scale and the sign of the ±0.125 delta: (d·(2s + 1))·(grid + delta).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let h = b16(blk + 34u + 2u * j);
    let dl = d * f32(2u * ((h >> 12u) & 7u) + 1u);
    let delta = select(0.125, -0.125, (h & 0x8000u) != 0u);
    for (var l = 0u; l < 4u; l++) {
        let index = b8(blk + 2u + 4u * j + l) | (((h >> (3u * l)) & 7u) << 8u);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = dl * (sx8(tb8(IQ1S_GRID + 8u * index + k)) + delta);
        }
    }
}
