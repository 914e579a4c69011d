// 4 low bits in ql, 2 high bits in qh, signed 8-bit scales per 16: (d·sc)·(q − 32).
// Group j covers weights 32j..32j+32: half h = j/4, quarter t = j%4.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk + 208u);
    let h = j / 4u;
    let t = j % 4u;
    let ql = blk + 64u * h + 32u * (t & 1u);
    let qshift = 4u * (t >> 1u);
    let qh = blk + 128u + 32u * h;
    let hshift = 2u * t;
    for (var i = 0u; i < 32u; i++) {
        let q = ((b8(ql + i) >> qshift) & 15u) | (((b8(qh + i) >> hshift) & 3u) << 4u);
        let dl = d * sx8(b8(blk + 192u + 2u * j + i / 16u));
        wv[i] = dl * f32(i32(q) - 32);
    }
}
