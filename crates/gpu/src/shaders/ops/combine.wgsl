// MoE output added to the residual: A[x_off + t·d + c] += Σ_j C[w_off + t·k + j] ·
// B[y_off + (t·k + j)·d + c].   p0 = (n, d, k, x_off)   p1 = (y_off, w_off, 0, 0)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let d = Q.p0.y;
    let k = Q.p0.z;
    if (idx >= Q.p0.x * d) {
        return;
    }
    let t = idx / d;
    let c = idx % d;
    var s = 0.0;
    for (var j = 0u; j < k; j++) {
        s += C[Q.p1.y + t * k + j] * B[Q.p1.x + (t * k + j) * d + c];
    }
    A[Q.p0.w + t * d + c] += s;
}
