// Shape and layout ops: reshape (a view, no copy), permute/transpose, slice, concat and
// expand, all through the strided gather/scatter of kernels/layout.wgsl.
import source from '../../kernels/layout.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { Uniforms, checkInputs, normAxis, prod } from './util.ts';
import { sumToShape } from './reduce.ts';

const MAX_RANK = 8;
/** Elements per invocation along the innermost dimension (CHUNK in kernels/layout.wgsl). */
const CHUNK = 64;

function rowStrides(shape: Shape): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

function strided(gpu: Gpu, entry: 'gather' | 'scatter', x: GPUBuffer, y: GPUBuffer, dims: Shape, strides: number[], offset: number, label: string): void {
  if (dims.length > MAX_RANK) throw new ShapeError(`${label}: rank ${dims.length} is above the supported ${MAX_RANK}`);
  const n = prod(dims);
  const inner = dims[dims.length - 1];
  const chunks = Math.ceil(inner / CHUNK);
  const runs = (n / inner) * chunks;
  const k = gpu.kernel({ file: 'layout.wgsl', source, entry, bindings: ['uniform', 'read', 'write'] });
  gpu.dispatch(k, {
    uniforms: new Uniforms().u32(n, dims.length, offset, chunks).u32Array([...dims], MAX_RANK).u32Array(strides, MAX_RANK).bytes(),
    buffers: [x, y],
    workgroups: grid1d(runs, 64),
    label,
  });
}

/** The same data under another shape; one dimension may be -1 (inferred). No copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  checkInputs('reshape', [x], null);
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const known = prod(s.filter((_, i) => i !== infer));
    if (known === 0 || x.size % known !== 0) throw new ShapeError(`reshape: cannot infer -1 in [${s.join('x')}] for ${fmtShape(x.shape)}`);
    s[infer] = x.size / known;
  }
  if (prod(s) !== x.size) throw new ShapeError(`reshape: ${fmtShape(x.shape)} (${x.size} elements) cannot become ${fmtShape(s)} (${prod(s)})`);
  const y = x.view(s, `${x.name}.reshape`);
  return record(y, 'reshape', [x], (g) => [g.view(x.shape)]);
}

/** Reorders axes: y.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const gpu = checkInputs('permute', [x]);
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i))
    throw new ShapeError(`permute: [${perm.join(',')}] is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
  const shape = perm.map((p) => x.shape[p]);
  const xs = rowStrides(x.shape);
  const y = new Tensor(gpu, shape, 'f32', undefined, `${x.name}.permute`);
  strided(gpu, 'gather', x.buffer, y.buffer, shape, perm.map((p) => xs[p]), 0, `permute ${fmtShape(x.shape)} [${perm.join(',')}]`);
  return record(y, 'permute', [x], (g) => {
    const inv = new Array(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [permute(g, inv)];
  });
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const i = normAxis('transpose', a, x.rank);
  const j = normAxis('transpose', b, x.rank);
  const perm = x.shape.map((_, k) => k);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[start:end] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const gpu = checkInputs('slice', [x]);
  const ax = normAxis('slice', axis, x.rank);
  const n = x.shape[ax];
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start >= end)
    throw new ShapeError(`slice: [${start}, ${end}) is not a non-empty range inside axis ${ax} (size ${n}) of ${fmtShape(x.shape)}`);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const xs = rowStrides(x.shape);
  const y = new Tensor(gpu, shape, 'f32', undefined, `${x.name}.slice`);
  strided(gpu, 'gather', x.buffer, y.buffer, shape, xs, start * xs[ax], `slice ${fmtShape(x.shape)} axis ${ax} [${start},${end})`);
  return record(y, 'slice', [x], (g) => {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.slice');
    gpu.clear(gx.buffer, 0, gx.size * 4);
    strided(gpu, 'scatter', g.buffer, gx.buffer, shape, xs, start * xs[ax], `slice.backward ${fmtShape(x.shape)}`);
    return [gx];
  });
}

/** Joins tensors along `axis`; all other dimensions must agree. */
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
  const starts: number[] = [];
  for (const t of xs) {
    starts.push(at);
    strided(gpu, 'scatter', t.buffer, y.buffer, t.shape, ys, at * ys[ax], `concat ${fmtShape(t.shape)} into ${fmtShape(shape)}`);
    at += t.shape[ax];
  }
  return record(y, 'concat', xs, (g) => xs.map((t, i) => (t.requiresGrad ? slice(g, ax, starts[i], starts[i] + t.shape[ax]) : null)));
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
  return record(y, 'expand', [x], (g) => [sumToShape(g, x.shape)]);
}
