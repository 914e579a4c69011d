// Products for many tokens on the adapter's matrix units (cooperative matrices: Metal's
// simdgroup_matrix, Vulkan's KHR_cooperative_matrix), with the tile kernel's interface: y[t] =
// W·x[t], or (GROUPED) the MoE product with the slots grouped by expert (see kernel_tile.wgsl).
//
// A workgroup takes CR rows and CT tokens at a time. Per step of KC columns the workgroup
// decodes its rows' two 32-weight groups (one group an invocation) into `wa` and stages the
// tokens' activations into `xb`, both as f16 (the matrix units' input type); then each subgroup
// multiplies S×S blocks of the CR×CT result, S×S×S at a time, adding into `cs` (f32). A weight is
// decoded once per CT tokens; an activation is read from device memory once per CR rows.
// Activations beyond f16's range are clamped to ±65504 (a product's inputs are normed or SwiGLU
// outputs, far inside it).
//
// Operand layouts (what coopLoad/coopLoadT expect): A (S rows × S columns of `wa`) row-major
// with stride KC; B (S columns × S tokens of `xb`) column-major, token t's columns contiguous,
// stride KC; C (S rows × S tokens of `cs`) column-major, stride CR.

const CR: u32 = 32u;
const CT: u32 = 32u;
const KC: u32 = 64u;
const BS: u32 = CR / S;

var<workgroup> wa: array<f16, CR * KC>;
var<workgroup> xb: array<f16, CT * KC>;
var<workgroup> cs: array<f32, CR * CT>;

// Where row `rr` of the workgroup's tile writes token `t`'s result, or 0xffffffff for a row the
// workgroup does not hold (past the matrix or the chunk).
fn y_at(r0: u32, rr: u32, t0: u32, t: u32, e: u32) -> u32 {
    let r = r0 + rr;
    if (GROUPED) {
        let gr = e * P.rows + r;
        if (r >= P.rows || gr < P.g0 || gr >= P.g1) {
            return 0xffffffffu;
        }
        return P.y_off + IDS[P.experts + 1u + t0 + t] * P.y_stride + r;
    }
    if (P.g0 + r >= P.g1) {
        return 0xffffffffu;
    }
    return P.y_off + (t0 + t) * P.y_stride + P.g0 + r;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) n_sg: u32,
) {
    let r0 = (wid.x + wid.y * P.wg_x) * CR;
    // The row and the group of each step this invocation decodes.
    let dr = lid / 2u;
    let dg = lid % 2u;
    let r = r0 + dr;
    var valid = false;
    var roff = 0u;
    var first = wid.z * CT;
    var end = min(P.n, first + CT);
    let e = wid.z;
    if (GROUPED) {
        // Rows past the matrix, or an expert this chunk does not hold: another dispatch's (no
        // tokens; the matrix operations want no `return` before them).
        let mine = r0 < P.rows && e * P.rows + r0 < P.g1 && (e + 1u) * P.rows > P.g0;
        if (lid == 0u) {
            span = select(vec2<u32>(0u), vec2<u32>(IDS[e], IDS[e + 1u]), mine);
        }
        let sp = workgroupUniformLoad(&span);
        first = sp.x;
        end = sp.y;
        let gr = e * P.rows + r;
        valid = r < P.rows && gr >= P.g0 && gr < P.g1;
        roff = select(0u, (gr - P.g0) * P.row_bytes, valid);
    } else {
        if (P.g0 + r0 >= P.g1) {
            end = first;
        }
        valid = P.g0 + r < P.g1;
        roff = r * P.row_bytes;
    }
    for (var t0 = first; t0 < end; t0 += CT) {
        let nt = min(CT, end - t0);
        for (var i = lid; i < CR * CT; i += WG) {
            cs[i] = 0.0;
        }
        for (var c0 = 0u; c0 < P.cols; c0 += KC) {
            workgroupBarrier();
            for (var i = lid; i < CT * KC; i += WG) {
                let t = i / KC;
                let c = i % KC;
                var v = 0.0;
                if (t < nt && c0 + c < P.cols) {
                    v = X[x_row(t0, t) + c0 + c];
                }
                xb[i] = f16(clamp(v, -65504.0, 65504.0));
            }
            let g = c0 / 32u + dg;
            let base = dr * KC + 32u * dg;
            if (valid && g < P.groups) {
                decode_group(roff, g);
                for (var i = 0u; i < 32u; i++) {
                    wa[base + i] = f16(wv[i]);
                }
            } else {
                for (var i = 0u; i < 32u; i++) {
                    wa[base + i] = f16(0.0);
                }
            }
            workgroupBarrier();
            for (var b = sg_id; b < BS * BS; b += n_sg) {
                let br = b % BS;
                let bt = b / BS;
                let at = bt * S * CR + br * S;
                var acc = coopLoad<COOP<f32, C>>(&cs[at], CR);
                for (var k = 0u; k < KC; k += S) {
                    let wm = coopLoadT<COOP<f16, A>>(&wa[br * S * KC + k], KC);
                    let xm = coopLoad<COOP<f16, B>>(&xb[bt * S * KC + k], KC);
                    acc = coopMultiplyAdd(wm, xm, acc);
                }
                coopStore(acc, &cs[at], CR);
            }
        }
        workgroupBarrier();
        for (var i = lid; i < CR * CT; i += WG) {
            let t = i / CR;
            let rr = i % CR;
            if (t < nt) {
                let yi = y_at(r0, rr, t0, t, e);
                if (yi != 0xffffffffu) {
                    if (!GROUPED && P.accumulate != 0u) {
                        Y[yi] += cs[i];
                    } else {
                        Y[yi] = cs[i];
                    }
                }
            }
        }
        workgroupBarrier();
    }
}
