// The 6-bit (scale, min) pair of sub-block j in the 12-byte Q4_K/Q5_K scale field at `sc`.
fn k_scale_min(sc: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2<u32>(b8(sc + j) & 63u, b8(sc + j + 4u) & 63u);
    }
    return vec2<u32>(
        (b8(sc + j + 4u) & 15u) | ((b8(sc + j - 4u) >> 6u) << 4u),
        (b8(sc + j + 4u) >> 4u) | ((b8(sc + j) >> 6u) << 4u),
    );
}
