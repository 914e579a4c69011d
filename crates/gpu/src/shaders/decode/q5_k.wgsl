// Q4_K plus a fifth bit per weight (qh[i] bit j): (d·sc)·q − dmin·m.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let dmin = f16at(blk + 2u);
    let sm = k_scale_min(blk + 4u, j);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let shift = 4u * (j % 2u);
    var q = words8(blk + 48u + 32u * (j / 2u));
    var h = words8(blk + 16u);
    for (var w = 0u; w < 8u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let v = ((byte(q[w], k) >> shift) & 15u) | (((byte(h[w], k) >> j) & 1u) << 4u);
            wv[4u * w + k] = dl * f32(v) - ml;
        }
    }
}
