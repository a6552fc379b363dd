// Launches of kernels/layout.wgsl (no autograd): the strided gather and scatter behind
// permute, slice, concat and expand.
import source from '../../kernels/layout.wgsl';
import { ShapeError } from '../errors.ts';
import { autotuneEnabled, choice as tunedChoice, hash32, noteSeen, type Tuner } from '../gpu/autotune.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import { checkInputs, normAxis, prod } from './util.ts';

const MAX_RANK = 8;
/** Elements per invocation along the innermost dimension in the 'run' layout (CHUNK in kernels/layout.wgsl). */
const CHUNK = 64;
/** The edge of gather_tiled's square tiles (TILE in kernels/layout.wgsl). */
const TILE = 32;

export const layoutKernel = defineKernel({
  file: 'layout.wgsl',
  source,
  // n elements walked row-major over dims (rank <= 8); chunks: runs per row of the innermost
  // dimension, ceil(dims[rank-1] / CHUNK). gather_tiled: axis P, its tiles and the last
  // axis's, and batches (the product of the other dimensions).
  params: { n: 'u32', rank: 'u32', offset: 'u32', chunks: 'u32', axis: 'u32', tilesP: 'u32', tilesQ: 'u32', batches: 'u32', dims: 'u32[8]', strides: 'u32[8]' },
  buffers: { X: read(), Y: write() },
  entries: { gather: ['X', 'Y'], scatter: ['X', 'Y'], gather_tiled: ['X', 'Y'] },
});

export type LayoutVariant = Exclude<Tuning['layout']['variant'], 'auto'>;

/**
 * The layout of one strided copy: gpu.tuning.layout.variant, or on 'auto' runs of 64 elements
 * per invocation on CPU adapters (lavapipe: integer division is a loop over the lanes there, so
 * it is paid once per run) and on GPUs tiles for a gather that transposes (transposeAxis finds
 * one) with both tile edges at least 8, else one element per invocation. A forced 'tiled' runs
 * wherever the copy transposes, and is 'element' where it does not.
 * The GPU layouts are unmeasured on a GPU (an H200 ran the 'run' transpose at 67 GB/s against a
 * 3.8 TB/s copy: neighbouring lanes 64 elements apart on both sides). On lavapipe a 4096x1024
 * transpose took 12.8 ms as 'run', 42.5 as 'element', 40.0 as 'tiled' (`npm run bench -- --only
 * layout`, the 2-thread AVX-512 EPYC). Where autotuning is on (GPUs by default), 'auto' follows
 * the measured choice of a transposing gather's class once it has one (transposeClasses).
 */
export function layoutVariantFor(gpu: Gpu, entry: 'gather' | 'scatter', dims: Shape, strides: readonly number[]): LayoutVariant {
  const choice = gpu.tuning.layout.variant;
  if (choice !== 'auto') return choice === 'tiled' && (entry !== 'gather' || transposeAxis(dims, strides) < 0) ? 'element' : choice;
  const p = entry === 'gather' ? transposeAxis(dims, strides) : -1;
  const q = dims[dims.length - 1];
  if (p >= 0 && autotuneEnabled(gpu)) {
    const shape: TransposeShape = { p: dims[p], q, batches: prod(dims) / (dims[p] * q) };
    const key = transposeClasses.classOf(shape);
    const c = tunedChoice(gpu, transposeClasses, key);
    if (c === 'run' || c === 'element' || c === 'tiled') return c;
    noteSeen(gpu, transposeClasses, key, shape);
  }
  if (gpu.isLavapipe) return 'run';
  // A tile edge under 8 would leave most of a 256-lane workgroup idle ([70001, 2, 3] -> [0, 2, 1]:
  // 70001 workgroups of 6 elements): 'element' then, until autotuning has measured the class.
  return p >= 0 && dims[p] >= 8 && q >= 8 ? 'tiled' : 'element';
}

/** A gather that transposes, as autotuning classes it: its axes P (contiguous in the input) and
 * Q (the last, contiguous in the output) and the product of the others. */
export interface TransposeShape {
  p: number;
  q: number;
  batches: number;
}

const p2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Transposing gathers' shape classes (P, Q and batches rounded up to powers of two) and cache
 * version; src/launch/layout-tuners.ts adds the candidates (all three layouts) and the
 * trial. Where autotuning is on (GPUs), 'auto' follows the measured choice of the class. */
export const transposeClasses: Pick<Tuner<TransposeShape>, 'family' | 'version' | 'classOf' | 'usable'> = {
  family: 'transpose',
  version: hash32(source),
  classOf: (s) => `P${p2(s.p)} Q${p2(s.q)} b${p2(s.batches)}`,
  usable: (_gpu, v) => v === 'run' || v === 'element' || v === 'tiled',
};

/** The output axis P (not the last) along which a gather reads contiguously while the last
 * output axis is strided in the input, or -1 (the copy does not transpose). */
export function transposeAxis(dims: Shape, strides: readonly number[]): number {
  const q = dims.length - 1;
  if (q < 1 || dims[q] === 1 || strides[q] === 1) return -1;
  for (let d = q - 1; d >= 0; d--) if (strides[d] === 1 && dims[d] > 1) return d;
  return -1;
}

/** Row-major strides of a shape. */
export function rowStrides(shape: Shape): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** gather: y[i] = x[offset + sum c_d strides_d]; scatter: y[offset + sum c_d strides_d] = x[i]
 * (i walks dims row-major). */
