// d·q + m with 5-bit q.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let m = f16at(blk + 2u);
    let qh = b32(blk + 4u);
    for (var l = 0u; l < 16u; l++) {
        let q = b8(blk + 8u + l);
        let lo = (q & 15u) | (((qh >> l) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
        wv[l] = d * f32(lo) + m;
        wv[l + 16u] = d * f32(hi) + m;
    }
}
