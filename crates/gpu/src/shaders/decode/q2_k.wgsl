// Sub-blocks of 16 with a 4-bit scale and min each: (d·sc)·q − dmin·m. Weight v = 16s + i sits
// in byte 32h + l at bit pair t (h = v/128, t = v%128/32, l = v%32).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk + 80u);
    let dmin = f16at(blk + 82u);
    let scs = b16(blk + 2u * j);
    for (var h2 = 0u; h2 < 2u; h2++) {
        let s = 2u * j + h2;
        let sc = byte(scs, h2);
        let dl = d * f32(sc & 15u);
        let ml = dmin * f32(sc >> 4u);
        let v0 = 16u * s;
        let shift = 2u * ((v0 % 128u) / 32u);
        let q = words4(blk + 16u + 32u * (v0 / 128u) + v0 % 32u);
        for (var w = 0u; w < 4u; w++) {
            for (var k = 0u; k < 4u; k++) {
                wv[16u * h2 + 4u * w + k] = dl * f32((byte(q[w], k) >> shift) & 3u) - ml;
            }
        }
    }
}
