"""Reads a RadFinder weights-folder config.json (release layout + this project's section-8 additions)."""
import json

# Released Qwen3-Embedding-0.6B shape, hard-coded in radfinder's load_model.create_text_backbone.
QWEN3_06B = dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                 head_dim=128, intermediate_size=3072, vocab_size=151669, rms_norm_eps=1e-6,
                 rope_theta=1000000.0, eos_token_id=151643)


def load_config(path):
    with open(path) as f:
        return json.load(f)


def dims(cfg: dict) -> dict:
    rmc = cfg["radfinder_model_config"]
    bk = rmc["backbone_kwargs"]
    fk = rmc.get("feature_combiner_kwargs", {})
    prep = cfg.get("image_preprocessing") or {}
    patch = list(bk.get("patch_size", [16, 16, 8]))
    if bk.get("half_patch_embed", False):
        patch = [patch[0], patch[1], patch[2] // 2]
    window = list(bk.get("sliding_window_size", prep.get("sliding_window_size", [128, 128, 32])))
    pwin = list(prep.get("sliding_window_size", window))
    if pwin != window:
        raise ValueError(f"image_preprocessing.sliding_window_size {pwin} != backbone window {window}")
    E = int(bk["embed_dim"])
    tc = dict(QWEN3_06B)
    tc.update({k: v for k, v in (cfg.get("text_config") or {}).items() if v is not None})
    d = dict(
        E=E,
        depth=int(bk["depth"]),
        heads=int(bk["num_heads"]),
        mlp=int(E * float(bk.get("mlp_ratio", 4.0))),
        patch=patch,
        window=window,
        tokens=[w // p for w, p in zip(window, patch)],
        rope_base=float((bk.get("rope_kwargs") or {}).get("base", 1000.0)),
        layerscale=bool(bk.get("init_values")),
        Ec=int(rmc["feature_comb_embed_dim"]),
        cdepth=int(rmc["feature_comb_num_layers"]),
        cheads=int(rmc["feature_comb_num_heads"]),
        cmlp=int(int(rmc["feature_comb_embed_dim"]) * 4),
        crope_base=float((fk.get("rope_kwargs") or {}).get("base", 100.0)),
        clayerscale=bool(fk.get("init_values")),
        backbone_out=int(rmc.get("image_backbone_embed_dim", E)),
        proj=int(rmc["projection_dim"]),
        head_hidden=int(rmc.get("head_hidden_dim", 2048)),
        head_bottleneck=int(rmc.get("head_bottleneck_dim", 256)),
        text_hidden=int(rmc.get("text_hidden_size", tc["hidden_size"])),
        text=tc,
        lora_r=int((rmc.get("text_backbone_kwargs") or {}).get("lora_r", 16)),
        use_lora=bool((rmc.get("text_backbone_kwargs") or {}).get("use_lora", True)),
        pixdim=[float(x) for x in prep.get("pixdim", bk.get("pixdim", [0.75, 0.75, 3.0]))],
        a_min=float(prep.get("intensity_a_min", -1000.0)),
        a_max=float(prep.get("intensity_a_max", 1000.0)),
        b_min=float(prep.get("intensity_b_min", 0.0)),
        b_max=float(prep.get("intensity_b_max", 1.0)),
        axcodes=prep.get("orientation_axcodes", "RAS"),
        min_area_for_padding=float(prep.get("min_area_for_padding", 0.0)),
        pix_dtype=prep.get("dtype", "float16"),
    )
    sa = cfg.get("do_snippet_alignment") or {}
    d["snippet"] = sa
    d["tau"] = float(sa.get("localization_tau", 0.1))
    d["physical"] = sa.get("rope_mode", "regular") == "physical"
    d["copy_image"] = sa.get("projector_mode_image", "same") == "copy"
    d["copy_text"] = sa.get("projector_mode_text", "same") == "copy"
    d["axis2_use_cls_input"] = bool(sa.get("axis2_use_cls_input", False))
    ms = cfg.get("model_settings") or {}
    d["global_res"] = ms.get("global_res", "low_res")
    # checks the released code makes (or that the design requires)
    assert E % d["heads"] == 0 and (E // d["heads"]) % 6 == 0, "backbone head_dim must be divisible by 6"
    assert d["Ec"] % d["cheads"] == 0 and (d["Ec"] // d["cheads"]) % 6 == 0, "combiner head_dim must be divisible by 6"
    assert all(w % p == 0 for w, p in zip(window, patch)), "window must be a multiple of the patch"
    assert d["backbone_out"] == E
    return d
