// Workgroup sum with subgroup operations: each subgroup adds in registers, then one value per
// subgroup goes through shared memory. Works for any subgroup size that divides WG (8 on
// lavapipe, 32 on Apple and NVIDIA, 64 on some AMD). Every invocation must call it.
var<workgroup> red: array<f32, WG>;

fn reduce(v: f32, lid: u32, sg_id: u32, sg_lane: u32, n_sg: u32) -> f32 {
    let part = subgroupAdd(v);
    if (sg_lane == 0u) {
        red[sg_id] = part;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < n_sg; i++) {
        total += red[i];
    }
    workgroupBarrier();
    return total;
}
