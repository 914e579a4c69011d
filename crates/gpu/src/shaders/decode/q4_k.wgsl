// 8 sub-blocks of 32 with 6-bit scale and min: (d·sc)·q − dmin·m.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let dmin = f16at(blk + 2u);
    let sm = k_scale_min(blk + 4u, j);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let shift = 4u * (j % 2u);
    var q = words8(blk + 16u + 32u * (j / 2u));
    for (var w = 0u; w < 8u; w++) {
        for (var k = 0u; k < 4u; k++) {
            wv[4u * w + k] = dl * f32((byte(q[w], k) >> shift) & 15u) - ml;
        }
    }
}
