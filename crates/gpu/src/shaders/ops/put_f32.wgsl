// row_store's output for an f32 cache: a word per value.
fn put_row(dst: u32, w: u32, lid: u32) {
    for (var i = lid; i < w; i += WG) {
        U[dst + i] = bitcast<u32>(row[i]);
    }
}
