//! The WGSL sources of the weight kernels: each type's decoder (`shaders/decode/*.wgsl`) with
//! the prelude, the reduction and the kernel body of one shape, assembled per (type, shape,
//! subgroups); and how naga checks them.

use super::GPU_TYPES;
use localglm_quants::GgmlType;

/// The kernel shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `y[t] = W·x[t]` for `n` tokens (prefill, verification; decode uses `Rows`): 8 rows and
    /// 8 tokens per workgroup, the tokens' activations staged in workgroup memory.
    Plain,
    /// The MoE product with the slots grouped by expert (prefill): each expert's rows decoded
    /// once per 8 of its slots, the same way.
    Grouped,
    /// `Plain` for one token (decode): `rows_per_wg()` rows per workgroup, the activations staged
    /// in workgroup memory.
    Rows,
    /// `y[s] = W[ids[s]]·x_s` (MoE decode) the same way.
    RowsIndexed,
    /// `Plain` (or, `grouped`, `Grouped`) on the adapter's matrix units: S×S×S cooperative
    /// matrices of f16 inputs and f32 sums, 32 rows and 32 tokens per workgroup; quantized
    /// weights only, and only where the adapter has the shape and subgroups.
    Coop { size: u32, grouped: bool },
}

impl Kernel {
    /// The kernels every adapter runs.
    pub const ALL: [Kernel; 4] = [
        Kernel::Plain,
        Kernel::Grouped,
        Kernel::Rows,
        Kernel::RowsIndexed,
    ];
    /// The matrix-unit kernels, for both shapes an adapter may have.
    pub const COOP: [Kernel; 4] = [
        Kernel::Coop {
            size: 8,
            grouped: false,
        },
        Kernel::Coop {
            size: 8,
            grouped: true,
        },
        Kernel::Coop {
            size: 16,
            grouped: false,
        },
        Kernel::Coop {
            size: 16,
            grouped: true,
        },
    ];

    /// The cooperative-matrix shape S of a matrix-unit kernel.
    pub fn matrix_size(self) -> Option<u32> {
        match self {
            Kernel::Coop { size, .. } => Some(size),
            _ => None,
        }
    }

    /// Whether the kernel takes the slots grouped by expert.
    pub fn grouped(self) -> bool {
        matches!(self, Kernel::Grouped | Kernel::Coop { grouped: true, .. })
    }
}

/// Invocations per workgroup (a multiple of every subgroup size: 8, 16, 32, 64).
pub(super) const WG: u32 = 64;

/// Rows per workgroup in the mat-vec kernels (`R` in `kernel_rows.wgsl`); `LOCALGLM_GPU_R`
/// (1–16: 8 KiB of staged activations and 4 KiB of partial sums at 16, within the 16 KiB of
/// workgroup memory every device offers) overrides it, for measuring on a device.
pub(super) fn rows_per_wg() -> usize {
    std::env::var("LOCALGLM_GPU_R")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r| (1..=16).contains(r))
        .unwrap_or(8)
}

/// Whether the mat-vec kernels hold a lane's 32 staged activations in registers across its R
/// rows (`XREG` in `kernel_rows.wgsl`; the way llama.cpp's Vulkan mat-vec keeps its activations)
/// or read them from workgroup memory for every row. `LOCALGLM_GPU_XREG=0` turns it off, for
/// measuring both on a device (no real GPU has run either choice against the other yet).
pub(super) fn activations_in_registers() -> bool {
    std::env::var("LOCALGLM_GPU_XREG").map_or(true, |v| v != "0")
}

