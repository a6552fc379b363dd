#!/usr/bin/env bash
# Gradient check of the composed model against a float64 PyTorch backward of reference.py (issue 7).
#
#   scripts/radfinder-check/run_grad_check.sh [--dir DIR] [--preset small|mini] [--b B] [--grid G0,G1,G2] [--tol T]
#
# For each mode (pooled: backbone + combiner, the probe's path; vision: the three image embeddings;
# objective: model.loss(batch).total, SigLIP + prompts + localization with L1), our autograd's gradient of
# every parameter (grad-dump.test.ts) is compared with torch autograd through reference.py's forward in
# float64 (grad_check.py): rel = max|ours - ref| / max|ref| per tensor. Exit 0 only if all pass.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
dir=/tmp/rf-gradcheck; presetn=small; b=3; grid=1,1,4; tol=1e-3
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --preset) presetn="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    --grid) grid="$2"; shift 2 ;;
    --tol) tol="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$dir"
status=0
for mode in pooled vision objective; do
  out="$dir/$mode"
  (cd "$REPO" && GRAD_OUT="$out" GRAD_MODE="$mode" GRAD_PRESET="$presetn" GRAD_B="$b" GRAD_GRID="$grid" \
    node scripts/test-only.mjs scripts/radfinder-check/grad-dump.test.ts > "$out.log" 2>&1) || { echo "FAIL $mode: dump failed, see $out.log"; status=1; continue; }
  "$PY" "$HERE/grad_check.py" "$out" --tol "$tol" > "$out.txt"; rc=$?
  echo "== $mode: $(tail -n 1 "$out.txt")"
  grep -E "forward|FAIL|missing" "$out.txt" | sed 's/^/   /'
  [ $rc -eq 0 ] || status=1
done
exit $status
