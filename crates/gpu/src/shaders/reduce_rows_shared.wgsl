// R workgroup sums at once through workgroup memory (any adapter): a tree over the invocations
// for all rows together; invocation k < R returns row k's total. Every invocation must call it.
var<workgroup> red: array<f32, R * WG>;

fn reduce_rows(acc: array<f32, R>, lid: u32) -> f32 {
    for (var k = 0u; k < R; k++) {
        red[k * WG + lid] = acc[k];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var k = 0u; k < R; k++) {
                red[k * WG + lid] += red[k * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    var total = 0.0;
    if (lid < R) {
        total = red[lid * WG];
    }
    return total;
}
