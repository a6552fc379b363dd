// Small helpers shared by the launches and ops: checking inputs, broadcasting shapes, axes.
import { ShapeError, ValueError } from '../errors.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';

/** Checks inputs are live, on one device and (optionally) of one dtype; returns the device. */
export function checkInputs(op: string, inputs: Tensor[], dtype: 'f32' | 'i32' | null = 'f32'): Gpu {
  const gpu = inputs[0].gpu;
  for (const t of inputs) {
    if (!(t instanceof Tensor)) throw new ValueError(`${op}: expected a Tensor, got ${typeof t}`);
    if (t.disposed) throw new ValueError(`${op}: input '${t.name}' ${fmtShape(t.shape)} was disposed and cannot be used again`);
    if (t.gpu !== gpu) throw new ValueError(`${op}: inputs '${inputs[0].name}' and '${t.name}' live on two different GPU devices`);
    if (dtype && t.dtype !== dtype) throw new ValueError(`${op}: input '${t.name}' is ${t.dtype}, expected ${dtype}`);
  }
  return gpu;
}

export function checkFinite(op: string, name: string, v: number): void {
  if (!Number.isFinite(v)) throw new ValueError(`${op}: ${name} must be a finite number, got ${v}`);
}

/** The broadcast shape of two shapes (numpy rules), or a ShapeError naming the op. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** Row-major strides of a shape broadcast to `out` (0 where broadcast). */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const strides = new Array(out.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = out.length - shape.length + i;
    strides[o] = shape[i] === 1 && out[o] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

export const prod = (s: Shape): number => s.reduce((a, b) => a * b, 1);
export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Normalises a possibly negative axis. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/**
 * How many chunks of rows a column sum over [rows, columns] splits into (partial sums, then
 * their sum in chunk order): enough (chunk, column) invocations to fill a GPU (~8k), each
 * summing at least 32 rows; 1 when the rows are few. Used by rmsNorm's weight gradient and
 * layerNorm's gamma and beta gradients.
 */
export function rowChunks(rows: number, columns: number): number {
  return Math.max(1, Math.min(Math.ceil(8192 / columns), Math.floor(rows / 32)));
}

/** An accumulated gradient handed to a backward launch (added in its store) must have its
 * tensor's shape and be live. @throws ShapeError / ValueError naming the op and tensor. */
export function checkAccumulated(op: string, acc: Tensor | null | undefined, shape: Shape, name: string): void {
  if (!acc) return;
  if (acc.disposed) throw new ValueError(`${op}: the accumulated gradient of ${name} was disposed`);
  if (!sameShape(acc.shape, shape)) throw new ShapeError(`${op}: the accumulated gradient of ${name} ${fmtShape(acc.shape)} must have its shape ${fmtShape(shape)}`);
}
