// Softmax cross-entropy against integer class targets, and binary cross-entropy with logits
// (kernels/crossentropy.wgsl, src/launch/crossentropy.ts).
import { record } from '../autograd.ts';
import { ShapeError, ValueError } from '../errors.ts';
import { fmtShape, scope, type Tensor } from '../tensor.ts';
import { ones } from '../launch/elementwise.ts';
import { checkInputs } from '../launch/util.ts';
import * as launch from '../launch/crossentropy.ts';
import { div } from './elementwise.ts';
import { sum } from './reduce.ts';
import { hostInts } from './creation.ts';

/** Refuses targets at or past the class count (when their host copy is known: fromInts). */
function checkTargets(targets: Tensor, classes: number): void {
  const host = hostInts(targets);
  if (host)
    for (let i = 0; i < host.length; i++)
      if (host[i] >= classes) throw new ValueError(`crossEntropy: target ${host[i]} at row ${i} is not below the ${classes} classes (use -1 to mask a row)`);
}

/**
 * Per-row loss logsumexp(x) - x[target] of logits [..., C] against i32 targets (one per row,
 * in [0, C); -1, or any negative, masks the row: loss 0, gradient 0). Returns the logits'
 * shape without the last axis ([1] for a single row). Exact for logits of any size: the
 * row's max is subtracted from x and from the log-sum-exp separately, as torch does.
 * @throws ShapeError on mismatched rows; ValueError for non-i32 targets or a target >= C.
 */
export function crossEntropyRows(logits: Tensor, targets: Tensor): Tensor {
  const { classes } = launch.crossEntropyShape('crossEntropy', logits, targets);
  checkTargets(targets, classes);
  const loss = launch.crossEntropyRowsForward(logits, targets);
  return record(loss, 'crossEntropy', [logits], (gy) => [launch.crossEntropyRowsBackward(logits, targets, gy)]);
}

/**
 * Mean cross-entropy over the rows whose target is not negative: [1]. With every row masked
 * the mean is over nothing and is 0, with a zero gradient (the framework's one policy for a
 * masked mean, as bceWithLogits and siglipLoss: see launch.maskedCount), not 0/0 = NaN.
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const rowsLoss = crossEntropyRows(logits, targets); // validates logits and targets
  const count = scope(() => launch.maskedCount(launch.crossEntropyValid(targets)));
  return div(sum(rowsLoss), count);
}

/**
 * Binary cross-entropy with logits x [N, Q] against labels y [N, Q] (1, 0, or -1 = unknown,
 * masked out), with an optional positive-class weight per column posWeight [Q]; the mean
 * over known labels: [1]. With no known label the mean is over nothing and is 0, with a zero
 * gradient (see crossEntropy). The labels and weights take no gradient.
 * @throws ShapeError when x and y differ in shape or posWeight is not [Q]; ValueError when
 * y or posWeight requires a gradient.
 */
export function bceWithLogits(x: Tensor, y: Tensor, posWeight?: Tensor): Tensor {
  const gpu = checkInputs('bceWithLogits', posWeight ? [x, y, posWeight] : [x, y]);
  if (x.shape.join() !== y.shape.join()) throw new ShapeError(`bceWithLogits: logits ${fmtShape(x.shape)} and labels ${fmtShape(y.shape)} differ`);
  if (y.requiresGrad || posWeight?.requiresGrad) throw new ValueError('bceWithLogits: labels and weights take no gradient');
  const w = posWeight ?? ones(gpu, [x.shape[x.rank - 1]]);
  const perElement = record(launch.bceWithLogitsForward(x, y, w), 'bceWithLogits', [x], (g) => [launch.bceWithLogitsBackward(x, y, w, g)]);
  if (!posWeight) perElement.own(w);
  const count = scope(() => launch.maskedCount(launch.bceKnown(y)));
  return div(sum(perElement), count);
}
