#!/usr/bin/python3
"""PyTorch peer of the bench's `step` section: one RadFinder training step (forward, backward,
gradient-norm clipping, AdamW) in float32 with autograd, on the weights and the batch the
bench wrote, so that both sides start from identical parameters and see identical inputs.

  radfinder_step.py DIR [--threads N] [--device cpu|cuda]

--device cuda runs the step on the first CUDA GPU (the bench asks for it when our adapter is a
GPU), in float32 with TF32 off for matmuls and convolutions, each timed step ending with
torch.cuda.synchronize().

DIR (written by StepSides.open in bench/peers/radfinder-step.ts) holds:
  peer.json           the model: our RadFinderConfig (camelCase: sizes, loss weights), AdamW's
                      hyperparameters, each trainable parameter's group (lr scale, weight
                      decay), and the batch's text lengths
  model.safetensors   the initial weights (RadFinder's keys, "model." prefix, F32)
  batch.safetensors   the batch (volume, token ids and masks, labels, snippets)

Protocol (one JSON object per line on stdout, commands one per line on stdin), so that the
bench can take this side's samples in rounds alternating with its own:
  (start)   -> {"ready": true, "torch": version, "threads": n, "params": count}
  check     -> {"loss1", "gradNorm1", "loss2"}: steps 1 and 2 (the loss of step 2 is after
               step 1's update, so it checks the backward, the clipping and AdamW too)
  steps K   -> {"ms": [K per-step wall times]}: forward, backward, clip, AdamW, zero_grad
  threads N -> {"threads": n}: torch.set_num_threads(N) for the steps that follow
  quit      -> exits
Errors: {"error": "..."} and exit status 1.

The modules are written here from the model's description (RADFINDER-MODEL.md; the same
layouts as scripts/radfinder-check/reference.py, which is float64 and forward-only), with the
state-dict names of the release, so the file loads by name and strictly.
"""
import json
import math
import os
import sys
import time

sys.dont_write_bytecode = True

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "I32": np.int32}[e["dtype"]]
        a, b = e["data_offsets"]
        arr = np.frombuffer(data, dtype=dt, count=(b - a) // 4, offset=8 + n + a).reshape(e["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


# ---------------------------------------------------------------------------------- rotary tables
def rope3d_tables(periods, grid, divs):
    """RadFinder's 3D RoPE: coordinate 2(i + 0.5)/div - 1 per axis, angle 2 pi c / period,
    [axis0 F | axis1 F | axis2 F] = head_dim / 2 angles per token (axis 2 fastest); float64
    angles, float32 tables (as ours)."""
    axes = [2.0 * (torch.arange(n, dtype=torch.float64) + 0.5) / float(d) - 1.0 for n, d in zip(grid, divs)]
    c = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    ang = (2.0 * math.pi * c[:, :, None] / periods.cpu().to(torch.float64)[None, None, :]).reshape(c.shape[0], -1)
    return torch.cos(ang).float().to(periods.device), torch.sin(ang).float().to(periods.device)


def rope1d_tables(L, hd, theta):
    """Qwen3's RoPE: inv_freq in float32 (transformers), angle l * inv_freq rounded to float32."""
    inv = torch.tensor([1.0 / theta ** (2 * i / hd) for i in range(hd // 2)], dtype=torch.float64).float()
    ang = torch.arange(L, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cos(ang.double()).float(), torch.sin(ang.double()).float()


def rotate(x, cos, sin):
    """Rotate-half RoPE of x [..., n, heads, hd] with tables [n, hd/2]."""
    h = x.shape[-1] // 2
    c, s = cos[:, None, :], sin[:, None, :]
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


# ---------------------------------------------------------------------------------- vision
class LayerScale(nn.Module):
    def __init__(self, dim, init):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, cos, sin):
        B, N, C = x.shape
        H, D = self.heads, C // self.heads
        q = self.q(x).view(B, N, H, D)
        kv = self.kv(x).view(B, N, 2, H, D)  # K = the first C features, V the last, head-major
        k, v = kv[:, :, 0], kv[:, :, 1]
        pre = N - cos.shape[0]  # CLS is not rotated
        q = torch.cat([q[:, :pre], rotate(q[:, pre:], cos, sin)], 1)
        k = torch.cat([k[:, :pre], rotate(k[:, pre:], cos, sin)], 1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2)) * D ** -0.5, -1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, ls):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim, ls)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, round(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, ls)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin) * self.ls1.gamma
        return x + self.mlp(self.norm2(x)) * self.ls2.gamma


