//! Opening a device for the tests: any adapter, software ones included (lavapipe in CI).
//! Without one the test says so and passes, unless `LOCALGLM_REQUIRE_GPU=1` (set by the test
//! script where it installs lavapipe), which makes a missing adapter a failure.

use localglm_gpu::{Gpu, GpuOptions};

pub fn open(opts: GpuOptions) -> Option<Gpu> {
    let opts = GpuOptions {
        allow_software: true,
        ..opts
    };
    match Gpu::new(&opts) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("LOCALGLM_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("LOCALGLM_REQUIRE_GPU=1 but {e}");
            }
            eprintln!("SKIPPED: no GPU adapter to test on ({e})");
            None
        }
    }
}

/// `gpu` where its adapter lists S×S×S f16 → f32 cooperative matrices (S = 8 or 16) and has
/// subgroups, else `None` with the reason printed (Debian 12's lavapipe, Mesa 22.3) — or a
/// failure under `LOCALGLM_REQUIRE_COOP=1`, which `scripts/test.sh` sets where it runs the
/// matrix-unit tests again on Mesa 26's lavapipe.
#[allow(dead_code)] // Not every test file that shares this module uses it.
pub fn with_matrix_units(gpu: Gpu) -> Option<Gpu> {
    let a = gpu.adapter();
    let listed = a.cooperative_matrix.iter().any(|s| {
        s.ends_with("f16->f32") && (s.starts_with("8x8x8 ") || s.starts_with("16x16x16 "))
    });
    if listed && a.subgroups {
        return Some(gpu);
    }
    let why = format!(
        "{} ({}) offers no S×S×S f16 → f32 cooperative matrices (it lists {:?})",
        a.name, a.driver, a.cooperative_matrix
    );
    if std::env::var("LOCALGLM_REQUIRE_COOP").is_ok_and(|v| v == "1") {
        panic!("LOCALGLM_REQUIRE_COOP=1 but {why}");
    }
    eprintln!("matrix-unit kernels not run on this adapter: {why}");
    None
}
