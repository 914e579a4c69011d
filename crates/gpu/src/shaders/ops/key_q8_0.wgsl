// Cache value c of row `row` (q8_0 cache: 34-byte blocks of an f16 scale and 32 signed bytes;
// each row padded to whole words on the device).
fn db8(o: u32) -> u32 {
    return (D[o >> 2u] >> ((o & 3u) << 3u)) & 0xffu;
}

fn key(base: u32, stride: u32, row: u32, c: u32) -> f32 {
    let blk = (base + row * stride) * 4u + (c / 32u) * 34u;
    let d = unpack2x16float(db8(blk) | (db8(blk + 1u) << 8u)).x;
    let q = f32(bitcast<i32>(db8(blk + 2u + c % 32u) << 24u) >> 24u);
    return q * d;
}