class Rope3d(nn.Module):
    def __init__(self, head_dim):
        super().__init__()
        self.register_buffer("periods", torch.zeros(head_dim // 6))


class RopeVit(nn.Module):
    """CLS + pre-norm blocks with 3D RoPE on the grid's tokens + final LayerNorm."""

    def __init__(self, E, v):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, E))
        self.rope = Rope3d(E // v["heads"])
        self.blocks = nn.ModuleList([Block(E, v["heads"], v["mlpRatio"], v["layerScale"]) for _ in range(v["depth"])])
        self.norm = nn.LayerNorm(E, eps=1e-6)
        self.tables = {}

    def encode(self, tokens, grid, divs=None):
        key = (tuple(grid), tuple(divs or grid))
        if key not in self.tables:
            self.tables[key] = rope3d_tables(self.rope.periods, grid, divs or grid)
        cos, sin = self.tables[key]
        B, _, E = tokens.shape
        h = torch.cat([self.cls_token.expand(B, 1, E), tokens], 1)
        for blk in self.blocks:
            h = blk(h, cos, sin)
        return self.norm(h)


class PatchProj(nn.Module):
    """Conv3d(1, E, kernel = stride = patch): the weight keeps the Conv3d's shape (E, 1, p0, p1, p2)."""

    def __init__(self, E, patch):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(E, 1, *patch))
        self.bias = nn.Parameter(torch.zeros(E))


class PatchEmbed(nn.Module):
    def __init__(self, E, patch, hist_bins=0):
        super().__init__()
        self.proj = PatchProj(E, patch)
        # vision.patchHistogram (ours, not RadFinder's): the centres come with the weights, in
        # the crop's 0..1 units.
        if hist_bins:
            self.register_buffer("hist_centres", torch.zeros(hist_bins))
            self.hist_proj = nn.Linear(hist_bins, E)


def patch_histogram(x, c, rows_per_block=16):
    """x [..., P] a patch's voxels, c [K] ascending -> [..., K]: K times the mean over the patch of
    each voxel's linear-interpolation weight on each centre (kernels/patchhist.wgsl): a value in
    [c_j, c_j+1) gives 1 - t to bin j and t to bin j + 1; values beyond the ends go to the end bins.
    The kernel's branch-free form, w_k(v) = clamp(min(1 + (v - c_k) aL_k, 1 + (c_k - v) aR_k), 0, 1),
    over blocks of rows small enough for the [rows, P, K] weights to stay in cache: the
    searchsorted + gather + scatter_add_ form took 0.9 s a step at 1 thread, this one 0.12 s."""
    K = c.numel()
    d = c[1:] - c[:-1]
    zero = torch.zeros(1, dtype=x.dtype, device=x.device)
    aL, aR = torch.cat([zero, 1 / d]), torch.cat([1 / d, zero])
    rows = x.reshape(-1, x.shape[-1])
    out = torch.empty(rows.shape[0], K, dtype=x.dtype, device=x.device)
    for i in range(0, rows.shape[0], rows_per_block):
        u = rows[i:i + rows_per_block].unsqueeze(-1) - c
        out[i:i + rows_per_block] = torch.minimum(1 + u * aL, 1 - u * aR).clamp_(0, 1).sum(1)
    return (out * (K / x.shape[-1])).reshape(*x.shape[:-1], K)


