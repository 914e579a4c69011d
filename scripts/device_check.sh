#!/usr/bin/env bash
# Runs on a lent GPU machine from the repository root, with device-bin/ carried over (built
# here by scripts/device_build.sh): checks that an NVIDIA Vulkan driver is present, then runs
# the GPU kernel tests and the kernel benchmark (GB/s of weights against the device's own copy
# bandwidth, same run). Everything printed is also written under $OUT.
set -u
OUT="${OUT:-/tmp/device-out}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
{
  echo "== driver"
  nvidia-smi || echo "nvidia-smi: not found"
  ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
} 2>&1 | tee "$OUT/driver.txt"
echo "== GPU kernel tests"
LOCALGLM_REQUIRE_GPU=1 device-bin/kernels --test-threads 1 2>&1 | tee "$OUT/kernels.txt"
LOCALGLM_REQUIRE_GPU=1 device-bin/ops 2>&1 | tee "$OUT/ops.txt"
echo "== kernel benchmark"
device-bin/gpu_bench --mib 1024 --reps 20 2>&1 | tee "$OUT/bench.txt"
