// Two halves per word.
fn decode_group(roff: u32, g: u32) {
    for (var p = 0u; p < 16u; p++) {
        let c = g * 32u + 2u * p;
        let v = unpack2x16float(b32(roff + 2u * c));
        wv[2u * p] = select(0.0, v.x, c < P.cols);
        wv[2u * p + 1u] = select(0.0, v.y, c + 1u < P.cols);
    }
}
