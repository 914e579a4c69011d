// MoE product with the slots grouped by expert (prefill): workgroup (row r, expert e) decodes
// each 32-weight group of W[e][r] once and dots it with up to TT of that expert's slots, so an
// expert's weights are read once per TT of its slots instead of once per slot. IDS holds the
// groups the bucket op wrote: offsets IDS[0..=E], then the slots in expert order, those of
// expert e at IDS[E + 1 + IDS[e] ..< E + 1 + IDS[e + 1]]. Slot s reads X row s / x_div (x_stride
// 0: one shared vector) and writes Y row s, as the indexed kernel does.

const TT: u32 = 8u;

var<workgroup> span: vec2<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    SUBGROUP_BUILTINS
) {
    let r = wid.x + wid.y * P.wg_x;
    let e = wid.z;
    let gr = e * P.rows + r;
    if (r >= P.rows || gr < P.g0 || gr >= P.g1) {
        return;
    }
    if (lid == 0u) {
        span = vec2<u32>(IDS[e], IDS[e + 1u]);
    }
    let sp = workgroupUniformLoad(&span);
    let e1 = P.experts + 1u;
    let roff = (gr - P.g0) * P.row_bytes;
    for (var t0 = sp.x; t0 < sp.y; t0 += TT) {
        let nt = min(TT, sp.y - t0);
        var acc: array<f32, 8>;
        for (var g = lid; g < P.groups; g += WG) {
            decode_group(roff, g);
            let c0 = g * 32u;
            let m = min(32u, P.cols - c0);
            for (var t = 0u; t < nt; t++) {
                acc[t] += dot_wv(P.x_off + (IDS[e1 + t0 + t] / P.x_div) * P.x_stride + c0, m);
            }
        }
        for (var t = 0u; t < nt; t++) {
            let total = reduce(acc[t], lid, SUBGROUP_ARGS);
            if (lid == 0u) {
                Y[P.y_off + IDS[e1 + t0 + t] * P.y_stride + r] = total;
            }
        }
    }
}
