// IQ4_NL quants with a signed 6-bit scale per sub-block of 32: (d·(ls − 32))·k.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let scales_h = b16(blk + 2u);
    let low = (b8(blk + 4u + j / 2u) >> (4u * (j % 2u))) & 15u;
    let high = (scales_h >> (2u * j)) & 3u;
    let dl = d * f32(i32(low | (high << 4u)) - 32);
    let q = words4(blk + 8u + 16u * j);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let b = byte(q[w], k);
            wv[4u * w + k] = dl * kv(b & 15u);
            wv[4u * w + k + 16u] = dl * kv(b >> 4u);
        }
    }
}
