// Sub-blocks of 16 with a 4-bit scale and min each: (d·sc)·q − dmin·m. Weight v = 16s + i sits
// in byte 32h + l at bit pair t (h = v/128, t = v%128/32, l = v%32).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk + 80u);
    let dmin = f16at(blk + 82u);
    for (var h2 = 0u; h2 < 2u; h2++) {
        let s = 2u * j + h2;
        let sc = b8(blk + s);
        let dl = d * f32(sc & 15u);
        let ml = dmin * f32(sc >> 4u);
        let v0 = 16u * s;
        let base = 16u + 32u * (v0 / 128u) + v0 % 32u;
        let shift = 2u * ((v0 % 128u) / 32u);
        for (var i = 0u; i < 16u; i++) {
            let q = (b8(blk + base + i) >> shift) & 3u;
            wv[16u * h2 + i] = dl * f32(q) - ml;
        }
    }
}
