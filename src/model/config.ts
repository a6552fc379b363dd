// The model's configuration, and its translation to and from the config.json of a RadFinder
// weights folder (the release's RadFinderConfig: radfinder_model_config with the model YAML's
// keys, image_preprocessing, do_snippet_alignment; reduced sizes add text_config and the
// head sizes, RADFINDER-MODEL.md section 8). Browser-safe.
import { DataError } from '../errors.ts';
import { QWEN3_EMBEDDING_0_6B, type Qwen3Config } from './qwen3.ts';
import type { VisionConfig, Vec3i } from './vision.ts';

export interface Preprocessing {
  /** Target voxel size in mm (x, y, z) after RAS reorientation (RadFinder: 0.75, 0.75, 3). */
  pixdim: [number, number, number];
  /** HU window mapped to [0, 1] and clipped (intensity_a_min / a_max: -1000, 1000). */
  huMin: number;
  huMax: number;
  /** Resampled values rounded to this precision (RadFinder: float16). */
  dtype: 'float16' | 'float32';
}

export interface LocalizationConfig {
  /** Gaussian target width in bins (2). */
  sigma: number;
  /** Softmax temperature over cosine scores (0.1). */
  tau: number;
  /** Weight of the localization loss in the objective (RadFinder: 0.004). */
  weight: number;
  /** How the target is built (see src/losses/localization.ts): RadFinder's by default. */
  target: 'radfinder' | 'renormalized';
  /** Weight of the expected-depth L1 term (mm); 0 for none (RadFinder has none). */
  l1Weight: number;
}

export interface RadFinderConfig {
  vision: VisionConfig;
  text: Qwen3Config;
  head: { hidden: number; bottleneck: number; out: number };
  preprocessing: Preprocessing;
  localization: LocalizationConfig;
  /** Weight of the disease-prompt loss (0.5). */
  promptWeight: number;
  /** Weight of the disease-prompt loss applied to the report embeddings as well (0 or absent:
   * RadFinder has none; see README "Learning"). */
  reportPromptWeight?: number;
  /** SigLIP's initial t (log of the logit scale) and b. */
  siglipInit: { t: number; b: number };
}

/** Depth of one bin in mm: patch depth times the z voxel size (4 x 3 = 12 mm). */
export function binMm(cfg: RadFinderConfig): number {
  return cfg.vision.patch[2] * cfg.preprocessing.pixdim[2];
}

/** The released model's sizes (RADFINDER-MODEL.md sections 2-3). */
export function paperConfig(): RadFinderConfig {
  return {
    vision: {
      backbone: { embedDim: 1080, depth: 24, heads: 12, mlpRatio: 4, ropeBase: 1000, layerScale: 1 },
      combiner: { depth: 4, heads: 12, mlpRatio: 4, ropeBase: 100, layerScale: 1 },
      patch: [16, 16, 4],
      window: [128, 128, 32],
    },
    text: { ...QWEN3_EMBEDDING_0_6B },
    head: { hidden: 2048, bottleneck: 256, out: 512 },
    preprocessing: { pixdim: [0.75, 0.75, 3], huMin: -1000, huMax: 1000, dtype: 'float16' },
    localization: { sigma: 2, tau: 0.1, weight: 0.004, target: 'radfinder', l1Weight: 0 },
    promptWeight: 0.5,
    siglipInit: { t: Math.log(10), b: -10 },
  };
}

type Json = Record<string, unknown>;

function num(src: string, obj: Json, key: string, fallback?: number): number {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new DataError(src, key, 'missing');
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(src, key, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function vec3(src: string, obj: Json, key: string, fallback: Vec3i | [number, number, number]): [number, number, number] {
  const v = obj[key];
  if (v === undefined || v === null) return [...fallback] as [number, number, number];
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !(x > 0)))
    throw new DataError(src, key, `expected three positive numbers, got ${JSON.stringify(v)}`);
  return v as [number, number, number];
}

