// Activations staged in workgroup memory (`xs`, declared by the kernel) for the weight
// kernels: column c of a tile sits at sw(c), its low five bits XORed with its 32-column group's,
// so lanes reading element i of their own groups hit different banks.
fn sw(c: u32) -> u32 {
    return c ^ ((c >> 5u) & 31u);
}

// Σ wv[i]·x over the staged group at `base` (its first slot), whose slots are XORed with `k`
// (the group's index within the tile, mod 32). All 32 steps even in a row's last, partial group
// (float weights only): its decoder zeroes the weights past the row and the staging zeroes the
// activations past it, so every index is a constant once the loop is unrolled.
fn dot_xs(base: u32, k: u32) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 32u; i++) {
        s += wv[i] * xs[base + (i ^ k)];
    }
    return s;
}

// A lane's staged group (as `dot_xs` reads it) held in registers, for several rows' dots.
var<private> xr: array<f32, 32>;

fn load_xr(base: u32, k: u32) {
    for (var i = 0u; i < 32u; i++) {
        xr[i] = xs[base + (i ^ k)];
    }
}

// Σ wv[i]·xr[i] (all 32, as `dot_xs`).
fn dot_xr() -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 32u; i++) {
        s += wv[i] * xr[i];
    }
    return s;
}
