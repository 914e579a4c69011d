#!/usr/bin/env bash
# Builds what a lent GPU machine runs (it cannot reach crates.io or Debian): the GPU crate's
# kernel tests, the kernel benchmark, the GLM runtime's GPU reference tests and the `glm_bench`
# example (the runtime without the planner or mistralrs), stripped and packed into
# device-bin/bins.tar.xz (git-ignored; carry it, with .gl and .whl). With LLAMA_VULKAN_BIN
# naming a llama.cpp build's bin/ (built with -DGGML_VULKAN=ON -DBUILD_SHARED_LIBS=OFF, see
# docs/benchmarks.md) its llama-bench goes along, for the same-file comparison. Also fetches the
# Vulkan loader's Debian packages into .gl/ and the gguf wheel into .whl/ (the bench model is
# made there). Then, on the device: `bash scripts/device_check.sh` (see there).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo build --workspace --all-targets
rm -rf device-bin && mkdir -p device-bin/stage
for t in kernels ops matrix_check; do cp "$(test_executable localglm-gpu "$t")" "device-bin/stage/$t"; done
cp "$(test_executable localglm-glm gpu_reference)" device-bin/stage/gpu_reference
cargo build --workspace --examples
cp "$CARGO_TARGET_DIR/debug/examples/gpu_bench" "$CARGO_TARGET_DIR/debug/examples/glm_bench" device-bin/stage/
if [ -n "${LLAMA_VULKAN_BIN:-}" ]; then cp "$LLAMA_VULKAN_BIN/llama-bench" device-bin/stage/; fi
strip device-bin/stage/*
tar -C device-bin/stage -cJf device-bin/bins.tar.xz .
rm -rf device-bin/stage

# The loader and vulkaninfo (the image has the NVIDIA driver but no Vulkan loader), and the
# wheel the bench-model script needs beyond the image's numpy and regex.
exclude="$(git rev-parse --git-dir)/info/exclude"
for d in /.gl/ /.whl/; do grep -qx "$d" "$exclude" || echo "$d" >>"$exclude"; done
mkdir -p .gl .whl /tmp/amd64/partial
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update -q >/dev/null
(cd .gl && apt-get "${o[@]}" download libvulkan1 vulkan-tools)
python3 -m pip download -q --no-deps -d .whl gguf==0.19.0
ls -la device-bin .gl .whl
echo "carry: device-bin .gl .whl"
