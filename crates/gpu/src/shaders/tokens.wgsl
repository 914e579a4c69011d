// What the many-token kernels (kernel_tile.wgsl, kernel_coop.wgsl) share: where a token's
// activations start, and (GROUPED) the span of an expert's slots, loaded once per workgroup.

var<workgroup> span: vec2<u32>;

// First float in X of token (or, GROUPED, of the slot at position) `t` of the chunk at t0.
fn x_row(t0: u32, t: u32) -> u32 {
    if (GROUPED) {
        return P.x_off + (IDS[P.experts + 1u + t0 + t] / P.x_div) * P.x_stride;
    }
    return P.x_off + (t0 + t) * P.x_stride;
}
