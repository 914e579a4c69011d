#!/usr/bin/env bash
# Runs every check: rustfmt and clippy, Rust tests (unit, integration, real model, IPC, bindings), UI unit tests,
# and the end-to-end tests in the real window (tauri-driver + WebKitWebDriver under Xvfb).
source "$(dirname "$0")/lib.sh"

ensure_toolchains
ensure_debs "${APP_DEBS[@]}" "${TEST_DEBS[@]}"
ensure_ui_deps
install_default_model
build_ui

if ! command -v tauri-driver >/dev/null || ! tauri-driver --help >/dev/null 2>&1; then
  log "installing tauri-driver 2.1.0"
  cargo install tauri-driver --version 2.1.0 --locked --quiet
fi

# lavapipe was installed above: a GPU test that finds no adapter here is a failure, not a skip.
if [ -f /etc/debian_version ]; then
  export LOCALGLM_REQUIRE_GPU=1
fi
# Mesa's Vulkan loader complains on every device open without one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi

status=0
log "formatting and lints"
(cd "$ROOT" && cargo fmt --all --check && cargo clippy --workspace --all-targets $(gpu_features) -- -D warnings) || status=1

log "Rust tests"
# shellcheck disable=SC2046
(cd "$ROOT" && cargo test --workspace --no-fail-fast $(gpu_features)) || status=1
# The portable kernels (what a CPU without SIMD kernels runs) on the same checks.
(cd "$ROOT" && LOCALGLM_SIMD=off cargo test -p localglm-quants --test kernels) || status=1
# On AVX-512 machines, the AVX2 kernels (what most desktop x86 CPUs run) too.
(cd "$ROOT" && LOCALGLM_SIMD=avx2 cargo test -p localglm-quants --test kernels) || status=1
# The GPU mat-vec kernel at 1 and 16 rows per workgroup (8 above), and at 1 with the activations
# read from workgroup memory per row instead of held in registers (LOCALGLM_GPU_XREG=0): the
# variants the lent-GPU sweep measures (scripts/device_check.sh), checked here first.
for v in 1:0 16:1; do
  # shellcheck disable=SC2046
  (cd "$ROOT" && LOCALGLM_GPU_R=${v%:*} LOCALGLM_GPU_XREG=${v#*:} cargo test --workspace $(gpu_features) --test kernels) || status=1
done

# The matrix-unit (cooperative-matrix) kernels of the GPU backend, which Debian 12's lavapipe
# cannot run: the same test binaries again on Mesa 26's lavapipe (Debian trixie-backports,
# unpacked into a cache folder, `scripts/lavapipe_matrices.sh`), where a missing shape is a
# failure (LOCALGLM_REQUIRE_COOP=1): the kernels against the CPU for every quantized type, and
# the GLM runtime's GPU reference tests and the dense models' GPU tests (the fast mode runs
# prompts on the matrix units).
log "the GPU backend's matrix-unit kernels on Mesa 26's lavapipe (KHR_cooperative_matrix)"
if [ -f /etc/debian_version ] && [ "$(uname -m)" = x86_64 ]; then
  for t in localglm-gpu:kernels:matrix_unit localglm-gpu:matrix_check: localglm-glm:gpu_reference: localglm-glm:dense:on_the_gpu; do
    IFS=: read -r pkg target filter <<<"$t"
    bin=$(test_executable "$pkg" "$target") &&
      (cd "$ROOT" && LOCALGLM_REQUIRE_COOP=1 bash scripts/lavapipe_matrices.sh "$bin" $filter) ||
      status=1
  done
else
  echo "SKIPPED: the matrix-unit kernels' run needs Debian's packages on x86-64" >&2
fi

# The kernels as an aarch64 build runs them (NEON), and the runtime's transformers
# references on them, under QEMU user mode: as a CPU with the dot-product and int8 matrix extensions (`-cpu max`:
# the SDOT and SMMLA paths) and as one without (`-cpu cortex-a72`: plain NEON). A cross build of two
# crates, in the target's own directory. (No GPU there: the dense tests' GPU runs are left out
# by name; they run on lavapipe above.)
log "aarch64 kernels and GLM references under QEMU (-cpu max: SDOT, SMMLA; -cpu cortex-a72: plain NEON)"
if command -v qemu-aarch64-static >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null \
  && rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  for cpu in max cortex-a72; do
    (cd "$ROOT" && export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu $cpu -L /usr/aarch64-linux-gnu" \
      && cargo test --target aarch64-unknown-linux-gnu -p localglm-quants \
      && cargo test --target aarch64-unknown-linux-gnu -p localglm-glm --test reference --test dense \
        -- --skip on_the_gpu) || status=1
  done
else
  echo "SKIPPED: no qemu-aarch64-static, aarch64-linux-gnu-gcc or rustup aarch64 target here" >&2
fi

# The GPU backend (its Metal path included) and the crates under the runtime, for Apple
# Silicon: a type check, since no Mac is at hand. Left out because a build script compiles C
# for the target, which needs Apple's SDK: the GLM runtime (candle-core pulls tokenizers with
# Oniguruma), the planner (ureq's rustls → ring), and the engine, CLI and app (mistralrs, tauri).
log "type-check for aarch64-apple-darwin (the GPU backend, quants, gguf, hardware)"
if rustup target add aarch64-apple-darwin >/dev/null 2>&1; then
  (cd "$ROOT" && cargo check --target aarch64-apple-darwin -p localglm-gpu -p localglm-quants \
    -p localglm-gguf -p localglm-hardware) || status=1
else
  echo "SKIPPED: rustup cannot add the aarch64-apple-darwin target here" >&2
fi

log "the local API with the official openai and anthropic clients"
ensure_api_clients
(cd "$ROOT" && python3 scripts/openai_client_test.py "$CARGO_TARGET_DIR/debug/localglm") || status=1
(cd "$ROOT" && python3 scripts/agent_client_test.py "$CARGO_TARGET_DIR/debug/localglm") || status=1

log "UI unit tests"
(cd "$ROOT/ui" && npm test) || status=1

log "end-to-end tests in the real window"
build_app
# WORKAROUND: session 28's second CI run lost the test runner's process to V8's default ~4 GiB
# heap limit (a heap-out-of-memory abort after its 18th subtest; the run before passed 24 of 24).
# Two unbounded buffers found since are gone (the driver's log is a 64 KiB tail; the remote
# test's server no longer writes into the runner's stderr and is awaited at exit), but neither
# is proven to be the cause: 8 GiB stays until a run with the fixes has failed no more.
(cd "$ROOT" && NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=8192" node --test --test-concurrency=1 e2e/ui.test.mjs e2e/presets.test.mjs e2e/models.test.mjs e2e/downloads.test.mjs e2e/errors.test.mjs e2e/chat.test.mjs e2e/glm.test.mjs e2e/remote.test.mjs e2e/api.test.mjs e2e/render.test.mjs e2e/interrupted.test.mjs e2e/branches.test.mjs e2e/runtime.test.mjs) || status=1

exit $status
