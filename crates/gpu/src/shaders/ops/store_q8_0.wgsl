// As store_f32, quantized to q8_0 (q8_put): the row zero-padded to whole blocks and its bytes
// to whole words. One invocation per row.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= Q.p0.x) {
        return;
    }
    let w = Q.p0.y;
    let src = Q.p0.z + i * Q.p0.w;
    let row = Q.p1.x + (Q.p1.z + i) * Q.p1.y;
    let blocks = (w + 31u) / 32u;
    for (var b = 0u; b < blocks; b += 2u) {
        var v: array<f32, 64>;
        for (var k = 0u; k < 64u; k++) {
            let c = 32u * b + k;
            v[k] = select(0.0, B[src + min(c, w - 1u)], c < w);
        }
        q8_put(row + 17u * (b / 2u), &v, min(2u, blocks - b));
    }
}
