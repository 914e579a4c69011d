// Appends n rows of width w from B (src_off, src_stride) to the cache U at rows first..first+n.
// p0 = (n, w, src_off, src_stride)   p1 = (base, stride, first, 0)
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let w = Q.p0.y;
    if (idx >= Q.p0.x * w) {
        return;
    }
    let i = idx / w;
    let c = idx % w;
    U[Q.p1.x + (Q.p1.z + i) * Q.p1.y + c] = bitcast<u32>(B[Q.p0.z + i * Q.p0.w + c]);
}
