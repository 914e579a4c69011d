// Activations staged in workgroup memory (`xs`, declared by the kernel) for the weight
// kernels: column c of a tile sits at sw(c), its low five bits XORed with its 32-column group's,
// so lanes reading element i of their own groups hit different banks.
fn sw(c: u32) -> u32 {
    return c ^ ((c >> 5u) & 31u);
}

// Σ wv[i]·x over the first m columns of the staged group at `base` (its first slot), whose
// slots are XORed with `k` (the group's index within the tile, mod 32).
fn dot_xs(base: u32, k: u32, m: u32) -> f32 {
    var s = 0.0;
    if (m == 32u) {
        for (var i = 0u; i < 32u; i++) {
            s += wv[i] * xs[base + (i ^ k)];
        }
    } else {
        // A row's last, partial group (float weights only): all 32 steps, the rest masked,
        // so that `wv` is indexed by constants only.
        for (var i = 0u; i < 32u; i++) {
            s += select(0.0, wv[i] * xs[base + (i ^ k)], i < m);
        }
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

// Σ wv[i]·xr[i] over the first m weights.
fn dot_xr(m: u32) -> f32 {
    var s = 0.0;
    if (m == 32u) {
        for (var i = 0u; i < 32u; i++) {
            s += wv[i] * xr[i];
        }
    } else {
        for (var i = 0u; i < 32u; i++) {
            s += select(0.0, wv[i] * xr[i], i < m);
        }
    }
    return s;
}
