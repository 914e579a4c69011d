// The slots of a MoE product grouped by expert, for the grouped kernel: U[go + e] the first
// position of expert e's slots (U[go + E] = the count), then from U[go + E + 1] the slot numbers
// in expert order (within one expert in any order: each slot's result is its own). Ids from
// D[io + s]; an id outside 0..E leaves its slot out. One workgroup.
// p0 = (slots, experts, io, go). At most 1024 experts.
var<workgroup> counts: array<atomic<u32>, 1024>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = Q.p0.x;
    let ne = Q.p0.y;
    let io = Q.p0.z;
    let go = Q.p0.w;
    for (var e = lid; e < ne; e += WG) {
        atomicStore(&counts[e], 0u);
    }
    workgroupBarrier();
    for (var s = lid; s < n; s += WG) {
        let e = D[io + s];
        if (e < ne) {
            atomicAdd(&counts[e], 1u);
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        var sum = 0u;
        for (var e = 0u; e < ne; e++) {
            let c = atomicLoad(&counts[e]);
            U[go + e] = sum;
            atomicStore(&counts[e], sum);
            sum += c;
        }
        U[go + ne] = sum;
    }
    workgroupBarrier();
    for (var s = lid; s < n; s += WG) {
        let e = D[io + s];
        if (e < ne) {
            U[go + ne + 1u + atomicAdd(&counts[e], 1u)] = s;
        }
    }
}
