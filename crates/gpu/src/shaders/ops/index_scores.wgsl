// Lightning-indexer scores, one invocation per (query i, key t), at most 64 heads:
// A[out_off + i·T + t] = Σ_h (w[i,h]·scale)·relu(q[i,h]·k(t)), −∞ past position p0 + i.
// p0 = (n, heads, d, T)   p1 = (q_off (B), w_off (C), key_base, key_stride)
// p2 = (out_off, p0, scale bits, 0)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let heads = Q.p0.y;
    let d = Q.p0.z;
    let t_len = Q.p0.w;
    if (idx >= Q.p0.x * t_len) {
        return;
    }
    let i = idx / t_len;
    let t = idx % t_len;
    if (t > Q.p2.y + i) {
        A[Q.p2.x + idx] = -3.4e38;
        return;
    }
    // Each key value is read once for all the heads. The head loops run to 64 with the heads
    // past `heads` masked, so that `s` is indexed by constants once unrolled (registers, not
    // memory).
    var s: array<f32, 64>;
    for (var c = 0u; c < d; c++) {
        let k = key(Q.p1.z, Q.p1.w, t, c);
        for (var h = 0u; h < 64u; h++) {
            if (h < heads) {
                s[h] += B[Q.p1.x + (i * heads + h) * d + c] * k;
            }
        }
    }
    var score = 0.0;
    for (var h = 0u; h < 64u; h++) {
        if (h < heads) {
            score += C[Q.p1.y + i * heads + h] * pf(Q.p2.z) * max(s[h], 0.0);
        }
    }
    A[Q.p2.x + idx] = score;
}
