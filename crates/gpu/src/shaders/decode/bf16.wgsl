// Two bfloat16 per word: the high halves of f32s.
fn decode_group(roff: u32, g: u32) {
    for (var p = 0u; p < 16u; p++) {
        let c = g * 32u + 2u * p;
        let v = b32(roff + 2u * c);
        wv[2u * p] = select(0.0, bitcast<f32>(v << 16u), c < P.cols);
        wv[2u * p + 1u] = select(0.0, bitcast<f32>(v & 0xffff0000u), c + 1u < P.cols);
    }
}
