// R workgroup sums at once with subgroup operations: each subgroup adds each row's values in
// registers, one value per (row, subgroup) goes through workgroup memory, and invocation k < R
// returns row k's total. Every invocation must call it.
var<workgroup> red: array<f32, R * WG>;

fn reduce_rows(acc: array<f32, R>, lid: u32, sg_id: u32, sg_lane: u32, n_sg: u32) -> f32 {
    for (var k = 0u; k < R; k++) {
        let part = subgroupAdd(acc[k]);
        if (sg_lane == 0u) {
            red[k * WG + sg_id] = part;
        }
    }
    workgroupBarrier();
    var total = 0.0;
    if (lid < R) {
        for (var i = 0u; i < n_sg; i++) {
            total += red[lid * WG + i];
        }
    }
    return total;
}
