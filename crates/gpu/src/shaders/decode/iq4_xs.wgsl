// IQ4_NL quants with a signed 6-bit scale per sub-block of 32: (d·(ls − 32))·k.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let scales_h = b16(blk + 2u);
    let low = (b8(blk + 4u + j / 2u) >> (4u * (j % 2u))) & 15u;
    let high = (scales_h >> (2u * j)) & 3u;
    let dl = d * f32(i32(low | (high << 4u)) - 32);
    let qs = blk + 8u + 16u * j;
    for (var i = 0u; i < 16u; i++) {
        let q = b8(qs + i);
        wv[i] = dl * sx8(tb8(KVALUES_IQ4NL + (q & 15u)));
        wv[i + 16u] = dl * sx8(tb8(KVALUES_IQ4NL + (q >> 4u)));
    }
}
