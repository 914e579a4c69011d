// Shared by the element-wise, norm, routing and attention kernels of the device-resident
// forward pass. A is the output (read-write), B/C/M inputs, D the KV cache words, U u32 output
// or scratch; Q the 16 parameters (floats passed as their bits).

struct OpParams {
    p0: vec4<u32>,
    p1: vec4<u32>,
    p2: vec4<u32>,
    p3: vec4<u32>,
}

@group(0) @binding(0) var<storage, read_write> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read> C: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<u32>;
@group(0) @binding(4) var<storage, read_write> U: array<u32>;
@group(0) @binding(5) var<storage, read> M: array<f32>;
@group(0) @binding(6) var<uniform> Q: OpParams;

fn pf(v: u32) -> f32 {
    return bitcast<f32>(v);
}

// `red` and the workgroup sum `reduce(v, lid)` come from reduce_shared.wgsl, added after this.

// Row x (the `cols` values from xb, in A where `in_place`, else in B): (mean, 1/σ) for
// LayerNorm, or (0, 1/rms) for RMSNorm; eps in bits. Every invocation must call it.
fn norm_stats(xb: u32, cols: u32, layer: bool, in_place: bool, eps: u32, lid: u32) -> vec2<f32> {
    var mean = 0.0;
    if (layer) {
        var s = 0.0;
        for (var i = lid; i < cols; i += WG) {
            s += select(B[xb + i], A[xb + i], in_place);
        }
        mean = reduce(s, lid) / f32(cols);
    }
    var s2 = 0.0;
    for (var i = lid; i < cols; i += WG) {
        let v = select(B[xb + i], A[xb + i], in_place) - mean;
        s2 += v * v;
    }
    return vec2<f32>(mean, inverseSqrt(reduce(s2, lid) / f32(max(cols, 1u)) + pf(eps)));
}

// The columns RoPE's pair j rotates in a head from column `head`: adjacent (2j, 2j + 1), or
// with `halves` (j, j + half).
fn rope_cols(head: u32, j: u32, half: u32, halves: bool) -> vec2<u32> {
    if (halves) {
        return vec2<u32>(head + j, head + j + half);
    }
    return vec2<u32>(head + 2u * j, head + 2u * j + 1u);
}

// (x0, x1) rotated by the angle whose cosine and sine are c and s.
fn rotate(x0: f32, x1: f32, c: f32, s: f32) -> vec2<f32> {
    return vec2<f32>(x0 * c - x1 * s, x0 * s + x1 * c);
}

// Attention's softmax over the scores U[sc .. sc + n] (stored as f32 bits; `mx` the largest
// this invocation saw): each becomes exp(s − max) in place, visible to the whole workgroup
// after the call, and their sum is returned. Every invocation must call it.
fn softmax_exp(sc: u32, n: u32, mx: f32, lid: u32) -> f32 {
    let m = wg_max(mx, lid);
    var sum = 0.0;
    for (var t = lid; t < n; t += WG) {
        let e = exp(bitcast<f32>(U[sc + t]) - m);
        U[sc + t] = bitcast<u32>(e);
        sum += e;
    }
    sum = reduce(sum, lid);
    storageBarrier();
    workgroupBarrier();
    return sum;
}

// Workgroup maximum; every invocation must call it.
fn wg_max(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}
