// d·nibble + m.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let m = f16at(blk + 2u);
    let q = words4(blk + 4u);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let b = byte(q[w], k);
            wv[4u * w + k] = d * f32(b & 15u) + m;
            wv[4u * w + k + 16u] = d * f32(b >> 4u) + m;
        }
    }
}
