// Reductions over one axis (or all elements): sum, mean, max (kernels/reduce.wgsl),
// and sumToShape, the reduction over broadcast axes that binary ops' backward rules use.
import source from '../../kernels/reduce.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { Uniforms, checkInputs, normAxis, prod, sameShape } from './util.ts';
import { expand, reshape } from './layout.ts';
import { div, eq, mul, mulScalar } from './elementwise.ts';

const WG = 64;

function launch(gpu: Gpu, op: 0 | 1, x: GPUBuffer, y: GPUBuffer, outer: number, n: number, inner: number, chunks: number, scale: number, label: string): void {
  const chunk = Math.ceil(n / chunks);
  const k = gpu.kernel({ file: 'reduce.wgsl', source, entry: 'reduce', overrides: { OP: op }, bindings: ['uniform', 'read', 'write'] });
  gpu.dispatch(k, {
    uniforms: new Uniforms().u32(outer, n, inner, chunks, chunk).f32(scale).bytes(),
    buffers: [x, y],
    workgroups: grid1d(outer * chunks * inner, WG),
    label,
  });
}

/** Reduces [outer, n, inner] to [outer, inner]; splits long axes into two passes. */
function reduceRaw(gpu: Gpu, op: 0 | 1, x: Tensor, outer: number, n: number, inner: number, scale: number, outShape: Shape, label: string): Tensor {
  const out = new Tensor(gpu, outShape, 'f32', undefined, label.split(' ')[0]);
  const outputs = outer * inner;
  // Too few outputs to keep the device busy and a long axis: split it.
  const chunks = outputs < 2048 && n >= 4096 ? Math.min(Math.ceil(n / 1024), Math.max(1, Math.floor(8192 / outputs))) : 1;
  if (chunks <= 1) {
    launch(gpu, op, x.buffer, out.buffer, outer, n, inner, 1, scale, label);
    return out;
  }
  const partial = gpu.acquire(outer * chunks * inner * 4, `${label} partials`);
  launch(gpu, op, x.buffer, partial, outer, n, inner, chunks, 1, `${label} (pass 1)`);
  launch(gpu, op, partial, out.buffer, outer, chunks, inner, 1, scale, `${label} (pass 2)`);
  gpu.release(partial);
  return out;
}

function reduceShape(shape: Shape, axis: number | undefined, keepdim: boolean): { outer: number; n: number; inner: number; out: number[] } {
  if (axis === undefined) return { outer: 1, n: prod(shape), inner: 1, out: keepdim ? shape.map(() => 1) : [1] };
  const outer = prod(shape.slice(0, axis));
  const inner = prod(shape.slice(axis + 1));
  const out = keepdim ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
  return { outer, n: shape[axis], inner, out: out.length ? out : [1] };
}

/** Sum over `axis` (all elements when undefined). */
export function sum(x: Tensor, axis?: number, keepdim = false): Tensor {
  return sumOrMean('sum', x, axis, keepdim);
}

/** Mean over `axis` (all elements when undefined). */
export function mean(x: Tensor, axis?: number, keepdim = false): Tensor {
  return sumOrMean('mean', x, axis, keepdim);
}

function sumOrMean(op: 'sum' | 'mean', x: Tensor, axis: number | undefined, keepdim: boolean): Tensor {
  const gpu = checkInputs(op, [x]);
  const ax = axis === undefined ? undefined : normAxis(op, axis, x.rank);
  const { outer, n, inner, out } = reduceShape(x.shape, ax, keepdim);
  const scale = op === 'mean' ? 1 / n : 1;
  const y = reduceRaw(gpu, 0, x, outer, n, inner, scale, out, `${op} ${fmtShape(x.shape)} axis=${ax ?? 'all'}`);
  return record(y, op, [x], (g) => {
    // Broadcast the gradient back over the reduced axis.
    const keepShape = reduceShape(x.shape, ax, true).out;
    const gk = g.view(keepShape);
    const gx = expand(gk, x.shape);
    gk.dispose();
    if (scale === 1) return [gx];
    const scaled = mulScalar(gx, scale);
    gx.dispose();
    return [scaled];
  });
}

/** Maximum over `axis` (all elements when undefined). The gradient is shared equally by tied maxima. */
export function max(x: Tensor, axis?: number, keepdim = false): Tensor {
  const gpu = checkInputs('max', [x]);
  const ax = axis === undefined ? undefined : normAxis('max', axis, x.rank);
  const { outer, n, inner, out } = reduceShape(x.shape, ax, keepdim);
  const y = reduceRaw(gpu, 1, x, outer, n, inner, 1, out, `max ${fmtShape(x.shape)} axis=${ax ?? 'all'}`);
  return record(y, 'max', [x], (g) => {
    const keepShape = reduceShape(x.shape, ax, true).out;
    const yk = y.view(keepShape);
    const gk = g.view(keepShape);
    const mask = eq(x, yk);
    const count = sum(mask, ax, true);
    const share = div(gk, count);
    const gx = mul(mask, share);
    for (const t of [yk, gk, mask, count, share]) t.dispose();
    return [gx];
  });
}

/** Sums `g` over the axes along which `shape` was broadcast to g's shape (a binary op's backward). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g.view(shape);
  if (prod(shape) === 1) {
    const s = sum(g);
    if (s.requiresGrad) return reshapeRecorded(s, shape);
    const v = s.view(shape);
    s.dispose();
    return v;
  }
  const lead = g.rank - shape.length;
  if (lead < 0) throw new ShapeError(`sumToShape: cannot reduce ${fmtShape(g.shape)} to the larger rank ${fmtShape(shape)}`);
  let cur = g;
  // Leading axes that the smaller shape lacks: fold them into one and sum it away.
  if (lead > 0) {
    const folded = reshapeRecorded(g, [prod(g.shape.slice(0, lead)), ...g.shape.slice(lead)]);
    cur = sum(folded, 0);
    folded.disposeScratch();
  }
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && cur.shape[i] !== 1) {
      const next = sum(cur, i, true);
      if (cur !== g) cur.disposeScratch();
      cur = next;
    } else if (shape[i] !== cur.shape[i])
      throw new ShapeError(`sumToShape: ${fmtShape(g.shape)} was not broadcast from ${fmtShape(shape)}`);
  }
  const out = reshapeRecorded(cur, shape);
  if (cur !== g) cur.disposeScratch();
  return out;
}

/** A view that keeps the gradient path when autograd records (reshape), else a bare view. */
function reshapeRecorded(t: Tensor, shape: Shape): Tensor {
  return t.requiresGrad ? reshape(t, shape) : t.view(shape);
}
