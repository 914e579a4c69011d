// d·nibble + m.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let m = f16at(blk + 2u);
    for (var l = 0u; l < 16u; l++) {
        let q = b8(blk + 4u + l);
        wv[l] = d * f32(q & 15u) + m;
        wv[l + 16u] = d * f32(q >> 4u) + m;
    }
}
