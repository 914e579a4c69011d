// As store_f32, two values per word (a last odd value paired with 0), packed by the cache
// type's `pack2` (f16 or bf16; the first value in the low half).
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let w = Q.p0.y;
    let pairs = (w + 1u) / 2u;
    if (idx >= Q.p0.x * pairs) {
        return;
    }
    let i = idx / pairs;
    let j = idx % pairs;
    let src = Q.p0.z + i * Q.p0.w + 2u * j;
    let hi = select(0.0, B[src + 1u], 2u * j + 1u < w);
    U[Q.p1.x + (Q.p1.z + i) * Q.p1.y + j] = pack2(B[src], hi);
}
