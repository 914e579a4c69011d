fn decode_group(roff: u32, g: u32) {
    for (var i = 0u; i < 32u; i++) {
        let c = g * 32u + i;
        wv[i] = select(0.0, f16at(roff + 2u * c), c < P.cols);
    }
}
