#!/usr/bin/env bash
# Runs a command on a lavapipe that has cooperative matrices (Vulkan KHR_cooperative_matrix: the
# matrix units the GPU backend's prefill kernels use where an adapter has them).
#
#   bash scripts/lavapipe_matrices.sh <program> [args...]
#
# Debian 12's lavapipe (Mesa 22.3) has none, nor has bookworm-backports' Mesa 25.0; Mesa 26's
# (Debian trixie-backports) offers 8x8x8 f16 -> f32. Trixie's libraries need a newer glibc
# than bookworm's, so they are not installed: the packages are unpacked into a cache folder
# (once; ~60 MB) and the program runs under that folder's dynamic loader, with its libraries and
# lavapipe as the only Vulkan driver. The program itself is unchanged (built here, against the
# older glibc, which the newer one runs). x86-64 Linux with dpkg-deb only.
set -euo pipefail

DIR="${LOCALGLM_LAVAPIPE_DIR:-$HOME/.cache/localglm-lavapipe-mesa26}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LIB="$DIR/root/usr/lib/x86_64-linux-gnu"
# Mesa's Vulkan drivers from trixie-backports; the rest from trixie (what lavapipe and LLVM 19
# load, with the loader and C runtime they were built against).
PACKAGES=(mesa-vulkan-drivers libvulkan1 libc6 libstdc++6 libgcc-s1 libllvm19 libdrm2
  libdrm-amdgpu1 libdisplay-info2 libwayland-client0 libzstd1 zlib1g libexpat1 libxcb1
  libxcb-randr0 libx11-xcb1 libxcb-dri3-0 libxcb-present0 libxcb-xfixes0 libxcb-sync1
  libxcb-shm0 libxshmfence1 libffi8 libedit2 libz3-4 libxml2 libtinfo6 libbsd0 libmd0 libxau6
  libxdmcp6 libx11-6 libicu76 liblzma5 libelf1t64 libpng16-16t64)

if [ "$(uname -sm)" != "Linux x86_64" ] || ! command -v dpkg-deb >/dev/null; then
  echo "lavapipe_matrices: needs x86-64 Linux with dpkg-deb" >&2
  exit 3
fi

if [ ! -f "$DIR/.complete" ]; then
  echo "lavapipe_matrices: fetching Mesa 26's lavapipe and its libraries into $DIR" >&2
  rm -rf "$DIR"
  mkdir -p "$DIR/debs"
  for suite in trixie-backports trixie; do
    curl -fsSL -m 300 "$MIRROR/dists/$suite/main/binary-amd64/Packages.xz" | xz -dc \
      >"$DIR/$suite.packages"
  done
  for p in "${PACKAGES[@]}"; do
    file=""
    for suite in trixie-backports trixie; do
      file=$(awk -v p="$p" '$0 == "Package: " p { f = 1 } f && /^Filename:/ { print $2; exit }' \
        "$DIR/$suite.packages")
      [ -n "$file" ] && break
    done
    if [ -z "$file" ]; then
      echo "lavapipe_matrices: no Debian package $p" >&2
      exit 1
    fi
    curl -fsSL -m 300 -o "$DIR/debs/$(basename "$file")" "$MIRROR/$file"
    dpkg-deb -x "$DIR/debs/$(basename "$file")" "$DIR/root"
  done
  rm -rf "$DIR/debs" "$DIR"/*.packages
  touch "$DIR/.complete"
fi

sed "s#\"library_path\": \"[^\"]*\"#\"library_path\": \"$LIB/libvulkan_lvp.so\"#" \
  "$DIR/root/usr/share/vulkan/icd.d/lvp_icd.json" >"$DIR/lvp_icd.json"
export VK_ICD_FILENAMES="$DIR/lvp_icd.json"
export VK_DRIVER_FILES="$DIR/lvp_icd.json"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB" "$@"