class WindowBackbone(RopeVit):
    def __init__(self, vis):
        super().__init__(vis["backbone"]["embedDim"], vis["backbone"])
        self.patch = vis["patch"]
        self.window = vis["window"]
        self.patch_embed = PatchEmbed(vis["backbone"]["embedDim"], self.patch, len(vis.get("patchHistogram") or []))

    def token_grid(self):
        return [w // p for w, p in zip(self.window, self.patch)]

    def forward(self, crop):
        """crop [B, 1, X, Y, Z] -> [B * windows, 1 + T, E]; windows (ih, iw, id), tokens (ph, pw, pd),
        each fastest last (the Conv3d as one matmul over non-overlapping patches)."""
        B, _, X, Y, Z = crop.shape
        (p0, p1, p2), (t0, t1, t2) = self.patch, self.token_grid()
        g0, g1, g2 = X // self.window[0], Y // self.window[1], Z // self.window[2]
        x = crop.reshape(B, g0, t0, p0, g1, t1, p1, g2, t2, p2).permute(0, 1, 4, 7, 2, 5, 8, 3, 6, 9)
        x = x.reshape(B * g0 * g1 * g2, t0 * t1 * t2, p0 * p1 * p2)
        w = self.patch_embed.proj
        tokens = F.linear(x, w.weight.reshape(w.weight.shape[0], -1), w.bias)
        if hasattr(self.patch_embed, "hist_proj"):
            with torch.no_grad():
                h = patch_histogram(x, self.patch_embed.hist_centres)
            tokens = tokens + self.patch_embed.hist_proj(h)
        return self.encode(tokens, (t0, t1, t2))


class FeatureCombiner(RopeVit):
    def __init__(self, vis):
        E = vis["backbone"]["embedDim"]
        super().__init__(E, vis["combiner"])
        self.patch_proj = nn.Linear(2 * E, E)
        self.axis_patch_proj = nn.Linear(E, E)


class WeightNormLinear(nn.Module):
    """W[o] = g[o] v[o] / |v[o]| (g frozen, as RadFinder's head), no bias."""

    def __init__(self, i, o):
        super().__init__()
        self.register_buffer("g", torch.ones(o, 1))
        self.v = nn.Parameter(torch.zeros(o, i))

    def forward(self, x):
        return F.linear(x, self.g * self.v / self.v.norm(dim=1, keepdim=True))


class ProjectionHead(nn.Module):
    def __init__(self, i, hs):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(i, hs["hidden"]), nn.GELU(), nn.Linear(hs["hidden"], hs["hidden"]), nn.GELU(),
                                     nn.Linear(hs["hidden"], hs["bottleneck"])])
        self.last_layer = WeightNormLinear(hs["bottleneck"], hs["out"])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.last_layer(x)


# ---------------------------------------------------------------------------------- text (Qwen3)
class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Qwen3Attention(nn.Module):
    def __init__(self, t):
        super().__init__()
        H, self.nh, self.nkv, self.hd = t["hiddenSize"], t["numAttentionHeads"], t["numKeyValueHeads"], t["headDim"]
        self.q_proj = nn.Linear(H, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, H, bias=False)
        self.q_norm = RMSNorm(self.hd, t["rmsNormEps"])
        self.k_norm = RMSNorm(self.hd, t["rmsNormEps"])

    def forward(self, x, allowed, cos, sin):
        B, L, _ = x.shape
        q = rotate(self.q_norm(self.q_proj(x).view(B, L, self.nh, self.hd)), cos, sin).transpose(1, 2)
        k = rotate(self.k_norm(self.k_proj(x).view(B, L, self.nkv, self.hd)), cos, sin).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.nkv, self.hd).transpose(1, 2)
        rep = self.nh // self.nkv  # query head j reads kv head j // rep
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        s = ((q @ k.transpose(-1, -2)) * self.hd ** -0.5).masked_fill(~allowed, float("-inf"))
        return self.o_proj((torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, L, self.nh * self.hd))


