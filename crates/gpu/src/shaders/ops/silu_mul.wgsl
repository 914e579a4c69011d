// SwiGLU: A[out_off + r·cols + c] = silu(g)·u with g = B[g_off + r·stride + c] and
// u = B[u_off + r·stride + c] (gate and up may share a buffer, e.g. fused gate_up rows).
// p0 = (rows, cols, g_off, u_off)   p1 = (stride, out_off, 0, 0)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let cols = Q.p0.y;
    if (idx >= Q.p0.x * cols) {
        return;
    }
    let r = idx / cols;
    let c = idx % cols;
    let g = B[Q.p0.z + r * Q.p1.x + c];
    let u = B[Q.p0.w + r * Q.p1.x + c];
    A[Q.p1.y + r * cols + c] = g / (1.0 + exp(-g)) * u;
}
