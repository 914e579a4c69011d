// d·kvalues_iq4nl[nibble]; low nibbles are weights 0–15, high nibbles 16–31.
fn decode(blk: u32, j: u32) {
    let d = f16at(blk);
    for (var l = 0u; l < 16u; l++) {
        let q = b8(blk + 2u + l);
        wv[l] = d * sx8(tb8(KVALUES_IQ4NL + (q & 15u)));
        wv[l + 16u] = d * sx8(tb8(KVALUES_IQ4NL + (q >> 4u)));
    }
}