/// The runtime checks naga adds to the weight kernels. By default it bounds every loop with an
/// extra counter and guards every division (`force_loop_bounding`, `int_div_checks`), which
/// keeps a driver from unrolling the decoders' fixed loops; neither guards anything here: each
/// loop runs to a constant or a parameter, and each divisor is a constant or `x_div`, which the
/// host clamps to at least 1. Buffer bounds checks stay unless `LOCALGLM_GPU_CHECKS=none`
/// (`all` restores naga's defaults), for measuring their cost.
pub(super) fn kernel_checks() -> wgpu::ShaderRuntimeChecks {
    let mut c = wgpu::ShaderRuntimeChecks::checked();
    match std::env::var("LOCALGLM_GPU_CHECKS").as_deref() {
        Ok("all") => {}
        Ok("none") => {
            c.bounds_checks = false;
            c.force_loop_bounding = false;
            c.int_div_checks = false;
        }
        _ => {
            c.force_loop_bounding = false;
            c.int_div_checks = false;
        }
    }
    c
}

const PRELUDE: &str = include_str!("../shaders/prelude.wgsl");
pub(crate) const REDUCE_SHARED: &str = include_str!("../shaders/reduce_shared.wgsl");
const KERNEL_TILE: &str = include_str!("../shaders/kernel_tile.wgsl");
const KERNEL_ROWS: &str = include_str!("../shaders/kernel_rows.wgsl");
const KERNEL_COOP: &str = include_str!("../shaders/kernel_coop.wgsl");
const TOKENS: &str = include_str!("../shaders/tokens.wgsl");
const STAGED: &str = include_str!("../shaders/staged.wgsl");
const STREAM_READ: &str = include_str!("../shaders/stream_read.wgsl");
const REDUCE_ROWS_SHARED: &str = include_str!("../shaders/reduce_rows_shared.wgsl");
const REDUCE_ROWS_SUBGROUP: &str = include_str!("../shaders/reduce_rows_subgroup.wgsl");
const K_SCALE_MIN: &str = include_str!("../shaders/decode/k_scale_min.wgsl");
const IQ4_VALUES: &str = include_str!("../shaders/decode/iq4_values.wgsl");
const Q5_BITS: &str = include_str!("../shaders/decode/q5_bits.wgsl");

/// The WGSL decoder of `ty`, or `None` for types without one.
pub(super) fn decoder(ty: GgmlType) -> Option<&'static str> {
    use GgmlType as G;
    Some(match ty {
        G::F32 => include_str!("../shaders/decode/f32.wgsl"),
        G::F16 => include_str!("../shaders/decode/f16.wgsl"),
        G::BF16 => include_str!("../shaders/decode/bf16.wgsl"),
        G::Q4_0 => include_str!("../shaders/decode/q4_0.wgsl"),
        G::Q4_1 => include_str!("../shaders/decode/q4_1.wgsl"),
        G::Q5_0 => include_str!("../shaders/decode/q5_0.wgsl"),
        G::Q5_1 => include_str!("../shaders/decode/q5_1.wgsl"),
        G::Q8_0 => include_str!("../shaders/decode/q8_0.wgsl"),
        G::IQ4_NL => include_str!("../shaders/decode/iq4_nl.wgsl"),
        G::Q2_K => include_str!("../shaders/decode/q2_k.wgsl"),
        G::Q3_K => include_str!("../shaders/decode/q3_k.wgsl"),
        G::Q4_K => include_str!("../shaders/decode/q4_k.wgsl"),
        G::Q5_K => include_str!("../shaders/decode/q5_k.wgsl"),
        G::Q6_K => include_str!("../shaders/decode/q6_k.wgsl"),
        G::IQ2_XXS => include_str!("../shaders/decode/iq2_xxs.wgsl"),
        G::IQ2_XS => include_str!("../shaders/decode/iq2_xs.wgsl"),
        G::IQ2_S => include_str!("../shaders/decode/iq2_s.wgsl"),
        G::IQ3_XXS => include_str!("../shaders/decode/iq3_xxs.wgsl"),
        G::IQ3_S => include_str!("../shaders/decode/iq3_s.wgsl"),
        G::IQ1_S => include_str!("../shaders/decode/iq1_s.wgsl"),
        G::IQ1_M => include_str!("../shaders/decode/iq1_m.wgsl"),
        G::IQ4_XS => include_str!("../shaders/decode/iq4_xs.wgsl"),
        _ => return None,
    })
}

