// The 6-bit (scale, min) pair of sub-block j in the 12-byte Q4_K/Q5_K scale field at `sc`.
fn k_scale_min(sc: u32, j: u32) -> vec2<u32> {
    let s = vec3<u32>(b32(sc), b32(sc + 4u), b32(sc + 8u));
    if (j < 4u) {
        return vec2<u32>(byte(s.x, j) & 63u, byte(s.y, j) & 63u);
    }
    let a = byte(s.z, j - 4u);
    return vec2<u32>(
        (a & 15u) | ((byte(s.x, j - 4u) >> 6u) << 4u),
        (a >> 4u) | ((byte(s.y, j - 4u) >> 6u) << 4u),
    );
}
