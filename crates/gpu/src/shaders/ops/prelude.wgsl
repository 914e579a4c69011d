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
