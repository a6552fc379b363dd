// Rotary position embeddings (kernels/rope.wgsl, src/launch/rope.ts) and the tables they
// read, built on the host from token positions or angles.
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { Tensor } from '../tensor.ts';
import { ropeBackward, ropeForward, type RopeTables } from '../launch/rope.ts';
import { tensor } from './creation.ts';

export type { RopeTables } from '../launch/rope.ts';

/**
 * Tables for RoPE over several axes. positions[l] holds token l's coordinate on each axis
 * (e.g. [z, y, x] of a patch, or [l] for text). The head dimension is split between the
 * axes in `dims` (each even, summing to headDim; default: as evenly as possible in pairs);
 * within an axis, pair i turns at frequency base^(-2i / dims[axis]).
 */
export function ropeTables(gpu: Gpu, positions: ArrayLike<number>[], headDim: number, base = 10000, dims?: number[]): RopeTables {
  if (headDim % 2) throw new ShapeError(`ropeTables: head dimension ${headDim} must be even`);
  const axes = positions[0]?.length ?? 0;
  if (axes === 0) throw new ShapeError('ropeTables: no positions');
  const split = dims ?? evenSplit(headDim, axes);
  if (split.length !== axes || split.some((d) => d % 2) || split.reduce((a, b) => a + b, 0) !== headDim)
    throw new ShapeError(`ropeTables: axis dimensions [${split}] must be ${axes} even numbers summing to ${headDim}`);
  const half = headDim / 2;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  positions.forEach((pos, l) => {
    if (pos.length !== axes) throw new ShapeError(`ropeTables: position ${l} has ${pos.length} coordinates, expected ${axes}`);
    let i = 0;
    split.forEach((d, a) => {
      for (let k = 0; k < d / 2; k++, i++) {
        const angle = pos[a] * base ** ((-2 * k) / d);
        cos[l * half + i] = Math.cos(angle);
        sin[l * half + i] = Math.sin(angle);
      }
    });
  });
  return {
    cos: tensor(gpu, cos, [positions.length, half], 'rope.cos').keep(),
    sin: tensor(gpu, sin, [positions.length, half], 'rope.sin').keep(),
    length: positions.length,
    headDim,
    pairing: 'interleaved',
  };
}

/**
 * Tables from angles given per token: angles[l] holds headDim / 2 angles in radians (pair i
 * of token l turns by angles[l][i]), pairing 'half' unless told otherwise. The RadFinder and
 * Qwen3 conventions build their angles with src/model/rope3d.ts and rope1dAngles.
 */
export function ropeTablesFromAngles(gpu: Gpu, angles: ArrayLike<number>[], headDim: number, pairing: RopeTables['pairing'] = 'half'): RopeTables {
  if (headDim % 2) throw new ShapeError(`ropeTablesFromAngles: head dimension ${headDim} must be even`);
  const half = headDim / 2;
  const cos = new Float32Array(angles.length * half);
  const sin = new Float32Array(angles.length * half);
  angles.forEach((a, l) => {
    if (a.length !== half) throw new ShapeError(`ropeTablesFromAngles: token ${l} has ${a.length} angles, expected ${half}`);
    for (let i = 0; i < half; i++) {
      cos[l * half + i] = Math.cos(a[i]);
      sin[l * half + i] = Math.sin(a[i]);
    }
  });
  return {
    cos: tensor(gpu, cos, [angles.length, half], 'rope.cos').keep(),
    sin: tensor(gpu, sin, [angles.length, half], 'rope.sin').keep(),
    length: angles.length,
    headDim,
    pairing,
  };
}

/**
 * 1D RoPE angles of Llama / Qwen3 (transformers' default rotary embedding): position l,
 * inv_freq[i] = theta^(-2i / headDim), angle = l inv_freq[i], for positions 0..L-1.
 */
export function rope1dAngles(L: number, headDim: number, theta: number): Float64Array[] {
  const half = headDim / 2;
  // transformers computes inv_freq in float32; keep its rounding.
  const inv = Float32Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  return Array.from({ length: L }, (_, l) => Float64Array.from(inv, (f) => Math.fround(l * f)));
}

function evenSplit(headDim: number, axes: number): number[] {
  const pairs = headDim / 2;
  return Array.from({ length: axes }, (_, a) => 2 * (Math.floor(pairs / axes) + (a < pairs % axes ? 1 : 0)));
}

/** Rotates x [batch, L, heads, headDim] by the tables' angles, token l by table row
 * l - prefix; the first `prefix` tokens (a CLS token; L = prefix + tables.length) stay as they are.
 * @throws ShapeError when x is not of rank 4 or does not match the tables and the prefix. */
export function rope(x: Tensor, tables: RopeTables, prefix = 0): Tensor {
  const y = ropeForward(x, tables, prefix);
  return record(y, 'rope', [x], (g) => [ropeBackward(g, tables, prefix)]);
}
