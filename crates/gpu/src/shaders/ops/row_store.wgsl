// A cache row prepared and stored in one dispatch, one workgroup per row r < n: the row of w
// values at B[x_off + r·x_stride ..] gets RMSNorm by C[w_off ..] on its first `cols` values
// (with `layer`, LayerNorm with the bias at C[b_off ..]), then RoPE on one head — the pairs
// (rope_off + 2j, rope_off + 2j + 1), or with `halves` (rope_off + j, rope_off + j + half),
// rotated by cos M[cos_off + r·half + j], sin M[sin_off + r·half + j] — and goes to the cache
// U at row first + r by the cache type's put_row. The same f32 steps as norm, rope and store.
// p0 = (n, w, x_off, x_stride)   p1 = (base, stride, first, eps bits)
// p2 = (cols, flags: 1 layer, 2 halves, w_off, b_off)   p3 = (rope_off, half, cos_off, sin_off)
// ROW_MAX (w ≤ ROW_MAX) comes from the host.
var<workgroup> row: array<f32, ROW_MAX>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * 65535u;
    if (r >= Q.p0.x) {
        return;
    }
    let w = Q.p0.y;
    let xb = Q.p0.z + r * Q.p0.w;
    let cols = Q.p2.x;
    let layer = (Q.p2.y & 1u) != 0u;
    let st = norm_stats(xb, cols, layer, false, Q.p1.w, lid);
    let mean = st.x;
    let inv = st.y;
    for (var i = lid; i < w; i += WG) {
        var v = B[xb + i];
        if (i < cols) {
            v = (v - mean) * inv * C[Q.p2.z + i];
            if (layer) {
                v += C[Q.p2.w + i];
            }
        }
        row[i] = v;
    }
    workgroupBarrier();
    let half = Q.p3.y;
    for (var j = lid; j < half; j += WG) {
        let ab = rope_cols(Q.p3.x, j, half, (Q.p2.y & 2u) != 0u);
        let c = M[Q.p3.z + r * half + j];
        let s = M[Q.p3.w + r * half + j];
        let y = rotate(row[ab.x], row[ab.y], c, s);
        row[ab.x] = y.x;
        row[ab.y] = y.y;
    }
    workgroupBarrier();
    put_row(Q.p1.x + (Q.p1.z + r) * Q.p1.y, w, lid);
}
