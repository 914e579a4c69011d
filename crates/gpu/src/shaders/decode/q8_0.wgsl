// d·qs[i] with signed bytes.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    var q = words8(blk + 2u);
    for (var w = 0u; w < 8u; w++) {
        for (var k = 0u; k < 4u; k++) {
            wv[4u * w + k] = sx8(q[w] >> (8u * k)) * d;
        }
    }
}
