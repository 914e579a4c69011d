// A[a_off + i] += B[b_off + i % period] for i < len (period = len: an element-wise add;
// period = a row's width: a vector added to every row).   p0 = (len, a_off, b_off, period)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= Q.p0.x) {
        return;
    }
    A[Q.p0.y + i] += B[Q.p0.z + i % Q.p0.w];
}
