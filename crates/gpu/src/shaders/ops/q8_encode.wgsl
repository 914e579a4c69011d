// q8_0 like llama.cpp's reference: per 32 values d = max|x|/127 (stored as f16),
// q = round-half-away(x/d). Writes `blocks` (1 or 2) blocks of v (34 bytes each, the first
// value's byte lowest) from the word U[word]: 17 whole words for two, nine for one (its last
// word half filled, the rest zero). Rows start on a word, so a row's blocks go two at a time.
fn q8_put(word: u32, v: ptr<function, array<f32, 64>>, blocks: u32) {
    var at = word;
    var acc = 0u;
    var nb = 0u;
    // Two steps, the second skipped for one block: `v` indexed by constants once unrolled.
    for (var b = 0u; b < 2u; b++) {
        if (b >= blocks) {
            break;
        }
        var amax = 0.0;
        for (var k = 0u; k < 32u; k++) {
            amax = max(amax, abs((*v)[32u * b + k]));
        }
        let d = amax / 127.0;
        let id = select(0.0, 1.0 / d, d > 0.0);
        let dh = pack2x16float(vec2<f32>(d, 0.0)) & 0xffffu;
        for (var k = 0u; k < 34u; k++) {
            var byte = (dh >> (8u * k)) & 0xffu;
            if (k >= 2u) {
                let x = (*v)[32u * b + k - 2u] * id;
                byte = bitcast<u32>(i32(sign(x) * floor(abs(x) + 0.5))) & 0xffu;
            }
            acc |= byte << (8u * nb);
            nb += 1u;
            if (nb == 4u) {
                U[at] = acc;
                at += 1u;
                acc = 0u;
                nb = 0u;
            }
        }
    }
    if (nb != 0u) {
        U[at] = acc;
    }
}
