// A pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(x)), with optional rotary
// position embeddings and a key mask (padding).
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ShapeError } from '../errors.ts';
import { Module } from './module.ts';
import { LayerNorm, Linear } from './layers.ts';
import { add, gelu } from '../ops/elementwise.ts';
import { permute, reshape, slice } from '../ops/layout.ts';
import { attention } from '../ops/attention.ts';
import { rope, type RopeTables } from '../ops/rope.ts';

export interface BlockOptions {
  /** Hidden width of the MLP as a multiple of dim (default 4). */
  mlpRatio?: number;
  seed?: number;
  name?: string;
}

export interface AttendOptions {
  /** Rotary embeddings for the L tokens (built once per token layout with ropeTables). */
  rope?: RopeTables;
  /** [B, L]: 1 for real tokens, 0 for padding (never attended to). */
  mask?: Tensor;
}

export class TransformerBlock extends Module {
  readonly ln1: LayerNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly headDim: number;

  constructor(
    gpu: Gpu,
    readonly dim: number,
    readonly heads: number,
    opts: BlockOptions = {},
  ) {
    super();
    if (dim % heads) throw new ShapeError(`TransformerBlock: width ${dim} is not a multiple of ${heads} heads`);
    this.headDim = dim / heads;
    if (this.headDim % 4) throw new ShapeError(`TransformerBlock: head dimension ${this.headDim} must be a multiple of 4`);
    const name = opts.name ?? 'block';
    const seed = opts.seed ?? 0;
    const hidden = Math.round(dim * (opts.mlpRatio ?? 4));
    this.ln1 = new LayerNorm(gpu, dim, 1e-5, `${name}.ln1`);
    this.qkv = new Linear(gpu, dim, 3 * dim, { seed, name: `${name}.qkv` });
    this.proj = new Linear(gpu, dim, dim, { seed, name: `${name}.proj`, std: Math.sqrt(1 / dim) / 2 });
    this.ln2 = new LayerNorm(gpu, dim, 1e-5, `${name}.ln2`);
    this.fc1 = new Linear(gpu, dim, hidden, { seed, name: `${name}.fc1` });
    this.fc2 = new Linear(gpu, hidden, dim, { seed, name: `${name}.fc2`, std: Math.sqrt(1 / hidden) / 2 });
  }

  /** x: [B, L, dim] -> [B, L, dim]. */
  forward(x: Tensor, opts: AttendOptions = {}): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) throw new ShapeError(`TransformerBlock: input ${x.shape.join('x')} must be [batch, tokens, ${this.dim}]`);
    const h = add(x, this.attend(this.ln1.forward(x), opts));
    return add(h, this.fc2.forward(gelu(this.fc1.forward(this.ln2.forward(h)))));
  }

  private attend(x: Tensor, opts: AttendOptions): Tensor {
    const [B, L] = x.shape;
    const H = this.heads;
    const D = this.headDim;
    const qkv = reshape(this.qkv.forward(x), [B, L, 3, H, D]);
    const part = (i: number) => {
      let t = reshape(slice(qkv, 2, i, i + 1), [B, L, H, D]);
      if (opts.rope && i < 2) t = rope(t, opts.rope);
      return permute(t, [0, 2, 1, 3]);
    };
    const o = attention(part(0), part(1), part(2), { mask: opts.mask });
    return this.proj.forward(reshape(permute(o, [0, 2, 1, 3]), [B, L, this.dim]));
  }
}