class Qwen3MLP(nn.Module):
    def __init__(self, t):
        super().__init__()
        H, I = t["hiddenSize"], t["intermediateSize"]
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen3DecoderLayer(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.input_layernorm = RMSNorm(t["hiddenSize"], t["rmsNormEps"])
        self.self_attn = Qwen3Attention(t)
        self.post_attention_layernorm = RMSNorm(t["hiddenSize"], t["rmsNormEps"])
        self.mlp = Qwen3MLP(t)

    def forward(self, h, allowed, cos, sin):
        h = h + self.self_attn(self.input_layernorm(h), allowed, cos, sin)
        return h + self.mlp(self.post_attention_layernorm(h))


class Qwen3Model(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t
        self.embed_tokens = nn.Embedding(t["vocabSize"], t["hiddenSize"])
        self.layers = nn.ModuleList([Qwen3DecoderLayer(t) for _ in range(t["numHiddenLayers"])])
        self.norm = RMSNorm(t["hiddenSize"], t["rmsNormEps"])
        self.tables = {}  # (L, device) -> (cos, sin): built once, not in every timed step

    def forward(self, ids, mask, lengths):
        """ids [B, L] right-padded, mask [B, L] (1 = token) -> the final-norm state of each row's
        last token [B, hidden]. Keys: causal and not padding."""
        B, L = ids.shape
        key = (L, ids.device)
        if key not in self.tables:
            self.tables[key] = tuple(x.to(ids.device) for x in rope1d_tables(L, self.t["headDim"], self.t["ropeTheta"]))
        cos, sin = self.tables[key]
        allowed = torch.ones(L, L, dtype=torch.bool, device=ids.device).tril()[None, None] & (mask > 0)[:, None, None, :]
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, allowed, cos, sin)
        h = self.norm(h)
        return h[torch.arange(B, device=h.device), lengths - 1]


# ---------------------------------------------------------------------------------- model + loss
def l2n(x, eps=1e-12):
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps * eps)


class Criterion(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))


