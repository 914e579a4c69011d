// The bandwidth reference: every invocation loads 16 bytes at a time, striding over the whole
// buffer, and XORs them (written only if they match an impossible value, so the loads stay).
@group(0) @binding(0) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&W);
    let stride = nwg.x * WG;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < n; i += stride) {
        acc ^= W[i];
    }
    if (all(acc == vec4<u32>(0x9e3779b9u))) {
        Y[0] = acc.x;
    }
}
