// RadFinder's vision encoder (RADFINDER-MODEL.md section 2): a ViT run on each window of the
// crop (backbone_image), then a "feature combiner" ViT over one token per window
// (feature_comb_image) for the scan's embedding, and the same combiner over per-depth rows of
// every window (the "axis2" path) for one embedding per 12 mm depth bin.
//
// Layout (RadFinder's, converted at the data boundary): a crop is [B, 1, X, Y, Z] with depth
// fastest (H = x toward the patient's right... after RAS: x = R, y = A, z = S); windows are
// ordered (ih, iw, id) with id fastest; a window's tokens (ph, pw, pd) with pd fastest.
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { Module, initNormal, initUniform, registerBuffer } from '../nn/module.ts';
import { LayerNorm, Linear } from '../nn/layers.ts';
import { TransformerBlock } from '../nn/transformer.ts';
import { ropeTablesFromAngles, type RopeTables } from '../ops/rope.ts';
import { rope3dAngles, rope3dPeriods } from './rope3d.ts';
import { concat, expand, reshape, slice } from '../ops/layout.ts';
import { mean } from '../ops/reduce.ts';
import { patchEmbed3d } from '../ops/patch3d.ts';
import { checkCentres, patchHistogram3d } from '../ops/patchhist.ts';
import { add } from '../ops/elementwise.ts';
import { tensor } from '../ops/creation.ts';

export type Vec3i = [number, number, number];

export interface VitConfig {
  /** Width E (RadFinder: 1080). */
  embedDim: number;
  /** Blocks (RadFinder: 24 in the window backbone). */
  depth: number;
  /** Heads; E / heads must be divisible by 6 (3D RoPE). */
  heads: number;
  mlpRatio: number;
  /** RoPE base (RadFinder: 1000 in the backbone, 100 in the combiner). */
  ropeBase: number;
  /** LayerScale init (RadFinder: 1.0). */
  layerScale: number;
}

export interface VisionConfig {
  backbone: VitConfig;
  /** The combiner's width is the backbone's (axis_patch_proj maps E -> E). */
  combiner: Omit<VitConfig, 'embedDim'>;
  /** Voxels per patch (x, y, z) (RadFinder: 16 x 16 x 4, one depth token = 12 mm). */
  patch: Vec3i;
  /** Voxels per window (x, y, z) (RadFinder: 128 x 128 x 32 = 96 mm cubes). */
  window: Vec3i;
  /**
   * Not RadFinder's (absent there): 'batch' standardises the pooled and the per-depth image
   * features by a BatchNorm1d without affine before the image projection heads. For models
   * trained from scratch on small data, where the pooled features of all scans share one
   * dominant direction (issue 7; README "Learning").
   */
  featureNorm?: 'batch';
  /**
   * Not RadFinder's (absent there): centres in HU (strictly ascending, 2 to 32) of a soft
   * intensity histogram of every patch (src/ops/patchhist.ts), projected by
   * patch_embed.hist_proj (Linear(K, E)) and added to the patch embedding token for token. The
   * model maps them to the crop's 0..1 with preprocessing.huMin / huMax (checkpoints store
   * them so, as patch_embed.hist_centres); centres outside that window see only clipped values. A linear patch embedding
   * of a 0..1 intensity sees soft tissues 20 HU apart as 0.01 apart; the histogram tells every
   * token which tissues it holds, in what share, from the first step (issue 7; README
   * "Learning" has the measurements).
   */
  patchHistogram?: number[];
}