class RadFinder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        vis, hs = cfg["vision"], cfg["head"]
        E = vis["backbone"]["embedDim"]
        self.backbone_image = WindowBackbone(vis)
        self.feature_comb_image = FeatureCombiner(vis)
        self.projection_image = ProjectionHead(2 * E, hs)
        self.projection_image_copy = ProjectionHead(2 * E, hs)
        self.projection_text = ProjectionHead(cfg["text"]["hiddenSize"], hs)
        self.projection_text_copy = ProjectionHead(cfg["text"]["hiddenSize"], hs)
        self.backbone_text = Qwen3Model(cfg["text"])
        self.criterion = Criterion()
        # vision.featureNorm 'batch' (ours, not RadFinder's): BatchNorm1d without affine before the image heads.
        if vis.get("featureNorm") == "batch":
            self.image_feature_norm = nn.BatchNorm1d(2 * E, affine=False)
            self.depth_feature_norm = nn.BatchNorm1d(2 * E, affine=False)

    def encode_image(self, crop):
        """[B, 1, X, Y, Z] -> pooled [B, 2E] and per depth bin [B, D2, 2E] (every window valid)."""
        bb, cb = self.backbone_image, self.feature_comb_image
        B, _, X, Y, Z = crop.shape
        grid = [X // bb.window[0], Y // bb.window[1], Z // bb.window[2]]
        nwin = grid[0] * grid[1] * grid[2]
        t0, t1, t2 = bb.token_grid()
        h = bb(crop)
        E = h.shape[-1]
        patches = h[:, 1:]
        win = torch.cat([h[:, 0].reshape(B, nwin, E), patches.mean(1).reshape(B, nwin, E)], 2)
        g = cb.encode(cb.patch_proj(win), grid)
        pooled = torch.cat([g[:, 0], g[:, 1:].mean(1)], 1)
        rows = patches.reshape(B * nwin, t0 * t1, t2, E).mean(1)  # depth rows: d2 = id * t2 + pd
        D2 = grid[2] * t2
        a = cb.encode(cb.axis_patch_proj(rows.reshape(B, nwin * t2, E)), [grid[0], grid[1], D2], grid)
        per_depth = a[:, 1:].reshape(B, grid[0] * grid[1], D2, E).mean(1)
        depth = torch.cat([a[:, :1].expand(B, D2, E), per_depth], 2)
        if hasattr(self, "image_feature_norm"):
            pooled = self.image_feature_norm(pooled)
            depth = self.depth_feature_norm(depth.reshape(B * D2, 2 * E)).reshape(B, D2, 2 * E)
        return pooled, depth

    def text(self, head, tb):
        return head(self.backbone_text(tb["ids"], tb["mask"], tb["lengths"]))

    def loss(self, b):
        cfg = self.cfg
        pooled, depth = self.encode_image(b["volume"])
        t, bias = self.criterion.t, self.criterion.b
        # SigLIP over the batch, rows and columns of empty reports masked, mean over valid rows.
        img = l2n(self.projection_image(pooled))
        rep = l2n(self.text(self.projection_text, b["report"]))
        v = b["reportValid"]
        z = 2 * torch.eye(img.shape[0], device=img.device) - 1
        rows = (v[:, None] * v[None, :] * F.softplus(-z * (t.exp() * (img @ rep.T) + bias))).sum(1)
        siglip = rows.sum() / v.sum().clamp(min=1)
        # Disease prompts: BCE with pos_weight on exp(t) (cos(img, pos) - cos(img, neg)), unknown labels masked.
        Q = b["labels"].shape[1]
        pr = l2n(self.text(self.projection_text, b["prompts"]))
        x = (l2n(self.projection_image_copy(pooled)) @ (pr[:Q] - pr[Q:]).T) * t.exp()
        y = b["labels"]
        known = y >= 0
        per = torch.where(known, b["posWeight"] * y * F.softplus(-x) + (1 - y) * F.softplus(x), x.new_zeros(()))
        prompts = per.sum() / known.sum().clamp(min=1)
        total = siglip + cfg["promptWeight"] * prompts
        # Localization: soft cross-entropy of the masked softmax over depth bins against RadFinder's
        # Gaussian target (radius max(floor(3 sigma + 0.5), 1), normalised over every bin).
        loc = cfg["localization"]
        if "snippets" in b and loc["weight"] > 0:
            sn = b["snippets"]
            dn = l2n(self.projection_image_copy(depth))[sn["case"]]  # [S, D2, out]
            s = l2n(self.text(self.projection_text_copy, sn["text"]))
            scores = (dn @ s[:, :, None])[..., 0] * (1 / loc["tau"])
            valid = sn["validBins"] > 0
            D = scores.shape[1]
            d = torch.arange(D, dtype=torch.float32, device=scores.device)[None, :] - sn["target"][:, None].float()
            sigma = loc["sigma"]
            q = torch.where(d.abs() <= max(math.floor(3 * sigma + 0.5), 1), torch.exp(-d * d / (2 * sigma * sigma)), d.new_zeros(()))
            q = q / q.sum(1, keepdim=True)
            logp = torch.log_softmax(scores.masked_fill(~valid, float("-inf")), 1)
            ce = -torch.where(valid, q * logp, q.new_zeros(())).sum(1)
            total = total + loc["weight"] * ce.mean()
        return total


# ---------------------------------------------------------------------------------- driver
def file_key(name):
    """Our module's name for a key of the file (the release's names)."""
    k = name[len("model."):] if name.startswith("model.") else name
    return k.replace("last_layer.parametrizations.weight.original0", "last_layer.g").replace(
        "last_layer.parametrizations.weight.original1", "last_layer.v")


def load_batch(path, lengths):
    raw = read_safetensors(path)

    def text(prefix):
        return {"ids": raw[prefix + ".ids"].long(), "mask": raw[prefix + ".mask"],
                "lengths": torch.tensor(lengths[prefix], dtype=torch.long)}

    b = {"volume": raw["volume"], "report": text("report"), "reportValid": raw["reportValid"], "labels": raw["labels"],
         "prompts": text("prompts"), "posWeight": raw["posWeight"]}
    if "snippet.case" in raw:
        b["snippets"] = {"text": text("snippets"), "case": raw["snippet.case"].long(), "target": raw["snippet.target"].long(),
                         "validBins": raw["snippet.validBins"]}
    return b


def to_device(x, dev):
    if isinstance(x, dict):
        return {k: to_device(v, dev) for k, v in x.items()}
    return x.to(dev) if isinstance(x, torch.Tensor) else x


class Peer:
    def __init__(self, folder, device="cpu"):
        self.device = torch.device(device)
        with open(os.path.join(folder, "peer.json")) as f:
            spec = json.load(f)
        self.model = RadFinder(spec["model"])
        weights = {file_key(k): v for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
        # PyTorch's BatchNorm keeps a step counter (num_batches_tracked) that our checkpoints do not.
        mine = {k: v for k, v in self.model.state_dict().items() if not k.endswith("num_batches_tracked")}
        missing = sorted(set(mine) - set(weights))
        extra = sorted(set(weights) - set(mine))
        if missing or extra:
            raise ValueError(f"weights do not match the model: missing {missing[:4]}, unexpected {extra[:4]}")
        for k, v in weights.items():
            if tuple(v.shape) != tuple(mine[k].shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)} in the file, {tuple(mine[k].shape)} here")
        unloaded = self.model.load_state_dict(weights, strict=False)
        if unloaded.unexpected_keys or any(not k.endswith("num_batches_tracked") for k in unloaded.missing_keys):
            raise ValueError(f"weights do not load: {unloaded}")
        self.model.to(self.device)
        self.batch = to_device(load_batch(os.path.join(folder, "batch.safetensors"), spec["lengths"]), self.device)
        # Parameter groups by our parameter names: lr scale and weight decay per parameter.
        named = dict(self.model.named_parameters())
        groups = {}
        for name, g in spec["groups"].items():
            k = file_key(name)
            if k not in named:
                raise ValueError(f"group for {name}: no such parameter here")
            groups.setdefault((g["lrScale"], g["weightDecay"]), []).append(named.pop(k))
        if named:
            raise ValueError(f"parameters without a group: {sorted(named)[:4]}")
        o = spec["optim"]
        self.params = [p for ps in groups.values() for p in ps]
        self.clip = o["clipNorm"]
        self.opt = torch.optim.AdamW([{"params": ps, "lr": o["lr"] * s, "weight_decay": wd} for (s, wd), ps in groups.items()],
                                     lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], foreach=True)
        self.count = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def step(self):
        loss = self.model.loss(self.batch)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip) if self.clip > 0 else None
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return loss, norm


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float32)
    device = args[args.index("--device") + 1] if "--device" in args else "cpu"
    # Our kernels multiply in float32; TF32 would round the operands to 10 mantissa bits.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: torch.cuda.is_available() is False")
        peer = Peer(args[0], device)
    except Exception as e:  # noqa: BLE001 (reported to the bench as one line)
        say({"error": f"{type(e).__name__}: {e}"})
        sys.exit(1)
    say({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "params": peer.count,
         "device": torch.cuda.get_device_name(peer.device) if peer.device.type == "cuda" else "cpu"})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "check":
            l1, n1 = peer.step()
            l2, _ = peer.step()
            say({"loss1": float(l1), "gradNorm1": float(n1) if n1 is not None else None, "loss2": float(l2)})
        elif cmd[0] == "steps":
            ms = []
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                peer.step()
                ms.append((time.perf_counter() - t0) * 1e3)
            say({"ms": ms})
        elif cmd[0] == "threads":
            torch.set_num_threads(int(cmd[1]))
            say({"threads": torch.get_num_threads()})
        elif cmd[0] == "quit":
            break
        else:
            say({"error": f"unknown command {cmd[0]!r}"})
            sys.exit(1)


if __name__ == "__main__":
    main()
