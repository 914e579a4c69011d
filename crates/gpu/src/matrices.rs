//! The matrix units (cooperative matrices: Metal's `simdgroup_matrix`, Vulkan's
//! `KHR_cooperative_matrix`) and when a product runs on them (`kernel_coop.wgsl`).
//!
//! Invariant: the matrix units are used only where they proved themselves on this device. The
//! kernels for them have run on few drivers (Mesa's lavapipe; no NVIDIA driver has built the
//! 16×16×16 kernel yet), so a driver that miscomputes or refuses them must cost speed, never a
//! wrong answer, a failed prompt or a panic:
//! * when the device opens, one product on them ([`Gpu::check_matrices`]) must give exactly the
//!   sums the host computes (small integers: every f16 product and f32 sum is exact), or they
//!   are off for the device;
//! * a type whose matrix-unit kernel the driver refuses to build runs on the tile kernels.
//!
//! Either is reported by [`Gpu::matrix_fallback`].

use crate::kernels::{Kernel, QWeight, COOP_MIN_TOKENS};
use crate::{Gpu, GpuError, GpuOptions};
use localglm_quants::GgmlType;
use std::sync::atomic::Ordering;

/// Whether products of many tokens (prefill) run on the adapter's matrix units — cooperative
/// matrices: Metal's `simdgroup_matrix`, Vulkan's `KHR_cooperative_matrix` — with f16 inputs and
/// f32 sums (`kernel_coop.wgsl`). They need an S×S×S f16 → f32 shape (S = 8 or 16) and
/// subgroups; without them the tile kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrices {
    /// Never: every product on the f32 kernels.
    Off,
    /// For a product of at least `COOP_MIN_TOKENS` tokens, and for a MoE product whose experts
    /// average at least half that many slots; quantized weights only (float weights, GLM's
    /// routers among them, keep f32 inputs).
    Auto,
    /// For every product of several tokens of a quantized weight (tests).
    Always,
}

impl Matrices {
    /// `Auto`, or `Off` where `LOCALGLM_GPU_COOP=0` (for measuring both on a device).
    pub fn from_env() -> Self {
        match std::env::var("LOCALGLM_GPU_COOP").as_deref() {
            Ok("0") | Ok("off") => Matrices::Off,
            _ => Matrices::Auto,
        }
    }
}

/// A fault put into the matrix-unit kernels, for testing the fallback on a driver that has
/// them (there is no other way to make a working driver fail).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixFault {
    /// The kernels skip every other S-column step: wrong sums.
    WrongSums,
    /// The kernels do not compile.
    Refused,
}

/// The S of the adapter's S×S×S f16 → f32 cooperative matrices (the smaller where it has both
/// 8 and 16), where the options allow them and the adapter has subgroups and f16.
pub(crate) fn coop_shape(
    adapter: &wgpu::Adapter,
    opts: &GpuOptions,
    subgroups: bool,
) -> Option<u32> {
    let needed = wgpu::Features::SHADER_F16 | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
    if opts.matrices == Matrices::Off || !subgroups || !adapter.features().contains(needed) {
        return None;
    }
    adapter
        .cooperative_matrix_properties()
        .iter()
        .filter(|p| {
            p.m_size == p.n_size
                && p.n_size == p.k_size
                && matches!(p.m_size, 8 | 16)
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        })
        .map(|p| p.m_size)
        .min()
}

/// The check's product: Q8_0 weights (scale 1) of 48 rows × 64 columns by 40 tokens — a full
/// tile and a partial one each way, two 32-weight groups per row.
const CHECK_ROWS: usize = 48;
const CHECK_COLS: usize = 64;
const CHECK_TOKENS: usize = 40;

/// Weight `(r, c)` of the check, in −8..=8.
fn check_weight(r: usize, c: usize) -> i32 {
    ((r * 7 + c * 3) % 17) as i32 - 8
}

/// Activation `c` of token `t`, in −6..=6.
fn check_activation(t: usize, c: usize) -> i32 {
    ((t * 5 + c * 11) % 13) as i32 - 6
}

impl Gpu {
    /// Runs one product on the matrix units and compares it with the sums computed here; on
    /// any difference, or an error, turns them off for this device and keeps why. Leaves no
    /// trace in the counters or the bind groups (its pipeline stays compiled).
    pub(crate) fn check_matrices(&mut self) {
        if self.coop.is_none() {
            return;
        }
        if let Err(why) = self.matrices_agree() {
            let s = self.coop.map_or(0, |(s, _)| s);
            self.matrix_fallback = Some(format!(
                "the matrix units ({s}x{s}x{s} f16 -> f32) are off on this device: {why}"
            ));
            self.coop = None;
        }
        self.release_bindings();
        self.counters.reset();
    }