// A vector the release's config.json states twice (backbone_kwargs and image_preprocessing):
// either copy, and two that differ refused (one would silently win: the grid from one, the
// window from the other).
function agreed(srcA: string, a: Json, srcB: string, b: Json, key: string, fallback: Vec3i | [number, number, number]): [number, number, number] {
  const va = vec3(srcA, a, key, fallback);
  const vb = vec3(srcB, b, key, fallback);
  const given = (o: Json) => o[key] !== undefined && o[key] !== null;
  if (given(a) && given(b) && va.some((x, i) => x !== vb[i]))
    throw new DataError(srcA, key, `[${va.join(', ')}] differs from ${srcB}.${key} [${vb.join(', ')}]: the two copies must agree`);
  return given(a) ? va : vb;
}

function obj(src: string, o: Json, key: string): Json {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new DataError(src, key, `expected an object, got ${JSON.stringify(v)}`);
  return v as Json;
}

/**
 * What a config.json leaves to the release's values, as a note for a mismatch between the
 * weights and the model built from it ('' when it states the model's sizes): a reduced model's
 * folder needs radfinder_model_config and text_config (RADFINDER-MODEL.md, section 8).
 */
export function configAssumptions(json: unknown, src = 'config.json'): string {
  const root = (json && typeof json === 'object' ? json : {}) as Json;
  const absent = ['radfinder_model_config', 'text_config'].filter((k) => root[k] === undefined || root[k] === null);
  return absent.length ? `${src} states no ${absent.join(' and no ')}, so the released model's sizes were assumed` : '';
}

/**
 * Reads a RadFinder config.json (the release's layout). Fields a reduced model must state are
 * read where present; absent ones take the release's values. Throws a DataError naming the
 * file and the field for anything malformed or unsupported.
 */
