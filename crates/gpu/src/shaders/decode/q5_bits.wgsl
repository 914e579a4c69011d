// The 5-bit values of weights l and l + 16 of a Q5_0/Q5_1 block: the nibbles of byte l of the
// quants `q`, with bits l and l + 16 of `qh` on top.
fn q5_pair(q: vec4<u32>, qh: u32, l: u32) -> vec2<u32> {
    let b = byte(q[l / 4u], l % 4u);
    return vec2<u32>(
        (b & 15u) | (((qh >> l) & 1u) << 4u),
        (b >> 4u) | (((qh >> (l + 16u)) & 1u) << 4u),
    );
}