    fn matrices_agree(&self) -> Result<(), GpuError> {
        let (rows, cols, n) = (CHECK_ROWS, CHECK_COLS, CHECK_TOKENS);
        let mut bytes = Vec::with_capacity(rows * cols / 32 * 34);
        for r in 0..rows {
            for g in 0..cols / 32 {
                bytes.extend_from_slice(&0x3c00u16.to_le_bytes()); // f16 1.0
                bytes.extend((0..32).map(|i| check_weight(r, g * 32 + i) as i8 as u8));
            }
        }
        let xs: Vec<f32> = (0..n * cols)
            .map(|i| check_activation(i / cols, i % cols) as f32)
            .collect();
        let w = self.upload_weight("matrix check", GgmlType::Q8_0, &bytes, 1, rows, cols)?;
        let x = self.upload_f32(&xs)?;
        let y = self.zeros(n * rows)?;
        let before = self.counters().matrix_products;
        self.matmul(&w, &x, 0, n, &y, 0)?;
        let got = self.read_f32(&y)?;
        if self.counters().matrix_products == before {
            let refused = self.coop_refused.lock().expect("refused kernels");
            return Err(GpuError::Shader {
                what: "the Q8_0 matrix-unit kernel".into(),
                message: match refused.get(&GgmlType::Q8_0) {
                    Some(why) => format!("refused: {why}"),
                    None => "not run on the matrix units".into(),
                },
            });
        }
        for t in 0..n {
            for r in 0..rows {
                let want: i32 = (0..cols)
                    .map(|c| check_weight(r, c) * check_activation(t, c))
                    .sum();
                let have = got[t * rows + r];
                if have != want as f32 {
                    return Err(GpuError::WrongResult(format!(
                        "a check product gave {have} for {want} (token {t}, row {r})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Why the matrix units are not used on this device although the adapter has them (the
    /// check failed), or why some types run without them (their kernel was refused); `None`
    /// where they are used as asked, or where the adapter has none.
    pub fn matrix_fallback(&self) -> Option<String> {
        if let Some(why) = &self.matrix_fallback {
            return Some(why.clone());
        }
        let refused = self.coop_refused.lock().expect("refused kernels");
        if refused.is_empty() {
            return None;
        }
        let mut types: Vec<String> = refused.keys().map(|t| t.to_string()).collect();
        types.sort();
        let first = refused.values().next().cloned().unwrap_or_default();
        Some(format!(
            "the driver refused the matrix-unit kernels of {}, which run on the tile kernels: {first}",
            types.join(", ")
        ))
    }

    /// The matrix units' shape for a product of `n` tokens by `w` (`grouped`: slots grouped
    /// by expert), where they run it: asked for, allowed for the weight, and its kernel built.
    pub(crate) fn coop_for(&self, w: &QWeight, n: usize, grouped: bool) -> Option<u32> {
        let (size, when) = self.coop?;
        let wanted = match when {
            Matrices::Off => false,
            Matrices::Auto => n >= COOP_MIN_TOKENS,
            Matrices::Always => n >= 2,
        };
        if !(wanted && w.matrices_allowed()) {
            return None;
        }
        if self
            .coop_refused
            .lock()
            .expect("refused kernels")
            .contains_key(&w.ty())
        {
            return None;
        }
        match self.pipeline(w.ty(), Kernel::Coop { size, grouped }) {
            Ok(_) => Some(size),
            Err(e) => {
                let why = match e {
                    GpuError::Shader { message, .. } => message,
                    e => e.to_string(),
                };
                let why = crate::one_line(&why);
                let mut refused = self.coop_refused.lock().expect("refused kernels");
                refused.insert(w.ty(), why);
                None
            }
        }
    }

    pub(crate) fn count_matrices(&self, kernel: Kernel) {
        if kernel.matrix_size().is_some() {
            self.counters
                .matrix_products
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A matrix-unit kernel's source with the test fault, if any, put in.
    pub(crate) fn with_fault(&self, kernel: Kernel, src: String) -> String {
        match (kernel, self.matrix_fault) {
            (Kernel::Coop { .. }, Some(MatrixFault::WrongSums)) => {
                src.replace("k += S)", "k += 2u * S)")
            }
            (Kernel::Coop { .. }, Some(MatrixFault::Refused)) => src + "\nfn refused( {\n",
            _ => src,
        }
    }
}
