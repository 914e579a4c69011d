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
