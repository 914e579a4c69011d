// d·(nibble − 8); low nibbles are weights 0–15, high nibbles 16–31.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let q = words4(blk + 2u);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let b = byte(q[w], k);
            wv[4u * w + k] = d * f32(i32(b & 15u) - 8);
            wv[4u * w + k + 16u] = d * f32(i32(b >> 4u) - 8);
        }
    }
}
