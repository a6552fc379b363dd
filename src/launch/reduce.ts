// Launches of kernels/reduce.wgsl (no autograd): sum, mean and max over one axis (or all
// elements), and sumToShape, the reduction over broadcast axes that backward rules use.
import source from '../../kernels/reduce.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape, scope, type Shape } from '../tensor.ts';
import { checkAccumulated, checkInputs, normAxis, prod, sameShape } from './util.ts';
import { tunedRowLayout } from './row-layout.ts';

const WG = 64;

export const reduceKernel = defineKernel({
  file: 'reduce.wgsl',
  source,
  // The input is [outer, n, inner]; the output [outer, chunks, inner], each chunk `chunk`
  // elements of the axis; sums are multiplied by `scale` (mean: 1/n).
  params: { outer: 'u32', n: 'u32', inner: 'u32', chunks: 'u32', chunk: 'u32', scale: 'f32' },
  // YA (flag ACC): added to the result in the store.
  buffers: { X: read(), Y: write(), YA: read('f32', { optional: true }) },
  entries: { reduce: ['X', 'Y', 'YA'], reduce_wg: ['X', 'Y', 'YA'] },
});

export type ReduceLayout = Exclude<Tuning['reduce']['variant'], 'auto'>;

/**
 * The layout of one reduction pass whose outputs each sum (or max) `len` elements, `inner`
 * apart: 'workgroup' (64 lanes per output) only where they are contiguous (inner 1); there
 * gpu.tuning.reduce.variant, or on 'auto' one invocation per output on CPU adapters (lavapipe:
 * a barrier switches between coroutines; sums over the last axis of [4096x1024] measured 1.5 ms
 * against 13.5, of [64x262144] 6.0 against 34.5, `npm run bench -- --only reduce`) and a workgroup per output of 128 or more elements on
 * GPUs, where per-output invocations read with a stride of a row between neighbouring lanes
 * (uncoalesced: an H200 ran 'row' at 88 GB/s against a 3.8 TB/s copy; 'workgroup' is
 * unmeasured on a GPU). Where autotuning is on, 'auto' follows the measured choice of the
 * class (outputs, len) once it has one (src/launch/row-layout.ts; sum, mean, max and the sum
 * of squares share the sum's).
 */
export function reduceVariantFor(gpu: Gpu, inner: number, len: number, outputs: number): ReduceLayout {
  if (inner !== 1) return 'row';
  const choice = gpu.tuning.reduce.variant;
  if (choice !== 'auto') return choice;
  return tunedRowLayout(gpu, { op: 'sum', rows: outputs, n: len }, !gpu.isLavapipe && len >= 128 ? 'workgroup' : 'row');
}

function pass(gpu: Gpu, op: 0 | 1 | 2, x: GPUBuffer, y: GPUBuffer, outer: number, n: number, inner: number, chunks: number, scale: number, label: string, add: GPUBuffer | null = null): void {
  const chunk = Math.ceil(n / chunks);
  const wg = reduceVariantFor(gpu, inner, chunk, outer * chunks) === 'workgroup';
  gpu.launch(wg ? reduceKernel.reduce_wg : reduceKernel.reduce, {
    overrides: { OP: op },
    flags: { ACC: !!add },
    params: { outer, n, inner, chunks, chunk, scale },
    buffers: { X: x, Y: y, YA: add },
    workgroups: wg ? grid1d(outer * chunks, 1) : grid1d(outer * chunks * inner, WG),
    label,
  });
}

/**
 * y[i] = sum over s < n of x[s * inner + i] (+ add[i]): n slices of `inner` floats summed in
 * increasing s, one pass (matmul's split-K sum, src/launch/matmul-splitk.ts). Encoded only.
 */
export function sumSlices(gpu: Gpu, x: GPUBuffer, y: GPUBuffer, n: number, inner: number, label: string, add: GPUBuffer | null = null): void {
  pass(gpu, 0, x, y, 1, n, inner, 1, 1, label, add);
}

/** The sums of x's rows ([rows, n] viewed from x's last axis) in one pass: a new tensor [rows]
 * (autotuning's trial of the row layouts, src/launch/layout-tuners.ts). */
export function sumRows(gpu: Gpu, x: Tensor, label: string): Tensor {
  const n = x.shape[x.rank - 1];
  const out = new Tensor(gpu, [x.size / n], 'f32', undefined, label.split(' ')[0]);
  pass(gpu, 0, x.buffer, out.buffer, x.size / n, n, 1, 1, 1, label);
  return out;
}

/** The chunks a reduction of `n` elements into each of `outputs` outputs splits its axis into
 * (a first pass writes outputs x chunks partial results of ceil(n / chunks) elements each):
 * too few outputs to keep the device busy and a long axis split it, else 1. Never a chunk
 * that starts past the axis's end: an empty chunk's max would read the next row's first
 * element (it did: max over [7, 1198081] asked 1170 chunks of 1025, the last four empty). */
export function reduceChunks(outputs: number, n: number): number {
  let chunks = outputs < 2048 && n >= 4096 ? Math.min(Math.ceil(n / 1024), Math.max(1, Math.floor(8192 / outputs))) : 1;
  while (chunks > 1 && (chunks - 1) * Math.ceil(n / chunks) >= n) chunks--;
  return chunks;
}

