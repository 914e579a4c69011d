// MLA attention in absorbed form over the latent cache, one workgroup per (query i, head h):
// s_t = scale·(q̃·c_kv(t) + q_pe·k_pe(t)) (+ mask), causal to position p0 + i; softmax over t;
// out = Σ_t p_t·c_kv(t). Cache rows are [c_kv (kv_lora) ; k_pe (rope)].
// p0 = (n, heads, T, p0)   p1 = (kv_lora, rope, qabs_off (B), qpe_off (C))
// p2 = (qpe_token_stride, qpe_head_stride, key_base, key_stride)
// p3 = (scale bits, has_mask (M[i·T + t]), out_off (A), scratch_off (U))
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.x;
    let h = wid.y;
    let heads = Q.p0.y;
    let t_len = Q.p0.z;
    let kv_lora = Q.p1.x;
    let rope = Q.p1.y;
    let qa = Q.p1.z + (i * heads + h) * kv_lora;
    let qp = Q.p1.w + i * Q.p2.x + h * Q.p2.y;
    let kb = Q.p2.z;
    let ks = Q.p2.w;
    let scale = pf(Q.p3.x);
    let has_mask = Q.p3.y != 0u;
    let sc = Q.p3.w + (i * heads + h) * t_len;
    let visible = min(Q.p0.w + i + 1u, t_len);
    var mx = -3.4e38;
    for (var t = lid; t < visible; t += WG) {
        var s = 0.0;
        for (var c = 0u; c < kv_lora; c++) {
            s += B[qa + c] * key(kb, ks, t, c);
        }
        for (var c = 0u; c < rope; c++) {
            s += C[qp + c] * key(kb, ks, t, kv_lora + c);
        }
        s *= scale;
        if (has_mask) {
            s += M[i * t_len + t];
        }
        U[sc + t] = bitcast<u32>(s);
        mx = max(mx, s);
    }
    let sum = softmax_exp(sc, visible, mx, lid);
    let out = Q.p3.z + (i * heads + h) * kv_lora;
    for (var c = lid; c < kv_lora; c += WG) {
        var acc = 0.0;
        for (var t = 0u; t < visible; t++) {
            acc += bitcast<f32>(U[sc + t]) * key(kb, ks, t, c);
        }
        A[out + c] = acc / sum;
    }
}
