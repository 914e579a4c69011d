// 4 low bits in ql, 2 high bits in qh, signed 8-bit scales per 16: (d·sc)·(q − 32).
// Group j covers weights 32j..32j+32: half h = j/4, quarter t = j%4.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk + 208u);
    let h = j / 4u;
    let t = j % 4u;
    let qshift = 4u * (t >> 1u);
    let hshift = 2u * t;
    let sc = b16(blk + 192u + 2u * j);
    let d0 = d * sx8(sc);
    let d1 = d * sx8(sc >> 8u);
    var l = words8(blk + 64u * h + 32u * (t & 1u));
    var hb = words8(blk + 128u + 32u * h);
    for (var w = 0u; w < 8u; w++) {
        for (var k = 0u; k < 4u; k++) {
            let q = ((byte(l[w], k) >> qshift) & 15u) | (((byte(hb[w], k) >> hshift) & 3u) << 4u);
            wv[4u * w + k] = select(d1, d0, w < 4u) * f32(i32(q) - 32);
        }
    }
}
