// Like IQ1_S with a 3-bit scale per 16 weights, a delta sign per group, and the f16
// super-scale assembled from the top nibbles of the four scale u16s.
fn decode(blk: u32, j: u32) {
    let s01 = b32(blk + 48u);
    let s23 = b32(blk + 52u);
    let bits = ((s01 & 0xffffu) >> 12u) | ((s01 >> 24u) & 0x00f0u) | ((s23 >> 4u) & 0x0f00u)
        | ((s23 >> 16u) & 0xf000u);
    let d = unpack2x16float(bits).x;
    let scj = (select(s23, s01, j < 4u) >> (16u * ((j / 2u) % 2u))) & 0xffffu;
    let ns = b16(blk + 32u + 2u * j);
    let qs = b32(blk + 4u * j);
    for (var l = 0u; l < 4u; l++) {
        let s = (scj >> (6u * (j % 2u) + 3u * (l / 2u))) & 7u;
        let dl = d * f32(2u * s + 1u);
        let n = (ns >> (4u * l)) & 15u;
        let index = byte(qs, l) | ((n & 7u) << 8u);
        let delta = select(0.125, -0.125, (n & 8u) != 0u);
        let grid = (IQ1S_GRID >> 2u) + 2u * index;
        let g = vec2<u32>(tw(grid), tw(grid + 1u));
        for (var k = 0u; k < 8u; k++) {
            wv[8u * l + k] = dl * (sx8(g[k / 4u] >> (8u * (k % 4u))) + delta);
        }
    }
}
