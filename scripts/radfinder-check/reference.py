#!/usr/bin/python3
"""Independent PyTorch reference of the released RadFinder inference path (RADFINDER-MODEL.md sections 1-4).

  reference.py --weights DIR --ct FILE [--ids IDS.json] --out OUT.json [--dtype float64|float32]

Preprocessing follows the released MONAI pipeline (LoadImage/NibabelReader -> ScaleIntensityRange(clip) ->
Orientation RAS -> Spacing bilinear/border -> float16 -> largest-multiple centre crop / symmetric pad ->
GridPatch), re-implemented with numpy + nibabel (no MONAI). The model is written with plain torch ops
and runs in float64 by default; weights are read at their stored precision (F32/F16/BF16) and upcast.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the repo free of __pycache__
from rfconfig import dims, load_config  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

AFFINE_TOL = 1e-3  # monai.data.utils.AFFINE_TOL


# ============================================================================ preprocessing (section 1)
def load_nifti(path):
    """MONAI NibabelReader + LoadImage(dtype float32): scaled data (HU), nibabel's best affine."""
    import nibabel as nib
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)  # applies scl_slope / scl_inter
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {data.shape}")
    return data.astype(np.float32), np.array(img.affine, dtype=np.float64)


def scale_intensity(x, a_min, a_max, b_min, b_max):
    """ScaleIntensityRange(clip=True), float32 arithmetic as in MONAI."""
    x = x.astype(np.float32)
    x = (x - np.float32(a_min)) / np.float32(a_max - a_min)
    x = x * np.float32(b_max - b_min) + np.float32(b_min)
    return np.clip(x, np.float32(b_min), np.float32(b_max)).astype(np.float32)


