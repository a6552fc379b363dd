#!/bin/bash
# One prepared run of issue 11's GPU checks on a bare machine with a real GPU (this workplace's
# `device` tool; payload from scripts/issue11/gpu-pack.sh, carried as .gpu and .gl). Stages in
# order of what they are worth, each under a time cap that keeps the whole inside DEADLINE
# seconds. Logs are written to /tmp/gpu-logs and packed into $OUT/gpu-logs.tgz after every
# stage (the tool brings back at most 8 files), so a run cut short still returns them.
#   1. the adapter (dawn.node over NVIDIA's Vulkan driver) and the machine
#   2. bench: roofline, matmul (every variant), attention, with tfjs-backend-webgpu beside
#   3. bench step: the training step at 1x, 2x, 4x the small widths against PyTorch on CUDA
#   4. ctvlm profile: the small preset and the released model's widths
#   5. the op tests (float64 references) on the GPU adapter (test/ops/; TESTS="ops/rmsnorm gpu/"
#      runs other test files, by the words of test/run.mjs)
#   6. ctvlm train's autotune and its cache, twice, and `ctvlm tune` on it; 7. the other bench sections
# DEADLINE (default 420 s) must sit below the device tool's timeout_s with room for the start;
# the stage caps below add up to more, so the last stages run only when the early ones finish
# early (on the H200 every stage did, but for the paper-width profile).
set -u
DEADLINE=${DEADLINE:-420}
OUT=${OUT:-/tmp/gpu-out}
L=/tmp/gpu-logs
# A machine still warm from an earlier call keeps /tmp: start from nothing, so that logs, the
# autotune caches (train-cached must find only train-autotune's) and training runs are this run's.
rm -rf "$L" /tmp/cache /tmp/cache-train /tmp/run1 /tmp/run2 /tmp/synth
mkdir -p "$L" "$OUT"
pack() { tar -czf "$OUT/gpu-logs.tgz" -C "$L" . 2>/dev/null; }
T0=$(date +%s)
left() { echo $((DEADLINE - ($(date +%s) - T0))); }
log() { echo "[gpu $(($(date +%s) - T0))s] $*" | tee -a "$L/stages.txt"; }
# stage NAME CAP CMD...: runs CMD for at most min(CAP, time left - 5) s, output to $L/NAME.log
# STAGES="a b": only those stages (default: all, in the order below).
stage() {
  local name=$1 cap=$2
  shift 2
  [ -n "${STAGES:-}" ] && [[ " $STAGES " != *" $name "* ]] && return
  local t=$(($(left) - 5))
  ((t > cap)) && t=$cap
  if ((t < 15)); then log "$name: skipped ($(left) s left)"; return; fi
  log "$name: start (cap $t s)"
  timeout -k 5 "$t" "$@" > "$L/$name.log" 2>&1
  log "$name: exit $? after $(($(date +%s) - T0)) s"
  pack
}

if command -v nvidia-smi >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$L/env.txt" 2>&1
fi
mkdir -p /tmp/nodebin
[ -x /tmp/nodebin/node ] || xz -dc .gpu/node.xz > /tmp/nodebin/node
chmod +x /tmp/nodebin/node
export PATH=/tmp/nodebin:$PATH
tar -xJf .gpu/nm.tar.xz && tar -xJf .gpu/build.tar.xz || { log "payload: cannot unpack"; exit 1; }
{ uname -a; nproc; node --version; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'; ldconfig -p | grep -i vulkan; ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1; } >> "$L/env.txt" 2>&1
if ! node scripts/probe-adapter.mjs >> "$L/env.txt" 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  node scripts/probe-adapter.mjs >> "$L/env.txt" 2>&1 || { log "adapter: none, see env.txt"; pack; cat "$L/env.txt"; exit 1; }
fi
log "$(grep '^adapter:' "$L/env.txt" | tail -1)"
grep -q '^adapter:.*\(llvmpipe\|lavapipe\|SwiftShader\)' "$L/env.txt" && log "warning: a CPU adapter, not a GPU: the numbers are lavapipe's"
export PYTHON=$(command -v python3)
export XDG_CACHE_HOME=/tmp/cache

BENCH_MATMUL_SQUARES=1024,2048,4096 stage bench-kernels 120 node .build/bench/run.js --quick --only roofline,matmul,attention --name gpu-kernels
# --no-peer leaves out tfjs only; the step's peer is PyTorch (on CUDA where torch sees the GPU).
stage bench-step 100 node .build/bench/run.js --only step --no-peer --name gpu-step
stage profile-small 45 node dist/cli.js profile --steps 2 --top 12
stage profile-paper 60 node dist/cli.js profile --paper-width --steps 2 --top 12
stage tests-ops 100 node test/run.mjs ${TESTS:-ops/}
stage synth 20 node dist/cli.js data synth --out /tmp/synth --n 64
# Their own autotune cache: the stages above filled /tmp/cache with the same classes.
XDG_CACHE_HOME=/tmp/cache-train stage train-autotune 45 node dist/cli.js train --data /tmp/synth --out /tmp/run1 --steps 12 --text-warmup-steps 0 --no-eval
XDG_CACHE_HOME=/tmp/cache-train stage train-cached 30 node dist/cli.js train --data /tmp/synth --out /tmp/run2 --steps 12 --text-warmup-steps 0 --no-eval
XDG_CACHE_HOME=/tmp/cache-train stage tune 15 node dist/cli.js tune
stage bench-rest 80 node .build/bench/run.js --quick --only patch,elementwise,layout,reduce,softmax,layernorm,embedding --name gpu-rest
cp bench/results/gpu-*.json "$L/" 2>/dev/null
for f in /tmp/cache*/ct-vlm-webgpu/autotune-*.json; do [ -e "$f" ] && cp "$f" "$L/$(echo "${f#/tmp/}" | tr / _)" 2>/dev/null; done
log "done, $(left) s left"
pack
tar -xzOf "$OUT/gpu-logs.tgz" ./stages.txt ./env.txt
