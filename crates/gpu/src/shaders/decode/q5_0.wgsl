// d·(q − 16), the fifth bit of weight j being bit j of the u32 qh.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let qh = b32(blk + 2u);
    for (var l = 0u; l < 16u; l++) {
        let q = b8(blk + 6u + l);
        let lo = (q & 15u) | (((qh >> l) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
        wv[l] = d * f32(i32(lo) - 16);
        wv[l + 16u] = d * f32(i32(hi) - 16);
    }
}
