// d·(nibble − 8); low nibbles are weights 0–15, high nibbles 16–31.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    for (var l = 0u; l < 16u; l++) {
        let q = b8(blk + 2u + l);
        wv[l] = d * f32(i32(q & 15u) - 8);
        wv[l + 16u] = d * f32(i32(q >> 4u) - 8);
    }
}
