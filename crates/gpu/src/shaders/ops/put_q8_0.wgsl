// row_store's output for a q8_0 cache: each invocation two blocks (17 words) by q8_put, the
// row zero-padded to whole blocks, as store_q8_0.
fn put_row(dst: u32, w: u32, lid: u32) {
    let blocks = (w + 31u) / 32u;
    for (var b = 2u * lid; b < blocks; b += 2u * WG) {
        var v: array<f32, 64>;
        for (var k = 0u; k < 64u; k++) {
            let c = 32u * b + k;
            v[k] = select(0.0, row[min(c, w - 1u)], c < w);
        }
        q8_put(dst + 17u * (b / 2u), &v, min(2u, blocks - b));
    }
}
