#!/usr/bin/env bash
# Acceptance check of the RadFinder port against the independent PyTorch reference.
#
#   run_check.sh [--seed S] [--dir DIR] [--rtol R] [--config CFG.json] [--reference-only | --candidate-only]
#
# 1. make_folder.py: reduced-size weights folder (random weights, F32/F16/BF16 mix), CT volumes, ids.json
# 2. reference.py: reference JSON per volume (float64)
# 3. our CLI:  node dist/cli.js embed    --weights W --ct V --ids W/ids.json  (JSON on stdout)
#              node dist/cli.js localize --weights W --ct V --ids W/ids.json  (the "localize" list)
# 4. compare.py: per-field verdicts, PASS/FAIL per volume; exit status 0 only if every volume passes.
#
# --reference-only runs steps 1-2 (needs python3-torch, python3-nibabel, python3-numpy);
# --candidate-only runs steps 3-4 on an existing DIR (needs only node + python3), e.g. on the GPU machine.
# Env: PYTHON (default /usr/bin/python3, the Debian python that has torch), NODE (node), CLI (repo dist/cli.js),
#      CLI_ARGS (extra arguments for both CLI commands), DUMP_WINDOWS=1 (also compare the preprocessed windows;
#      needs `ctvlm embed --dump-windows FILE` writing raw little-endian float16, N x w0 x w1 x w2).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
[ -x "$PY" ] || PY=python3
NODE="${NODE:-node}"
CLI="${CLI:-$REPO/dist/cli.js}"
CLI_ARGS="${CLI_ARGS:-}"
seed=0; dir=""; rtol=1e-4; mode=all
cfg=/work/shared/radfinder-reduced-config.example.json
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --rtol) rtol="$2"; shift 2 ;;
    --config) cfg="$2"; shift 2 ;;
    --reference-only) mode=ref; shift ;;
    --candidate-only) mode=cand; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
dir="${dir:-/tmp/rfcheck-seed$seed}"
W="$dir/weights"
mkdir -p "$dir"
t0=$(date +%s)

if [ "$mode" != cand ]; then
  echo "== weights folder $W (seed $seed)"
  "$PY" "$HERE/make_folder.py" --out "$W" --seed "$seed" --config "$cfg" > "$dir/make_folder.json" || exit 2
  cts=(); for v in "$W"/ct/*.nii.gz; do cts+=(--ct "$v"); done
  "$PY" "$HERE/reference.py" --weights "$W" "${cts[@]}" --ids "$W/ids.json" --out "$dir/{name}.ref.json" \
    --dump-windows "$dir/{name}.ref.f16" || exit 2
  for v in "$W"/ct/*.nii.gz; do
    name="$(basename "$v" .nii.gz)"
    echo "   reference $name: grid $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['image']['grid'])" "$dir/$name.ref.json")"
  done
fi
[ "$mode" = ref ] && { echo "reference JSONs in $dir ($(( $(date +%s) - t0 )) s)"; exit 0; }

if [ ! -f "$CLI" ]; then
  echo "FAIL: $CLI not found (build the CLI first: npm run build)"; exit 1
fi
status=0
for v in "$W"/ct/*.nii.gz; do
  name="$(basename "$v" .nii.gz)"
  [ -f "$dir/$name.ref.json" ] || { echo "FAIL $name: no reference JSON (run without --candidate-only)"; status=1; continue; }
  echo "== $name"
  winargs=(); embed_extra=()
  if [ "${DUMP_WINDOWS:-0}" = 1 ]; then  # optional: needs `ctvlm embed --dump-windows FILE` (raw f16, N x w0 x w1 x w2)
    embed_extra=(--dump-windows "$dir/$name.ours.f16"); winargs=(--windows "$dir/$name.ref.f16" "$dir/$name.ours.f16")
  fi
  # shellcheck disable=SC2086
  "$NODE" "$CLI" embed --weights "$W" --ct "$v" --ids "$W/ids.json" "${embed_extra[@]}" $CLI_ARGS > "$dir/$name.ours.json" 2> "$dir/$name.ours.err"
  rc1=$?
  # shellcheck disable=SC2086
  "$NODE" "$CLI" localize --weights "$W" --ct "$v" --ids "$W/ids.json" --json $CLI_ARGS > "$dir/$name.ours_localize.json" 2> "$dir/$name.ours_localize.err"
  rc2=$?
  if [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ]; then
    echo "   CLI exit status embed=$rc1 localize=$rc2; stderr tail:"; tail -n 5 "$dir/$name.ours.err" "$dir/$name.ours_localize.err" | sed 's/^/   /'
  fi
  python3 "$HERE/compare.py" --reference "$dir/$name.ref.json" --candidate "$dir/$name.ours.json" \
    --candidate "$dir/$name.ours_localize.json" --rtol "$rtol" --quiet "${winargs[@]}" | sed 's/^/   /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "== $( [ $status -eq 0 ] && echo PASS || echo FAIL ) ($(( $(date +%s) - t0 )) s; outputs in $dir)"
exit $status
