// row_store's output for an f16 or bf16 cache: two values per word by the type's pack2 (a
// last odd value paired with 0), as store_half.
fn put_row(dst: u32, w: u32, lid: u32) {
    for (var j = lid; j < (w + 1u) / 2u; j += WG) {
        let hi = select(0.0, row[min(2u * j + 1u, w - 1u)], 2u * j + 1u < w);
        U[dst + j] = pack2(row[2u * j], hi);
    }
}
