#!/usr/bin/env bash
# Runs on a lent GPU machine from the repository root, with what scripts/device_build.sh made
# here carried over (device-bin/, .gl/ with the Vulkan loader's Debian packages, .whl/ with the
# gguf wheel; see docs/benchmarks.md, "On a lent GPU machine"). It checks that an NVIDIA Vulkan
# driver is present, then runs whatever device-bin holds: the GPU kernel tests, the kernel
# benchmark, the GLM runtime's GPU reference tests, and the GLM bench on the mid bench model
# (made there, as here) against llama.cpp's Vulkan backend on the same file when device-bin has
# its llama-bench. Each step has its own time limit; everything printed also goes under $OUT.
#
# `bash scripts/device_check.sh [model|glm|kernels|bench|sweep|long]...` runs only the named
# steps (sweep: the kernel benchmark at 1, 2, 4 and 16 rows per workgroup, and with
# LOCALGLM_GPU_XREG=0, and the model with gate and up as separate products and without the
# matrix units, LOCALGLM_GPU_COOP=0).
set -u
OUT="${OUT:-/tmp/device-out}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
ROOT=$PWD
steps=" ${*:-model glm kernels bench sweep long} "
want() { [[ "$steps" == *" $1 "* ]]; }
BIN=/tmp/device-bin
rm -rf "$BIN" && mkdir -p "$BIN"
if [ -f device-bin/bins.tar.xz ]; then tar -xJf device-bin/bins.tar.xz -C "$BIN"; else cp -r device-bin/. "$BIN"; fi
ls -la "$BIN"

{
  echo "== Vulkan loader and driver"
  # The image has the NVIDIA driver but no Vulkan loader: the loader's Debian packages travel.
  if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  ldconfig -p | grep libvulkan || echo "no libvulkan"
  nvidia-smi || echo "nvidia-smi: not found"
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d; do
    ls -l "$d" 2>/dev/null
  done
  if ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 &&
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    echo "VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
  fi
  command -v vulkaninfo >/dev/null && timeout 30 vulkaninfo --summary 2>&1 | head -60
} 2>&1 | tee "$OUT/driver.txt"
if grep -q "^VK_DRIVER_FILES=" "$OUT/driver.txt"; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# Never measure or test lavapipe by accident on the lent machine.
export LOCALGLM_REQUIRE_GPU=1

MODEL=/tmp/glm-bench-mid.gguf
if { want model || want long || want sweep; } && [ -x "$BIN/glm_bench" ] && [ ! -f "$MODEL" ]; then
  # Made in the background while the tests run (numpy and regex are in the image; gguf travels).
  (
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
      cd scripts && PYTHONPATH=/tmp/site python3 make_glm_bench_model.py "$MODEL.part" --size mid &&
      mv "$MODEL.part" "$MODEL"
  ) >"$OUT/model.txt" 2>&1 &
  MAKER=$!
fi

step() { # name limit command...
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  local t=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t)) s"
}

bench_model() { # name limit prompt gen reps [glm_bench options...]
  [ -n "${MAKER:-}" ] && wait "$MAKER" && MAKER=
  tail -3 "$OUT/model.txt" 2>/dev/null
  local peer=()
  [ -x "$BIN/llama-bench" ] && peer=(--llama-bench "$BIN/llama-bench")
  step "$1" "$2" "$BIN/glm_bench" --model "$MODEL" --prompt "$3" --gen "$4" --reps "$5" "${peer[@]}" "${@:6}"
}
# Most telling first, so that a run cut short by the lease still brings the most back.
if want model && [ -x "$BIN/glm_bench" ]; then
  bench_model glm_bench 150 128 64 3
  # Which device and features llama.cpp's Vulkan backend found (its log), and a short run.
  [ -x "$BIN/llama-bench" ] && step llama_info 60 "$BIN/llama-bench" -m "$MODEL" -p 16 -n 16 -ngl 99 -r 1
fi
if want glm && [ -x "$BIN/gpu_reference" ]; then
  export LOCALGLM_GLM_FIXTURES=$ROOT/crates/glm/tests/fixtures
  step gpu_reference 240 "$BIN/gpu_reference" --test-threads 4
fi
if want kernels; then
  # Every kernel of every type against the CPU, as `localglm gpu --check` runs it.
  [ -x "$BIN/gpu_bench" ] && step verify 120 "$BIN/gpu_bench" --check
  # The matrix units' check (NVIDIA's 16x16x16 kernel: never built by a driver before).
  [ -x "$BIN/matrix_check" ] && step matrix_check 120 "$BIN/matrix_check" --nocapture
  [ -x "$BIN/kernels" ] && step kernels 240 "$BIN/kernels" --test-threads 4
  [ -x "$BIN/ops" ] && step ops 240 "$BIN/ops" --test-threads 4
fi
if want bench && [ -x "$BIN/gpu_bench" ]; then
  step gpu_bench 150 "$BIN/gpu_bench" --mib 512 --reps 6
  # A prompt's products: the matrix units (where the adapter has them) against the tile kernels.
  step gpu_bench_prefill 120 "$BIN/gpu_bench" --tokens 256 --mib 32 --reps 4 --types Q4_K,Q6_K,IQ2_XXS,IQ1_S,IQ3_XXS
fi
# Rows per workgroup of the mat-vec kernel (8 by default): on the H200 the kernels reached
# 0.03-0.24 of the streaming read; fewer rows per workgroup mean more workgroups in flight.
if want sweep && [ -x "$BIN/gpu_bench" ]; then
  for r in 1 2 4 16; do
    LOCALGLM_GPU_R=$r step "gpu_bench_r$r" 90 "$BIN/gpu_bench" --mib 256 --reps 4 --types IQ1_S,IQ2_XXS,Q4_K,F32
  done
  # The activations read from workgroup memory per row (the kernel before session 26).
  LOCALGLM_GPU_XREG=0 step gpu_bench_xreg0 90 "$BIN/gpu_bench" --mib 256 --reps 4 --types IQ1_S,IQ2_XXS,Q4_K,F32
  # Each FFN's gate and up as two products (as before session 27, and on unified memory).
  [ -x "$BIN/glm_bench" ] && bench_model glm_bench_separate 150 128 64 3 --weights separate
  # The prompt's products on the f32 tile kernels instead of the matrix units (cooperative
  # matrices, where the adapter has them: the glm_bench step's prefill line says).
  [ -x "$BIN/glm_bench" ] && LOCALGLM_GPU_COOP=0 bench_model glm_bench_no_matrices 150 128 64 3
fi
if want long && [ -x "$BIN/glm_bench" ]; then
  bench_model glm_bench_long 150 2048 32 2
fi
echo "== done"