pub(super) fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

/// The complete WGSL source of one kernel for one type.
pub(super) fn shader_source(ty: GgmlType, kernel: Kernel, subgroups: bool) -> Option<String> {
    let dec = decoder(ty)?;
    let coop = kernel.matrix_size();
    if coop.is_some() && (is_float(ty) || !subgroups) {
        return None;
    }
    let mut s = String::new();
    if let Some(size) = coop {
        // Directives first; the shape's size in the type name (`coop_mat8x8`, `coop_mat16x16`).
        s += &format!("enable f16;\nenable wgpu_cooperative_matrix;\nconst S: u32 = {size}u;\n");
    }
    s += &format!("const WG: u32 = {WG}u;\n");
    s += &crate::tables::wgsl_consts();
    s += PRELUDE;
    if matches!(kernel, Kernel::Rows | Kernel::RowsIndexed) {
        s += &format!(
            "const R: u32 = {}u;\nconst INDEXED: bool = {};\nconst XREG: bool = {};\n",
            rows_per_wg(),
            kernel == Kernel::RowsIndexed,
            activations_in_registers()
        );
        s += if subgroups {
            REDUCE_ROWS_SUBGROUP
        } else {
            REDUCE_ROWS_SHARED
        };
    } else {
        // The tile kernels sum each row over a few invocations in workgroup memory.
        s += &format!("const GROUPED: bool = {};\n", kernel.grouped());
        s += TOKENS;
    }
    if matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K) {
        s += K_SCALE_MIN;
    }
    if matches!(ty, GgmlType::IQ4_NL | GgmlType::IQ4_XS) {
        s += IQ4_VALUES;
    }
    if matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1) {
        s += Q5_BITS;
    }
    s += dec;
    if !is_float(ty) {
        s += &format!(
            "const GPB: u32 = {}u;\nconst BB: u32 = {}u;\n\
             fn decode_group(roff: u32, g: u32) {{\n    decode(roff + (g / GPB) * BB, g % GPB);\n}}\n",
            ty.block_elems() / 32,
            ty.block_bytes()
        );
    }
    let body = match kernel {
        Kernel::Plain | Kernel::Grouped => KERNEL_TILE,
        Kernel::Rows | Kernel::RowsIndexed => KERNEL_ROWS,
        Kernel::Coop { .. } => KERNEL_COOP,
    };
    let (builtins, args) = if subgroups {
        (
            "@builtin(subgroup_id) sg_id: u32,\n    @builtin(subgroup_invocation_id) sg_lane: u32,\n    @builtin(num_subgroups) n_sg: u32,",
            "sg_id, sg_lane, n_sg",
        )
    } else {
        ("", "")
    };
    if let Some(size) = coop {
        s += &body.replace("COOP<", &format!("coop_mat{size}x{size}<"));
        return Some(s);
    }
    s += STAGED;
    s += &body
        .replace("SUBGROUP_BUILTINS", builtins)
        .replace("SUBGROUP_ARGS", args);
    Some(s)
}

/// The streaming-read reference kernel (`Gpu::read_bandwidth`).
pub(super) fn stream_read_source() -> String {
    format!("const WG: u32 = {WG}u;\n{STREAM_READ}")
}

/// Every WGSL source the backend can compile, named: each type's kernels with and without
/// subgroup operations, and every op. For checks that need no device (the MSL translation
/// test: the translation wgpu makes on macOS).
pub fn all_shader_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ty in GPU_TYPES {
        for k in Kernel::ALL.into_iter().chain(Kernel::COOP) {
            for subgroups in [false, true] {
                if let Some(src) = shader_source(ty, k, subgroups) {
                    out.push((format!("{ty} {k:?} subgroups={subgroups}"), src));
                }
            }
        }
    }
    out.push(("stream read".into(), stream_read_source()));
    for op in crate::ops::all_ops() {
        out.push((format!("{op:?}"), crate::ops::op_source(op)));
    }
    out
}
