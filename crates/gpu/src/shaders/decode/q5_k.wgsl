// Q4_K plus a fifth bit per weight (qh[i] bit j): (d·sc)·q − dmin·m.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    let dmin = f16at(blk + 2u);
    let sm = k_scale_min(blk + 4u, j);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let qs = blk + 48u + 32u * (j / 2u);
    let shift = 4u * (j % 2u);
    for (var i = 0u; i < 32u; i++) {
        let q = ((b8(qs + i) >> shift) & 15u) | (((b8(blk + 16u + i) >> j) & 1u) << 4u);
        wv[i] = dl * f32(q) - ml;
    }
}
