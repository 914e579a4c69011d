fn pack2(lo: f32, hi: f32) -> u32 {
    return pack2x16float(vec2<f32>(lo, hi));
}
