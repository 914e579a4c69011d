// Shared by every weight-product kernel: bindings, parameters, byte access into the raw GGUF
// blocks (which are not 4-byte aligned), and the i-quant tables.

struct Params {
    rows: u32,       // rows of one matrix (of one expert, for the indexed kernel)
    cols: u32,       // weights per row
    row_bytes: u32,  // bytes per row in the GGUF type
    n: u32,          // tokens (plain) or slots (indexed)
    g0: u32,         // first global row held by this weight chunk
    g1: u32,         // one past the last global row of this chunk
    x_stride: u32,   // floats between consecutive tokens/slots in X (0: one shared vector)
    y_stride: u32,   // floats between consecutive tokens/slots in Y
    x_off: u32,      // first float of X
    y_off: u32,      // first float of Y
    wg_x: u32,       // workgroups along x (rows are split over x and y)
    groups: u32,     // 32-weight groups per row (ceil(cols / 32))
    x_div: u32,      // indexed: slots sharing one X row (slot s reads row s / x_div)
    w_skew: u32,     // bytes before the chunk's first row in W (in-place host pages; else 0)
    accumulate: u32, // plain: add the product to Y instead of writing it
    experts: u32,    // grouped: experts in the weight (the groups start after E + 1 offsets)
    x_up: u32,       // mat-vec: 0, or X holds SwiGLU's gate g and, x_up floats after it, up u:
                     // the activations are silu(g)·u (the FFN's down product)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> T: array<u32>;
@group(0) @binding(4) var<storage, read> IDS: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

// One 32-weight group, decoded by the type's `decode`; weights past the row's end are 0 (only
// float rows end inside a group). Every index into it (and into `xr`) must be a constant once
// the loops are unrolled: one dynamic index makes a driver keep the whole array in memory
// instead of registers (a store and a load per weight).
var<private> wv: array<f32, 32>;

fn b8(o: u32) -> u32 {
    let a = o + P.w_skew;
    return (W[a >> 2u] >> ((a & 3u) << 3u)) & 0xffu;
}

fn b16(o: u32) -> u32 {
    let a = o + P.w_skew;
    let i = a >> 2u;
    let s = (a & 3u) << 3u;
    var v = W[i] >> s;
    if (s == 24u) {
        v |= W[i + 1u] << 8u;
    }
    return v & 0xffffu;
}

fn b32(o: u32) -> u32 {
    let a = o + P.w_skew;
    let i = a >> 2u;
    let s = (a & 3u) << 3u;
    if (s == 0u) {
        return W[i];
    }
    return (W[i] >> s) | (W[i + 1u] << (32u - s));
}

// The 16 bytes at `o` as four words: four aligned loads, five where `o` is not aligned (a
// decoder's loads are words, not bytes: one load per byte was the kernels' bottleneck).
fn words4(o: u32) -> vec4<u32> {
    let a = o + P.w_skew;
    let i = a >> 2u;
    let s = (a & 3u) << 3u;
    let w = vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u]);
    if (s == 0u) {
        return w;
    }
    let r = 32u - s;
    return (w >> vec4<u32>(s)) | (vec4<u32>(w.y, w.z, w.w, W[i + 4u]) << vec4<u32>(r));
}

// The 32 bytes at `o` as eight words.
fn words8(o: u32) -> array<u32, 8> {
    let a = words4(o);
    let b = words4(o + 16u);
    return array<u32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

// Byte k of the word w.
fn byte(w: u32, k: u32) -> u32 {
    return (w >> (k << 3u)) & 0xffu;
}

fn f16at(o: u32) -> f32 {
    return unpack2x16float(b16(o)).x;
}

// The low byte of `v` as a signed integer, in f32.
fn sx8(v: u32) -> f32 {
    return f32(bitcast<i32>(v << 24u) >> 24u);
}

// Byte `o` of the lookup tables.
fn tb8(o: u32) -> u32 {
    return (T[o >> 2u] >> ((o & 3u) << 3u)) & 0xffu;
}

// Word `i` of the lookup tables (tables and grid entries are word-aligned).
fn tw(i: u32) -> u32 {
    return T[i];
}

// The i-quants' sign byte for a 7-bit sign index: the index with an eighth bit that makes the
// count of set bits even (what the KSIGNS table holds, computed instead of loaded).
fn ksigns(i: u32) -> u32 {
    return i | ((countOneBits(i) & 1u) << 7u);
}

// ±1 for sign bit `k` of `signs` (set: negative).
fn sgn(signs: u32, k: u32) -> f32 {
    return select(1.0, -1.0, ((signs >> k) & 1u) != 0u);
}
