#!/usr/bin/env python3
"""Compares a candidate embedding JSON (our CLI) against the reference JSON (reference.py).

  compare.py --reference REF.json --candidate OURS.json [--candidate OURS_LOCALIZE.json ...] [--rtol 1e-4]

A candidate file may be the full `ctvlm embed` object, or a bare list (the `ctvlm localize` output), or an
object holding only "localize". Every array is compared with rel = max|cand - ref| / max|ref| (per array);
grids, ids, valid masks and window shapes must be equal; localisation bins must be equal (a different bin
whose reference cosine is within rtol of the best one is reported as TIE and does not fail).
Prints one line per field and a final PASS/FAIL; exit status 0 on PASS, 1 on FAIL.
"""
import argparse
import json
import math
import sys



def _flat(x):
    """Nested lists -> (flat list of floats, shape tuple)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return [float(x)], ()
    if not isinstance(x, list):
        raise TypeError(f"not a number or list: {type(x).__name__}")
    if not x:
        return [], (0,)
    parts = [_flat(v) for v in x]
    shp = parts[0][1]
    if any(p[1] != shp for p in parts):
        raise ValueError("ragged array")
    return [v for p in parts for v in p[0]], (len(x),) + shp


def rel_err(a, b, floor=0.0):
    """max|a-b| / max(max|b|, floor) (a = candidate, b = reference). Returns (err, message)."""
    try:
        fa, sa = _flat(a)
    except (TypeError, ValueError) as e:
        return None, f"candidate {e}"
    fb, sb = _flat(b)
    if sa != sb:
        return None, f"shape {sa} != reference {sb}"
    if not fa:
        return 0.0, ""
    if not all(math.isfinite(v) for v in fa):
        return float("inf"), "non-finite values"
    den = max(max(abs(v) for v in fb), floor)
    num = max(abs(x - y) for x, y in zip(fa, fb))
    return (num / den if den > 0 else num), ""


class Report:
    def __init__(self, rtol, label=""):
        self.rtol = rtol
        self.label = label
        self.lines = []
        self.fail = False

    def add(self, ok, field, msg, status=None):
        status = status or ("PASS" if ok else "FAIL")
        if status == "FAIL":
            self.fail = True
        self.lines.append(f"{status:4s} {self.label}{field}: {msg}")

    def arr(self, field, cand, ref, rtol=None, floor=0.0):
        rtol = self.rtol if rtol is None else rtol
        if cand is None:
            return self.add(False, field, "missing in candidate")
        e, why = rel_err(cand, ref, floor)
        if e is None:
            return self.add(False, field, why)
        self.add(e <= rtol, field, f"rel {e:.3e} (rtol {rtol:g}){' ' + why if why else ''}")

    def exact(self, field, cand, ref):
        if cand is None:
            return self.add(False, field, "missing in candidate")
        self.add(cand == ref, field, "equal" if cand == ref else f"{cand} != reference {ref}")


def get(o, *path):
    for p in path:
        if isinstance(o, dict) and p in o:
            o = o[p]
        elif isinstance(o, list) and isinstance(p, int) and p < len(o):
            o = o[p]
        else:
            return None
    return o


def compare_embed(rep, ref, cand):
    ri, ci = ref["image"], cand.get("image")
    if ci is None:
        rep.add(False, "image", "missing in candidate")
    else:
        rep.exact("image.grid", get(ci, "grid"), ri["grid"])
        for k in ("image", "disease"):
            for kind in ("raw", "normalized"):
                rep.arr(f"image.{k}.{kind}", get(ci, k, kind), ri[k][kind])
        for kind in ("raw", "normalized"):
            rep.arr(f"image.depth.{kind}", get(ci, "depth", kind), ri["depth"][kind])
        rep.exact("image.depth.valid", get(ci, "depth", "valid"), ri["depth"]["valid"])
    rt, ct = ref.get("texts", []), cand.get("texts")
    if rt:
        if ct is None or len(ct) != len(rt):
            rep.add(False, "texts", f"{0 if ct is None else len(ct)} entries, reference has {len(rt)}")
        else:
            for i, (r, c) in enumerate(zip(rt, ct)):
                rep.exact(f"texts[{i}].ids", c.get("ids"), r["ids"])
                for k in ("report", "snippet"):
                    for kind in ("raw", "normalized"):
                        rep.arr(f"texts[{i}].{k}.{kind}", get(c, k, kind), r[k][kind])
    rd, cd = ref.get("debug", {}), cand.get("debug")
    if isinstance(cd, dict):  # optional: preprocessing checksum, when the candidate reports it
        if "window_shape" in cd:
            rep.exact("debug.window_shape", cd["window_shape"], rd["window_shape"])
        for k in ("window_sum", "window_sumsq"):
            if k in cd:
                rep.arr(f"debug.{k}", [cd[k]], [rd[k]], rtol=1e-6)


def compare_localize(rep, ref_loc, cand_loc):
    if cand_loc is None:
        return rep.add(False, "localize", "missing in candidate")
    if len(cand_loc) != len(ref_loc):
        return rep.add(False, "localize", f"{len(cand_loc)} entries, reference has {len(ref_loc)}")
    for i, (r, c) in enumerate(zip(ref_loc, cand_loc)):
        f = f"localize[{i}]"
        rep.exact(f + ".ids_index", c.get("ids_index"), r["ids_index"])
        # cosines are bounded by 1: measure them against max(|ref|, 1e-2) so near-zero cosines do not blow up
        cc, rc = c.get("cosine"), r["cosine"]
        rep.arr(f + ".cosine", cc, rc, floor=1e-2)
        # probabilities = softmax(cos / 0.1): errors are amplified 10x relative to the cosines
        rep.arr(f + ".probabilities", c.get("probabilities"), r["probabilities"], rtol=rep.rtol * 20)
        cb, rb = c.get("bin"), r["bin"]
        if cb is None:
            rep.add(False, f + ".bin", "missing in candidate")
        elif cb == rb:
            rep.add(True, f + ".bin", f"{cb} equal")
        else:
            gap = abs(rc[rb] - rc[cb]) if 0 <= cb < len(rc) else float("inf")
            tie = gap <= rep.rtol * max(max(abs(v) for v in rc), 1e-2)
            rep.add(False, f + ".bin", f"{cb} != reference {rb} (reference cosine gap {gap:.2e})",
                    status="TIE" if tie else "FAIL")


def parse_json_output(txt):
    """The whole text as JSON, else the first line-initial '{' or '[' that starts a JSON document
    running to the end (a CLI may print log lines before its result)."""
    try:
        return json.loads(txt)
    except json.JSONDecodeError:
        pass
    lines = txt.splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith(("{", "[")):
            try:
                return json.loads("".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    return None


def compare_windows(ref_path, cand_path):
    """Preprocessed windows, raw little-endian float16 files (reference.py --dump-windows). PASS when every
    voxel is within 1 fp16 ulp at 1.0 (2^-11) and at most 0.1 % of the voxels differ at all."""
    try:
        with open(ref_path, "rb") as f:
            rb = f.read()
        with open(cand_path, "rb") as f:
            cb = f.read()
    except OSError as e:
        return False, f"windows: {e}"
    if len(rb) != len(cb):
        return False, f"windows: {len(cb) // 2} voxels, reference has {len(rb) // 2}"
    try:
        import numpy as np
        r = np.frombuffer(rb, "<f2").astype(np.float64)
        c = np.frombuffer(cb, "<f2").astype(np.float64)
        diff = np.abs(r - c)
        ndiff, mx = int((diff > 0).sum()), float(diff.max()) if diff.size else 0.0
        nonfinite = not np.all(np.isfinite(c))
    except ImportError:
        import struct
        n = len(rb) // 2
        r = struct.unpack(f"<{n}e", rb)
        c = struct.unpack(f"<{n}e", cb)
        diffs = [abs(a - b) for a, b in zip(r, c)]
        ndiff, mx = sum(1 for v in diffs if v > 0), max(diffs, default=0.0)
        nonfinite = not all(math.isfinite(v) for v in c)
    n = len(rb) // 2
    ok = (not nonfinite) and mx <= 2.0 ** -11 and ndiff <= 1e-3 * n
    return ok, f"windows: {ndiff} of {n} voxels differ, max |diff| {mx:.3e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--candidate", required=True, action="append")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--quiet", action="store_true", help="print only failing lines and the verdict")
    ap.add_argument("--windows", nargs=2, metavar=("REF.f16", "CAND.f16"),
                    help="also compare preprocessed windows dumped as raw float16 (reference.py --dump-windows)")
    args = ap.parse_args()
    with open(args.reference) as f:
        ref = json.load(f)
    fail = False
    localize_seen = False
    for path in args.candidate:
        with open(path) as f:
            txt = f.read()
        cand = parse_json_output(txt)
        if cand is None:
            head = txt.strip().splitlines()[:3]
            print(f"FAIL {path}: no JSON document found (starts: {head})")
            fail = True
            continue
        rep = Report(args.rtol, label="" if len(args.candidate) == 1 else f"[{path.rsplit('/', 1)[-1]}] ")
        if isinstance(cand, list):
            compare_localize(rep, ref.get("localize", []), cand)
            localize_seen = True
        elif isinstance(cand, dict) and "localize" in cand and "image" not in cand:  # `ctvlm localize --json`
            compare_localize(rep, ref.get("localize", []), cand.get("localize"))
            localize_seen = True
        else:
            compare_embed(rep, ref, cand)
            # "localize" may come from this object or from a separate `ctvlm localize` output
            if ref.get("localize") and (cand.get("localize") is not None or len(args.candidate) == 1):
                compare_localize(rep, ref["localize"], cand.get("localize"))
                localize_seen = True
        for line in rep.lines:
            if not args.quiet or not line.startswith("PASS"):
                print(line)
        fail = fail or rep.fail
    if ref.get("localize") and not localize_seen:
        print("FAIL localize: in no candidate")
        fail = True
    if args.windows:
        ok, msg = compare_windows(*args.windows)
        print(("PASS " if ok else "FAIL ") + msg)
        fail = fail or not ok
    print("FAIL" if fail else "PASS")
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
