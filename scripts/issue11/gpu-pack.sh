#!/bin/bash
# Packs what scripts/issue11/gpu-run.sh needs on a bare GPU machine that has no Node and no
# npm registry (this workplace's `device` tool): the node binary, the runtime node_modules
# (dawn.node for linux-x64, the tfjs peer's Node bundles; no compilers, no other platforms),
# the built CLI and bench, and the Vulkan loader's Debian packages. Everything lands in two
# git-ignored folders, .gpu/ and .gl/, about 36 MB, under the tool's 64 MiB.
#
#   bash scripts/issue11/gpu-pack.sh      (after `npm ci` and `npm run setup`)
# then call the tool with carry [".gpu", ".gl"] and the command `bash scripts/issue11/gpu-run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude || echo /.gpu/ >> .git/info/exclude
grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
mkdir -p .gpu .gl
node build.mjs --quiet && node build.mjs --tests --quiet
[ -s .gpu/node.xz ] || xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .gpu/node.xz
find node_modules \
  -path node_modules/typescript -prune -o -path node_modules/playwright-core -prune -o \
  -path node_modules/@esbuild -prune -o -path node_modules/esbuild -prune -o -path node_modules/@types -prune -o \
  -path 'node_modules/webgpu/dist/*' ! -path 'node_modules/webgpu/dist/linux-x64*' -prune -o \
  -path 'node_modules/@tensorflow/*/dist/*' ! -name '*.node.js' -prune -o \
  -path 'node_modules/@tensorflow/*/src' -prune -o \
  \( -type f ! -name '*.map' -print \) > /tmp/gpu-pack-files
tar -cf - -T /tmp/gpu-pack-files | xz -T0 -6 > .gpu/nm.tar.xz
tar -cf - dist .build | xz -T0 -6 > .gpu/build.tar.xz
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1)
fi
du -sh .gpu .gl
