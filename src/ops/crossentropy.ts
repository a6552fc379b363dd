// Softmax cross-entropy against integer class targets (kernels/crossentropy.wgsl).
import source from '../../kernels/crossentropy.wgsl';
import { noGrad, record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Uniforms, checkInputs } from '../launch/util.ts';
import { div, full, maximum, ones } from './elementwise.ts';
import { sum } from './reduce.ts';
import { hostInts } from './creation.ts';

function check(logits: Tensor, targets: Tensor): { rows: number; classes: number } {
  checkInputs('crossEntropy', [logits]);
  checkInputs('crossEntropy', [logits, targets], null);
  if (targets.dtype !== 'i32') throw new ShapeError(`crossEntropy: targets '${targets.name}' must be i32, got ${targets.dtype}`);
  const classes = logits.shape[logits.rank - 1];
  const rows = logits.size / classes;
  if (targets.size !== rows)
    throw new ShapeError(`crossEntropy: logits ${fmtShape(logits.shape)} have ${rows} rows but targets ${fmtShape(targets.shape)} have ${targets.size}`);
  const host = hostInts(targets);
  if (host)
    for (let i = 0; i < host.length; i++)
      if (host[i] >= classes) throw new ShapeError(`crossEntropy: target ${host[i]} at row ${i} is not below the ${classes} classes (use -1 to mask a row)`);
  return { rows, classes };
}

/** Per-row loss logsumexp(x) - x[target]; rows with a negative target give 0. */
export function crossEntropyRows(logits: Tensor, targets: Tensor): Tensor {
  const { rows, classes } = check(logits, targets);
  const gpu = logits.gpu;
  const uniforms = new Uniforms().u32(rows, classes, 0, 0).bytes();
  const loss = new Tensor(gpu, logits.shape.slice(0, -1).length ? logits.shape.slice(0, -1) : [1], 'f32', undefined, 'crossEntropy');
  const k = gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'rows', bindings: ['uniform', 'read', 'read', 'write'] });
  gpu.dispatch(k, { uniforms, buffers: [logits.buffer, targets.buffer, loss.buffer], workgroups: grid1d(rows, 64), label: `crossEntropy ${fmtShape(logits.shape)}` });
  return record(loss, 'crossEntropy', [logits], (gy) => {
    const gx = new Tensor(gpu, logits.shape, 'f32', undefined, 'grad.crossEntropy');
    const b = gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'rows_backward', bindings: ['uniform', 'read', 'read', null, 'read', 'write'] });
    gpu.dispatch(b, { uniforms, buffers: [logits.buffer, targets.buffer, gy.buffer, gx.buffer], workgroups: grid1d(rows, 64), label: `crossEntropy.backward ${fmtShape(logits.shape)}` });
    return [gx];
  });
}

/** Mean cross-entropy over the rows whose target is not negative. */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const rowsLoss = crossEntropyRows(logits, targets); // validates logits and targets
  const classes = logits.shape[logits.rank - 1];
  const rows = logits.size / classes;
  const count = noGrad(() => {
    const mask = new Tensor(logits.gpu, [rows], 'f32', undefined, 'crossEntropy.valid');
    const k = logits.gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'valid', bindings: ['uniform', null, 'read', 'write'] });
    logits.gpu.dispatch(k, { uniforms: new Uniforms().u32(rows, classes, 0, 0).bytes(), buffers: [targets.buffer, mask.buffer], workgroups: grid1d(rows, 64), label: 'crossEntropy.valid' });
    const c = sum(mask);
    mask.dispose();
    return c;
  });
  const total = sum(rowsLoss);
  // max(count, 1) is not needed: with no valid row the total is 0 and 0/0 would be NaN,
  // which is the honest answer for a mean over nothing.
  return div(total, count);
}

/**
 * Binary cross-entropy with logits x [N, Q] against labels y [N, Q] (1, 0, or -1 = unknown,
 * masked out), with an optional positive-class weight per column posWeight [Q]; the mean
 * over known labels. The labels and weights take no gradient.
 */
export function bceWithLogits(x: Tensor, y: Tensor, posWeight?: Tensor): Tensor {
  const gpu = checkInputs('bceWithLogits', posWeight ? [x, y, posWeight] : [x, y]);
  if (x.shape.join() !== y.shape.join()) throw new ShapeError(`bceWithLogits: logits ${fmtShape(x.shape)} and labels ${fmtShape(y.shape)} differ`);
  const Q = x.shape[x.rank - 1];
  if (posWeight && (posWeight.rank !== 1 || posWeight.shape[0] !== Q))
    throw new ShapeError(`bceWithLogits: posWeight ${fmtShape(posWeight.shape)} must be [${Q}] (one per column)`);
  if (y.requiresGrad || posWeight?.requiresGrad) throw new ShapeError('bceWithLogits: labels and weights take no gradient');
  const n = x.size;
  const uniforms = new Uniforms().u32(n, Q, 0, 0).bytes();
  const w = posWeight ?? noGrad(() => ones(gpu, [Q]));
  const grid = grid1d(n, 64);
  const rows = new Tensor(gpu, x.shape, 'f32', undefined, 'bce');
  const k = gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'bce', bindings: [null, 'read', null, 'write', null, null, null, null, null, null, null, 'uniform', 'read', 'read'] });
  gpu.dispatch(k, { uniforms, buffers: [x.buffer, rows.buffer, y.buffer, w.buffer], workgroups: grid, label: `bceWithLogits ${fmtShape(x.shape)}` });
  const perElement = record(rows, 'bceWithLogits', [x], (g) => {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.bce');
    const kb = gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'bce_backward', bindings: [null, 'read', null, null, 'read', 'write', null, null, null, null, null, 'uniform', 'read', 'read'] });
    gpu.dispatch(kb, { uniforms, buffers: [x.buffer, g.buffer, gx.buffer, y.buffer, w.buffer], workgroups: grid, label: `bceWithLogits.backward ${fmtShape(x.shape)}` });
    return [gx];
  });
  if (!posWeight) perElement.own(w);
  const count = noGrad(() => {
    const known = new Tensor(gpu, x.shape, 'f32', undefined, 'bce.known');
    const kk = gpu.kernel({ file: 'crossentropy.wgsl', source, entry: 'bce_known', bindings: [null, null, null, 'write', null, null, null, null, null, null, null, 'uniform', 'read'] });
    gpu.dispatch(kk, { uniforms, buffers: [known.buffer, y.buffer], workgroups: grid, label: 'bceWithLogits.known' });
    // With no known label the mean is over nothing: 0 (and no gradient), not 0/0.
    const c = maximum(sum(known), full(gpu, [1], 1));
    known.dispose();
    return c;
  });
  return div(sum(perElement), count);
}
