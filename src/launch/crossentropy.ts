// Launches of kernels/crossentropy.wgsl (no autograd): softmax cross-entropy per row against
// integer targets, binary cross-entropy with logits per element, their gradients and masks,
// and maskedCount, the divisor of every masked mean (here and in src/losses).
import source from '../../kernels/crossentropy.wgsl';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape, scope } from '../tensor.ts';
import { full, maximum } from './elementwise.ts';
import { sum } from './reduce.ts';
import { checkInputs } from './util.ts';

export const crossEntropyKernel = defineKernel({
  file: 'crossentropy.wgsl',
  source,
  // n: rows (cross-entropy) or elements (BCE); classes: the last axis (BCE: Q, the length of
  // POS_WEIGHT).
  params: { n: 'u32', classes: 'u32' },
  buffers: {
    X: read(),
    T: read('i32'),
    LABELS: read(),
    POS_WEIGHT: read(),
    L: write(),
    GY: read(),
    GX: write(),
  },
  entries: {
    rows: ['X', 'T', 'L'],
    rows_backward: ['X', 'T', 'GY', 'GX'],
    valid: ['T', 'L'],
    bce: ['X', 'LABELS', 'POS_WEIGHT', 'L'],
    bce_backward: ['X', 'LABELS', 'POS_WEIGHT', 'GY', 'GX'],
    bce_known: ['LABELS', 'L'],
  },
});

/** Checks logits [..., classes] (f32) against targets (i32, one per row); returns the sizes. */
export function crossEntropyShape(op: string, logits: Tensor, targets: Tensor): { rows: number; classes: number } {
  checkInputs(op, [logits]);
  checkInputs(op, [logits, targets], null);
  if (targets.dtype !== 'i32') throw new ValueError(`${op}: targets '${targets.name}' must be i32, got ${targets.dtype}`);
  const classes = logits.shape[logits.rank - 1];
  const rows = logits.size / classes;
  if (targets.size !== rows)
    throw new ShapeError(`${op}: logits ${fmtShape(logits.shape)} have ${rows} rows but targets ${fmtShape(targets.shape)} have ${targets.size}`);
  return { rows, classes };
}

/** Per-row loss log(sum(exp(x - m))) - (x[target] - m), m the row's max, of logits [..., C]
 * against i32 targets (one per row; negative masks the row: 0). Shape: logits' without the
 * last axis ([1] for one row). A target >= C reads class C-1 (the op refuses such targets). */
export function crossEntropyRowsForward(logits: Tensor, targets: Tensor): Tensor {
  const { rows, classes } = crossEntropyShape('crossEntropy', logits, targets);
  const lead = logits.shape.slice(0, -1);
  const loss = new Tensor(logits.gpu, lead.length ? lead : [1], 'f32', undefined, 'crossEntropy');
  logits.gpu.launch(crossEntropyKernel.rows, {
    params: { n: rows, classes },
    buffers: { X: logits.buffer, T: targets.buffer, L: loss.buffer },
    workgroups: grid1d(rows, 64),
    label: `crossEntropy ${fmtShape(logits.shape)}`,
  });
  return loss;
}

/** The logits' gradient of crossEntropyRowsForward given the per-row output gradient gy
 * (gy[i] (softmax(x_i) - onehot(t_i)); 0 on masked rows). Shape: logits'. */
export function crossEntropyRowsBackward(logits: Tensor, targets: Tensor, gy: Tensor): Tensor {
  const { rows, classes } = crossEntropyShape('crossEntropy.backward', logits, targets);
  checkInputs('crossEntropy.backward', [gy]);
  if (gy.size !== rows) throw new ShapeError(`crossEntropy.backward: gradient ${fmtShape(gy.shape)} must have one value per row (${rows})`);
  const gx = new Tensor(logits.gpu, logits.shape, 'f32', undefined, 'grad.crossEntropy');
  logits.gpu.launch(crossEntropyKernel.rows_backward, {
    params: { n: rows, classes },
    buffers: { X: logits.buffer, T: targets.buffer, GY: gy.buffer, GX: gx.buffer },
    workgroups: grid1d(rows, 64),
    label: `crossEntropy.backward ${fmtShape(logits.shape)}`,
  });
  return gx;
}

