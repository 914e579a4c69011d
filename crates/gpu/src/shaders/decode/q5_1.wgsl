// d·q + m with 5-bit q.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let m = f16at(blk + 2u);
    let qh = b32(blk + 4u);
    let q = words4(blk + 8u);
    for (var l = 0u; l < 16u; l++) {
        let v = q5_pair(q, qh, l);
        wv[l] = d * f32(v.x) + m;
        wv[l + 16u] = d * f32(v.y) + m;
    }
}
