// RoPE in place on A: for token i, head h and pair j, the pair at
// off + i·row_stride + h·head_stride + (2j, 2j + 1) — or, with `halves`, (j, j + half) —
// rotates by cos = B[cos_off + i·half + j] and sin = C[sin_off + i·half + j].
// p0 = (n, heads, half, off)   p1 = (row_stride, head_stride, cos_off, sin_off)
// p2 = (halves, 0, 0, 0)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let half = Q.p0.z;
    let per_token = Q.p0.y * half;
    if (idx >= Q.p0.x * per_token) {
        return;
    }
    let i = idx / per_token;
    let h = (idx % per_token) / half;
    let j = idx % half;
    let head = Q.p0.w + i * Q.p1.x + h * Q.p1.y;
    let ab = rope_cols(head, j, half, Q.p2.x != 0u);
    let c = B[Q.p1.z + i * half + j];
    let s = C[Q.p1.w + i * half + j];
    let y = rotate(A[ab.x], A[ab.y], c, s);
    A[ab.x] = y.x;
    A[ab.y] = y.y;
}
