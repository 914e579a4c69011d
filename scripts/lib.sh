# Shared helpers for LocalGLM's scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One build directory outside the checkout, shared by every clone (CI reuses it).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/localglm-target}"
mkdir -p "$CARGO_TARGET_DIR"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian/Ubuntu packages the app needs to build and run; extra ones for the tests.
APP_DEBS=(build-essential pkg-config libssl-dev libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev)
# mesa-vulkan-drivers: lavapipe, the CPU Vulkan driver the GPU backend's tests run on here.
# qemu-user-static and the aarch64 cross toolchain: the NEON kernels' tests, under emulation.
TEST_DEBS=(xvfb xauth webkit2gtk-driver mesa-vulkan-drivers libvulkan1 qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross)

ensure_debs() {
  [ -f /etc/debian_version ] || return 0
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_toolchains() {
  command -v cargo >/dev/null || { echo "Rust is required: https://rustup.rs (then re-run)" >&2; exit 1; }
  command -v npm >/dev/null || { echo "Node.js 20+ with npm is required (then re-run)" >&2; exit 1; }
  command -v python3 >/dev/null || { echo "Python 3 with pip is required (then re-run)" >&2; exit 1; }
}

ensure_ui_deps() {
  local stamp="$ROOT/ui/node_modules/.localglm-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/ui/package-lock.json" "$stamp"; then
    log "installing UI dependencies (npm ci)"
    (cd "$ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$ROOT/ui/package-lock.json" "$stamp"
  fi
}

build_ui() {
  log "building the web UI"
  (cd "$ROOT/ui" && npm run --silent build)
}

# The official OpenAI and Anthropic Python clients, for the API tests (user site; idempotent).
ensure_api_clients() {
  python3 -c "import openai, anthropic" 2>/dev/null && return 0
  log "installing the openai and anthropic Python packages (API client tests)"
  python3 -m pip install --quiet --user openai anthropic 2>/dev/null ||
    python3 -m pip install --quiet openai anthropic 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages openai anthropic
}

install_default_model() {
  python3 "$ROOT/scripts/install_default_model.py"
}

# Always the whole workspace with all targets: the same feature resolution as `cargo test
# --workspace`, so the app, the CLI and the tests share one build of mistralrs and tauri
# (building a subset would resolve features differently and recompile them).
build_app() {
  log "building LocalGLM (cargo, dev profile with optimised dependencies)"
  # shellcheck disable=SC2046
  (cd "$ROOT" && cargo build --workspace --all-targets $(gpu_features) "$@")
}

# The executable of the workspace's test target `$2` of package `$1` (built by `cargo test`;
# this only asks cargo where it is).
test_executable() {
  (cd "$ROOT" && cargo test --workspace $(gpu_features) --no-run --message-format=json 2>/dev/null) |
    python3 -c '
import json, sys
pkg, target = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target") or {}
    pid = m.get("package_id", "")
    if (m.get("executable") and t.get("name") == target and "test" in t.get("kind", [])
            and ("#" + pkg + "@" in pid or pid.startswith(pkg + " "))):
        print(m["executable"])
        sys.exit(0)
sys.exit("no test executable " + target + " of " + pkg)
' "$1" "$2"
}

# Cargo features for this OS's GPU: on macOS, mistral.rs's Metal backend for the models it runs
# (the default model included). LocalGLM's own GLM runtime needs none: it finds Metal, Vulkan or
# DX12 at run time through wgpu. Used by every build and test command, so they share one build.
gpu_features() {
  case "$(uname -s)" in
    Darwin) echo "--features localglm-app/metal,localglm-cli/metal" ;;
  esac
}

app_binary() {
  echo "$CARGO_TARGET_DIR/debug/localglm-app"
}
