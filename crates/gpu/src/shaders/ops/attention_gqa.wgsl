// Causal grouped-query attention over a cache of [k ; v] rows, one workgroup per (query i,
// head h). Head h reads KV head g = h / group: its key at columns g·hd.. of a row, its value
// at the same columns of the row's second half (which starts v_base words into the row).
// s_t = scale·(q·k(t)) for t ≤ p0 + i; softmax over t; out = Σ_t p_t·v(t).
// p0 = (n, heads, T, p0)   p1 = (hd, group, q_off (B), v_base)
// p2 = (key_base, key_stride, scale bits, out_off (A))   p3 = (scratch_off (U), 0, 0, 0)
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.x;
    let h = wid.y;
    let heads = Q.p0.y;
    let t_len = Q.p0.z;
    let hd = Q.p1.x;
    let col = (h / Q.p1.y) * hd;
    let qb = Q.p1.z + (i * heads + h) * hd;
    let kb = Q.p2.x;
    let vb = kb + Q.p1.w;
    let ks = Q.p2.y;
    let scale = pf(Q.p2.z);
    let sc = Q.p3.x + (i * heads + h) * t_len;
    let visible = min(Q.p0.w + i + 1u, t_len);
    var mx = -3.4e38;
    for (var t = lid; t < visible; t += WG) {
        var s = 0.0;
        for (var c = 0u; c < hd; c++) {
            s += B[qb + c] * key(kb, ks, t, col + c);
        }
        s *= scale;
        U[sc + t] = bitcast<u32>(s);
        mx = max(mx, s);
    }
    let sum = softmax_exp(sc, visible, mx, lid);
    let out = Q.p2.w + (i * heads + h) * hd;
    for (var c = lid; c < hd; c += WG) {
        var acc = 0.0;
        for (var t = 0u; t < visible; t++) {
            acc += bitcast<f32>(U[sc + t]) * key(vb, ks, t, col + c);
        }
        A[out + c] = acc / sum;
    }
}
