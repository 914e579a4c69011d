// bf16 rounded to nearest even.
fn to_bf16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn pack2(lo: f32, hi: f32) -> u32 {
    return to_bf16(lo) | (to_bf16(hi) << 16u);
}
