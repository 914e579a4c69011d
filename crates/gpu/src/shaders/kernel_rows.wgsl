// Mat-vec for one token (decode), or one token per MoE slot (INDEXED: slot s multiplies by
// W[IDS[s]]), written for real GPUs. A workgroup takes R rows and stages the activations in
// workgroup memory a tile of TILE columns at a time, so each activation is read from device
// memory once per R rows; the plain kernel's lanes each read their own 32 activations from
// device memory, 32 cache lines per load instruction, for every row. In a tile thread t decodes
// group t of each of the R rows (lanes read adjacent blocks of a row), and dots it with the
// staged activations, which sit XOR-swizzled so that lanes reading element i of their own
// groups hit different banks. With XREG a lane copies its 32 staged activations into registers
// once per tile and dots each of its R rows against them (32 workgroup-memory loads per tile
// instead of 32 per row); without, each row reads them from workgroup memory again.

const TILE: u32 = 32u * WG;

var<workgroup> xs: array<f32, TILE>;
var<workgroup> expert: u32;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    SUBGROUP_BUILTINS
) {
    let r0 = (wid.x + wid.y * P.wg_x) * R;
    let s = wid.z;
    var e = 0u;
    var xb = P.x_off;
    if (INDEXED) {
        if (lid == 0u) {
            expert = IDS[s];
        }
        e = workgroupUniformLoad(&expert);
        xb = P.x_off + (s / P.x_div) * P.x_stride;
        // Rows past the matrix, or an expert this chunk does not hold: another dispatch's.
        if (r0 >= P.rows || e * P.rows + r0 >= P.g1 || (e + 1u) * P.rows <= P.g0) {
            return;
        }
    } else if (P.g0 + r0 >= P.g1) {
        return;
    }
    var acc: array<f32, R>;
    for (var c0 = 0u; c0 < P.cols; c0 += TILE) {
        workgroupBarrier();
        for (var i = lid; i < TILE; i += WG) {
            var v = 0.0;
            if (c0 + i < P.cols) {
                v = X[xb + c0 + i];
                if (P.x_up != 0u) {
                    // SwiGLU as ops/silu_mul.wgsl computes it.
                    v = v / (1.0 + exp(-v)) * X[xb + P.x_up + c0 + i];
                }
            }
            xs[sw(i)] = v;
        }
        workgroupBarrier();
        let g = c0 / 32u + lid;
        if (g < P.groups) {
            if (XREG) {
                load_xr(32u * lid, lid & 31u);
            }
            for (var k = 0u; k < R; k++) {
                let o = row_offset(r0 + k, e);
                if (o.y != 0u) {
                    decode_group(o.x, g);
                    if (XREG) {
                        acc[k] += dot_xr();
                    } else {
                        acc[k] += dot_xs(32u * lid, lid & 31u);
                    }
                }
            }
        }
    }
    let total = reduce_rows(acc, lid, SUBGROUP_ARGS);
    if (lid < R) {
        let r = r0 + lid;
        if (row_offset(r, e).y != 0u) {
            if (INDEXED) {
                Y[P.y_off + s * P.y_stride + r] = total;
            } else if (P.accumulate != 0u) {
                Y[P.y_off + P.g0 + r] += total;
            } else {
                Y[P.y_off + P.g0 + r] = total;
            }
        }
    }
}

// Byte offset in this chunk of row r (of expert e when INDEXED; else of the chunk), and 1 if
// the chunk holds that row.
fn row_offset(r: u32, e: u32) -> vec2<u32> {
    if (INDEXED) {
        let gr = e * P.rows + r;
        let ok = r < P.rows && gr >= P.g0 && gr < P.g1;
        return vec2<u32>(select(0u, (gr - P.g0) * P.row_bytes, ok), u32(ok));
    }
    return vec2<u32>(r * P.row_bytes, u32(P.g0 + r < P.g1));
}
