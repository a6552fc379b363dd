#!/usr/bin/python3
"""Self-consistency tests of reference.py (no port needed).

  selftest.py [--folder DIR] [--seed S] [--no-mutations]

1. geometry: RADFINDER-MODEL.md worked example (512x512x107 @ 0.787x0.787x5 -> 537x537x178 -> grid 4x4x5),
   the Spacing tolerance rule, crop/pad offsets;
2. the resampler against torch grid_sample (align_corners=False, border) driven by MONAI's normalised
   transform, incl. an oblique affine; the patch-embedding matmul against Conv3d + NHWDC flatten;
3. float32 vs float64 agreement; the PIR re-layout of a volume gives the same embeddings; the padding case;
4. mutation tests: typical re-implementation mistakes are injected into the reference one at a time and
   each must move some compared field by more than the default rtol (1e-4), i.e. the check would catch it.
"""
import argparse
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the repo free of __pycache__
import compare as C  # noqa: E402
import reference as R  # noqa: E402

FAILS = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILS.append(what)


def max_field_err(ref, cand):
    rep = C.Report(1e-4)
    C.compare_embed(rep, ref, cand)
    C.compare_localize(rep, ref["localize"], cand["localize"])
    worst, worst_f = 0.0, ""
    structural = [ln for ln in rep.lines if ln.startswith(("FAIL", "TIE")) and "rel " not in ln]
    for ln in rep.lines:
        if "rel " in ln:
            e = float(ln.split("rel ")[1].split()[0])
            if e > worst:
                worst, worst_f = e, ln.split(":")[0][5:]
    return worst, worst_f, structural


# ----------------------------------------------------------------------------- 1. geometry
def test_geometry():
    A = np.diag([0.787, 0.787, 5.0, 1.0])
    shp, off = R.shape_offset((512, 512, 107), A, R.zoom_affine(A, (0.75, 0.75, 3.0)))
    check(list(shp) == [537, 537, 178], f"worked example resampled shape {list(shp)} == [537, 537, 178]")
    x = np.zeros((537, 537, 178), np.float16)
    y, info = R.crop_or_pad(x, (128, 128, 32))
    _, g = R.to_windows(y, (128, 128, 32))
    check(list(y.shape) == [512, 512, 160] and g == [4, 4, 5], f"worked example crop {list(y.shape)} grid {g}")
    check([i["crop_start"] for i in info] == [12, 12, 9], f"crop starts {[i['crop_start'] for i in info]} == [12, 12, 9]")
    y, info = R.crop_or_pad(np.zeros((40, 50, 11), np.float16), (32, 48, 16))
    check(list(y.shape) == [32, 48, 16] and info[2]["pad_left"] == 2 and info[2]["pad_right"] == 3,
          f"pad case: shape {list(y.shape)}, depth pad {info[2]['pad_left']}/{info[2]['pad_right']} == 2/3")
    # Spacing keeps an axis within AFFINE_TOL of the target (MONAI Spacing); here x 0.7504 is kept
    vol = np.random.default_rng(0).uniform(size=(20, 20, 10)).astype(np.float32)
    out, _, info = R.spacing(vol, np.diag([0.7504, 0.8, 3.0005, 1.0]), (0.75, 0.75, 3.0))
    check(info["output_spacing"][0] == 0.7504 and info["output_spacing"][2] == 3.0005 and out.shape[0] == 20,
          f"Spacing tolerance rule: output spacing {info['output_spacing']}, shape {out.shape}")
    out, _, info = R.spacing(vol, np.diag([0.75, 0.75, 3.0, 1.0]), (0.75, 0.75, 3.0))
    check(np.array_equal(out, vol), "identity spacing returns the input unchanged")


