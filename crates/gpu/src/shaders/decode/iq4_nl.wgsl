// d·kvalues_iq4nl[nibble]; low nibbles are weights 0–15, high nibbles 16–31.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let q = words4(blk + 2u);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let b = byte(q[w], k);
            wv[4u * w + k] = d * kv(b & 15u);
            wv[4u * w + k + 16u] = d * kv(b >> 4u);
        }
    }
}

