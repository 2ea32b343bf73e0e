#!/usr/bin/env bash
# Packs what the lent GPU machine (H100/H200: NVIDIA driver, no Vulkan loader, no Node, no network) needs to run the
# built project on WebGPU, following ../shared/README.md "WebGPU on the device machine". Run here, in the repo root
# (or anywhere: it cds there), after `npx tsc -p .`:
#
#   bash scripts/device-pack.sh
#
# Writes .gl/ (git-ignored):
#   .gl/*.deb                 the Vulkan loader and the GL/X libraries Dawn loads (apt-get download, this machine's
#                             Debian release), unpacked on the device with dpkg -x
#   .gl/node.xz               this machine's node binary, xz-compressed
#   .gl/node_modules.tar.xz   a pruned node_modules: the production dependency closure of package.json (what dist/
#                             imports at run time, including the dynamically imported `webgpu`), without the native
#                             binaries of other platforms (webgpu/dist keeps linux-x64 only, tokenizers keeps
#                             linux-x64-gnu only), type declarations and source maps
# and checks that .gl/ plus dist/ (the two paths to carry) stay under the 64 MiB carry limit.
#   .gl/dist.tar.xz           the built JavaScript
#   .gl/shared.tar.xz         ../shared/fixtures/hf and ../shared/baselines (they do not travel otherwise)
# On the device, with carry [".gl"]: `bash scripts/device-suite.sh tests moe`, then `… decode t1 host`, then `… tiles` (or device-run.sh for one script).
#
# Options (environment): REFRESH_DEBS=1 downloads the .debs again; SKIP_NODE=1 keeps an existing .gl/node.xz.
set -euo pipefail
cd "$(dirname "$0")/.."

GL=.gl
LIMIT=$((64 * 1024 * 1024))
DEBS="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 libx11-6 libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0"

[ -f dist/src/cli/main.js ] || { echo "device-pack: dist/ is missing: run npx tsc -p . first" >&2; exit 1; }
[ -d node_modules/webgpu/dist/linux-x64 ] || { echo "device-pack: node_modules/webgpu/dist/linux-x64 is missing: run npm install" >&2; exit 1; }
mkdir -p "$GL"

# 1. Vulkan loader + the libraries libvulkan/Dawn pull in.
if [ "${REFRESH_DEBS:-0}" = 1 ] || ! ls "$GL"/*.deb >/dev/null 2>&1; then
  rm -f "$GL"/*.deb
  (cd "$GL" && apt-get download $DEBS)
  # Epochs are written as %3a in the file names: plain names travel more safely.
  for f in "$GL"/*%3a*.deb; do [ -e "$f" ] && mv "$f" "${f//%3a/_}"; done
fi
echo "debs: $(ls "$GL"/*.deb | wc -l) files, $(du -cb "$GL"/*.deb | tail -1 | cut -f1) bytes"

# 2. Node.
if [ "${SKIP_NODE:-0}" != 1 ] || [ ! -f "$GL/node.xz" ]; then
  xz -T2 -c "$(command -v node)" > "$GL/node.xz.tmp"
  mv "$GL/node.xz.tmp" "$GL/node.xz"
fi
echo "node: $(node -v), $(stat -c %s "$GL/node.xz") bytes compressed"

# 3. Pruned node_modules: the production dependency closure (dependencies + installed optionalDependencies).
mapfile -t PKGS < <(node --input-type=module -e '
  import { readFileSync, existsSync } from "node:fs";
  const deps = (dir) => {
    const p = JSON.parse(readFileSync(dir + "/package.json", "utf8"));
    return Object.keys({ ...(p.dependencies ?? {}), ...(p.optionalDependencies ?? {}) });
  };
  const seen = new Set();
  const queue = deps(".");
  while (queue.length) {
    const name = queue.shift();
    if (seen.has(name)) continue;
    const dir = "node_modules/" + name;
    if (!existsSync(dir + "/package.json")) continue; // an optional dependency for another platform
    seen.add(name);
    queue.push(...deps(dir));
  }
  console.log([...seen].sort().map((n) => "node_modules/" + n).join("\n"));
')
EXCLUDES=(--exclude='*.d.ts' --exclude='*.map' --exclude='*.md')
for d in node_modules/webgpu/dist/*; do
  [ "$(basename "$d")" = linux-x64 ] || EXCLUDES+=(--exclude="$d")
done
for f in node_modules/tokenizers/*.node; do
  [ -e "$f" ] || continue
  [ "$(basename "$f")" = tokenizers.linux-x64-gnu.node ] || EXCLUDES+=(--exclude="$f")
done
echo "node_modules: ${#PKGS[@]} packages: ${PKGS[*]#node_modules/}"
tar -cf - "${EXCLUDES[@]}" "${PKGS[@]}" | xz -T2 -9 > "$GL/node_modules.tar.xz.tmp"
mv "$GL/node_modules.tar.xz.tmp" "$GL/node_modules.tar.xz"
echo "node_modules.tar.xz: $(stat -c %s "$GL/node_modules.tar.xz") bytes ($(xz -dc "$GL/node_modules.tar.xz" | wc -c) uncompressed)"

# 4. The built JavaScript (no maps or declarations) and the reference fixtures + baselines: ../shared beside the
#    checkout does not travel to the device, so the WebGPU fixture tests read a packed copy (SWITCHYARD_FIXTURES).
#    A .gl/shared left by device-run.sh on this machine (the unpacked copy) would travel too: drop it.
rm -rf "$GL/shared"
tar --exclude='*.map' --exclude='*.d.ts' -cf - dist | xz -T2 -9 > "$GL/dist.tar.xz.tmp"
mv "$GL/dist.tar.xz.tmp" "$GL/dist.tar.xz"
if [ -d ../shared/fixtures/hf ]; then
  tar -C ../shared -cf - fixtures/hf baselines | xz -T2 -9 > "$GL/shared.tar.xz.tmp"
  mv "$GL/shared.tar.xz.tmp" "$GL/shared.tar.xz"
fi
echo "dist.tar.xz: $(stat -c %s "$GL/dist.tar.xz") bytes; shared.tar.xz: $(stat -c %s "$GL/shared.tar.xz" 2>/dev/null || echo missing) bytes"

# 5. The carry limit: the tracked and untracked-not-ignored files travel too.
TRACKED=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
TOTAL=$(( $(du -cb "$GL" | tail -1 | cut -f1) + TRACKED ))
echo "working tree $TRACKED bytes + .gl: $TOTAL bytes ($((TOTAL / 1024 / 1024)) MiB of the $((LIMIT / 1024 / 1024)) MiB limit)"
if [ "$TOTAL" -ge "$LIMIT" ]; then
  echo "device-pack: the working tree + .gl exceed the 64 MiB limit" >&2
  exit 1
fi
echo 'carry: [".gl"]; device commands (≤ 10 min each): bash scripts/device-suite.sh tests moe; … decode t1 host; … tiles'