# ----------------------------------------------------------------------------- 2. resampler, conv
def grid_sample_reference(x, xform, out_shape):
    """MONAI SpatialResample path: AffineTransform(normalized=False, align_corners=False, reverse_indexing=True)
    = grid_sample on voxel-centre normalised coordinates with border padding."""
    n_in = np.array(x.shape, dtype=np.float64)
    n_out = np.array(out_shape, dtype=np.float64)
    j = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in out_shape], indexing="ij"), -1)
    src = j @ xform[:3, :3].T + xform[:3, 3]  # (..., 3) voxel index in the input
    norm = (2.0 * src + 1.0) / n_in - 1.0  # align_corners=False normalisation
    grid = torch.from_numpy(norm[..., ::-1].copy())[None]  # grid_sample wants (x=W=last axis, y, z)
    inp = torch.from_numpy(x.astype(np.float64))[None, None]
    out = F.grid_sample(inp, grid, mode="bilinear", padding_mode="border", align_corners=False)
    del n_out
    return out[0, 0].numpy()


def test_resampler():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(23, 17, 9)).astype(np.float32)
    th = math.radians(12.0)
    Rm = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1.0]])
    rot, shear = np.eye(4), np.eye(4)
    rot[:3, :3] = Rm @ np.diag([0.8, 1.1, 2.5])
    rot[:3, 3] = [3.0, -7.0, 11.0]
    shear[:3, :3] = Rm @ np.array([[0.8, 0.15, 0.0], [0.0, 1.1, 0.2], [0.0, 0.0, 2.5]])
    # a pure rotation is kept by Spacing, so the resampling stays separable along the array axes;
    # only a sheared affine needs the general trilinear path
    for name, A in (("axis-aligned", np.diag([0.8, 1.1, 2.5, 1.0])), ("rotated 12 deg", rot), ("sheared", shear)):
        y, B, info = R.spacing(x, A, (0.75, 0.75, 3.0))
        xform = np.array(info["xform"])
        g = grid_sample_reference(x, xform, info["resampled_shape"])
        e = np.abs(y.astype(np.float64) - g).max()
        check(e < 1e-6, f"resampler ({name}, {info['resample']}) vs grid_sample: max abs diff {e:.2e}")
    E, p = 5, (4, 4, 2)
    w = torch.from_numpy(rng.normal(size=(E, 1) + p))
    b = torch.from_numpy(rng.normal(size=E))
    win = torch.from_numpy(rng.normal(size=(3, 1, 8, 12, 6)))
    conv = F.conv3d(win, w, b, stride=p).permute(0, 2, 3, 4, 1).reshape(3, -1, E)  # NHWDC then flatten
    g0, g1, g2 = 2, 3, 3
    pt = win[:, 0].reshape(3, g0, p[0], g1, p[1], g2, p[2]).permute(0, 1, 3, 5, 2, 4, 6).reshape(3, g0 * g1 * g2, -1)
    mm = R.linear(pt, w.reshape(E, -1), b)
    check(torch.allclose(conv, mm, atol=1e-12), "patch embedding matmul == Conv3d + NHWDC flatten")


