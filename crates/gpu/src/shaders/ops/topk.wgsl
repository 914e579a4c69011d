// The indexer's selection as an additive mask, one workgroup per query i (position p0 + i):
// 0 for the topk visible keys of highest score — ties at the k-th value taken in key order —
// and `hidden` elsewhere; every visible key while there are no more than topk. The k-th value
// is found exactly by a 4-round radix select over order-preserving u32 keys of the scores.
// p0 = (n, T, p0, topk)   p1 = (scores_off (B), mask_off (A), hidden bits, 0)

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> pick: vec2<u32>;
var<workgroup> ties: array<u32, WG>;

// Larger floats give larger keys (negative ones inverted, positive ones with the sign bit set).
fn okey(f: f32) -> u32 {
    let b = bitcast<u32>(f);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.x + wid.y * 65535u;
    if (i >= Q.p0.x) {
        return;
    }
    let t_len = Q.p0.y;
    let topk = Q.p0.w;
    let hidden = pf(Q.p1.z);
    let row = Q.p1.x + i * t_len;
    let out = Q.p1.y + i * t_len;
    let visible = min(Q.p0.z + i + 1u, t_len);
    if (visible <= topk) {
        for (var t = lid; t < t_len; t += WG) {
            A[out + t] = select(hidden, 0.0, t < visible);
        }
        return;
    }
    var prefix = 0u;
    var want = topk;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        // The bits above this round's byte must equal the prefix found so far.
        var high = 0u;
        if (round > 0u) {
            high = 0xffffffffu << (shift + 8u);
        }
        for (var b = lid; b < 256u; b += WG) {
            atomicStore(&hist[b], 0u);
        }
        workgroupBarrier();
        for (var t = lid; t < visible; t += WG) {
            let k = okey(B[row + t]);
            if ((k & high) == prefix) {
                atomicAdd(&hist[(k >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var acc = 0u;
            var b = 255u;
            loop {
                let c = atomicLoad(&hist[b]);
                if (acc + c >= want || b == 0u) {
                    break;
                }
                acc += c;
                b -= 1u;
            }
            pick = vec2<u32>(prefix | (b << shift), want - acc);
        }
        let p = workgroupUniformLoad(&pick);
        prefix = p.x;
        want = p.y;
    }
    // `prefix` is now the k-th largest key; take every larger key and the first `want` equal
    // ones in key order (each invocation owns one contiguous segment).
    let seg = (visible + WG - 1u) / WG;
    let start = min(lid * seg, visible);
    let end = min(start + seg, visible);
    var mine = 0u;
    for (var t = start; t < end; t++) {
        if (okey(B[row + t]) == prefix) {
            mine += 1u;
        }
    }
    ties[lid] = mine;
    workgroupBarrier();
    var rank = 0u;
    for (var j = 0u; j < lid; j++) {
        rank += ties[j];
    }
    for (var t = start; t < end; t++) {
        let k = okey(B[row + t]);
        var chosen = k > prefix;
        if (k == prefix) {
            chosen = rank < want;
            rank += 1u;
        }
        A[out + t] = select(hidden, 0.0, chosen);
    }
    for (var t = visible + lid; t < t_len; t += WG) {
        A[out + t] = hidden;
    }
}
