// MLA attention in absorbed form over the latent cache, as a flash-style pass with an online
// softmax (no score matrix): workgroup (query i, head group g, split s) of AWG invocations takes
// HG heads of query i over the s-th chunk of the keys that query sees, so each cache row it
// reads serves HG heads (16: GLM-5.x's 64 heads read each row 4 times, the mid bench model's 16
// once).
// s_t = scale·(q̃·c_kv(t) + q_pe·k_pe(t)) + mask, causal to position p0 + i; keys the indexer
// left out (mask below -1e29) are never read, and a tile of keys with none selected costs no
// arithmetic. The chunk's partial result — running maximum m, sum l and Σ_t e^(s_t − m)·c_kv(t)
// per head — goes to U for `attention_merge.wgsl`. Chunks depend only on how many keys the
// query sees (`chunk_len`), so a query's result does not depend on the batch it is in.
// Cache rows are [c_kv (kv_lora) ; k_pe (rope)]. The private arrays (d, s, acc) are indexed by
// constants once the head loops (to HG, the group's heads masked) are unrolled, so a driver can
// keep them in registers: one dynamic index puts a whole array in memory.
// p0 = (n, heads, T, p0)   p1 = (kv_lora, rope, qabs_off (B), qpe_off (C))
// p2 = (qpe_token_stride, qpe_head_stride, key_base, key_stride)
// p3 = (scale bits, has_mask (M[i·T + t]), out_off (unused here), scratch_off (U))

var<workgroup> ps: array<f32, HG_TK>;
var<workgroup> m_w: array<f32, HG>;
var<workgroup> a_w: array<f32, HG>;
var<workgroup> l_w: array<f32, HG>;
var<workgroup> live: array<u32, AWG>;
var<workgroup> any_live: u32;

@compute @workgroup_size(AWG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = wid.x;
    let heads = Q.p0.y;
    let t_len = Q.p0.z;
    let kv_lora = Q.p1.x;
    let rope = Q.p1.y;
    let visible = min(Q.p0.w + i + 1u, t_len);
    let kc = chunk_len(visible);
    let start = wid.z * kc;
    if (start >= visible) {
        return;
    }
    let end = min(start + kc, visible);
    let h0 = wid.y * HG;
    let nh = min(HG, heads - h0);
    let qa = Q.p1.z + (i * heads + h0) * kv_lora;
    let qp = Q.p1.w + i * Q.p2.x + h0 * Q.p2.y;
    let kb = Q.p2.z;
    let ks = Q.p2.w;
    let scale = pf(Q.p3.x);
    let has_mask = Q.p3.y != 0u;
    if (lid < HG) {
        m_w[lid] = -3.4e38;
        l_w[lid] = 0.0;
    }
    var acc: array<f32, HG_CPT>;
    for (var t0 = start; t0 < end; t0 += AWG) {
        // Scores: invocation lid takes key t0 + lid for the group's heads.
        let t = t0 + lid;
        var on = t < end;
        var bias = 0.0;
        if (on && has_mask) {
            bias = M[i * t_len + t];
            on = bias > -1e29;
        }
        var s: array<f32, HG>;
        for (var h = 0u; h < HG; h++) {
            s[h] = -3.4e38;
        }
        if (on) {
            var d: array<f32, HG>;
            for (var c = 0u; c < kv_lora; c++) {
                let k = key(kb, ks, t, c);
                for (var h = 0u; h < HG; h++) {
                    if (h < nh) {
                        d[h] += B[qa + h * kv_lora + c] * k;
                    }
                }
            }
            for (var c = 0u; c < rope; c++) {
                let k = key(kb, ks, t, kv_lora + c);
                for (var h = 0u; h < HG; h++) {
                    if (h < nh) {
                        d[h] += C[qp + h * Q.p2.y + c] * k;
                    }
                }
            }
            for (var h = 0u; h < HG; h++) {
                if (h < nh) {
                    s[h] = d[h] * scale + bias;
                }
            }
        }
        for (var h = 0u; h < HG; h++) {
            ps[h * AWG + lid] = s[h];
        }
        live[lid] = u32(on);
        workgroupBarrier();
        if (lid == 0u) {
            var f = 0u;
            for (var j = 0u; j < AWG; j++) {
                f |= live[j];
            }
            any_live = f;
        }
        if (workgroupUniformLoad(&any_live) == 0u) {
            continue;
        }
        // Online softmax: the tile's maximum per head, then its probabilities.
        if (lid < nh) {
            var mx = m_w[lid];
            for (var j = 0u; j < AWG; j++) {
                mx = max(mx, ps[lid * AWG + j]);
            }
            a_w[lid] = exp(m_w[lid] - mx);
            m_w[lid] = mx;
        }
        workgroupBarrier();
        for (var h = 0u; h < nh; h++) {
            ps[h * AWG + lid] = exp(ps[h * AWG + lid] - m_w[h]);
        }
        workgroupBarrier();
        if (lid < nh) {
            var sum = 0.0;
            for (var j = 0u; j < AWG; j++) {
                sum += ps[lid * AWG + j];
            }
            l_w[lid] = l_w[lid] * a_w[lid] + sum;
        }
        // Values: invocation lid owns columns lid, lid + AWG, … of every head in the group.
        for (var h = 0u; h < HG; h++) {
            if (h < nh) {
                for (var k = 0u; k < CPT; k++) {
                    acc[h * CPT + k] *= a_w[h];
                }
            }
        }
        for (var j = 0u; j < AWG; j++) {
            if (live[j] == 0u) {
                continue;
            }
            for (var k = 0u; k < CPT; k++) {
                let c = lid + k * AWG;
                if (c < kv_lora) {
                    let v = key(kb, ks, t0 + j, c);
                    for (var h = 0u; h < HG; h++) {
                        if (h < nh) {
                            acc[h * CPT + k] += ps[h * AWG + j] * v;
                        }
                    }
                }
            }
        }
        workgroupBarrier();
    }
    workgroupBarrier();
    let rec = kv_lora + 2u;
    for (var h = 0u; h < HG; h++) {
        if (h >= nh) {
            break;
        }
        let base = Q.p3.w + ((i * heads + h0 + h) * SPLITS + wid.z) * rec;
        if (lid == 0u) {
            U[base] = bitcast<u32>(m_w[h]);
            U[base + 1u] = bitcast<u32>(l_w[h]);
        }
        for (var k = 0u; k < CPT; k++) {
            let c = lid + k * AWG;
            if (c < kv_lora) {
                U[base + 2u + c] = bitcast<u32>(acc[h * CPT + k]);
            }
        }
    }
}
