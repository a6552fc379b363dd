// The two encoders of the CT vision-language model (after RadFinder, sized for small GPUs
// and CPU drivers): a windowed 3D ViT with a global combiner for volumes, and a
// transformer for report text; plus the MLP heads into the shared embedding space.
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { Module, initNormal } from '../nn/module.ts';
import { LayerNorm, Linear, MLP } from '../nn/layers.ts';
import { TransformerBlock } from '../nn/transformer.ts';
import { ropeTables, type RopeTables } from '../ops/rope.ts';
import { concat, expand, permute, reshape, slice } from '../ops/layout.ts';
import { mean, sum } from '../ops/reduce.ts';
import { mul, rsqrt, addScalar, square } from '../ops/elementwise.ts';
import { embedding } from '../ops/embedding.ts';
import { patchEmbed3d } from '../ops/patch3d.ts';

export interface VisionConfig {
  dim: number;
  heads: number;
  /** Blocks run on each window's tokens on its own. */
  localDepth: number;
  /** Blocks of the feature combiner over all windows' tokens. */
  globalDepth: number;
  /** Voxels per patch (x, y, z); z is the depth-bin size (4 slices of 3 mm = 12 mm). */
  patch: [number, number, number];
  /** Voxels per window (x, y, z). */
  window: [number, number, number];
  ropeBase: number;
  globalRopeBase: number;
}

export interface TextConfig {
  dim: number;
  heads: number;
  depth: number;
  vocab: number;
  ropeBase: number;
}

/** x / |x| along the last axis (eps inside the root keeps zero vectors finite). */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  return mul(x, rsqrt(addScalar(sum(square(x), -1, true), eps)));
}

/** Token positions (z, y, x) of a grid of nz x ny x nx, z-major. */
function gridPositions(nz: number, ny: number, nx: number, origin: [number, number, number] = [0, 0, 0]): number[][] {
  const out: number[][] = [];
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) out.push([origin[0] + z, origin[1] + y, origin[2] + x]);
  return out;
}

export interface VisionOutput {
  /** [B, dim] pooled feature ([CLS ; mean] goes through the image head). */
  pooled: Tensor;
  /** [B, depth positions, dim]: tokens averaged in-plane per depth (the localization features). */
  depth: Tensor;
}

/**
 * Windowed 3D ViT: the crop (a grid of windows) is cut into windows, each window into
 * patches; local blocks see one window (RoPE over the window's token grid), the combiner
 * sees every token of the crop (RoPE over the crop's grid, smaller base) plus a CLS token.
 */
export class VisionEncoder3d extends Module {
  readonly embed: Linear;
  readonly local: TransformerBlock[];
  readonly global: TransformerBlock[];
  readonly cls: Tensor;
  readonly norm: LayerNorm;
  private ropeCache = new Map<string, { local: RopeTables; global: RopeTables }>();

  constructor(
    readonly gpu: Gpu,
    readonly cfg: VisionConfig,
    seed = 0,
  ) {
    super();
    const [px, py, pz] = cfg.patch;
    const [wx, wy, wz] = cfg.window;
    if (wx % px || wy % py || wz % pz) throw new ShapeError(`VisionEncoder3d: window ${cfg.window} is not a whole number of patches ${cfg.patch}`);
    this.embed = new Linear(gpu, px * py * pz, cfg.dim, { seed, name: 'vision.embed', std: Math.sqrt(1 / (px * py * pz)) });
    this.local = Array.from({ length: cfg.localDepth }, (_, i) => new TransformerBlock(gpu, cfg.dim, cfg.heads, { seed, name: `vision.local.${i}` }));
    this.global = Array.from({ length: cfg.globalDepth }, (_, i) => new TransformerBlock(gpu, cfg.dim, cfg.heads, { seed, name: `vision.global.${i}` }));
    this.cls = initNormal(gpu, [1, 1, cfg.dim], 0.02, seed, 'vision.cls');
    this.norm = new LayerNorm(gpu, cfg.dim, 1e-5, 'vision.norm');
  }

  override dispose(): void {
    super.dispose();
    for (const t of this.ropeCache.values()) for (const r of [t.local, t.global]) {
      r.cos.dispose();
      r.sin.dispose();
    }
    this.ropeCache.clear();
  }

  /** Patches per window along (z, y, x). */
  get windowTokens(): [number, number, number] {
    const [px, py, pz] = this.cfg.patch;
    const [wx, wy, wz] = this.cfg.window;
    return [wz / pz, wy / py, wx / px];
  }

  private tables(G: [number, number, number]): { local: RopeTables; global: RopeTables } {
    const key = G.join('x');
    let t = this.ropeCache.get(key);
    if (!t) {
      const [tz, ty, tx] = this.windowTokens;
      const headDim = this.cfg.dim / this.cfg.heads;
      const local = ropeTables(this.gpu, gridPositions(tz, ty, tx), headDim, this.cfg.ropeBase);
      // Global order: CLS (at the origin, so unrotated), then windows z-major, each window's tokens z-major.
      const positions: number[][] = [[0, 0, 0]];
      for (let gz = 0; gz < G[0]; gz++)
        for (let gy = 0; gy < G[1]; gy++)
          for (let gx = 0; gx < G[2]; gx++) positions.push(...gridPositions(tz, ty, tx, [gz * tz, gy * ty, gx * tx]));
      const global = ropeTables(this.gpu, positions, headDim, this.cfg.globalRopeBase);
      this.ropeCache.set(key, (t = { local, global }));
    }
    return t;
  }