/** Reduces [outer, n, inner] to [outer, inner]; splits long axes into two passes. `add`
 * (outer * inner elements) is added to the result in the last pass's store. */
function reduceRaw(gpu: Gpu, op: 0 | 1 | 2, x: Tensor, outer: number, n: number, inner: number, scale: number, outShape: Shape, label: string, add: Tensor | null = null): Tensor {
  const out = new Tensor(gpu, outShape, 'f32', undefined, label.split(' ')[0]);
  const chunks = reduceChunks(outer * inner, n);
  if (chunks <= 1) {
    pass(gpu, op, x.buffer, out.buffer, outer, n, inner, 1, scale, label, add?.buffer);
    return out;
  }
  const partial = gpu.acquire(outer * chunks * inner * 4, `${label} partials`);
  pass(gpu, op, x.buffer, partial, outer, n, inner, chunks, 1, `${label} (pass 1)`);
  // The partials of a sum of squares are summed, not squared again.
  pass(gpu, op === 2 ? 0 : op, partial, out.buffer, outer, chunks, inner, 1, scale, `${label} (pass 2)`, add?.buffer);
  gpu.release(partial);
  return out;
}

/** The [outer, n, inner] view of a reduction over `axis` and the output shape. */
export function reduceShape(shape: Shape, axis: number | undefined, keepdim: boolean): { outer: number; n: number; inner: number; out: number[] } {
  if (axis === undefined) return { outer: 1, n: prod(shape), inner: 1, out: keepdim ? shape.map(() => 1) : [1] };
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis + 1));
  const out = keepdim ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
  return { outer, n: shape[axis], inner, out: out.length ? out : [1] };
}

function reduceOp(op: 'sum' | 'mean' | 'max' | 'sumSquares', x: Tensor, axis: number | undefined, keepdim: boolean): Tensor {
  const gpu = checkInputs(op, [x]);
  const ax = axis === undefined ? undefined : normAxis(op, axis, x.rank);
  const { outer, n, inner, out } = reduceShape(x.shape, ax, keepdim);
  return reduceRaw(gpu, op === 'max' ? 1 : op === 'sumSquares' ? 2 : 0, x, outer, n, inner, op === 'mean' ? 1 / n : 1, out, `${op} ${fmtShape(x.shape)} axis=${ax ?? 'all'}`);
}

/** Sum over `axis` (all elements when undefined). */
export const sum = (x: Tensor, axis?: number, keepdim = false): Tensor => reduceOp('sum', x, axis, keepdim);
/** Mean over `axis` (all elements when undefined). */
export const mean = (x: Tensor, axis?: number, keepdim = false): Tensor => reduceOp('mean', x, axis, keepdim);
/** Sum of x^2 over `axis` (all elements when undefined), in one pass (no squared copy). */
export const sumSquares = (x: Tensor, axis?: number, keepdim = false): Tensor => reduceOp('sumSquares', x, axis, keepdim);
/** Maximum over `axis` (all elements when undefined). */
export const max = (x: Tensor, axis?: number, keepdim = false): Tensor => reduceOp('max', x, axis, keepdim);

/** Sums `g` over the axes along which `shape` was broadcast to g's shape (a binary op's
 * backward). Returns a view of g when nothing is reduced. Where the sum is one reduction
 * (over all elements, or over leading axes: a bias's gradient), `take` may hand over a
 * gradient of `shape` gathered so far (GradNode.backward's `accumulated`), which is then
 * added in the reduction's store, with the bits of a separate add; else take is not called. */
export function sumToShape(g: Tensor, shape: Shape, take?: () => Tensor | null): Tensor {
  if (sameShape(g.shape, shape)) return g.view(shape);
  const lead = g.rank - shape.length;
  const single = prod(shape) === 1 || (lead > 0 && sameShape(g.shape.slice(lead), shape));
  const add = take && single ? take() : null;
  if (add) {
    const gpu = checkInputs('sumToShape', [g, add]);
    checkAccumulated('sumToShape', add, shape, 'the result');
    const n = prod(shape) === 1 ? g.size : prod(g.shape.slice(0, lead));
    const inner = g.size / n;
    return reduceRaw(gpu, 0, g, 1, n, inner, 1, shape, `sum ${fmtShape(g.shape)} to ${fmtShape(shape)} (accumulated)`, add);
  }
  return scope(() => sumToShapeScoped(g, shape));
}

function sumToShapeScoped(g: Tensor, shape: Shape): Tensor {
  if (prod(shape) === 1) return sum(g).view(shape);
  const lead = g.rank - shape.length;
  if (lead < 0) throw new ShapeError(`sumToShape: cannot reduce ${fmtShape(g.shape)} to the larger rank ${fmtShape(shape)}`);
  // Leading axes that the smaller shape lacks: fold them into one and sum it away.
  let cur = lead > 0 ? sum(g.view([prod(g.shape.slice(0, lead)), ...g.shape.slice(lead)]), 0) : g;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && cur.shape[i] !== 1) cur = sum(cur, i, true);
    else if (shape[i] !== cur.shape[i]) throw new ShapeError(`sumToShape: ${fmtShape(g.shape)} was not broadcast from ${fmtShape(shape)}`);
  }
  return cur.view(shape);
}
