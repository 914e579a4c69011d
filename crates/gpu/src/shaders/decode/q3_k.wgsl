// 2 low bits in qs, an inverted high bit in hmask, 16 signed 6-bit scales: (d·S)·(q2 − 4·!hb).
fn decode(blk: u32, j: u32) {
    let d = f16at(blk + 108u);
    for (var h2 = 0u; h2 < 2u; h2++) {
        let s = 2u * j + h2;
        var low = 0u;
        if (s < 8u) {
            low = b8(blk + 96u + s) & 15u;
        } else {
            low = b8(blk + 96u + s - 8u) >> 4u;
        }
        let high = (b8(blk + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
        let dl = d * f32(i32(low | (high << 4u)) - 32);
        let v0 = 16u * s;
        let base = 32u + 32u * (v0 / 128u) + v0 % 32u;
        let shift = 2u * ((v0 % 128u) / 32u);
        let hshift = v0 / 32u;
        for (var i = 0u; i < 16u; i++) {
            let l = v0 % 32u + i;
            let q2 = i32((b8(blk + base + i) >> shift) & 3u);
            let hb = (b8(blk + l) >> hshift) & 1u;
            let q = select(q2 - 4, q2, hb != 0u);
            wv[16u * h2 + i] = dl * f32(q);
        }
    }
}
