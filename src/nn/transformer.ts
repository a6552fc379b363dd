// The pre-norm ViT block of timm and RadFinder (radfinder vision_transformer.py Block):
//   x <- x + ls1 * attn(norm1(x));  x <- x + ls2 * mlp(norm2(x))
// with separate q and kv projections (RadFinder's FasterAttention), rotary position
// embeddings applied to the rotated tokens only (CLS and other prefix tokens stay as they
// are), an optional key mask, LayerScale and an exact-erf GELU MLP. Parameter names follow
// the PyTorch module tree (norm1, attn.q, attn.kv, attn.proj, ls1.gamma, mlp.fc1, ...), so a
// RadFinder state dict loads by name.
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { Module, initConstant } from './module.ts';
import { LayerNorm, Linear } from './layers.ts';
import { mul } from '../ops/elementwise.ts';
import { linearResidual, mlpGelu, type ResidualOptions } from '../ops/matmul.ts';
import { reshape, slice } from '../ops/layout.ts';
import { attention } from '../ops/attention.ts';
import { rope, type RopeTables } from '../ops/rope.ts';

export interface BlockOptions {
  /** Hidden width of the MLP as a multiple of dim (default 4). */
  mlpRatio?: number;
  /** LayerNorm epsilon (timm / RadFinder ViT: 1e-6; PyTorch's default 1e-5). */
  eps?: number;
  /** LayerScale's initial value (RadFinder: init_values 1.0); null for no LayerScale. */
  layerScale?: number | null;
  seed?: number;
  name?: string;
}

export interface AttendOptions {
  /**
   * Rotary embeddings for the rotated tokens: the last `rope.length` of the L tokens (the
   * first L - rope.length, e.g. CLS, are not rotated).
   */
  rope?: RopeTables;
  /** [B, L]: 1 for tokens that may be attended to, 0 for padding. */
  mask?: Tensor;
}

/** timm's LayerScale: x * gamma, gamma [dim]. */
export class LayerScale extends Module {
  readonly gamma: Tensor;
  constructor(gpu: Gpu, dim: number, init: number, name: string) {
    super();
    this.gamma = initConstant(gpu, [dim], init, `${name}.gamma`);
  }
  forward(x: Tensor): Tensor {
    return mul(x, this.gamma);
  }
}

/** Applies RoPE to the last tables.length tokens of x [B, L, H, D], leaving the prefix. */
export function ropeAfterPrefix(x: Tensor, tables: RopeTables): Tensor {
  const L = x.shape[1];
  const prefix = L - tables.length;
  if (prefix < 0) throw new ShapeError(`rope: ${L} tokens but tables for ${tables.length}`);
  return rope(x, tables, prefix);
}

/** Multi-head self-attention with separate q and kv projections (RadFinder FasterAttention, mode "mha"). */
export class Attention extends Module {
  readonly q: Linear;
  readonly kv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  constructor(gpu: Gpu, readonly dim: number, readonly heads: number, seed: number, name: string) {
    super();
    if (dim % heads) throw new ShapeError(`Attention: width ${dim} is not a multiple of ${heads} heads`);
    this.headDim = dim / heads;
    this.q = new Linear(gpu, dim, dim, { seed, name: `${name}.q` });
    this.kv = new Linear(gpu, dim, 2 * dim, { seed, name: `${name}.kv` });
    this.proj = new Linear(gpu, dim, dim, { seed, name: `${name}.proj`, std: Math.sqrt(1 / dim) / 2 });
  }
  /** x: [B, L, dim] -> [B, L, dim]; with `then`, residual + scale * attn(x), fused into proj's store. */
  forward(x: Tensor, opts: AttendOptions = {}, then?: ResidualOptions): Tensor {
    const [B, L] = x.shape;
    const H = this.heads;
    const D = this.headDim;
    // The heads stay where the projections put them ([B, L, H, D], attention's 'blhd'
    // layout): no permuted copies of q, k, v and the output, forward or backward.
    const heads = (t: Tensor, rotate: boolean) => {
      const h = reshape(t, [B, L, H, D]);
      return rotate && opts.rope ? ropeAfterPrefix(h, opts.rope) : h;
    };
    // kv's output: the first dim features are K, the last dim are V, each split head-major.
    const kv = reshape(this.kv.forward(x), [B, L, 2, this.dim]);
    const k = reshape(slice(kv, 2, 0, 1), [B, L, this.dim]);
    const v = reshape(slice(kv, 2, 1, 2), [B, L, this.dim]);
    const o = attention(heads(this.q.forward(x), true), heads(k, true), heads(v, false), { mask: opts.mask, layout: 'blhd' });
    const flat = reshape(o, [B, L, this.dim]);
    return then ? linearResidual(flat, this.proj, then) : this.proj.forward(flat);
  }
}

/** timm's Mlp: fc1 -> GELU (exact erf) -> fc2. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(gpu: Gpu, dim: number, hidden: number, seed: number, name: string) {
    super();
    this.fc1 = new Linear(gpu, dim, hidden, { seed, name: `${name}.fc1` });
    this.fc2 = new Linear(gpu, hidden, dim, { seed, name: `${name}.fc2`, std: Math.sqrt(1 / hidden) / 2 });
  }
  /** x: [..., dim] -> [..., dim]; with `then`, residual + scale * mlp(x), fused (ops/matmul.ts mlpGelu). */
  forward(x: Tensor, then?: ResidualOptions): Tensor {
    return mlpGelu(x, this.fc1, this.fc2, then);
  }
}

export class TransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale | null;

  constructor(
    gpu: Gpu,
    readonly dim: number,
    readonly heads: number,
    opts: BlockOptions = {},
  ) {
    super();
    const name = opts.name ?? 'block';
    const seed = opts.seed ?? 0;
    const eps = opts.eps ?? 1e-6;
    const hidden = Math.round(dim * (opts.mlpRatio ?? 4));
    const ls = opts.layerScale === undefined ? 1 : opts.layerScale;
    this.norm1 = new LayerNorm(gpu, dim, eps, `${name}.norm1`);
    this.attn = new Attention(gpu, dim, heads, seed, `${name}.attn`);
    this.ls1 = ls === null ? null : new LayerScale(gpu, dim, ls, `${name}.ls1`);
    this.norm2 = new LayerNorm(gpu, dim, eps, `${name}.norm2`);
    this.mlp = new Mlp(gpu, dim, hidden, seed, `${name}.mlp`);
    this.ls2 = ls === null ? null : new LayerScale(gpu, dim, ls, `${name}.ls2`);
  }

  /** x: [B, L, dim] -> [B, L, dim]. */
  forward(x: Tensor, opts: AttendOptions = {}): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) throw new ShapeError(`TransformerBlock: input ${x.shape.join('x')} must be [batch, tokens, ${this.dim}]`);
    // x + ls1 * attn(norm1(x)), then h + ls2 * mlp(norm2(h)): LayerScale and the residual adds
    // in the store of the last matmul of each branch (the same bits as separate ops).
    const h = this.attn.forward(this.norm1.forward(x), opts, { residual: x, scale: this.ls1?.gamma });
    return this.mlp.forward(this.norm2.forward(h), { residual: h, scale: this.ls2?.gamma });
  }
}
