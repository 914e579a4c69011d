#!/usr/bin/env bash
# Sets LocalGLM up on this machine (idempotent) and, with --run, launches the app.
#   system packages (Debian/Ubuntu), UI dependencies, the default model, UI build, app build.
source "$(dirname "$0")/lib.sh"

ensure_toolchains
ensure_debs "${APP_DEBS[@]}"
ensure_ui_deps
install_default_model
build_ui
build_app

if [ "${1:-}" = "--run" ]; then
  log "starting LocalGLM (data: ${LOCALGLM_DATA_DIR:-platform default})"
  exec "$(app_binary)"
fi