  /** vol: [B, 1, Z, Y, X], a whole number of windows per axis. */
  forward(vol: Tensor): VisionOutput {
    if (vol.rank !== 5 || vol.shape[1] !== 1) throw new ShapeError(`VisionEncoder3d: expected a volume [batch, 1, z, y, x], got [${vol.shape.join('x')}]`);
    const [B, , Z, Y, X] = vol.shape;
    const [wx, wy, wz] = this.cfg.window;
    if (Z % wz || Y % wy || X % wx) throw new ShapeError(`VisionEncoder3d: volume ${Z}x${Y}x${X} (z, y, x) is not a whole number of ${wz}x${wy}x${wx} windows`);
    const G: [number, number, number] = [Z / wz, Y / wy, X / wx];
    const nWin = G[0] * G[1] * G[2];
    const [tz, ty, tx] = this.windowTokens;
    const T = tz * ty * tx;
    const dim = this.cfg.dim;
    const { local, global } = this.tables(G);

    // Windows: [B, 1, Gz, wz, Gy, wy, Gx, wx] -> [B * nWin, 1, wz, wy, wx].
    const windows = reshape(permute(reshape(vol, [B, G[0], wz, G[1], wy, G[2], wx]), [0, 1, 3, 5, 2, 4, 6]), [B * nWin, 1, wz, wy, wx]);
    const [px, py, pz] = this.cfg.patch;
    let h = patchEmbed3d(windows, this.embed.weight, this.embed.bias ?? undefined, [pz, py, px]);
    for (const block of this.local) h = block.forward(h, { rope: local });

    // The combiner: every token of the crop, after a CLS token.
    const tokens = reshape(h, [B, nWin * T, dim]);
    const cls = expand(this.cls, [B, 1, dim]);
    let g = concat([cls, tokens], 1);
    for (const block of this.global) g = block.forward(g, { rope: global });
    g = this.norm.forward(g);

    const clsOut = reshape(slice(g, 1, 0, 1), [B, dim]);
    const body = slice(g, 1, 1, 1 + nWin * T);
    const pooled = concat([clsOut, mean(body, 1)], 1);
    // Depth features: tokens back to the crop grid, averaged in-plane per depth position.
    const grid = permute(reshape(body, [B, G[0], G[1], G[2], tz, ty, tx, dim]), [0, 1, 4, 2, 5, 3, 6, 7]);
    const depth = mean(reshape(grid, [B, G[0] * tz, G[1] * ty * G[2] * tx, dim]), 2);
    return { pooled, depth };
  }
}

export interface TextOutput {
  /** [B, dim] the CLS token's feature. */
  pooled: Tensor;
}

/** A transformer over WordPiece tokens with 1D RoPE and a padding mask; CLS pooling. */
export class TextEncoder extends Module {
  readonly tokens: Tensor;
  readonly blocks: TransformerBlock[];
  readonly norm: LayerNorm;
  private ropeCache = new Map<number, RopeTables>();

  constructor(
    readonly gpu: Gpu,
    readonly cfg: TextConfig,
    seed = 0,
  ) {
    super();
    this.tokens = initNormal(gpu, [cfg.vocab, cfg.dim], 0.02, seed, 'text.tokens');
    this.blocks = Array.from({ length: cfg.depth }, (_, i) => new TransformerBlock(gpu, cfg.dim, cfg.heads, { seed, name: `text.${i}` }));
    this.norm = new LayerNorm(gpu, cfg.dim, 1e-5, 'text.norm');
  }

  override dispose(): void {
    super.dispose();
    for (const r of this.ropeCache.values()) {
      r.cos.dispose();
      r.sin.dispose();
    }
    this.ropeCache.clear();
  }

  private tables(L: number): RopeTables {
    let t = this.ropeCache.get(L);
    if (!t) this.ropeCache.set(L, (t = ropeTables(this.gpu, Array.from({ length: L }, (_, l) => [l]), this.cfg.dim / this.cfg.heads, this.cfg.ropeBase)));
    return t;
  }

  /** ids: [B, L] i32 (token 0 is [CLS]); mask: [B, L] f32, 1 for tokens, 0 for padding. */
  forward(ids: Tensor, mask: Tensor): TextOutput {
    const [B, L] = ids.shape;
    let h = embedding(this.tokens, ids);
    for (const block of this.blocks) h = block.forward(h, { rope: this.tables(L), mask });
    h = this.norm.forward(h);
    return { pooled: reshape(slice(h, 1, 0, 1), [B, this.cfg.dim]) };
  }
}

/** An MLP head into the shared space, L2-normalised output. */
export class ProjectionHead extends Module {
  readonly mlp: MLP;
  constructor(gpu: Gpu, sizes: number[], seed: number, name: string) {
    super();
    this.mlp = new MLP(gpu, sizes, 'gelu', seed, name);
  }
  forward(x: Tensor): Tensor {
    return l2Normalize(this.mlp.forward(x));
  }
}

