// Launches of kernels/rope.wgsl (no autograd): rotary position embeddings by per-token angle
// tables (built on the host: src/ops/rope.ts), and the inverse rotation, their gradient.
import source from '../../kernels/rope.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';

export const ropeKernel = defineKernel({
  file: 'rope.wgsl',
  source,
  // rows = batch * L * heads rows of 2 * half values; cosT, sinT: [L - prefix, half].
  params: { rows: 'u32', L: 'u32', heads: 'u32', half: 'u32', prefix: 'u32' },
  buffers: { X: read(), cosT: read(), sinT: read(), Y: write() },
  entries: { rope: ['X', 'cosT', 'sinT', 'Y'] },
});

export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
  /** Tokens (rows of the tables). */
  length: number;
  /** Head dimension the tables are for. */
  headDim: number;
  /**
   * Which dimensions form a rotated pair: 'interleaved' (2i, 2i + 1), as GPT-J and RoFormer;
   * 'half' (i, i + headDim / 2), the rotate-half layout of GPT-NeoX, Llama, Qwen3 and RadFinder.
   */
  pairing: 'interleaved' | 'half';
}

function rotate(x: Tensor, tables: RopeTables, inverse: boolean, prefix: number): Tensor {
  const op = inverse ? 'rope.backward' : 'rope';
  const gpu = checkInputs(op, [x, tables.cos, tables.sin]);
  if (x.rank !== 4) throw new ShapeError(`${op}: expected [batch, L, heads, headDim], got ${fmtShape(x.shape)}`);
  const [B, L, H, D] = x.shape;
  if (!Number.isInteger(prefix) || prefix < 0) throw new ShapeError(`${op}: prefix ${prefix} must be a whole number of tokens`);
  if (L !== tables.length + prefix || D !== tables.headDim)
    throw new ShapeError(
      `${op}: input ${fmtShape(x.shape)} does not match tables for ${tables.length} tokens${prefix ? ` after a prefix of ${prefix}` : ''} of head dimension ${tables.headDim}`,
    );
  const y = new Tensor(gpu, x.shape, 'f32', undefined, inverse ? 'grad.rope' : 'rope');
  const rows = B * L * H;
  gpu.launch(ropeKernel.rope, {
    flags: { INVERSE: inverse, HALF: tables.pairing === 'half' },
    params: { rows, L, heads: H, half: D / 2, prefix },
    buffers: { X: x.buffer, cosT: tables.cos.buffer, sinT: tables.sin.buffer, Y: y.buffer },
    workgroups: grid1d(rows, 64),
    label: `${op} ${fmtShape(x.shape)}`,
  });
  return y;
}

/** x [batch, L, heads, headDim] with each token's pairs rotated by the tables' angles: a new
 * tensor. The first `prefix` tokens (L = prefix + tables.length) are copied unrotated.
 * @throws ShapeError when x is not of rank 4 or does not match the tables' tokens and head width. */
export const ropeForward = (x: Tensor, tables: RopeTables, prefix = 0): Tensor => rotate(x, tables, false, prefix);

/** The gradient of ropeForward: gy [batch, L, heads, headDim] rotated by the negative angles
 * (the prefix passed through). */
export const ropeBackward = (gy: Tensor, tables: RopeTables, prefix = 0): Tensor => rotate(gy, tables, true, prefix);
