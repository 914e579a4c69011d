// Like IQ1_S with a 3-bit scale per 16 weights, a delta sign per group, and the f16
// super-scale assembled from the top nibbles of the four scale u16s.
fn decode(blk: u32, j: u32) {
    let sc0 = b16(blk + 48u);
    let sc1 = b16(blk + 50u);
    let sc2 = b16(blk + 52u);
    let sc3 = b16(blk + 54u);
    let bits = (sc0 >> 12u) | ((sc1 >> 8u) & 0x00f0u) | ((sc2 >> 4u) & 0x0f00u) | (sc3 & 0xf000u);
    let d = unpack2x16float(bits).x;
    let scj = b16(blk + 48u + 2u * (j / 2u));
    for (var l = 0u; l < 4u; l++) {
        let s = (scj >> (6u * (j % 2u) + 3u * (l / 2u))) & 7u;
        let dl = d * f32(2u * s + 1u);
        let n = (b8(blk + 32u + 2u * j + l / 2u) >> (4u * (l % 2u))) & 15u;
        let index = b8(blk + 4u * j + l) | ((n & 7u) << 8u);
        let delta = select(0.125, -0.125, (n & 8u) != 0u);
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = dl * (sx8(tb8(IQ1S_GRID + 8u * index + k)) + delta);
        }
    }
}
