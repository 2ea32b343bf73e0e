#!/usr/bin/env bash
# Runs a built node script on the lent GPU machine from what scripts/device-pack.sh packed into .gl/ (carry ".gl"
# and "dist"), in the repo root:
#
#   bash scripts/device-run.sh dist/bench/gpu-moe-layer.js --quick
#
# 1. Vulkan loader: unpacks .gl/*.deb into / and runs ldconfig — only when the machine has no libvulkan.so.1 (a
#    machine with its own loader, like a dev box with lavapipe, is left alone).
# 2. Node: .gl/node.xz → $NODE_BIN (default /tmp/switchyard-node), re-extracted when the archive is newer.
# 3. node_modules: .gl/node_modules.tar.xz extracted into the repo root when there is no node_modules yet, or when the
#    one there came from an older archive (marked by node_modules/.device-pack); a regular install is never touched.
# 4. VK_DRIVER_FILES → the NVIDIA ICD when it exists and none is set (Dawn then finds the GPU; the webgpu package is
#    created with vulkan_enable_f16_on_nvidia by src/backend/webgpu/gpu.ts).
# Then runs the script with the remaining arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

GL=.gl
[ $# -ge 1 ] || { echo "usage: bash scripts/device-run.sh <script.js> [args...]" >&2; exit 2; }
for f in "$GL/node.xz" "$GL/node_modules.tar.xz"; do
  [ -f "$f" ] || { echo "device-run: $f is missing: run scripts/device-pack.sh here and carry .gl" >&2; exit 1; }
done

if ! /sbin/ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in "$GL"/*.deb; do dpkg -x "$f" /; done
  /sbin/ldconfig
fi

NODE=${NODE_BIN:-/tmp/switchyard-node}
if [ ! -x "$NODE" ] || [ "$GL/node.xz" -nt "$NODE" ]; then
  xz -dc "$GL/node.xz" > "$NODE.tmp"
  chmod +x "$NODE.tmp"
  mv "$NODE.tmp" "$NODE"
fi

STAMP=node_modules/.device-pack
if [ ! -d node_modules ] || { [ -f "$STAMP" ] && [ "$GL/node_modules.tar.xz" -nt "$STAMP" ]; }; then
  rm -rf node_modules
  xz -dc "$GL/node_modules.tar.xz" | tar -xf -
  touch "$STAMP"
fi

# Built JavaScript and fixtures packed by device-pack.sh (dist/ and ../shared do not travel by themselves).
if [ -f "$GL/dist.tar.xz" ] && { [ ! -d dist ] || [ "$GL/dist.tar.xz" -nt dist/.device-pack ]; }; then
  rm -rf dist
  xz -dc "$GL/dist.tar.xz" | tar -xf -
  touch dist/.device-pack
fi
if [ -f "$GL/shared.tar.xz" ] && [ ! -d "$GL/shared/fixtures/hf" ]; then
  mkdir -p "$GL/shared"
  xz -dc "$GL/shared.tar.xz" | tar -C "$GL/shared" -xf -
fi
if [ -z "${SWITCHYARD_FIXTURES:-}" ] && [ -d "$GL/shared/fixtures/hf" ]; then export SWITCHYARD_FIXTURES="$PWD/$GL/shared/fixtures/hf"; fi

ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$ICD" ]; then export VK_DRIVER_FILES="$ICD"; fi

exec "$NODE" "$@"
