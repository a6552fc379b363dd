// Autotuning of the row layouts of softmax, layerNorm and reductions over the last axis: one
// invocation per row (no barriers) or one workgroup of 64 per row (coalesced reads, a tree in
// workgroup memory). Which is faster depends on the device and on the rows' count and length,
// so on GPUs (where autotuning is on by default) 'auto' follows the measured choice of the
// shape class once it has one, and each family's fixed rule until then; CPU adapters keep the
// per-row layout (measured faster on lavapipe at every size tried). The classes launches met
// are timed by autotuneSeenKernels (src/launch/layout-tuners.ts, which holds the trial),
// after a first training step, like the matmul classes. See src/gpu/autotune.ts.
import softmaxSource from '../../kernels/softmax.wgsl';
import layerNormSource from '../../kernels/layernorm.wgsl';
import reduceSource from '../../kernels/reduce.wgsl';
import { autotuneEnabled, choice as tunedChoice, hash32, noteSeen, type Tuner } from '../gpu/autotune.ts';
import type { Gpu } from '../gpu/runtime.ts';

/** One invocation ('row') or one workgroup ('workgroup') per row. */
export type RowLayout = 'row' | 'workgroup';

/** A launch a layout is chosen for: `rows` rows of `n` contiguous values (for 'sum', one pass
 * of a reduction over the last axis: its outputs and the elements each sums). */
export interface RowShape {
  op: 'softmax' | 'layerNorm' | 'sum';
  rows: number;
  n: number;
}

const p2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** The row layouts' shape classes (the op, the rows and the row length rounded up to powers of
 * two) and cache version; src/launch/layout-tuners.ts adds the candidates and the trial. */
export const rowLayoutClasses: Pick<Tuner<RowShape>, 'family' | 'version' | 'classOf' | 'usable'> = {
  family: 'rowLayout',
  version: hash32(softmaxSource + layerNormSource + reduceSource),
  classOf: (s) => `${s.op} r${p2(s.rows)} n${p2(s.n)}`,
  usable: (_gpu, v) => v === 'row' || v === 'workgroup',
};

/**
 * The layout 'auto' runs: where autotuning is on (gpu.tuning.autotune; by default on GPUs) the
 * measured choice of the shape's class, else, and until the class is measured (it is then
 * noted for autotuneSeenKernels), `fallback`, the family's fixed rule.
 */
export function tunedRowLayout(gpu: Gpu, shape: RowShape, fallback: RowLayout): RowLayout {
  if (!autotuneEnabled(gpu)) return fallback;
  const key = rowLayoutClasses.classOf(shape);
  const c = tunedChoice(gpu, rowLayoutClasses, key);
  if (c === 'row' || c === 'workgroup') return c;
  noteSeen(gpu, rowLayoutClasses, key, shape);
  return fallback;
}

