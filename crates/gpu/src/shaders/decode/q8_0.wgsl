// d·qs[i] with signed bytes.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    for (var i = 0u; i < 32u; i++) {
        wv[i] = sx8(b8(blk + 2u + i)) * d;
    }
}
