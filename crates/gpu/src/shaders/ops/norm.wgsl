// RMSNorm (or LayerNorm) of `rows` rows of width d, one workgroup per row:
// y = x·rsqrt(mean(x²) + eps)·w, or (x − mean)·rsqrt(var + eps)·w + b.
// p0 = (rows, d, x_off, x_stride)   p1 = (y_off, y_stride, w_off, eps bits)
// p2 = (in_place: x is A, layer_norm, b_off, 0). x in B (or A), w and b in C.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * 65535u;
    if (r >= Q.p0.x) {
        return;
    }
    let d = Q.p0.y;
    let xb = Q.p0.z + r * Q.p0.w;
    let yb = Q.p1.x + r * Q.p1.y;
    let in_place = Q.p2.x != 0u;
    let layer = Q.p2.y != 0u;
    let st = norm_stats(xb, d, layer, in_place, Q.p1.w, lid);
    let mean = st.x;
    let inv = st.y;
    for (var i = lid; i < d; i += WG) {
        let v = (select(B[xb + i], A[xb + i], in_place) - mean) * inv * C[Q.p1.z + i];
        if (layer) {
            A[yb + i] = v + C[Q.p2.z + i];
        } else {
            A[yb + i] = v;
        }
    }
}
