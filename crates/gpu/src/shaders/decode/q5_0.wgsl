// d·(q − 16), the fifth bit of weight j being bit j of the u32 qh.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let qh = b32(blk + 2u);
    let q = words4(blk + 6u);
    for (var l = 0u; l < 16u; l++) {
        let v = q5_pair(q, qh, l);
        wv[l] = d * f32(i32(v.x) - 16);
        wv[l + 16u] = d * f32(i32(v.y) - 16);
    }
}
