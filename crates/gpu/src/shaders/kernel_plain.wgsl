// y[t][r] = Σ_c W[r][c] · x[t][c] (or y[t][r] += …, with P.accumulate) for up to TT tokens
// per workgroup: each thread decodes a 32-weight group once and dots it with every token of
// the tile; one workgroup per row, so each output is written by exactly one invocation.

const TT: u32 = 8u;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    SUBGROUP_BUILTINS
) {
    let row = wid.x + wid.y * P.wg_x;
    let gr = P.g0 + row;
    if (gr >= P.g1) {
        return;
    }
    let t0 = wid.z * TT;
    let nt = min(TT, P.n - t0);
    let roff = row * P.row_bytes;
    var acc: array<f32, 8>;
    for (var g = lid; g < P.groups; g += WG) {
        decode_group(roff, g);
        let c0 = g * 32u;
        let m = min(32u, P.cols - c0);
        for (var t = 0u; t < nt; t++) {
            acc[t] += dot_wv(P.x_off + (t0 + t) * P.x_stride + c0, m);
        }
    }
    for (var t = 0u; t < nt; t++) {
        let total = reduce(acc[t], lid, SUBGROUP_ARGS);
        if (lid == 0u) {
            let yi = P.y_off + (t0 + t) * P.y_stride + gr;
            if (P.accumulate != 0u) {
                Y[yi] += total;
            } else {
                Y[yi] = total;
            }
        }
    }
}
