// Reductions over one axis (or all elements): sum, mean, max (kernels/reduce.wgsl,
// src/launch/reduce.ts), and sumToShape, the reduction over broadcast axes.
import { record } from '../autograd.ts';
import type { Tensor, Shape } from '../tensor.ts';
import * as launch from '../launch/index.ts';
import { normAxis } from '../launch/util.ts';

function keepShape(x: Tensor, axis: number | undefined): number[] {
  return launch.reduceShape(x.shape, axis === undefined ? undefined : normAxis('reduce', axis, x.rank), true).out;
}

/** Sum over `axis` (all elements when undefined); keepdim keeps the axis as size 1. */
export function sum(x: Tensor, axis?: number, keepdim = false): Tensor {
  return record(launch.sum(x, axis, keepdim), 'sum', [x], (g) => [launch.expand(g.view(keepShape(x, axis)), x.shape)]);
}

/** Mean over `axis` (all elements when undefined); keepdim keeps the axis as size 1. */
export function mean(x: Tensor, axis?: number, keepdim = false): Tensor {
  const n = axis === undefined ? x.size : x.shape[normAxis('mean', axis, x.rank)];
  return record(launch.mean(x, axis, keepdim), 'mean', [x], (g) => [launch.mulScalar(launch.expand(g.view(keepShape(x, axis)), x.shape), 1 / n)]);
}

/** Maximum over `axis` (all elements when undefined). The gradient is shared equally by tied maxima. */
export function max(x: Tensor, axis?: number, keepdim = false): Tensor {
  const y = launch.max(x, axis, keepdim);
  return record(y, 'max', [x], (g) => {
    const ks = keepShape(x, axis);
    const ax = axis === undefined ? undefined : normAxis('max', axis, x.rank);
    const mask = launch.eq(x, y.view(ks));
    return [launch.mul(mask, launch.div(g.view(ks), launch.sum(mask, ax, true)))];
  });
}

/** Sums g over the axes along which `shape` was broadcast to g's shape, with gradient flow. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  return record(launch.sumToShape(g, shape), 'sumToShape', [g], (gy) => [launch.expand(gy, g.shape)]);
}
