// d·q + m with 5-bit q.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let m = f16at(blk + 2u);
    let qh = b32(blk + 4u);
    let q = words4(blk + 8u);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let l = 4u * w + k;
            let b = byte(q[w], k);
            let lo = (b & 15u) | (((qh >> l) & 1u) << 4u);
            let hi = (b >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
            wv[l] = d * f32(lo) + m;
            wv[l + 16u] = d * f32(hi) + m;
        }
    }
}
