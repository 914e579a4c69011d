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
        let shift = 2u * ((v0 % 128u) / 32u);
        let hshift = v0 / 32u;
        let q = words4(blk + 32u + 32u * (v0 / 128u) + v0 % 32u);
        let m = words4(blk + v0 % 32u);
        for (var w = 0u; w < 4u; w++) {
            for (var k = 0u; k < 4u; k++) {
                let q2 = i32((byte(q[w], k) >> shift) & 3u);
                let hb = (byte(m[w], k) >> hshift) & 1u;
                wv[16u * h2 + 4u * w + k] = dl * f32(select(q2 - 4, q2, hb != 0u));
            }
        }
    }
}