/** A 3D-RoPE position module: the periods buffer of radfinder rotary_pos_embed.py and a table cache. */
export class Rope3d extends Module {
  readonly periods: Tensor;
  /** Host copy of the periods (tables are built on the host). */
  host: Float32Array;
  private cache = new Map<string, RopeTables>();
  constructor(
    readonly gpu: Gpu,
    readonly headDim: number,
    base: number,
  ) {
    super();
    this.host = rope3dPeriods(headDim, base);
    this.periods = registerBuffer(tensor(gpu, this.host, [this.host.length], 'rope.periods'));
  }
  /** Sets the periods (from a checkpoint). */
  setPeriods(p: Float32Array): void {
    if (p.length !== this.host.length) throw new ShapeError(`rope.periods: ${p.length} values, expected ${this.host.length}`);
    this.host = Float32Array.from(p);
    this.gpu.upload(this.periods.buffer, this.host);
    this.clear();
  }
  /** Tables for the tokens of a grid (not the prefix), coordinates divided by `divisors` (default the grid). */
  tables(grid: Vec3i, divisors?: Vec3i): RopeTables {
    const key = `${grid}/${divisors ?? grid}`;
    let t = this.cache.get(key);
    if (!t) this.cache.set(key, (t = ropeTablesFromAngles(this.gpu, rope3dAngles(grid, this.host, { divisors }), this.headDim, 'half')));
    return t;
  }
  private clear(): void {
    for (const t of this.cache.values()) {
      t.cos.dispose();
      t.sin.dispose();
    }
    this.cache.clear();
  }
  override dispose(): void {
    super.dispose();
    this.clear();
  }
}

/** A Conv3d's parameters (PyTorch's names): weight (E, C, p0, p1, p2) and bias (E). */
export class Conv3dParams extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(gpu: Gpu, out: number, patch: Vec3i, seed: number, name: string) {
    super();
    const k = patch[0] * patch[1] * patch[2];
    this.weight = initNormal(gpu, [out, 1, ...patch], Math.sqrt(1 / k), seed, `${name}.weight`);
    // PyTorch's Conv3d default (as timm leaves it): a bias uniform in +-1/sqrt(fan_in), not 0.
    // With a zero bias every token of an air window (input exactly 0) is the zero vector, and
    // each LayerNorm on it multiplies its gradient by 1/sqrt(eps) = 1000.
    this.bias = initUniform(gpu, [out], 1 / Math.sqrt(k), seed, `${name}.bias`);
  }
}

/**
 * PatchEmbed: Conv3d(1, E, kernel = stride = patch) with bias; weight (E, 1, p0, p1, p2). With
 * `histogram` (VisionConfig.patchHistogram, not RadFinder's) it adds hist_proj(soft histogram
 * of the patch) to each token; hist_centres holds the centres in the crop's units.
 */
export class PatchEmbed extends Module {
  readonly proj: Conv3dParams;
  readonly hist_proj?: Linear;
  readonly hist_centres?: Tensor;
  private centresHost?: Float32Array;
  constructor(gpu: Gpu, dim: number, readonly patch: Vec3i, seed: number, name: string, histogram?: { centres: Float32Array }) {
    super();
    this.proj = new Conv3dParams(gpu, dim, patch, seed, `${name}.proj`);
    if (histogram) {
      const K = histogram.centres.length;
      this.centresHost = checkCentres(`${name}.hist_centres`, histogram.centres, K);
      this.hist_centres = registerBuffer(tensor(gpu, this.centresHost, [K], `${name}.hist_centres`));
      this.hist_proj = new Linear(gpu, K, dim, { seed: seed + 7, name: `${name}.hist_proj` });
    }
  }
  /** The histogram's centres in the crop's units (from a checkpoint): K values, finite, strictly ascending, else a ShapeError / ValueError naming the tensor. */
  setCentres(d: ArrayLike<number>): void {
    if (!this.hist_centres) throw new ShapeError('patch_embed.hist_centres: this model has no patch histogram');
    this.centresHost = checkCentres('patch_embed.hist_centres', d, this.hist_centres.shape[0]);
    this.hist_centres.gpu.upload(this.hist_centres.buffer, this.centresHost);
  }
  /** Host copy of the centres (crop units), or undefined without a histogram. */
  get centres(): Float32Array | undefined {
    return this.centresHost;
  }
  /** crop [B, 1, X, Y, Z] -> [B * windows, tokens per window, E]. */
  forward(crop: Tensor, window: Vec3i): Tensor {
    const tokens = patchEmbed3d(crop, this.proj.weight, this.proj.bias, { window });
    if (!this.hist_proj) return tokens;
    const h = patchHistogram3d(crop, this.hist_centres!, { patch: this.patch, window, hostCentres: this.centresHost });
    return add(tokens, this.hist_proj.forward(h));
  }
}

