// Products for several tokens (prefill, draft verification): y[t] = W·x[t] for up to TT tokens
// per workgroup, or (GROUPED) the MoE product with the slots grouped by expert — workgroup
// (rows, expert e) takes e's slots TT at a time (IDS: offsets IDS[0..=E], then the slots in
// expert order; slot s reads X row s / x_div and writes Y row s). A workgroup takes RT rows;
// the tokens' activations are staged in workgroup memory GT groups (TW columns) at a time, and
// invocation (row lid / GT, group lid % GT) decodes its group once and dots it with every
// staged token — an activation is read from device memory once per RT rows, where a workgroup
// per row had each lane read its own 32 activations of every token from device memory.

const TT: u32 = 8u;
const GT: u32 = 8u;
const RT: u32 = WG / GT;
const TW: u32 = 32u * GT;

var<workgroup> xs: array<f32, TT * TW>;
var<workgroup> red: array<f32, WG * TT>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r0 = (wid.x + wid.y * P.wg_x) * RT;
    let gl = lid % GT;
    let r = r0 + lid / GT;
    var valid = false;
    var roff = 0u;
    var first = wid.z * TT;
    var end = min(P.n, first + TT);
    if (GROUPED) {
        let e = wid.z;
        // Rows past the matrix, or an expert this chunk does not hold: another dispatch's.
        if (r0 >= P.rows || e * P.rows + r0 >= P.g1 || (e + 1u) * P.rows <= P.g0) {
            return;
        }
        if (lid == 0u) {
            span = vec2<u32>(IDS[e], IDS[e + 1u]);
        }
        let sp = workgroupUniformLoad(&span);
        first = sp.x;
        end = sp.y;
        let gr = e * P.rows + r;
        valid = r < P.rows && gr >= P.g0 && gr < P.g1;
        roff = select(0u, (gr - P.g0) * P.row_bytes, valid);
    } else {
        if (P.g0 + r0 >= P.g1) {
            return;
        }
        valid = P.g0 + r < P.g1;
        roff = r * P.row_bytes;
    }
    for (var t0 = first; t0 < end; t0 += TT) {
        let nt = min(TT, end - t0);
        var acc: array<f32, TT>;
        for (var c0 = 0u; c0 < P.cols; c0 += TW) {
            workgroupBarrier();
            for (var i = lid; i < TT * TW; i += WG) {
                let t = i / TW;
                let c = i % TW;
                var v = 0.0;
                if (t < nt && c0 + c < P.cols) {
                    v = X[x_row(t0, t) + c0 + c];
                }
                xs[t * TW + sw(c)] = v;
            }
            workgroupBarrier();
            let g = c0 / 32u + gl;
            if (valid && g < P.groups) {
                decode_group(roff, g);
                for (var t = 0u; t < TT; t++) {
                    if (t < nt) {
                        acc[t] += dot_xs(t * TW + 32u * gl, gl);
                    }
                }
            }
        }
        // Each row's sum over its GT invocations, through workgroup memory.
        for (var t = 0u; t < TT; t++) {
            red[lid * TT + t] = acc[t];
        }
        workgroupBarrier();
        if (valid && gl == 0u) {
            for (var t = 0u; t < nt; t++) {
                var total = 0.0;
                for (var q = 0u; q < GT; q++) {
                    total += red[(lid + q) * TT + t];
                }
                if (GROUPED) {
                    Y[P.y_off + IDS[P.experts + 1u + t0 + t] * P.y_stride + r] = total;
                } else {
                    let yi = P.y_off + (t0 + t) * P.y_stride + P.g0 + r;
                    if (P.accumulate != 0u) {
                        Y[yi] += total;
                    } else {
                        Y[yi] = total;
                    }
                }
            }
        }
    }
}
