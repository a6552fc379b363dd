#!/usr/bin/python3
"""Builds a reduced-size RadFinder weights folder with random weights, test CT volumes and token-id lists.

  make_folder.py --out DIR --seed S [--config radfinder-reduced-config.json] [--no-volumes] [--oblique]

Writes DIR/config.json, DIR/model.safetensors (every key of RADFINDER-MODEL.md section 5, prefix "model."),
DIR/ct/*.nii.gz and DIR/ids.json. Weights are random with non-trivial scales; a mix of F32/F16/BF16.
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the repo free of __pycache__
from rfconfig import dims, load_config  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

DEFAULT_CONFIG = "/work/shared/radfinder-reduced-config.example.json"


def block_keys(prefix, E, mlp):
    return {
        f"{prefix}.norm1.weight": (E,), f"{prefix}.norm1.bias": (E,),
        f"{prefix}.attn.q.weight": (E, E), f"{prefix}.attn.q.bias": (E,),
        f"{prefix}.attn.kv.weight": (2 * E, E), f"{prefix}.attn.kv.bias": (2 * E,),
        f"{prefix}.attn.proj.weight": (E, E), f"{prefix}.attn.proj.bias": (E,),
        f"{prefix}.ls1.gamma": (E,), f"{prefix}.ls2.gamma": (E,),
        f"{prefix}.norm2.weight": (E,), f"{prefix}.norm2.bias": (E,),
        f"{prefix}.mlp.fc1.weight": (mlp, E), f"{prefix}.mlp.fc1.bias": (mlp,),
        f"{prefix}.mlp.fc2.weight": (E, mlp), f"{prefix}.mlp.fc2.bias": (E,),
    }


def expected_keys(d, with_lora=True):
    """name -> shape, for every tensor of the checkpoint (section 5 of RADFINDER-MODEL.md)."""
    E, Ec = d["E"], d["Ec"]
    p0, p1, p2 = d["patch"]
    k = {}
    b = "model.backbone_image"
    k[f"{b}.patch_embed.proj.weight"] = (E, 1, p0, p1, p2)
    k[f"{b}.patch_embed.proj.bias"] = (E,)
    k[f"{b}.cls_token"] = (1, 1, E)
    k[f"{b}.rope.periods"] = ((E // d["heads"]) // 6,)
    for i in range(d["depth"]):
        bk = block_keys(f"{b}.blocks.{i}", E, d["mlp"])
        if not d["layerscale"]:
            bk = {n: s for n, s in bk.items() if ".ls" not in n}
        k.update(bk)
    k[f"{b}.norm.weight"] = (E,)
    k[f"{b}.norm.bias"] = (E,)
    c = "model.feature_comb_image"
    k[f"{c}.patch_proj.weight"] = (Ec, 2 * E)
    k[f"{c}.patch_proj.bias"] = (Ec,)
    k[f"{c}.axis_patch_proj.weight"] = (Ec, E)
    k[f"{c}.axis_patch_proj.bias"] = (Ec,)
    k[f"{c}.cls_token"] = (1, 1, Ec)
    k[f"{c}.rope.periods"] = ((Ec // d["cheads"]) // 6,)
    for i in range(d["cdepth"]):
        bk = block_keys(f"{c}.blocks.{i}", Ec, d["cmlp"])
        if not d["clayerscale"]:
            bk = {n: s for n, s in bk.items() if ".ls" not in n}
        k.update(bk)
    k[f"{c}.norm.weight"] = (Ec,)
    k[f"{c}.norm.bias"] = (Ec,)
    H, B, P = d["head_hidden"], d["head_bottleneck"], d["proj"]
    for name, din in (("projection_image", 2 * Ec), ("projection_image_copy", 2 * Ec),
                      ("projection_text", d["text_hidden"]), ("projection_text_copy", d["text_hidden"])):
        h = f"model.{name}"
        k[f"{h}.layers.0.weight"] = (H, din)
        k[f"{h}.layers.0.bias"] = (H,)
        k[f"{h}.layers.2.weight"] = (H, H)
        k[f"{h}.layers.2.bias"] = (H,)
        k[f"{h}.layers.4.weight"] = (B, H)
        k[f"{h}.layers.4.bias"] = (B,)
        k[f"{h}.last_layer.parametrizations.weight.original0"] = (P, 1)
        k[f"{h}.last_layer.parametrizations.weight.original1"] = (P, B)
    t = d["text"]
    hs, nq, nk, hd, it = t["hidden_size"], t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"], t[
        "intermediate_size"]
    r = d["lora_r"]
    tb = "model.backbone_text"
    k[f"{tb}.embed_tokens.weight"] = (t["vocab_size"], hs)
    for i in range(t["num_hidden_layers"]):
        L = f"{tb}.layers.{i}"
        for nm, dout, din in (("q_proj", nq * hd, hs), ("k_proj", nk * hd, hs), ("v_proj", nk * hd, hs),
                              ("o_proj", hs, nq * hd)):
            k[f"{L}.self_attn.{nm}.weight"] = (dout, din)
            if with_lora:
                k[f"{L}.self_attn.{nm}.lora_A"] = (r, din)
                k[f"{L}.self_attn.{nm}.lora_B"] = (dout, r)
        k[f"{L}.self_attn.q_norm.weight"] = (hd,)
        k[f"{L}.self_attn.k_norm.weight"] = (hd,)
        k[f"{L}.mlp.gate_proj.weight"] = (it, hs)
        k[f"{L}.mlp.up_proj.weight"] = (it, hs)
        k[f"{L}.mlp.down_proj.weight"] = (hs, it)
        k[f"{L}.input_layernorm.weight"] = (hs,)
        k[f"{L}.post_attention_layernorm.weight"] = (hs,)
    k[f"{tb}.norm.weight"] = (hs,)
    k["model.criterion.t"] = ()
    k["model.criterion.b"] = ()
    return k


def random_value(name, shape, rng, d):
    """Random tensor with a scale that keeps activations O(1) and makes every parameter matter."""
    n = name
    if n.endswith("rope.periods"):
        base = d["rope_base"] if "backbone_image" in n else d["crope_base"]
        hd = shape[0] * 6
        # RotaryPositionEmbedding: base ** (2 * arange(hd // 6) / (hd // 3)), computed in float32
        ar = np.arange(hd // 6, dtype=np.float32)
        return (np.float32(base) ** (np.float32(2) * ar / np.float32(hd // 3))).astype(np.float32)
    if n == "model.criterion.t":
        return np.array(math.log(10.0) + rng.normal(0, 0.1))
    if n == "model.criterion.b":
        return np.array(-10.0 + rng.normal(0, 0.5))
    if n.endswith("cls_token"):
        return rng.normal(0, 0.5, shape)
    if n.endswith(".gamma"):  # LayerScale
        return rng.uniform(0.1, 0.7, shape) * np.where(rng.uniform(size=shape) < 0.2, -1.0, 1.0)
    if n.endswith("original0"):  # weight-norm g
        return rng.uniform(0.5, 2.0, shape)
    if "norm" in n.split(".")[-2] and n.endswith(".weight") and len(shape) == 1:  # LayerNorm / RMSNorm weights
        if n.endswith("q_norm.weight") or n.endswith("k_norm.weight"):
            return rng.uniform(0.5, 1.5, shape)
        return 1.0 + rng.normal(0, 0.1, shape)
    if n.endswith(".bias"):
        if "norm" in n.split(".")[-2]:
            return rng.normal(0, 0.05, shape)
        return rng.normal(0, 0.05, shape)
    if n.endswith("patch_embed.proj.weight"):
        # small on purpose: patch tokens then have a small variance, so the LayerNorm eps (1e-6) matters
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0, 0.12 / math.sqrt(fan_in), shape)
    if n.endswith("embed_tokens.weight"):  # Qwen-like scale (~0.03): the RMSNorm eps matters
        return rng.normal(0, 0.03, shape)
    if n.endswith("lora_A"):
        return rng.normal(0, 1.0 / math.sqrt(shape[1]), shape)
    if n.endswith("lora_B"):
        return rng.normal(0, 0.5, shape)
    if len(shape) == 2:  # Linear (out, in), incl. weight-norm v
        return rng.normal(0, 1.0 / math.sqrt(shape[1]), shape)
    raise ValueError(f"no rule for {name} {shape}")


def choose_dtypes(keys, rng):
    """Mostly F32, some F16, some BF16; rope periods and the criterion scalars stay F32."""
    dts = {}
    names = sorted(keys)
    for n in names:
        if n.endswith("rope.periods") or n.startswith("model.criterion"):
            dts[n] = "F32"
            continue
        u = rng.uniform()
        dts[n] = "F16" if u < 0.15 else ("BF16" if u < 0.30 else "F32")
    # make sure some important tensors of each kind are non-F32
    forced = {
        "model.backbone_image.patch_embed.proj.weight": "F16",
        "model.backbone_image.blocks.0.attn.kv.weight": "BF16",
        "model.backbone_image.blocks.0.ls1.gamma": "F16",
        "model.feature_comb_image.axis_patch_proj.weight": "BF16",
        "model.projection_image_copy.last_layer.parametrizations.weight.original1": "BF16",
        "model.projection_text.last_layer.parametrizations.weight.original0": "F16",
        "model.backbone_text.embed_tokens.weight": "BF16",
        "model.backbone_text.layers.0.self_attn.q_norm.weight": "F16",
        "model.backbone_text.layers.0.mlp.down_proj.weight": "BF16",
    }
    for n, dt in forced.items():
        if n in dts:
            dts[n] = dt
    return dts


# ----------------------------------------------------------------------------- CT phantom
def phantom_hu(x, y, z, rng_noise):
    """HU of a simple chest-like phantom at world RAS coordinates (mm)."""
    hu = np.full(x.shape, -1000.0)
    r_body = (x / 150.0) ** 2 + (y / 110.0) ** 2
    body = r_body < 1.0
    hu[body] = -100.0  # fat
    muscle = r_body < 0.85 ** 2
    hu[muscle] = 45.0 + 10.0 * np.sin(z[muscle] / 17.0)
    # ribs: thin shell modulated along z
    shell = (r_body > 0.78 ** 2) & (r_body < 0.83 ** 2) & (np.sin(z / 9.0) > 0.3)
    hu[shell] = 900.0
    for sx in (-1.0, 1.0):  # lungs
        r_l = ((x - sx * 65.0) / 50.0) ** 2 + ((y - 5.0) / 70.0) ** 2 + ((z - 20.0) / 130.0) ** 2
        lung = r_l < 1.0
        hu[lung] = -850.0 + 60.0 * np.sin(x[lung] / 7.0) * np.cos(y[lung] / 5.0) + 30.0 * np.sin(z[lung] / 11.0)
        # vessels / nodules
        for cz in (-30.0, 10.0, 45.0):
            nod = ((x - sx * 60.0 - 8.0) ** 2 + (y - 12.0) ** 2 + (z - cz) ** 2) < 7.0 ** 2
            hu[nod & lung] = 60.0
    heart = ((x - 10.0) / 50.0) ** 2 + ((y - 30.0) / 45.0) ** 2 + ((z + 5.0) / 55.0) ** 2 < 1.0
    hu[heart] = 40.0 + 15.0 * np.cos(z[heart] / 13.0)
    spine = (x ** 2 + (y + 80.0) ** 2) < 15.0 ** 2
    hu[spine] = 700.0 + 400.0 * (np.sin(z[spine] / 6.0) > 0)  # vertebrae up to 1100 HU (above the clip)
    table = (y < -125.0) & (y > -135.0) & (np.abs(x) < 200.0)
    hu[table] = 250.0
    hu += rng_noise.normal(0, 15.0, x.shape)
    fov = (x ** 2 + y ** 2) < 240.0 ** 2  # outside the scanner field of view
    hu[~fov] = -2048.0
    return hu


def world_grid(shape, affine):
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    ijk = np.stack([i, j, k, np.ones_like(i)], 0).reshape(4, -1)
    xyz = affine @ ijk
    return [xyz[a].reshape(shape) for a in range(3)]


def make_affine(codes, spacing, shape, center=(0.0, 0.0, 0.0)):
    """Affine for array axes with orientation codes (e.g. 'LPS': axis 0 increases toward Left) and spacings,
    centred on `center` (RAS mm)."""
    vec = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
    A = np.zeros((4, 4))
    A[3, 3] = 1.0
    for ax, (c, s) in enumerate(zip(codes, spacing)):
        w, sign = vec[c]
        A[w, ax] = sign * s
    mid = np.array([(n - 1) / 2.0 for n in shape] + [1.0])
    A[:3, 3] = np.asarray(center) - (A @ mid)[:3]
    return A


def write_volumes(out_dir, seed, oblique=False):
    import nibabel as nib
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed + 1000)
    written = []

    # 1. RAS, 0.8 x 0.8 x 2.5 mm, float32 HU. Resampled 96 x 139 x 34 -> grid (3, 2, 2) of 32x48x16 windows.
    shpA = (90, 130, 41)
    affA = make_affine("RAS", (0.8, 0.8, 2.5), shpA, center=(3.0, -4.0, 10.0))
    a = phantom_hu(*world_grid(shpA, affA), rng).astype(np.float32)
    imgA = nib.Nifti1Image(a, affA)
    imgA.header.set_xyzt_units("mm")
    p = os.path.join(out_dir, "ras_0.8x0.8x2.5.nii.gz")
    nib.save(imgA, p)
    written.append(p)

    # 2. The same voxels re-laid out as PIR (exact permutation + flips): must give identical embeddings.
    t = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt("PIR"))
    b = apply_orientation(a, t)
    affB = affA @ inv_ornt_aff(t, a.shape)
    assert "".join(nib.aff2axcodes(affB)) == "PIR"
    p = os.path.join(out_dir, "ras_copy_as_pir.nii.gz")
    nib.save(nib.Nifti1Image(np.ascontiguousarray(b), affB), p)
    written.append(p)

    # 3. LPS, 1.2 x 0.9 x 5 mm, int16 storage with scl_slope/scl_inter. Resampled 63 x 72 x 11:
    #    depth 11 < 16 -> padded to one window; grid (1, 1, 1).
    shpC = (40, 60, 7)
    affC = make_affine("LPS", (1.2, 0.9, 5.0), shpC, center=(-5.0, 8.0, 0.0))
    c = phantom_hu(*world_grid(shpC, affC), rng)
    imgC = nib.Nifti1Image(c.astype(np.float32), affC)
    imgC.set_data_dtype(np.int16)  # nibabel picks scl_slope / scl_inter to fit the float data into int16
    p = os.path.join(out_dir, "lps_1.2x0.9x5_int16_scaled.nii.gz")
    nib.save(imgC, p)
    chk = nib.load(p)
    slope, inter = chk.dataobj.slope, chk.dataobj.inter
    assert not (slope == 1.0 and inter == 0.0), (slope, inter)
    written.append(p)

    # 4. PIR (axis permutation), spacing (0.7 along P, 2.0 along I, 0.9 along R).
    #    RAS shape (110, 150, 60) at (0.9, 0.7, 2.0) -> resampled 132 x 140 x 40 -> grid (4, 2, 2).
    shpD = (150, 60, 110)
    affD = make_affine("PIR", (0.7, 2.0, 0.9), shpD, center=(12.0, 3.0, -20.0))
    dd = phantom_hu(*world_grid(shpD, affD), rng).astype(np.float32)
    p = os.path.join(out_dir, "pir_0.7x2.0x0.9.nii.gz")
    nib.save(nib.Nifti1Image(dd, affD), p)
    written.append(p)

    if oblique:
        # 5. Optional: rotated (oblique) affine, 10 degrees about S; MONAI keeps the rotation when resampling.
        shpE = (60, 70, 30)
        affE = make_affine("RAS", (0.9, 0.9, 2.0), shpE)
        th = math.radians(10.0)
        R = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
        affE[:3, :3] = R @ affE[:3, :3]
        e = phantom_hu(*world_grid(shpE, affE), rng).astype(np.float32)
        p = os.path.join(out_dir, "oblique_10deg.nii.gz")
        nib.save(nib.Nifti1Image(e, affE), p)
        written.append(p)
    return written


def make_ids(d, seed):
    rng = np.random.default_rng(seed + 2000)
    vocab, eos = d["text"]["vocab_size"], d["text"]["eos_token_id"]
    pool = np.array([i for i in range(vocab) if i != eos])
    lists = [[eos]]
    for n in (3, 9, 17, 34):
        lists.append([int(v) for v in rng.choice(pool, size=n)] + [eos])
    return lists


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--no-volumes", action="store_true")
    ap.add_argument("--oblique", action="store_true", help="also write a rotated-affine volume")
    ap.add_argument("--all-f32", action="store_true", help="store every tensor as F32")
    args = ap.parse_args()

    cfg = load_config(args.config)
    d = dims(cfg)
    os.makedirs(args.out, exist_ok=True)
    shutil.copyfile(args.config, os.path.join(args.out, "config.json"))

    rng = np.random.default_rng(args.seed)
    keys = expected_keys(d, with_lora=d["use_lora"])
    tensors = {}
    for name in sorted(keys):
        v = np.asarray(random_value(name, keys[name], rng, d))
        assert v.shape == tuple(keys[name]), (name, v.shape, keys[name])
        tensors[name] = v
    dts = choose_dtypes(keys, np.random.default_rng(args.seed + 7))
    if args.all_f32:
        dts = {n: "F32" for n in dts}
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, dts)
    counts = {dt: sum(1 for v in dts.values() if v == dt) for dt in ("F32", "F16", "BF16")}

    vols = [] if args.no_volumes else write_volumes(os.path.join(args.out, "ct"), args.seed, args.oblique)
    with open(os.path.join(args.out, "ids.json"), "w") as f:
        json.dump(make_ids(d, args.seed), f)
    print(json.dumps({"out": args.out, "tensors": len(tensors), "dtypes": counts, "volumes": vols,
                      "ids": os.path.join(args.out, "ids.json")}, indent=1))


if __name__ == "__main__":
    main()
