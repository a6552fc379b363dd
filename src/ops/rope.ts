// Rotary position embeddings (kernels/rope.wgsl) and the tables they read.
import source from '../../kernels/rope.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { Uniforms, checkInputs } from './util.ts';
import { tensor } from './creation.ts';

export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
  /** Tokens (rows of the tables). */
  length: number;
  /** Head dimension the tables are for. */
  headDim: number;
}

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
  };
}

function evenSplit(headDim: number, axes: number): number[] {
  const pairs = headDim / 2;
  return Array.from({ length: axes }, (_, a) => 2 * (Math.floor(pairs / axes) + (a < pairs % axes ? 1 : 0)));
}

function launch(gpu: Gpu, x: GPUBuffer, y: GPUBuffer, t: RopeTables, rows: number, L: number, heads: number, inverse: boolean, label: string): void {
  const k = gpu.kernel({ file: 'rope.wgsl', source, entry: 'rope', flags: { INVERSE: inverse }, bindings: ['uniform', 'read', 'read', 'read', 'write'] });
  gpu.dispatch(k, {
    uniforms: new Uniforms().u32(rows, L, heads, t.headDim / 2).bytes(),
    buffers: [x, t.cos.buffer, t.sin.buffer, y],
    workgroups: grid1d(rows, 64),
    label,
  });
}

/** Rotates x [batch, L, heads, headDim] by the tables' angles for each of the L tokens. */
export function rope(x: Tensor, tables: RopeTables): Tensor {
  const gpu = checkInputs('rope', [x, tables.cos, tables.sin]);
  if (x.rank !== 4) throw new ShapeError(`rope: expected [batch, L, heads, headDim], got ${fmtShape(x.shape)}`);
  const [B, L, H, D] = x.shape;
  if (L !== tables.length || D !== tables.headDim)
    throw new ShapeError(`rope: input ${fmtShape(x.shape)} does not match tables for ${tables.length} tokens of head dimension ${tables.headDim}`);
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'rope');
  const label = `rope ${fmtShape(x.shape)}`;
  launch(gpu, x.buffer, y.buffer, tables, B * L * H, L, H, false, label);
  return record(y, 'rope', [x], (g) => {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.rope');
    launch(gpu, g.buffer, gx.buffer, tables, B * L * H, L, H, true, `${label}.backward`);
    return [gx];
  });
}
