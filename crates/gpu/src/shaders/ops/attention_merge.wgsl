// Merges the chunks `attention.wgsl` left in U for (query i, head h), one workgroup each:
// m = max_s m_s, out = Σ_s e^(m_s − m)·acc_s / Σ_s e^(m_s − m)·l_s, chunks in order.
// p0 = (n, heads, T, p0)   p1 = (kv_lora, 0, 0, 0)   p3 = (0, 0, out_off (A), scratch_off (U))
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.x;
    let h = wid.y;
    let kv_lora = Q.p1.x;
    let visible = min(Q.p0.w + i + 1u, Q.p0.z);
    let chunks = (visible + chunk_len(visible) - 1u) / chunk_len(visible);
    let rec = kv_lora + 2u;
    let base = Q.p3.w + (i * Q.p0.y + h) * SPLITS * rec;
    var m = -3.4e38;
    for (var s = 0u; s < chunks; s++) {
        m = max(m, bitcast<f32>(U[base + s * rec]));
    }
    // `w` indexed by constants once the loops (to SPLITS, the chunks past `chunks` masked) are
    // unrolled: registers, not memory.
    var w: array<f32, SPLITS>;
    var l = 0.0;
    for (var s = 0u; s < SPLITS; s++) {
        if (s < chunks) {
            w[s] = exp(bitcast<f32>(U[base + s * rec]) - m);
            l += w[s] * bitcast<f32>(U[base + s * rec + 1u]);
        }
    }
    let out = Q.p3.z + (i * Q.p0.y + h) * kv_lora;
    for (var c = lid; c < kv_lora; c += WG) {
        var acc = 0.0;
        for (var s = 0u; s < SPLITS; s++) {
            if (s < chunks) {
                acc += w[s] * bitcast<f32>(U[base + s * rec + 2u + c]);
            }
        }
        A[out + c] = acc / l;
    }
}
