// d·(q − 16), the fifth bit of weight j being bit j of the u32 qh.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let qh = b32(blk + 2u);
    let q = words4(blk + 6u);
    for (var w = 0u; w < 4u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let l = 4u * w + k;
            let b = byte(q[w], k);
            let lo = (b & 15u) | (((qh >> l) & 1u) << 4u);
            let hi = (b >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u);
            wv[l] = d * f32(i32(lo) - 16);
            wv[l + 16u] = d * f32(i32(hi) - 16);
        }
    }
}
