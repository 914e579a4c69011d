// MoE (MUL_MAT_ID): slot s computes y[s][r] = Σ_c W[IDS[s]][r][c] · x_s[c], x_s being row s of X
// (s / x_div with x_div > 1: k slots of one token share its row) or, with x_stride 0, one
// shared vector. Rows of all experts are numbered globally
// (expert · rows + r); a chunk holding other experts' rows leaves the slot to another dispatch.

var<workgroup> expert: u32;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    SUBGROUP_BUILTINS
) {
    let r = wid.x + wid.y * P.wg_x;
    let s = wid.z;
    if (lid == 0u) {
        expert = IDS[s];
    }
    let e = workgroupUniformLoad(&expert);
    let gr = e * P.rows + r;
    if (r >= P.rows || gr < P.g0 || gr >= P.g1) {
        return;
    }
    let roff = (gr - P.g0) * P.row_bytes;
    let xb0 = P.x_off + (s / P.x_div) * P.x_stride;
    var acc = 0.0;
    for (var g = lid; g < P.groups; g += WG) {
        decode_group(roff, g);
        let c0 = g * 32u;
        let m = min(32u, P.cols - c0);
        acc += dot_wv(xb0 + c0, m);
    }
    let total = reduce(acc, lid, SUBGROUP_ARGS);
    if (lid == 0u) {
        Y[P.y_off + s * P.y_stride + r] = total;
    }
}