export function fromRadfinderJson(json: unknown, src = 'config.json'): RadFinderConfig {
  if (!json || typeof json !== 'object') throw new DataError(src, 'config', 'not a JSON object');
  const root = json as Json;
  if (root.model_type !== undefined && root.model_type !== 'radfinder')
    throw new DataError(src, 'model_type', `'${root.model_type}' is not a RadFinder model ('radfinder')`);
  const paper = paperConfig();
  const m = obj(src, root, 'radfinder_model_config');
  const bk = obj(`${src} radfinder_model_config`, m, 'backbone_kwargs');
  const ck = obj(`${src} radfinder_model_config`, m, 'feature_combiner_kwargs');
  const ip = obj(src, root, 'image_preprocessing');
  const sa = obj(src, root, 'do_snippet_alignment');
  const tc = root.text_config === undefined || root.text_config === null ? null : obj(src, root, 'text_config');
  const msrc = `${src} radfinder_model_config`;
  const bsrc = `${msrc}.backbone_kwargs`;

  const E = num(bsrc, bk, 'embed_dim', num(msrc, m, 'image_backbone_embed_dim', paper.vision.backbone.embedDim));
  const halfPatch = bk.half_patch_embed === undefined ? true : !!bk.half_patch_embed;
  const rawPatch = vec3(bsrc, bk, 'patch_size', [16, 16, 8]);
  // The release folds SPECTRE's 16x16x8 kernel to 16x16x4 (half_patch_embed: true).
  const patch: Vec3i = halfPatch ? [rawPatch[0], rawPatch[1], rawPatch[2] / 2] : rawPatch;
  if (!Number.isInteger(patch[2])) throw new DataError(bsrc, 'patch_size', `depth ${rawPatch[2]} cannot be halved (half_patch_embed)`);
  const window = agreed(bsrc, bk, `${src} image_preprocessing`, ip, 'sliding_window_size', paper.vision.window) as Vec3i;
  const heads = num(bsrc, bk, 'num_heads', paper.vision.backbone.heads);
  const combE = num(msrc, m, 'feature_comb_embed_dim', E);
  if (combE !== E) throw new DataError(msrc, 'feature_comb_embed_dim', `${combE} differs from the backbone width ${E} (axis_patch_proj maps E -> E; RadFinder requires them equal)`);
  const combHeads = num(msrc, m, 'feature_comb_num_heads', paper.vision.combiner.heads);
  for (const [h, where] of [[heads, 'backbone_kwargs.num_heads'], [combHeads, 'feature_comb_num_heads']] as const)
    if (E % h || (E / h) % 6) throw new DataError(msrc, where, `${E} / ${h} heads = ${E / h} is not a head width divisible by 6 (3D RoPE)`);
  const rope = (o: Json, fallback: number) => num(`${src} rope_kwargs`, obj(src, o, 'rope_kwargs'), 'base', fallback);
  const text: Qwen3Config = tc
    ? {
        hiddenSize: num(`${src} text_config`, tc, 'hidden_size'),
        numHiddenLayers: num(`${src} text_config`, tc, 'num_hidden_layers'),
        numAttentionHeads: num(`${src} text_config`, tc, 'num_attention_heads'),
        numKeyValueHeads: num(`${src} text_config`, tc, 'num_key_value_heads'),
        headDim: num(`${src} text_config`, tc, 'head_dim', num(`${src} text_config`, tc, 'hidden_size') / num(`${src} text_config`, tc, 'num_attention_heads')),
        intermediateSize: num(`${src} text_config`, tc, 'intermediate_size'),
        vocabSize: num(`${src} text_config`, tc, 'vocab_size'),
        rmsNormEps: num(`${src} text_config`, tc, 'rms_norm_eps', 1e-6),
        ropeTheta: num(`${src} text_config`, tc, 'rope_theta', 1e6),
        eosTokenId: num(`${src} text_config`, tc, 'eos_token_id'),
      }
    : { ...paper.text };
  if (text.numAttentionHeads % text.numKeyValueHeads)
    throw new DataError(`${src} text_config`, 'num_key_value_heads', `${text.numAttentionHeads} query heads are not a multiple of ${text.numKeyValueHeads}`);
  if (text.headDim % 2) throw new DataError(`${src} text_config`, 'head_dim', `${text.headDim} is odd (RoPE rotates pairs)`);
  const textHidden = num(msrc, m, 'text_hidden_size', text.hiddenSize);
  if (textHidden !== text.hiddenSize) throw new DataError(msrc, 'text_hidden_size', `${textHidden} differs from text_config.hidden_size ${text.hiddenSize}`);
  if (m.feature_norm !== undefined && m.feature_norm !== null && m.feature_norm !== 'batch')
    throw new DataError(msrc, 'feature_norm', `'${m.feature_norm}' is not 'batch' (or absent, as in RadFinder's release)`);
  const hist = m.patch_histogram_hu;
  if (hist !== undefined && hist !== null) {
    if (!Array.isArray(hist) || hist.length < 2 || hist.length > 32 || hist.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
      throw new DataError(msrc, 'patch_histogram_hu', `expected 2 to 32 finite numbers (bin centres in HU), got ${JSON.stringify(hist)}`);
    for (let i = 1; i < hist.length; i++)
      if (!(hist[i] > hist[i - 1])) throw new DataError(msrc, 'patch_histogram_hu', `centres must be strictly ascending (${hist[i]} follows ${hist[i - 1]})`);
  }
  const dtype = ip.dtype ?? 'float16';
  if (dtype !== 'float16' && dtype !== 'float32') throw new DataError(`${src} image_preprocessing`, 'dtype', `'${dtype}' is not float16 or float32`);
  // The model built here is the release's: reoriented to RAS (depth bins count up from the most
  // inferior slice), with the snippet-alignment modules (copy heads, axis_patch_proj, physical
  // RoPE). A configuration that states otherwise describes another model: refused by name.
  // (A field that is null counts as absent, as everywhere in this reader.)
  const axcodes = ip.orientation_axcodes ?? 'RAS';
  if (axcodes !== 'RAS')
    throw new DataError(`${src} image_preprocessing`, 'orientation_axcodes', `'${axcodes}' is not supported: volumes are reoriented to RAS, as in RadFinder's release`);
  // HU are scaled to [b_min, b_max] = [0, 1] (the patch histogram and the padding value assume
  // it), and a scan shorter than a window is padded to one (min_area_for_padding 0, which the
  // release states in backbone_kwargs too).
  const fixed: [string, Json, string, number][] = [
    [`${src} image_preprocessing`, ip, 'intensity_b_min', 0],
    [`${src} image_preprocessing`, ip, 'intensity_b_max', 1],
    [`${src} image_preprocessing`, ip, 'min_area_for_padding', 0],
    [bsrc, bk, 'min_area_for_padding', 0],
  ];
  for (const [where, o, k, v] of fixed)
    if (o[k] != null && o[k] !== v) throw new DataError(where, k, `${JSON.stringify(o[k])} is not supported: the release's ${v} is what the preprocessing here does`);
  // RADFINDER-MODEL.md 7.1: the release's values as its example code requires them.
  const expected: Record<string, unknown> = { enabled: true, projector_mode_image: 'copy', projector_mode_text: 'copy', snippet_mode: 'axis_localization', rope_mode: 'physical' };
  for (const [k, v] of Object.entries(expected))
    if (sa[k] != null && sa[k] !== v)
      throw new DataError(`${src} do_snippet_alignment`, k, `${JSON.stringify(sa[k])} is not supported: the model here is the release's (${JSON.stringify(v)})`);
  const target = sa.localization_target ?? 'radfinder';
  if (target !== 'radfinder' && target !== 'renormalized') throw new DataError(`${src} do_snippet_alignment`, 'localization_target', `'${target}' is not radfinder or renormalized`);
  return {
    vision: {
      backbone: {
        embedDim: E,
        depth: num(bsrc, bk, 'depth', paper.vision.backbone.depth),
        heads,
        mlpRatio: num(bsrc, bk, 'mlp_ratio', 4),
        ropeBase: rope(bk, paper.vision.backbone.ropeBase),
        layerScale: num(bsrc, bk, 'init_values', 1),
      },
      combiner: {
        depth: num(msrc, m, 'feature_comb_num_layers', paper.vision.combiner.depth),
        heads: combHeads,
        mlpRatio: num(`${msrc}.feature_combiner_kwargs`, ck, 'mlp_ratio', 4),
        ropeBase: rope(ck, paper.vision.combiner.ropeBase),
        layerScale: num(`${msrc}.feature_combiner_kwargs`, ck, 'init_values', 1),
      },
      patch,
      window,
      ...(m.feature_norm === 'batch' ? { featureNorm: 'batch' as const } : {}),
      ...(Array.isArray(hist) ? { patchHistogram: [...(hist as number[])] } : {}),
    },
    text,
    head: {
      hidden: num(msrc, m, 'head_hidden_dim', 2048),
      bottleneck: num(msrc, m, 'head_bottleneck_dim', 256),
      out: num(msrc, m, 'projection_dim', 512),
    },
    preprocessing: {
      pixdim: agreed(bsrc, bk, `${src} image_preprocessing`, ip, 'pixdim', paper.preprocessing.pixdim),
      huMin: num(`${src} image_preprocessing`, ip, 'intensity_a_min', -1000),
      huMax: num(`${src} image_preprocessing`, ip, 'intensity_a_max', 1000),
      dtype,
    },
    localization: {
      sigma: num(`${src} do_snippet_alignment`, sa, 'localization_sigma', 2),
      tau: num(`${src} do_snippet_alignment`, sa, 'localization_tau', 0.1),
      weight: num(`${src} do_snippet_alignment`, sa, 'localization_weight', 0.004),
      target,
      l1Weight: num(`${src} do_snippet_alignment`, sa, 'localization_l1_weight', 0),
    },
    promptWeight: num(msrc, m, 'prompt_loss_weight', 0.5),
    ...(m.report_prompt_loss_weight === undefined ? {} : { reportPromptWeight: num(msrc, m, 'report_prompt_loss_weight') }),
    siglipInit: { t: num(msrc, m, 'siglip_init_t', Math.log(10)), b: num(msrc, m, 'siglip_init_b', -10) },
  };
}

/**
 * A config.json in the release's layout (reduced sizes stated as section 8 asks), which
 * fromRadfinderJson reads back to the same configuration. Our own fields (prompt weight,
 * report-side prompt weight, localization target and L1 term, SigLIP's
 * initial values) sit beside RadFinder's.
 */
export function toRadfinderJson(cfg: RadFinderConfig, opts: { name?: string; maxTextTokens?: number } = {}): Json {
  const v = cfg.vision;
  const t = cfg.text;
  return {
    model_type: 'radfinder',
    architectures: ['RadFinderModel'],
    torch_dtype: 'float32',
    radfinder_model_config: {
      model_name: opts.name ?? 'ctvlm',
      text_backbone_kwargs: { tokenizer_max_length: opts.maxTextTokens ?? 4096 },
      feature_comb_embed_dim: v.backbone.embedDim,
      feature_comb_num_layers: v.combiner.depth,
      feature_comb_num_heads: v.combiner.heads,
      projection_dim: cfg.head.out,
      text_hidden_size: t.hiddenSize,
      image_backbone_embed_dim: v.backbone.embedDim,
      backbone_kwargs: {
        sliding_window_size: v.window,
        pixdim: cfg.preprocessing.pixdim,
        patch_size: v.patch,
        half_patch_embed: false,
        embed_dim: v.backbone.embedDim,
        depth: v.backbone.depth,
        num_heads: v.backbone.heads,
        mlp_ratio: v.backbone.mlpRatio,
        qkv_bias: true,
        num_classes: 0,
        global_pool: '',
        pos_embed: 'rope',
        rope_kwargs: { base: v.backbone.ropeBase },
        init_values: v.backbone.layerScale,
      },
      feature_combiner_kwargs: { num_classes: 0, global_pool: '', pos_embed: 'rope', rope_kwargs: { base: v.combiner.ropeBase }, init_values: v.combiner.layerScale, mlp_ratio: v.combiner.mlpRatio },
      head_hidden_dim: cfg.head.hidden,
      head_bottleneck_dim: cfg.head.bottleneck,
      prompt_loss_weight: cfg.promptWeight,
      ...(cfg.reportPromptWeight ? { report_prompt_loss_weight: cfg.reportPromptWeight } : {}),
      siglip_init_t: cfg.siglipInit.t,
      siglip_init_b: cfg.siglipInit.b,
      ...(v.featureNorm ? { feature_norm: v.featureNorm } : {}),
      ...(v.patchHistogram ? { patch_histogram_hu: v.patchHistogram } : {}),
    },
    image_preprocessing: {
      pixdim: cfg.preprocessing.pixdim,
      sliding_window_size: v.window,
      intensity_a_min: cfg.preprocessing.huMin,
      intensity_a_max: cfg.preprocessing.huMax,
      intensity_b_min: 0,
      intensity_b_max: 1,
      orientation_axcodes: 'RAS',
      min_area_for_padding: 0,
      dtype: cfg.preprocessing.dtype,
    },
    do_snippet_alignment: {
      enabled: true,
      projector_mode_image: 'copy',
      projector_mode_text: 'copy',
      snippet_mode: 'axis_localization',
      rope_mode: 'physical',
      localization_sigma: cfg.localization.sigma,
      localization_tau: cfg.localization.tau,
      localization_weight: cfg.localization.weight,
      localization_target: cfg.localization.target,
      localization_l1_weight: cfg.localization.l1Weight,
    },
    model_settings: null,
    text_config: {
      hidden_size: t.hiddenSize,
      num_hidden_layers: t.numHiddenLayers,
      num_attention_heads: t.numAttentionHeads,
      num_key_value_heads: t.numKeyValueHeads,
      head_dim: t.headDim,
      intermediate_size: t.intermediateSize,
      vocab_size: t.vocabSize,
      rms_norm_eps: t.rmsNormEps,
      rope_theta: t.ropeTheta,
      max_position_embeddings: 32768,
      attention_bias: false,
      hidden_act: 'silu',
      eos_token_id: t.eosTokenId,
    },
  };
}
