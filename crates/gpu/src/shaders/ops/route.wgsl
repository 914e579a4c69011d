// MoE routing, one invocation per token: scores = sigmoid(logits) (or softmax), experts chosen
// by score + bias (the bias only selects), the k chosen weights normalised (optional) and
// scaled. Ids to U[ids_off + t·k + j], weights to A[w_off + t·k + j].
// p0 = (n, experts, k, logit_off)   p1 = (has_bias, sigmoid, normalize, scale bits)
// p2 = (ids_off, w_off, 0, 0). Logits in B ([n, experts]), bias in C. At most 1024 experts.
fn score(t: u32, e: u32, mx: f32, sum: f32) -> f32 {
    let z = B[Q.p0.w + t * Q.p0.y + e];
    if (Q.p1.y != 0u) {
        return 1.0 / (1.0 + exp(-z));
    }
    return exp(z - mx) / sum;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= Q.p0.x) {
        return;
    }
    let ne = Q.p0.y;
    let k = Q.p0.z;
    var mx = -3.4e38;
    var sum = 1.0;
    if (Q.p1.y == 0u) {
        for (var e = 0u; e < ne; e++) {
            mx = max(mx, B[Q.p0.w + t * ne + e]);
        }
        sum = 0.0;
        for (var e = 0u; e < ne; e++) {
            sum += exp(B[Q.p0.w + t * ne + e] - mx);
        }
    }
    var taken: array<u32, 32>;
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
        var best = 0u;
        var best_v = -3.4e38;
        var found = false;
        for (var e = 0u; e < ne; e++) {
            if ((taken[e / 32u] & (1u << (e % 32u))) != 0u) {
                continue;
            }
            var v = score(t, e, mx, sum);
            if (Q.p1.x != 0u) {
                v += C[e];
            }
            if (!found || v > best_v) {
                best = e;
                best_v = v;
                found = true;
            }
        }
        taken[best / 32u] |= 1u << (best % 32u);
        U[Q.p2.x + t * k + j] = best;
        let w = score(t, best, mx, sum);
        A[Q.p2.y + t * k + j] = w;
        total += w;
    }
    for (var j = 0u; j < k; j++) {
        var w = A[Q.p2.y + t * k + j];
        if (Q.p1.z != 0u) {
            w /= total + 1e-20;
        }
        A[Q.p2.y + t * k + j] = w * pf(Q.p1.w);
    }
}