/** 1 where a target is not negative, else 0: [rows], f32 (targets i32, any shape). */
export function crossEntropyValid(targets: Tensor): Tensor {
  const gpu = checkInputs('crossEntropy.valid', [targets], 'i32');
  const mask = new Tensor(gpu, [targets.size], 'f32', undefined, 'crossEntropy.valid');
  gpu.launch(crossEntropyKernel.valid, {
    params: { n: targets.size, classes: 1 },
    buffers: { T: targets.buffer, L: mask.buffer },
    workgroups: grid1d(targets.size, 64),
    label: `crossEntropy.valid ${fmtShape(targets.shape)}`,
  });
  return mask;
}

/** Checks BCE logits x [..., Q] against labels y of x's shape and weights posWeight [Q]. */
function bceShape(op: string, x: Tensor, y: Tensor, posWeight: Tensor): number {
  checkInputs(op, [x, y, posWeight]);
  if (x.shape.join() !== y.shape.join()) throw new ShapeError(`${op}: logits ${fmtShape(x.shape)} and labels ${fmtShape(y.shape)} differ`);
  const Q = x.shape[x.rank - 1];
  if (posWeight.rank !== 1 || posWeight.shape[0] !== Q) throw new ShapeError(`${op}: posWeight ${fmtShape(posWeight.shape)} must be [${Q}] (one per column)`);
  return Q;
}

/** Per-element BCE with logits: w_q y softplus(-x) + (1 - y) softplus(x); 0 where y < 0
 * (unknown). x, y [..., Q], posWeight [Q]. Shape: x's. */
export function bceWithLogitsForward(x: Tensor, y: Tensor, posWeight: Tensor): Tensor {
  const Q = bceShape('bceWithLogits', x, y, posWeight);
  const out = new Tensor(x.gpu, x.shape, 'f32', undefined, 'bce');
  x.gpu.launch(crossEntropyKernel.bce, {
    params: { n: x.size, classes: Q },
    buffers: { X: x.buffer, LABELS: y.buffer, POS_WEIGHT: posWeight.buffer, L: out.buffer },
    workgroups: grid1d(x.size, 64),
    label: `bceWithLogits ${fmtShape(x.shape)}`,
  });
  return out;
}

/** The logits' gradient of bceWithLogitsForward given its output gradient gy (x's shape):
 * gy (w_q y (sigmoid(x) - 1) + (1 - y) sigmoid(x)); 0 where y < 0. */
export function bceWithLogitsBackward(x: Tensor, y: Tensor, posWeight: Tensor, gy: Tensor): Tensor {
  const Q = bceShape('bceWithLogits.backward', x, y, posWeight);
  checkInputs('bceWithLogits.backward', [x, gy]);
  if (gy.size !== x.size) throw new ShapeError(`bceWithLogits.backward: gradient ${fmtShape(gy.shape)} must match the logits ${fmtShape(x.shape)}`);
  const gx = new Tensor(x.gpu, x.shape, 'f32', undefined, 'grad.bce');
  x.gpu.launch(crossEntropyKernel.bce_backward, {
    params: { n: x.size, classes: Q },
    buffers: { X: x.buffer, LABELS: y.buffer, POS_WEIGHT: posWeight.buffer, GY: gy.buffer, GX: gx.buffer },
    workgroups: grid1d(x.size, 64),
    label: `bceWithLogits.backward ${fmtShape(x.shape)}`,
  });
  return gx;
}

/** 1 where a label is known (y >= 0), else 0: y's shape. */
export function bceKnown(y: Tensor): Tensor {
  const gpu = checkInputs('bceWithLogits.known', [y]);
  const known = new Tensor(gpu, y.shape, 'f32', undefined, 'bce.known');
  gpu.launch(crossEntropyKernel.bce_known, {
    params: { n: y.size, classes: y.shape[y.rank - 1] },
    buffers: { LABELS: y.buffer, L: known.buffer },
    workgroups: grid1d(y.size, 64),
    label: `bceWithLogits.known ${fmtShape(y.shape)}`,
  });
  return known;
}

/**
 * The divisor of a masked mean: the number of ones in `mask` (1/0 values, any shape), but at
 * least 1, as [1]. Every masked mean of the framework and its losses (crossEntropy,
 * bceWithLogits, siglipLoss) divides by this, so a mean over nothing is 0 (a zero sum over
 * one) with a zero gradient, never 0/0 = NaN.
 */
export function maskedCount(mask: Tensor): Tensor {
  return scope(() => maximum(sum(mask), full(mask.gpu, [1], 1)));
}
