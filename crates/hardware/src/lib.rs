//! What this machine offers a model: system memory, discrete NVIDIA GPUs (through NVML, loaded
//! at run time so nothing NVIDIA is needed to build or run elsewhere), and on Apple Silicon the
//! unified memory with the share the GPU may wire: the Metal device's own
//! `recommendedMaxWorkingSetSize` (which follows `sudo sysctl iogpu.wired_limit_mb=…`), else
//! that sysctl, else Metal's default formula.
//!
//! Every number can be replaced ([`Hardware::simulated`]) to answer "what if" questions and to
//! test the planner on machines this one is not.

use serde::{Deserialize, Serialize};

#[cfg(target_os = "macos")]
mod metal;
mod nvml;

/// 2^30 bytes.
pub const GIB: u64 = 1 << 30;

/// One discrete GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub vram_total: u64,
    /// Free now (other programs may hold some); equals `vram_total` when simulated.
    pub vram_free: u64,
}

/// Apple-style unified memory: CPU and GPU share `Hardware::ram_total`, and the GPU may keep at
/// most `gpu_limit` bytes of it wired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unified {
    pub gpu_limit: u64,
    /// Where the limit comes from: "Metal device" (its `recommendedMaxWorkingSetSize`),
    /// `iogpu.wired_limit_mb` when raised, else "Metal default" (the formula).
    pub limit_source: String,
}

/// The memory a model can be placed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// System memory (on a Mac: the unified memory), bytes.
    pub ram_total: u64,
    /// Available now, bytes (what other programs leave).
    pub ram_available: u64,
    pub gpus: Vec<Gpu>,
    pub unified: Option<Unified>,
    /// `probed` or `simulated`.
    pub source: String,
}

/// Metal's default working-set limit (`recommendedMaxWorkingSetSize`) on Apple Silicon:
/// about three quarters of the unified memory on machines above 36 GiB, two thirds below.
pub fn metal_default_limit(ram_total: u64) -> u64 {
    if ram_total > 36 * GIB {
        ram_total / 4 * 3
    } else {
        ram_total / 3 * 2
    }
}

impl Hardware {
    /// Reads this machine.
    pub fn probe() -> Self {
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        let ram_total = sys.total_memory();
        let ram_available = sys.available_memory();
        let unified = if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
            let wired_mb = sysctl("iogpu.wired_limit_mb").unwrap_or(0);
            Some(if let Some(limit) = metal_working_set() {
                Unified {
                    gpu_limit: limit,
                    limit_source: "Metal device".into(),
                }
            } else if wired_mb > 0 {
                Unified {
                    gpu_limit: wired_mb << 20,
                    limit_source: "iogpu.wired_limit_mb".into(),
                }
            } else {
                Unified {
                    gpu_limit: metal_default_limit(ram_total),
                    limit_source: "Metal default".into(),
                }
            })
        } else {
            None
        };
        Self {
            ram_total,
            ram_available,
            gpus: nvml::gpus(),
            unified,
            source: "probed".into(),
        }
    }

    /// A machine described by its numbers (GiB): system RAM, one discrete GPU's VRAM, or
    /// unified memory with an explicit GPU limit (`None`: Metal's default).
    pub fn simulated(
        ram_gib: f64,
        vram_gib: Option<f64>,
        unified_limit_gib: Option<Option<f64>>,
    ) -> Self {
        let bytes = |gib: f64| (gib * GIB as f64).round() as u64;
        let ram_total = bytes(ram_gib);
        Self {
            ram_total,
            ram_available: ram_total,
            gpus: vram_gib
                .map(|v| Gpu {
                    name: format!("simulated {v} GiB GPU"),
                    vram_total: bytes(v),
                    vram_free: bytes(v),
                })
                .into_iter()
                .collect(),
            unified: unified_limit_gib.map(|limit| match limit {
                Some(l) => Unified {
                    gpu_limit: bytes(l),
                    limit_source: "iogpu.wired_limit_mb".into(),
                },
                None => Unified {
                    gpu_limit: metal_default_limit(ram_total),
                    limit_source: "Metal default".into(),
                },
            }),
            source: "simulated".into(),
        }
    }

    /// A one-line description, e.g. "256 GiB unified memory, GPU limit 192 GiB (Metal default)".
    pub fn describe(&self) -> String {
        let gib = |b: u64| format!("{:.0} GiB", b as f64 / GIB as f64);
        let mut parts = Vec::new();
        match &self.unified {
            Some(u) => parts.push(format!(
                "{} unified memory, GPU limit {} ({})",
                gib(self.ram_total),
                gib(u.gpu_limit),
                u.limit_source
            )),
            None => parts.push(format!("{} RAM", gib(self.ram_total))),
        }
        for g in &self.gpus {
            parts.push(format!("{} ({} VRAM)", g.name, gib(g.vram_total)));
        }
        format!("{} [{}]", parts.join(", "), self.source)
    }
}

/// An integer `sysctl` value (macOS).
/// The Metal device's `recommendedMaxWorkingSetSize`, where there is one.
#[cfg(target_os = "macos")]
fn metal_working_set() -> Option<u64> {
    metal::recommended_working_set()
}

#[cfg(not(target_os = "macos"))]
fn metal_working_set() -> Option<u64> {
    None
}

fn sysctl(name: &str) -> Option<u64> {
    let out = std::process::Command::new("sysctl")
        .args(["-n", name])
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_some_memory() {
        let h = Hardware::probe();
        assert!(h.ram_total > GIB, "{h:?}");
        assert!(h.ram_available <= h.ram_total);
        assert_eq!(h.source, "probed");
    }

    #[test]
    fn simulated_machines() {
        let mac = Hardware::simulated(256.0, None, Some(None));
        assert_eq!(mac.ram_total, 256 * GIB);
        assert_eq!(mac.unified.as_ref().unwrap().gpu_limit, 192 * GIB);
        let raised = Hardware::simulated(256.0, None, Some(Some(240.0)));
        assert_eq!(raised.unified.unwrap().gpu_limit, 240 * GIB);
        let pc = Hardware::simulated(256.0, Some(24.0), None);
        assert_eq!(pc.gpus[0].vram_total, 24 * GIB);
        assert!(pc.unified.is_none());
        assert_eq!(metal_default_limit(32 * GIB), 32 * GIB / 3 * 2);
        assert!(pc.describe().contains("24 GiB VRAM"), "{}", pc.describe());
    }
}
