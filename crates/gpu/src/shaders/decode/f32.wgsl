fn decode_group(roff: u32, g: u32) {
    for (var i = 0u; i < 32u; i++) {
        let c = g * 32u + i;
        wv[i] = select(0.0, bitcast<f32>(b32(roff + 4u * c)), c < P.cols);
    }
}