def test_against_monai(folder, monai_src):
    """Optional: run the released preprocessing with real MONAI transforms (same order and arguments as
    radfinder's shared_utils + LargestMultipleCenterCropd) and compare the windows bit for bit."""
    if monai_src:
        sys.path.insert(0, monai_src)
    try:
        import monai  # noqa: F401
        from monai.data.image_reader import NibabelReader
        from monai.transforms import (CenterSpatialCrop, EnsureChannelFirst, EnsureType, GridPatch, LoadImage,
                                      Orientation, ScaleIntensityRange, SpatialPad, Spacing)
    except Exception as ex:  # noqa: BLE001
        print(f"skip MONAI comparison (MONAI not importable: {type(ex).__name__}: {ex})")
        return
    d = R.dims(R.load_config(os.path.join(folder, "config.json")))
    win = tuple(d["window"])
    import nibabel as nib
    from make_folder import make_affine, phantom_hu, world_grid
    extra = tempfile.mkdtemp(prefix="rfcheck-monai-")
    rng = np.random.default_rng(3)
    near = make_affine("LAS", (0.7504, 0.9, 3.0005), (70, 50, 40))  # axes within 1e-3 mm of the target
    shear = make_affine("RAS", (0.8, 1.1, 2.5), (50, 40, 20))
    shear[:3, :3] = shear[:3, :3] @ np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.08], [0.0, 0.0, 1.0]])
    files = [os.path.join(folder, "ct", v) for v in sorted(os.listdir(os.path.join(folder, "ct")))]
    for name, aff, shp in (("near_target_spacing.nii.gz", near, (70, 50, 40)), ("sheared.nii.gz", shear, (50, 40, 20))):
        arr = phantom_hu(*world_grid(shp, aff), rng).astype(np.float32)
        nib.save(nib.Nifti1Image(arr, aff), os.path.join(extra, name))
        files.append(os.path.join(extra, name))
    for path in files:
        v = os.path.basename(path)
        x = LoadImage(reader=NibabelReader(), image_only=True)(path)
        x = EnsureChannelFirst(channel_dim="no_channel")(x)
        x = ScaleIntensityRange(a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True)(x)
        x = Orientation(axcodes="RAS", labels=None)(x)
        x = Spacing(pixdim=d["pixdim"], mode="bilinear")(x)
        x = EnsureType(dtype=torch.float16, device="cpu")(x)
        shp = np.array(x.shape[1:])
        crop = (shp // np.array(win)) * np.array(win)
        crop = np.where(crop == 0, shp, crop)  # LargestMultipleCenterCropd.compute_largest_multiple_crop
        x = CenterSpatialCrop(roi_size=tuple(int(c) for c in crop))(x)
        x = SpatialPad(spatial_size=win, mode="constant", value=0.0)(x)
        p = GridPatch(patch_size=win, overlap=0.0)(x)
        loc = np.asarray(p.meta["location"])
        grid = [len(np.unique(loc[:, a] if loc.shape[1] == 3 else loc[a])) for a in range(3)]
        mw = p[:, 0].numpy()
        ours, g, _ = R.preprocess(path, d)
        same = ours.shape == mw.shape and np.array_equal(ours, mw) and list(g) == grid
        nd = int((ours != mw).sum()) if ours.shape == mw.shape else -1
        check(same, f"MONAI pipeline vs reference preprocessing ({v}): grid {grid} vs {g}, "
                    f"{nd} differing fp16 voxels of {mw.size}")


def test_against_radfinder_rope(radfinder_src):
    """Optional: radfinder's own RotaryPositionEmbedding / rope_apply (src/radfinder/models/layers/
    rotary_pos_embed.py, loaded from a checkout, only torch + numpy needed) against reference.rope_sin_cos."""
    path = os.path.join(radfinder_src or "", "src/radfinder/models/layers/rotary_pos_embed.py")
    if not radfinder_src or not os.path.exists(path):
        print("skip radfinder RoPE comparison (no --radfinder-src checkout)")
        return
    import importlib.util
    spec = importlib.util.spec_from_file_location("rf_rope", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for (E, heads, base, grid, divs) in ((36, 2, 1000.0, (2, 3, 4), None), (36, 3, 100.0, (3, 2, 8), (3, 2, 2)),
                                         (1080, 12, 100.0, (4, 4, 40), (4, 4, 5))):
        rope = mod.RotaryPositionEmbedding(embed_dim=E, num_heads=heads, base=base, dtype=torch.float32).eval()
        kw = {} if divs is None else dict(H_div=divs[0], W_div=divs[1], D_div=divs[2])
        s_rf, c_rf = rope(H=grid[0], W=grid[1], D=grid[2], **kw)
        s_me, c_me = R.rope_sin_cos(rope.periods, grid, divs or grid, torch.float64)
        x = torch.randn(2, heads, s_me.shape[0], E // heads, dtype=torch.float64)
        y_rf = mod.rope_apply(x, s_rf.double(), c_rf.double())
        y_me = R.apply_rope(x, s_me, c_me)
        e = max((s_rf.double() - s_me).abs().max().item(), (c_rf.double() - c_me).abs().max().item())
        e2 = (y_rf - y_me).abs().max().item()
        check(e < 1e-4 and e2 < 1e-4, f"radfinder RoPE (E {E}, heads {heads}, base {base}, grid {grid}, divisors "
                                      f"{divs}): tables {e:.1e}, rotated vectors {e2:.1e} (float32 in radfinder)")


# ----------------------------------------------------------------------------- 3. consistency
def test_consistency(folder, ids):
    ct = os.path.join(folder, "ct")
    ref64 = R.run(folder, os.path.join(ct, "ras_0.8x0.8x2.5.nii.gz"), ids, torch.float64)
    ref32 = R.run(folder, os.path.join(ct, "ras_0.8x0.8x2.5.nii.gz"), ids, torch.float32)
    e, f, st = max_field_err(ref64, ref32)
    check(e < 1e-5 and not st, f"float32 vs float64: worst rel {e:.2e} ({f})")
    perm = R.run(folder, os.path.join(ct, "ras_copy_as_pir.nii.gz"), ids, torch.float64)
    e, f, st = max_field_err(ref64, perm)
    check(e < 1e-12 and not st and perm["debug"]["window_sum"] == ref64["debug"]["window_sum"],
          f"PIR re-layout of the same voxels: worst rel {e:.2e} ({f})")
    pad = R.run(folder, os.path.join(ct, "lps_1.2x0.9x5_int16_scaled.nii.gz"), ids, torch.float64)
    cp = pad["debug"]["crop_pad"][2]
    check(pad["image"]["grid"] == [1, 1, 1] and cp["pad_left"] + cp["pad_right"] > 0 and
          len(pad["image"]["depth"]["raw"]) == 4, f"padding path: grid {pad['image']['grid']}, depth pad {cp}")
    other = R.run(folder, os.path.join(ct, "pir_0.7x2.0x0.9.nii.gz"), ids, torch.float64)
    e, f, _ = max_field_err(ref64, {**other, "image": {**other["image"], "grid": ref64["image"]["grid"],
                                                          "depth": ref64["image"]["depth"]}})
    check(e > 1e-3, f"a different volume changes the image embedding (rel {e:.2e})")
    return ref64


# ----------------------------------------------------------------------------- 4. mutations
def src_mutation(func_name, old, new):
    """Replace `old` by `new` in the source of reference.<func_name> and re-define it in reference's namespace."""
    def apply():
        fn = getattr(R, func_name)
        src = textwrap.dedent(inspect.getsource(fn))
        assert old in src, f"{func_name}: snippet not found: {old}"
        exec(compile(src.replace(old, new), R.__file__, "exec"), R.__dict__)
        return lambda: setattr(R, func_name, fn)
    return apply


def weight_mutation(edit):
    def apply():
        orig = R.W.__init__

        def init(self, path, dtype):
            orig(self, path, dtype)
            edit(self.t)
        R.W.__init__ = init
        return lambda: setattr(R.W, "__init__", orig)
    return apply


def dims_mutation(**kw):
    def apply():
        orig = R.dims
        R.dims = lambda cfg: {**orig(cfg), **kw}
        return lambda: setattr(R, "dims", orig)
    return apply


def add_lora(t, scale=4.0):
    for k in list(t):
        if k.endswith("lora_A"):
            base = k[:-len("lora_A")]
            t[base + "weight"] = t[base + "weight"] + scale * t[base + "lora_B"] @ t[k]


def swap_kv(t):
    for k in list(t):
        if k.endswith("attn.kv.weight") or k.endswith("attn.kv.bias"):
            h = t[k].shape[0] // 2
            t[k] = torch.cat([t[k][h:], t[k][:h]], 0)


MUTATIONS = [
    ("RoPE interleaved pairs (2j, 2j+1) instead of halves", src_mutation(
        "apply_rope",
        "return torch.cat([x1 * cos[..., :h] - x2 * sin[..., :h], x2 * cos[..., h:] + x1 * sin[..., h:]], -1)",
        "x1, x2 = x[..., 0::2], x[..., 1::2]\n"
        "    return torch.stack([x1 * cos[..., :h] - x2 * sin[..., :h], x2 * cos[..., :h] + x1 * sin[..., :h]], -1)"
        ".flatten(-2)")),
    ("RoPE axis blocks in z,y,x order", src_mutation(
        "rope_sin_cos", ".reshape(-1, 3)  #", ".reshape(-1, 3)[:, [2, 1, 0]]  #")),
    ("RoPE coordinates i/n (no +0.5)", src_mutation("rope_sin_cos", "+ 0.5) / float(dv)", ") / float(dv)")),
    ("RoPE angle without 2*pi", src_mutation("rope_sin_cos", "ang = 2.0 * math.pi * c", "ang = c")),
    ("axis2 RoPE divisor 8*Dg instead of Dg (not 'physical')", dims_mutation(physical=False)),
    ("attention scale 1/sqrt(head_dim padded to x8)", src_mutation(
        "vit_attention", "* (hd ** -0.5)", "* (((hd + 7) // 8 * 8) ** -0.5)")),
    ("kv split V first", weight_mutation(swap_kv)),
    ("LayerNorm eps 1e-5", src_mutation("layer_norm", "eps=1e-6", "eps=1e-5")),
    ("GELU tanh approximation", src_mutation(
        "gelu", "return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))",
        "return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))")),
    ("LayerScale gamma ignored", dims_mutation(layerscale=False, clayerscale=False)),
    ("patch mean includes the CLS token", src_mutation("backbone", "avg_o.append(pat.mean(1))",
                                                        "avg_o.append(t.mean(1))")),
    ("axis2 rows: mean over (pw, pd) instead of (ph, pw)", src_mutation(
        "backbone", "E).mean(dim=(1, 2)))", "E).mean(dim=(2, 3)))")),
    ("window order: ih fastest", src_mutation("to_windows", ".transpose(0, 2, 4, 1, 3, 5)",
                                              ".transpose(4, 2, 0, 1, 3, 5)")),
    ("depth rows ordered pd-major (d2 = pd*Dg + id)", src_mutation(
        "encode_image", "rows = ax2_b.reshape(Hg, Wg, Dg, p2, E).reshape(",
        "rows = ax2_b.reshape(Hg, Wg, Dg, p2, E).transpose(2, 3).reshape(")),
    ("disease/depth use projection_image (no copy head)", dims_mutation(copy_image=False)),
    ("snippets use projection_text (no copy head)", dims_mutation(copy_text=False)),
    ("weight-norm g ignored", src_mutation("head", "wn = g * v", "wn = v")),
    ("clip/scale intensity after resampling", src_mutation(
        "preprocess",
        'x = scale_intensity(data, d["a_min"], d["a_max"], d["b_min"], d["b_max"])\n    x, aff = orient(x, aff, d["axcodes"])',
        'x, aff = orient(data, aff, d["axcodes"])')),
    ("no float16 rounding of the resampled volume (INFO: effect ~1e-5..1e-4, below rtol; see README)",
     dims_mutation(pix_dtype="float32")),
    ("resample half-pixel (F.interpolate align_corners=False) convention", src_mutation(
        "spacing", "xform = np.linalg.solve(affine, new_aff)\n",
        "xform = np.linalg.solve(affine, new_aff)\n    xform[:3, 3] += 0.5 * (np.diag(xform)[:3] - 1.0)\n")),
    ("resampled size with ceil instead of round", src_mutation(
        "shape_offset", "np.round(np.ptp(corners_out, axis=1) + 1.0)", "np.ceil(np.ptp(corners_out, axis=1) + 1.0)")),
    ("pad the larger half on the left", src_mutation("crop_or_pad", "left = pad_total // 2",
                                                     "left = pad_total - pad_total // 2")),
    ("crop from the start instead of the centre", src_mutation("crop_or_pad", "start = n // 2 - crop // 2",
                                                               "start = 0")),
    ("LoRA added again (W + alpha/r * B A)", weight_mutation(add_lora)),
    ("Qwen GQA: query head j uses kv head j % n_kv", src_mutation(
        "qwen3_last_state", "k = k.repeat_interleave(rep, 0)", "k = k.repeat(rep, 1, 1)")),
    ("Qwen q/k RMSNorm after RoPE", src_mutation(
        "qwen3_last_state",
        'q = rot(rms_norm(q, w[p + "self_attn.q_norm.weight"], eps).transpose(0, 1))',
        'q = rms_norm(rot(q.transpose(0, 1)), w[p + "self_attn.q_norm.weight"], eps)')),
    ("Qwen RMSNorm eps 1e-5", src_mutation("qwen3_last_state", 'eps = float(t["rms_norm_eps"])', "eps = 1e-5")),
    ("Qwen no causal mask", src_mutation("qwen3_last_state", 's = s.masked_fill(~causal, float("-inf"))', "pass")),
    ("text pooling: mean instead of the EOS state", src_mutation("qwen3_last_state", "return h[-1]",
                                                                 "return h.mean(0)")),
]


def test_mutations(folder, ids):
    ct = os.path.join(folder, "ct")
    vols = ["ras_0.8x0.8x2.5.nii.gz", "lps_1.2x0.9x5_int16_scaled.nii.gz"]
    base = {v: R.run(folder, os.path.join(ct, v), ids, torch.float64) for v in vols}
    print("mutation tests (each must change some compared field by > 1e-4, or a grid/bin/shape):")
    for name, apply in MUTATIONS:
        undo = apply()
        try:
            worst, wf, structural = 0.0, "", []
            for v in vols:
                try:
                    out = R.run(folder, os.path.join(ct, v), ids, torch.float64)
                    e, f, st = max_field_err(base[v], out)
                except Exception as ex:  # a crash also counts as detected
                    e, f, st = float("inf"), f"exception {type(ex).__name__}", []
                if e > worst:
                    worst, wf = e, f"{v.split('_')[0]}:{f}"
                structural += st
        finally:
            undo()
        ok = worst > 1e-4 or bool(structural)
        extra = f"; {structural[0].split(':')[0][5:]}" if structural else ""
        msg = f"  mutation '{name}': worst rel {worst:.2e} at {wf}{extra}"
        if "(INFO" in name:
            print(("ok   " if ok else "info ") + msg)
        else:
            check(ok, msg)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", default=None, help="existing folder from make_folder.py (default: a temp one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-mutations", action="store_true")
    ap.add_argument("--radfinder-src", default=os.environ.get("RADFINDER_SRC"),
                    help="a lmb-freiburg/radfinder checkout; compares RoPE with radfinder's own module")
    ap.add_argument("--monai-src", default=os.environ.get("MONAI_SRC"),
                    help="folder holding the `monai` package source (e.g. from `git archive`); compares the "
                         "preprocessing with real MONAI transforms when importable")
    args = ap.parse_args()
    folder = args.folder
    if folder is None:
        folder = tempfile.mkdtemp(prefix="rfcheck-selftest-")
        subprocess.run([sys.executable, os.path.join(HERE, "make_folder.py"), "--out", folder, "--seed",
                        str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(folder, "ids.json")) as f:
        ids = json.load(f)
    test_geometry()
    test_resampler()
    test_against_monai(folder, args.monai_src)
    test_against_radfinder_rope(args.radfinder_src)
    test_consistency(folder, ids)
    if not args.no_mutations:
        test_mutations(folder, ids)
    print(f"{len(FAILS)} failure(s)" if FAILS else "all self-tests passed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
