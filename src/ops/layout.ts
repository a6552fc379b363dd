// Shape and layout ops: reshape (a view, no copy), permute/transpose, slice, concat and
// expand, all through the strided gather/scatter of kernels/layout.wgsl (src/launch/layout.ts).
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { fmtShape, type Tensor, type Shape } from '../tensor.ts';
import * as launch from '../launch/index.ts';
import { checkInputs, normAxis, prod } from '../launch/util.ts';

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
  return record(launch.permute(x, perm), 'permute', [x], (g) => [launch.permute(g, launch.inversePermutation(perm))]);
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
  const y = launch.slice(x, axis, start, end);
  const ax = launch.checkSlice(x, axis, start, end);
  return record(y, 'slice', [x], (g) => [launch.sliceBackward(g, x.shape, ax, start)]);
}

/** Joins tensors along `axis`; all other dimensions must agree. */
export function concat(xs: Tensor[], axis: number): Tensor {
  const y = launch.concat(xs, axis);
  const ax = normAxis('concat', axis, xs[0].rank);
  const starts: number[] = [];
  xs.reduce((at, t) => (starts.push(at), at + t.shape[ax]), 0);
  return record(y, 'concat', xs, (g) => xs.map((t, i) => (t.requiresGrad ? launch.slice(g, ax, starts[i], starts[i] + t.shape[ax]) : null)));
}

/** Broadcasts x to `shape` (numpy rules) as a new contiguous tensor. */
export function expand(x: Tensor, shape: Shape): Tensor {
  return record(launch.expand(x, shape), 'expand', [x], (g) => [launch.sumToShape(g, x.shape)]);
}
