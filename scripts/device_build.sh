#!/usr/bin/env bash
# Builds what a lent GPU machine runs (it cannot reach crates.io): the GPU crate's test
# binaries and the kernel benchmark, stripped, into device-bin/ (git-ignored, small enough
# to carry). Then, on the device: `bash scripts/device_check.sh` (see there).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo build --workspace --all-targets
rm -rf device-bin && mkdir -p device-bin
for t in kernels ops; do
  bin=$(cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c "import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get('reason')=='compiler-artifact' and m['target']['name']=='$t' and m['package_id'].find('localglm-gpu')>=0 and m.get('executable'):
        print(m['executable'])" | head -1)
  cp "$bin" "device-bin/$t"
done
cp "$CARGO_TARGET_DIR/debug/examples/gpu_bench" device-bin/gpu_bench
strip device-bin/*
ls -la device-bin