/**
 * What the window backbone and the feature combiner share (timm's VisionTransformer body): a
 * CLS token prepended to the tokens of a grid, pre-norm blocks with 3D RoPE on the grid's
 * tokens (CLS unrotated), a final LayerNorm.
 */
abstract class RopeVit extends Module {
  readonly cls_token: Tensor;
  readonly rope: Rope3d;
  readonly blocks: TransformerBlock[];
  readonly norm: LayerNorm;
  constructor(gpu: Gpu, width: number, v: Omit<VitConfig, 'embedDim'>, seed: number, blockSeed: number) {
    super();
    this.cls_token = initNormal(gpu, [1, 1, width], 0.02, seed, 'cls_token');
    this.rope = new Rope3d(gpu, width / v.heads, v.ropeBase);
    this.blocks = Array.from({ length: v.depth }, (_, i) => new TransformerBlock(gpu, width, v.heads, { mlpRatio: v.mlpRatio, eps: 1e-6, layerScale: v.layerScale, seed: blockSeed + i, name: `blocks.${i}` }));
    this.norm = new LayerNorm(gpu, width, 1e-6, 'norm');
  }

  /** tokens [B, n, E] of a grid (n = G0 G1 G2, axis 2 fastest) -> [B, 1 + n, E]; RoPE coordinates divided by `divisors` (default the grid). */
  encode(tokens: Tensor, grid: Vec3i, divisors?: Vec3i): Tensor {
    const [B, , E] = tokens.shape;
    let h = concat([expand(this.cls_token, [B, 1, E]), tokens], 1);
    const tables = this.rope.tables(grid, divisors);
    for (const block of this.blocks) h = block.forward(h, { rope: tables });
    return this.norm.forward(h);
  }
}

/** The window backbone (radfinder vision_transformer.py VisionTransformer, CLS, no pooling). */
export class WindowBackbone extends RopeVit {
  readonly patch_embed: PatchEmbed;
  /** `intensity`: the HU window mapped to the crop's 0..1 (for cfg.patchHistogram's centres). */
  constructor(
    gpu: Gpu,
    readonly cfg: VisionConfig,
    seed = 0,
    intensity: { huMin: number; huMax: number } = { huMin: -1000, huMax: 1000 },
  ) {
    super(gpu, cfg.backbone.embedDim, cfg.backbone, seed, seed);
    const [wx, wy, wz] = cfg.window;
    const [px, py, pz] = cfg.patch;
    if (wx % px || wy % py || wz % pz) throw new ShapeError(`vision: window ${cfg.window} is not a whole number of patches ${cfg.patch}`);
    const hist = cfg.patchHistogram;
    if (hist && !(intensity.huMax > intensity.huMin)) throw new ShapeError(`vision: the HU window ${intensity.huMin}..${intensity.huMax} is empty; the patch histogram's centres cannot be mapped to the crop's 0..1`);
    const centres = hist ? { centres: Float32Array.from(hist, (hu) => (hu - intensity.huMin) / (intensity.huMax - intensity.huMin)) } : undefined;
    this.patch_embed = new PatchEmbed(gpu, cfg.backbone.embedDim, cfg.patch, seed, 'patch_embed', centres);
  }

  /** Patches per window along (x, y, z). */
  get tokenGrid(): Vec3i {
    const [wx, wy, wz] = this.cfg.window;
    const [px, py, pz] = this.cfg.patch;
    return [wx / px, wy / py, wz / pz];
  }

  /** crop [B, 1, X, Y, Z] (a whole number of windows) -> tokens [B * windows, 1 + T, E] after the final norm. */
  forward(crop: Tensor): Tensor {
    return this.encode(this.patch_embed.forward(crop, this.cfg.window), this.tokenGrid);
  }
}