export function strided(gpu: Gpu, entry: 'gather' | 'scatter', x: GPUBuffer, y: GPUBuffer, dims: Shape, strides: number[], offset: number, label: string): void {
  if (dims.length > MAX_RANK) throw new ShapeError(`${label}: rank ${dims.length} is above the supported ${MAX_RANK}`);
  const n = prod(dims);
  const inner = dims[dims.length - 1];
  const variant = layoutVariantFor(gpu, entry, dims, strides);
  const base = { n, rank: dims.length, offset, dims: [...dims], strides };
  if (variant === 'tiled') {
    const axis = transposeAxis(dims, strides);
    const [tilesP, tilesQ] = [Math.ceil(dims[axis] / TILE), Math.ceil(inner / TILE)];
    const batches = n / (dims[axis] * inner);
    gpu.launch(layoutKernel.gather_tiled, {
      params: { ...base, chunks: 0, axis, tilesP, tilesQ, batches },
      buffers: { X: x, Y: y },
      workgroups: grid1d(batches * tilesP * tilesQ, 1),
      label,
    });
    return;
  }
  const chunk = variant === 'run' ? CHUNK : 1;
  const chunks = Math.ceil(inner / chunk);
  gpu.launch(layoutKernel[entry], {
    overrides: { CHUNK: chunk },
    params: { ...base, chunks, axis: 0, tilesP: 0, tilesQ: 0, batches: 0 },
    buffers: { X: x, Y: y },
    workgroups: grid1d((n / inner) * chunks, 64),
    label,
  });
}

/** y.shape[i] = x.shape[perm[i]]; a new contiguous tensor. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const gpu = checkInputs('permute', [x]);
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i))
    throw new ShapeError(`permute: [${perm.join(',')}] is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
  const shape = perm.map((p) => x.shape[p]);
  const xs = rowStrides(x.shape);
  const y = new Tensor(gpu, shape, 'f32', undefined, `${x.name}.permute`);
  strided(gpu, 'gather', x.buffer, y.buffer, shape, perm.map((p) => xs[p]), 0, `permute ${fmtShape(x.shape)} [${perm.join(',')}]`);
  return y;
}

/** The inverse permutation. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Checks a slice and returns its axis (normalised). */
export function checkSlice(x: Tensor, axis: number, start: number, end: number): number {
  const ax = normAxis('slice', axis, x.rank);
  const n = x.shape[ax];
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start >= end)
    throw new ShapeError(`slice: [${start}, ${end}) is not a non-empty range inside axis ${ax} (size ${n}) of ${fmtShape(x.shape)}`);
  return ax;
}

/** x[start:end] along `axis`, a new contiguous tensor. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const gpu = checkInputs('slice', [x]);
  const ax = checkSlice(x, axis, start, end);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const xs = rowStrides(x.shape);
  const y = new Tensor(gpu, shape, 'f32', undefined, `${x.name}.slice`);
  strided(gpu, 'gather', x.buffer, y.buffer, shape, xs, start * xs[ax], `slice ${fmtShape(x.shape)} axis ${ax} [${start},${end})`);
  return y;
}

/** A zero tensor of `shape` with g written at [start:end] along `axis` (slice's backward). */
export function sliceBackward(g: Tensor, shape: Shape, axis: number, start: number): Tensor {
  const gpu = checkInputs('slice.backward', [g]);
  const gx = new Tensor(gpu, shape, 'f32', undefined, 'grad.slice');
  const xs = rowStrides(shape);
  gpu.clear(gx.buffer, 0, gx.size * 4);
  strided(gpu, 'scatter', g.buffer, gx.buffer, g.shape, xs, start * xs[axis], `slice.backward ${fmtShape(shape)}`);
  return gx;
}

/** Joins tensors along `axis` (all other dimensions must agree). */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors given');
  const gpu = checkInputs('concat', xs);
  const ax = normAxis('concat', axis, xs[0].rank);
  for (const t of xs)
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i]))
      throw new ShapeError(`concat: shapes ${xs.map((t) => fmtShape(t.shape)).join(', ')} differ outside axis ${ax}`);
  const shape = xs[0].shape.map((d, i) => (i === ax ? xs.reduce((s, t) => s + t.shape[ax], 0) : d));
  const y = new Tensor(gpu, shape, 'f32', undefined, 'concat');
  const ys = rowStrides(shape);
  let at = 0;
  for (const t of xs) {
    strided(gpu, 'scatter', t.buffer, y.buffer, t.shape, ys, at * ys[ax], `concat ${fmtShape(t.shape)} into ${fmtShape(shape)}`);
    at += t.shape[ax];
  }
  return y;
}

/** Broadcasts x to `shape` (numpy rules) as a new contiguous tensor. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const gpu = checkInputs('expand', [x]);
  if (shape.length < x.rank) throw new ShapeError(`expand: ${fmtShape(x.shape)} cannot expand to the lower rank ${fmtShape(shape)}`);
  const lead = shape.length - x.rank;
  const xs = rowStrides(x.shape);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead];
    if (xd === d) return xs[i - lead];
    if (xd === 1) return 0;
    throw new ShapeError(`expand: ${fmtShape(x.shape)} cannot expand to ${fmtShape(shape)}`);
  });
  const y = new Tensor(gpu, shape, 'f32', undefined, `${x.name}.expand`);
  strided(gpu, 'gather', x.buffer, y.buffer, shape, strides, 0, `expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  return y;
}
