fn decode_group(roff: u32, g: u32) {
    for (var i = 0u; i < 32u; i++) {
        let c = g * 32u + i;
        wv[i] = select(0.0, bitcast<f32>(b16(roff + 2u * c) << 16u), c < P.cols);
    }
}