/** The feature combiner (radfinder vision_transformer_features.py FeatureVisionTransformer). */
export class FeatureCombiner extends RopeVit {
  readonly patch_proj: Linear;
  readonly axis_patch_proj: Linear;
  constructor(
    gpu: Gpu,
    readonly cfg: VisionConfig,
    seed = 0,
  ) {
    super(gpu, cfg.backbone.embedDim, cfg.combiner, seed, seed + 100);
    const E = cfg.backbone.embedDim;
    this.patch_proj = new Linear(gpu, 2 * E, E, { seed, name: 'patch_proj' });
    this.axis_patch_proj = new Linear(gpu, E, E, { seed: seed + 1, name: 'axis_patch_proj' });
  }
}

export interface VisionFeatures {
  /** [B, 2E]: [CLS_g ; mean of the window tokens] (the heads' input for the scan). */
  pooled: Tensor;
  /** [B, D2, 2E]: per depth bin [CLS_axis2 ; in-plane mean] (D2 = depth tokens per window x Dg). */
  depth: Tensor;
}

/**
 * Backbone + combiner for B scans with the same window grid (every window valid, so the
 * window mask of the release is all ones and the masked means are plain means).
 * crop [B, 1, X, Y, Z] -> VisionFeatures.
 */
export function encodeVision(backbone: WindowBackbone, combiner: FeatureCombiner, crop: Tensor, opts: { depth?: boolean } = {}): VisionFeatures & { grid: Vec3i } {
  if (crop.rank !== 5 || crop.shape[1] !== 1) throw new ShapeError(`vision: expected a crop [batch, 1, x, y, z], got [${crop.shape.join('x')}]`);
  const [B, , X, Y, Z] = crop.shape;
  const [wx, wy, wz] = backbone.cfg.window;
  if (X % wx || Y % wy || Z % wz) throw new ShapeError(`vision: crop ${X}x${Y}x${Z} (x, y, z) is not a whole number of ${wx}x${wy}x${wz} windows`);
  const grid: Vec3i = [X / wx, Y / wy, Z / wz];
  const nWin = grid[0] * grid[1] * grid[2];
  const E = backbone.cfg.backbone.embedDim;
  const [t0, t1, t2] = backbone.tokenGrid;
  const T = t0 * t1 * t2;

  const h = backbone.forward(crop); // [B * nWin, 1 + T, E]
  const patches = slice(h, 1, 1, 1 + T);
  // Global path: [CLS ; patch mean] per window -> patch_proj -> combiner -> [CLS_g ; mean].
  const winTok = concat([reshape(slice(h, 1, 0, 1), [B, nWin, E]), reshape(mean(patches, 1), [B, nWin, E])], 2);
  const g = combiner.encode(combiner.patch_proj.forward(winTok), grid);
  const pooled = concat([reshape(slice(g, 1, 0, 1), [B, E]), mean(slice(g, 1, 1, 1 + nWin), 1)], 1);
  if (opts.depth === false) return { pooled, depth: null as unknown as Tensor, grid };

  // Per-depth path: each window's patch tokens averaged over (ph, pw) -> t2 rows; rows placed on
  // the grid (Hg, Wg, t2 Dg) with d2 = id t2 + pd, which is the window order with pd appended.
  const rows = mean(reshape(patches, [B * nWin, t0 * t1, t2, E]), 1); // [B * nWin, t2, E]
  const D2 = grid[2] * t2;
  const a = combiner.encode(combiner.axis_patch_proj.forward(reshape(rows, [B, nWin * t2, E])), [grid[0], grid[1], D2], grid);
  const cls = reshape(slice(a, 1, 0, 1), [B, 1, E]);
  const body = reshape(slice(a, 1, 1, 1 + nWin * t2), [B, grid[0] * grid[1], D2, E]);
  const perDepth = mean(body, 1); // [B, D2, E]
  const depth = concat([expand(cls, [B, D2, E]), perDepth], 2);
  return { pooled, depth, grid };
}