def orient(x, affine, axcodes="RAS"):
    """MONAI Orientation: flip/permute array axes so they follow `axcodes`; returns (array, new affine)."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform
    src = io_orientation(affine)
    dst = axcodes2ornt(axcodes)  # labels: L->R, P->A, I->S (nibabel default == MONAI default)
    t = ornt_transform(src, dst)
    out = np.ascontiguousarray(apply_orientation(x, t))
    new_aff = affine @ inv_ornt_aff(t, x.shape)
    return out, new_aff


def zoom_affine(affine, scale):
    """monai.data.utils.zoom_affine(diagonal=False): keep rotation, replace voxel sizes."""
    rzs = affine[:-1, :-1]
    zs = np.linalg.cholesky(rzs.T @ rzs).T
    rotation = rzs @ np.linalg.inv(zs)
    s = np.sign(np.diag(zs)) * np.abs(np.asarray(scale, dtype=np.float64))
    new = np.eye(4)
    new[:-1, :-1] = rotation @ np.diag(s)
    return new


def shape_offset(shape, in_aff, out_aff):
    """monai.data.utils.compute_shape_offset(scale_extent=False)."""
    shp = np.array(shape, dtype=float)
    coords = [(0.0, n - 1.0) for n in shp]
    corners = np.asarray(np.meshgrid(*coords, indexing="ij")).reshape((3, -1))
    corners = np.concatenate((corners, np.ones_like(corners[:1])))
    corners_out = np.linalg.solve(out_aff, in_aff) @ corners
    corners_w = in_aff @ corners
    all_dist = corners_out[:-1].copy()
    corners_out = corners_out[:-1] / corners_out[-1]
    out_shape = np.round(np.ptp(corners_out, axis=1) + 1.0)  # numpy round: half to even
    offset = None
    for i in range(corners_w.shape[1]):
        min_corner = np.min(all_dist - all_dist[:, i:i + 1], 1)
        if np.allclose(min_corner, 0.0, rtol=AFFINE_TOL):
            offset = corners_w[:-1, i]
            break
    if offset is None:
        offset = in_aff[:-1, :-1] @ (shp / 2.0) + in_aff[:-1, -1] - out_aff[:-1, :-1] @ (out_shape / 2.0)
    return out_shape.astype(int), offset


def _interp_axis(x, axis, pos):
    """Linear interpolation of x along `axis` at continuous indices pos, border clamp (grid_sample 'border')."""
    n = x.shape[axis]
    pos = np.clip(pos, 0.0, n - 1.0)
    i0 = np.floor(pos).astype(np.int64)
    i0 = np.minimum(i0, max(n - 2, 0))
    w = pos - i0
    i1 = np.minimum(i0 + 1, n - 1)
    a = np.take(x, i0, axis=axis)
    b = np.take(x, i1, axis=axis)
    sh = [1] * x.ndim
    sh[axis] = len(pos)
    w = w.reshape(sh)
    return a * (1.0 - w) + b * w


def _trilinear_general(x, xform, out_shape):
    """Trilinear sampling at src = xform @ [j, 1] for every output voxel j (oblique case), border clamp."""
    out = np.empty(tuple(out_shape), dtype=np.float64)
    n = np.array(x.shape)
    j1, j2 = np.meshgrid(np.arange(out_shape[1], dtype=np.float64), np.arange(out_shape[2], dtype=np.float64),
                         indexing="ij")
    j1, j2 = j1.ravel(), j2.ravel()
    for j0 in range(out_shape[0]):
        J = np.stack([np.full_like(j1, j0), j1, j2, np.ones_like(j1)])
        src = (xform @ J)[:3]
        src = np.clip(src, 0.0, (n - 1.0)[:, None])
        i0 = np.minimum(np.floor(src).astype(np.int64), np.maximum(n - 2, 0)[:, None])
        f = src - i0
        acc = np.zeros(src.shape[1])
        for c in range(8):
            o = [(c >> 2) & 1, (c >> 1) & 1, c & 1]
            idx = [np.minimum(i0[a] + o[a], n[a] - 1) for a in range(3)]
            wgt = np.ones(src.shape[1])
            for a in range(3):
                wgt = wgt * (f[a] if o[a] else (1.0 - f[a]))
            acc += wgt * x[idx[0], idx[1], idx[2]]
        out[j0] = acc.reshape(out_shape[1], out_shape[2])
    return out


def spacing(x, affine, pixdim):
    """MONAI Spacing(pixdim, bilinear, border, align_corners=False, dtype float64, diagonal=False,
    scale_extent=False). Returns (float32 array, new affine, info)."""
    orig_d = np.sqrt(np.sum(affine[:3, :3] ** 2, axis=0))
    out_d = np.array(pixdim, dtype=np.float64)
    for i in range(3):  # Spacing keeps the input spacing of an axis that is within AFFINE_TOL of the target
        if out_d[i] - AFFINE_TOL <= orig_d[i] <= out_d[i] + AFFINE_TOL:
            out_d[i] = orig_d[i]
    new_aff = zoom_affine(affine, out_d)
    out_shape, offset = shape_offset(x.shape, affine, new_aff)
    new_aff[:3, 3] = offset
    xform = np.linalg.solve(affine, new_aff)
    same_shape = tuple(out_shape) == tuple(x.shape)
    unchanged = (np.allclose(affine, new_aff, rtol=1e-5, atol=AFFINE_TOL) and same_shape) or (
        np.allclose(xform, np.eye(4), rtol=1e-5, atol=AFFINE_TOL) and same_shape)
    info = {"input_spacing": orig_d.tolist(), "output_spacing": out_d.tolist(), "resampled_shape": [int(s) for s in out_shape],
            "xform": xform.tolist()}
    if unchanged:
        info["resample"] = "skipped (affine unchanged)"
        return x.astype(np.float32), affine, info
    xd = x.astype(np.float64)
    off_diag = np.abs(xform[:3, :3] - np.diag(np.diag(xform[:3, :3]))).max()
    if off_diag < 1e-12:
        y = xd
        for ax in range(3):
            pos = xform[ax, ax] * np.arange(out_shape[ax], dtype=np.float64) + xform[ax, 3]
            y = _interp_axis(y, ax, pos)
        info["resample"] = "separable"
    else:
        y = _trilinear_general(xd, xform, out_shape)
        info["resample"] = "general (oblique)"
    return y.astype(np.float32), new_aff, info


def crop_or_pad(x, window, min_area_for_padding=0.0):
    """LargestMultipleCenterCropd + SpatialPadd(window): per axis, centre-crop to the largest multiple of the
    window, or (size < window) symmetric zero pad to one window."""
    info = []
    for ax in range(3):
        n, w = x.shape[ax], window[ax]
        m = n // w
        if min_area_for_padding <= 0.0:
            crop = m * w if m > 0 else n
            target = crop
        else:
            rem = n - m * w
            target = m * w if m > 0 else w
            if rem > min_area_for_padding * w:
                target = (m + 1) * w
            crop = min(n, target)
        start = n // 2 - crop // 2  # MONAI CenterSpatialCrop
        x = np.take(x, np.arange(start, start + crop), axis=ax)
        pad_total = max(target, w) - crop
        left = pad_total // 2
        if pad_total > 0:
            pw = [(0, 0)] * 3
            pw[ax] = (left, pad_total - left)
            x = np.pad(x, pw, mode="constant", constant_values=0)
        info.append({"size": int(n), "crop_start": int(start), "crop": int(crop), "pad_left": int(left),
                     "pad_right": int(pad_total - left)})
    return x, info


def to_windows(x, window):
    """GridPatch, no overlap: windows in row-major order of (ih, iw, id), id fastest."""
    g = [x.shape[a] // window[a] for a in range(3)]
    w0, w1, w2 = window
    y = x.reshape(g[0], w0, g[1], w1, g[2], w2).transpose(0, 2, 4, 1, 3, 5).reshape(-1, w0, w1, w2)
    return np.ascontiguousarray(y), g


def preprocess(path, d):
    data, aff = load_nifti(path)
    x = scale_intensity(data, d["a_min"], d["a_max"], d["b_min"], d["b_max"])
    x, aff = orient(x, aff, d["axcodes"])
    oriented_shape = list(x.shape)
    x, aff, sinfo = spacing(x, aff, d["pixdim"])
    if d["pix_dtype"] == "float16":
        x = x.astype(np.float16)
    x, cinfo = crop_or_pad(x, d["window"], d["min_area_for_padding"])
    wins, grid = to_windows(x, d["window"])
    xd = wins.astype(np.float64)
    dbg = {"input_shape": list(data.shape), "oriented_shape": oriented_shape, **sinfo, "crop_pad": cinfo,
           "window_shape": [int(s) for s in wins.shape], "window_sum": float(xd.sum()),
           "window_sumsq": float((xd * xd).sum())}
    return wins, grid, dbg


# ============================================================================ model (sections 2-3)
class W:
    """Checkpoint tensors (prefix 'model.' stripped), upcast to the compute dtype."""

    def __init__(self, path, dtype):
        vals, dts = read_safetensors(path)
        self.dtypes = dts
        self.t = {}
        for k, v in vals.items():
            k2 = k[len("model."):] if k.startswith("model.") else k
            k2 = k2.replace("last_layer.weight_g", "last_layer.parametrizations.weight.original0")
            k2 = k2.replace("last_layer.weight_v", "last_layer.parametrizations.weight.original1")
            self.t[k2] = torch.from_numpy(v).to(dtype)

    def __getitem__(self, k):
        return self.t[k]

    def __contains__(self, k):
        return k in self.t


def linear(x, w, b=None):
    y = x @ w.t()
    return y + b if b is not None else y


def layer_norm(x, w, b, eps=1e-6):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rope_sin_cos(periods, grid, divs, dtype):
    """3D RoPE tables (N, head_dim): coords 2(i+0.5)/div-1 per axis, angles 2*pi*c/period,
    [axis0 F | axis1 F | axis2 F] repeated twice (rotate-half layout)."""
    axes = [2.0 * (torch.arange(n, dtype=torch.float64) + 0.5) / float(dv) - 1.0 for n, dv in zip(grid, divs)]
    c = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # (N, 3), last axis fastest
    ang = 2.0 * math.pi * c[:, :, None] / periods.to(torch.float64)[None, None, :]  # (N, 3, F)
    ang = ang.reshape(c.shape[0], -1)
    ang = torch.cat([ang, ang], -1)
    return torch.sin(ang).to(dtype), torch.cos(ang).to(dtype)


def apply_rope(x, sin, cos):
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos[..., :h] - x2 * sin[..., :h], x2 * cos[..., h:] + x1 * sin[..., h:]], -1)


def vit_attention(x, w, p, heads, sin, cos, key_mask=None):
    """FasterAttention 'mha': q Linear, kv Linear (K then V, head-major), RoPE on the spatial tail."""
    B, N, C = x.shape
    hd = C // heads
    q = linear(x, w[p + "q.weight"], w[p + "q.bias"]).view(B, N, heads, hd).transpose(1, 2)
    kv = linear(x, w[p + "kv.weight"], w[p + "kv.bias"]).view(B, N, 2, heads, hd)
    k = kv[:, :, 0].transpose(1, 2)
    v = kv[:, :, 1].transpose(1, 2)
    npre = N - sin.shape[0]
    q = torch.cat([q[:, :, :npre], apply_rope(q[:, :, npre:], sin, cos)], 2)
    k = torch.cat([k[:, :, :npre], apply_rope(k[:, :, npre:], sin, cos)], 2)
    s = (q @ k.transpose(-1, -2)) * (hd ** -0.5)
    if key_mask is not None:
        s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    a = torch.softmax(s, -1)
    o = (a @ v).transpose(1, 2).reshape(B, N, C)
    return linear(o, w[p + "proj.weight"], w[p + "proj.bias"])


def vit_block(x, w, p, heads, sin, cos, layerscale, key_mask=None):
    h = vit_attention(layer_norm(x, w[p + "norm1.weight"], w[p + "norm1.bias"]), w, p + "attn.", heads, sin, cos,
                      key_mask)
    x = x + (h * w[p + "ls1.gamma"] if layerscale else h)
    h = layer_norm(x, w[p + "norm2.weight"], w[p + "norm2.bias"])
    h = linear(gelu(linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"],
               w[p + "mlp.fc2.bias"])
    return x + (h * w[p + "ls2.gamma"] if layerscale else h)


def backbone(wins, w, d, dtype, chunk=8):
    """Window ViT. wins: (N, w0, w1, w2). Returns cls (N,E), patch mean (N,E), depth rows (N, g2, E)."""
    E = d["E"]
    p0, p1, p2 = d["patch"]
    g0, g1, g2 = d["tokens"]
    pe_w = w["backbone_image.patch_embed.proj.weight"].reshape(E, p0 * p1 * p2)
    pe_b = w["backbone_image.patch_embed.proj.bias"]
    sin, cos = rope_sin_cos(w["backbone_image.rope.periods"], (g0, g1, g2), (g0, g1, g2), dtype)
    cls_o, avg_o, ax2_o = [], [], []
    for s in range(0, wins.shape[0], chunk):
        x = torch.from_numpy(wins[s:s + chunk].astype(np.float64)).to(dtype)
        n = x.shape[0]
        # Conv3d with kernel = stride = patch, as a matmul over non-overlapping patches; tokens (ph, pw, pd), pd fastest
        pt = x.reshape(n, g0, p0, g1, p1, g2, p2).permute(0, 1, 3, 5, 2, 4, 6).reshape(n, g0 * g1 * g2, -1)
        t = linear(pt, pe_w, pe_b)
        t = torch.cat([w["backbone_image.cls_token"].expand(n, 1, E), t], 1)
        for i in range(d["depth"]):
            t = vit_block(t, w, f"backbone_image.blocks.{i}.", d["heads"], sin, cos, d["layerscale"])
        t = layer_norm(t, w["backbone_image.norm.weight"], w["backbone_image.norm.bias"])
        cls_o.append(t[:, 0])
        pat = t[:, 1:]
        avg_o.append(pat.mean(1))
        ax2_o.append(pat.reshape(n, g0, g1, g2, E).mean(dim=(1, 2)))
    return torch.cat(cls_o), torch.cat(avg_o), torch.cat(ax2_o)


def combiner(tokens, w, d, grid, divs, dtype, key_mask=None):
    """FeatureVisionTransformer after its input projection: CLS + blocks (RoPE base from the file) + norm."""
    Ec = d["Ec"]
    sin, cos = rope_sin_cos(w["feature_comb_image.rope.periods"], grid, divs, dtype)
    x = torch.cat([w["feature_comb_image.cls_token"].reshape(1, 1, Ec), tokens[None]], 1)
    km = None
    if key_mask is not None:
        km = torch.cat([torch.ones(1, dtype=torch.bool), key_mask.reshape(-1)])[None]
    for i in range(d["cdepth"]):
        x = vit_block(x, w, f"feature_comb_image.blocks.{i}.", d["cheads"], sin, cos, d["clayerscale"], km)
    x = layer_norm(x, w["feature_comb_image.norm.weight"], w["feature_comb_image.norm.bias"])
    return x[0, 0], x[0, 1:]


def head(x, w, name):
    """SigLIPProjectionHead: Linear-GELU-Linear-GELU-Linear, then weight-normalised Linear (no bias)."""
    p = name + "."
    x = gelu(linear(x, w[p + "layers.0.weight"], w[p + "layers.0.bias"]))
    x = gelu(linear(x, w[p + "layers.2.weight"], w[p + "layers.2.bias"]))
    x = linear(x, w[p + "layers.4.weight"], w[p + "layers.4.bias"])
    g = w[p + "last_layer.parametrizations.weight.original0"]  # (out, 1)
    v = w[p + "last_layer.parametrizations.weight.original1"]  # (out, in)
    wn = g * v / torch.sqrt((v * v).sum(1, keepdim=True))
    return linear(x, wn)


def encode_image(wins, grid, w, d, dtype):
    Hg, Wg, Dg = grid
    E = d["E"]
    p2 = d["tokens"][2]
    cls_b, avg_b, ax2_b = backbone(wins, w, d, dtype)
    img_head = "projection_image"
    sec_head = "projection_image_copy" if d["copy_image"] else "projection_image"
    valid = torch.ones(Hg, Wg, Dg, dtype=torch.bool)  # single scan: every window is valid

    # global ("low_res") path: per window [CLS ; patch mean] -> patch_proj -> combiner over (Hg, Wg, Dg)
    x = linear(torch.cat([cls_b, avg_b], -1), w["feature_comb_image.patch_proj.weight"],
               w["feature_comb_image.patch_proj.bias"])
    cls_g, toks = combiner(x, w, d, (Hg, Wg, Dg), (Hg, Wg, Dg), dtype, key_mask=valid)
    m = valid.reshape(-1, 1).to(dtype)
    avg = (toks * m).sum(0) / m.sum().clamp(min=1)
    pooled = torch.cat([cls_g, avg])
    out = {"image": head(pooled, w, img_head), "disease": head(pooled, w, sec_head), "pooled": pooled}

    # per-depth ("axis2") path: depth rows on a (Hg, Wg, p2*Dg) grid, d2 = id*p2 + pd
    D2 = Dg * p2
    rows = ax2_b.reshape(Hg, Wg, Dg, p2, E).reshape(Hg * Wg * D2, E)
    valid2 = valid.repeat_interleave(p2, dim=-1)  # (Hg, Wg, D2)
    divs = (Hg, Wg, Dg) if d["physical"] else (Hg, Wg, D2)
    if d["axis2_use_cls_input"]:
        cls_rep = cls_b.reshape(Hg, Wg, Dg, 1, E).expand(Hg, Wg, Dg, p2, E).reshape(-1, E)
        t2 = linear(torch.cat([cls_rep, rows], -1), w["feature_comb_image.patch_proj.weight"],
                    w["feature_comb_image.patch_proj.bias"])
    else:
        t2 = linear(rows, w["feature_comb_image.axis_patch_proj.weight"], w["feature_comb_image.axis_patch_proj.bias"])
    cls_a, toks2 = combiner(t2, w, d, (Hg, Wg, D2), divs, dtype, key_mask=valid2)
    toks2 = toks2.reshape(Hg, Wg, D2, -1)
    m2 = valid2[..., None].to(dtype)
    perslice = (toks2 * m2).sum((0, 1)) / m2.sum((0, 1)).clamp(min=1)  # (D2, Ec)
    depth_valid = valid2.any(0).any(0)
    sl_in = torch.cat([cls_a[None].expand(D2, -1), perslice], -1)
    out["depth"] = head(sl_in, w, sec_head)
    out["depth_valid"] = depth_valid
    if d["global_res"] == "axis2":  # not the release; kept for completeness
        mv = depth_valid[:, None].to(dtype)
        avg_ps = (perslice * mv).sum(0) / mv.sum().clamp(min=1)
        pin = torch.cat([cls_a, avg_ps])
        out["image"], out["disease"] = head(pin, w, img_head), head(pin, w, sec_head)
    return out


def rms_norm(x, wt, eps):
    return wt * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def qwen3_last_state(ids, w, t, dtype):
    """Qwen3Model forward of one unpadded sequence; returns the final-norm hidden state of the last token."""
    hs, nq, nk, hd = t["hidden_size"], t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"]
    eps = float(t["rms_norm_eps"])
    L = len(ids)
    h = w["backbone_text.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
    inv_freq = 1.0 / (float(t["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    fr = torch.arange(L, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat([fr, fr], -1)
    cos, sin = torch.cos(emb).to(dtype), torch.sin(emb).to(dtype)

    def rot(x):  # x (heads, L, hd), rotate-half
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    causal = torch.ones(L, L, dtype=torch.bool).tril()
    for i in range(t["num_hidden_layers"]):
        p = f"backbone_text.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        # LoRA adapters (lora_A / lora_B) are ignored: loralib merged them at eval(); `weight` is used as stored
        q = linear(x, w[p + "self_attn.q_proj.weight"]).view(L, nq, hd)
        k = linear(x, w[p + "self_attn.k_proj.weight"]).view(L, nk, hd)
        v = linear(x, w[p + "self_attn.v_proj.weight"]).view(L, nk, hd).transpose(0, 1)
        q = rot(rms_norm(q, w[p + "self_attn.q_norm.weight"], eps).transpose(0, 1))
        k = rot(rms_norm(k, w[p + "self_attn.k_norm.weight"], eps).transpose(0, 1))
        rep = nq // nk
        k = k.repeat_interleave(rep, 0)  # query head j uses kv head j // rep
        v = v.repeat_interleave(rep, 0)
        s = (q @ k.transpose(-1, -2)) * (hd ** -0.5)
        s = s.masked_fill(~causal, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(L, nq * hd)
        h = h + linear(o, w[p + "self_attn.o_proj.weight"])
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(x, w[p + "mlp.gate_proj.weight"])
        u = linear(x, w[p + "mlp.up_proj.weight"])
        h = h + linear(g * torch.sigmoid(g) * u, w[p + "mlp.down_proj.weight"])
    h = rms_norm(h, w["backbone_text.norm.weight"], eps)
    return h[-1]


# ============================================================================ tasks (section 4) + output
def l2n(x, eps=1e-12):
    return x / x.norm(dim=-1, keepdim=True).clamp(min=eps)


def lst(x):
    return [float(v) for v in x.reshape(-1).tolist()]


def emb(x):
    return {"raw": lst(x), "normalized": lst(l2n(x))}


def run(weights_dir, ct, ids_lists, dtype=torch.float64, dump_windows=None):
    cfg = load_config(os.path.join(weights_dir, "config.json"))
    d = dims(cfg)
    w = W(os.path.join(weights_dir, "model.safetensors"), dtype)
    check_keys(w, d)
    t0 = time.time()
    wins, grid, dbg = preprocess(ct, d)
    if dump_windows:
        wins.astype("<f2").tofile(dump_windows)
    t1 = time.time()
    with torch.no_grad():
        im = encode_image(wins, grid, w, d, dtype)
        texts = []
        for ids in ids_lists:
            pooled = qwen3_last_state(ids, w, d["text"], dtype)
            rep_head = "projection_text"
            snip_head = "projection_text_copy" if d["copy_text"] else "projection_text"
            texts.append({"ids": [int(i) for i in ids], "report": head(pooled, w, rep_head),
                          "snippet": head(pooled, w, snip_head)})
    t2 = time.time()
    valid = im["depth_valid"]
    out = {
        "image": {
            "grid": [int(g) for g in grid],
            "image": emb(im["image"]),
            "disease": emb(im["disease"]),
            "depth": {"raw": [lst(r) for r in im["depth"]], "normalized": [lst(r) for r in l2n(im["depth"])],
                      "valid": [bool(v) for v in valid.tolist()]},
        },
        "texts": [{"ids": tx["ids"], "report": emb(tx["report"]), "snippet": emb(tx["snippet"])} for tx in texts],
        "localize": [],
    }
    dn = l2n(im["depth"])
    for i, tx in enumerate(texts):
        cosv = dn @ l2n(tx["snippet"])
        logits = (cosv / d["tau"]).masked_fill(~valid, float("-inf"))
        prob = torch.softmax(logits, 0)
        out["localize"].append({"ids_index": i, "cosine": lst(cosv), "probabilities": lst(prob),
                                "bin": int(cosv.masked_fill(~valid, float("-inf")).argmax())})
    # section 4 scores (debug only): retrieval cosine / SigLIP pseudo-probability, zero-shot style cosine
    tt, bb = float(w["criterion.t"]), float(w["criterion.b"])
    ni, nd = l2n(im["image"]), l2n(im["disease"])
    dbg["retrieval_cosine"] = [float(ni @ l2n(tx["report"])) for tx in texts]
    dbg["siglip_probability"] = [1.0 / (1.0 + math.exp(-(math.exp(tt) * c + bb))) for c in dbg["retrieval_cosine"]]
    dbg["disease_cosine"] = [float(nd @ l2n(tx["report"])) for tx in texts]
    dbg["criterion_t"], dbg["criterion_b"] = tt, bb
    dbg["weight_dtypes"] = {k: sum(1 for v in w.dtypes.values() if v == k) for k in sorted(set(w.dtypes.values()))}
    dbg["compute_dtype"] = str(dtype).replace("torch.", "")
    dbg["seconds"] = {"preprocess": round(t1 - t0, 3), "model": round(t2 - t1, 3)}
    out["debug"] = dbg
    return out


def check_keys(w, d):
    from make_folder import expected_keys
    exp = expected_keys(d, with_lora=False)
    missing = [k[len("model."):] for k in exp if k[len("model."):] not in w]
    if missing:
        raise KeyError(f"{len(missing)} checkpoint keys missing, e.g. {missing[:5]}")
    for k, shp in exp.items():
        got = tuple(w[k[len("model."):]].shape)
        if got != tuple(shp):
            raise ValueError(f"{k}: shape {got}, expected {tuple(shp)}")
    for name, base, heads_, E in (("backbone_image", d["rope_base"], d["heads"], d["E"]),
                                  ("feature_comb_image", d["crope_base"], d["cheads"], d["Ec"])):
        hd = E // heads_
        per = w[f"{name}.rope.periods"].double()
        want = torch.tensor(base, dtype=torch.float64) ** (2 * torch.arange(hd // 6, dtype=torch.float64) / (hd // 3))
        if (per / want - 1).abs().max() > 1e-5:
            print(f"warning: {name}.rope.periods differ from base {base}: {per.tolist()}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--ct", required=True, action="append",
                    help="a NIfTI volume; repeatable, then --out must contain {name} (file name without .nii.gz)")
    ap.add_argument("--ids", default=None)
    ap.add_argument("--out", default="-")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dump-windows", default=None,
                    help="also write the preprocessed windows as raw little-endian float16 (N, w0, w1, w2)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ids = []
    if args.ids:
        with open(args.ids) as f:
            ids = json.load(f)
    if len(args.ct) > 1 and "{name}" not in args.out:
        ap.error("several --ct need an --out containing {name}")
    for ct in args.ct:
        name = os.path.basename(ct)
        for ext in (".nii.gz", ".nii"):
            if name.endswith(ext):
                name = name[:-len(ext)]
                break
        dump = args.dump_windows.replace("{name}", name) if args.dump_windows else None
        out = run(args.weights, ct, ids, getattr(torch, args.dtype), dump_windows=dump)
        s = json.dumps(out)
        if args.out == "-":
            print(s)
        else:
            with open(args.out.replace("{name}", name), "w") as f:
                f.write(s)


if __name__ == "__main__":
    main()
