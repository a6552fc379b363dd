// Intra-scan localization: the depth head's kernel declaration (kernels/localization.wgsl), its
// launches, and the differentiable ops depthHead and localizationLoss built on it.
import source from '../../kernels/localization.wgsl';
import { record } from '../autograd.ts';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkFinite, checkInputs } from '../launch/util.ts';
import { hostInts } from '../ops/creation.ts';
import { mean } from '../ops/reduce.ts';
import { slice } from '../ops/layout.ts';
import { abs, add, mulScalar, sub } from '../ops/elementwise.ts';

export const depthHeadKernel = defineKernel({
  file: 'localization.wgsl',
  source,
  // S snippets of D bins; sigma: the Gaussian target's width in bins; binMm: one bin's depth.
  params: { S: 'u32', D: 'u32', sigma: 'f32', binMm: 'f32' },
  // OUT is the forward's [S, 3]; the backward reads it again as HEAD (the expected depths).
  buffers: { SCORES: read(), VALID: read(), TARGET: read('i32'), OUT: write(), HEAD: read(), G_OUT: read(), D_SCORES: write() },
  entries: {
    depth_head: ['SCORES', 'VALID', 'TARGET', 'OUT'],
    depth_head_backward: ['SCORES', 'VALID', 'TARGET', 'HEAD', 'G_OUT', 'D_SCORES'],
  },
});

export interface DepthHeadOptions {
  /** Width of the Gaussian target in bins (paper: 2). */
  sigma?: number;
  /** Depth of one bin in mm (paper: 12, four 3 mm slices). */
  binMm?: number;
  /**
   * How the Gaussian target is built. 'radfinder' (default; radfinder localization_loss.py):
   * radius max(floor(3 sigma + 0.5), 1), normalised over every bin, then zeroed outside the
   * valid bins without normalising again. 'renormalized': radius ceil(3 sigma), normalised over
   * the valid bins only (this project's first version; a snippet near padding keeps a target
   * of mass 1).
   */
  target?: 'radfinder' | 'renormalized';
}

interface HeadArgs {
  S: number;
  D: number;
  sigma: number;
  binMm: number;
  radfinder: boolean;
}

/** Checks the depth head's inputs and options (shapes only: target values are the op's). */
function checkHead(op: string, scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions): HeadArgs {
  checkInputs(op, [scores, valid]);
  checkInputs(op, [scores, target], null);
  const sigma = opts.sigma ?? 2;
  const binMm = opts.binMm ?? 12;
  checkFinite(op, 'sigma', sigma);
  checkFinite(op, 'binMm', binMm);
  if (binMm <= 0) throw new ValueError(`${op}: binMm must be positive, got ${binMm}`);
  if (sigma <= 0) throw new ValueError(`${op}: sigma must be positive, got ${sigma}`);
  if (scores.rank !== 2 || valid.shape.join() !== scores.shape.join())
    throw new ShapeError(`${op}: scores ${fmtShape(scores.shape)} and valid ${fmtShape(valid.shape)} must both be [snippets, bins]`);
  const [S, D] = scores.shape;
  if (target.dtype !== 'i32') throw new ValueError(`${op}: target '${target.name}' must be i32 bins, got ${target.dtype}`);
  if (target.size !== S) throw new ShapeError(`${op}: target ${fmtShape(target.shape)} must be ${S} bins`);
  if (opts.target !== undefined && opts.target !== 'radfinder' && opts.target !== 'renormalized')
    throw new ValueError(`${op}: target '${opts.target}' is neither 'radfinder' nor 'renormalized'`);
  return { S, D, sigma, binMm, radfinder: (opts.target ?? 'radfinder') === 'radfinder' };
}

/** The depth head's [S, 3] = (loss, expected depth mm, argmax bin) per snippet (see depthHead).
 * No autograd. */
export function depthHeadForward(scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions = {}): Tensor {
  const { S, D, sigma, binMm, radfinder } = checkHead('depthHead', scores, valid, target, opts);
  const out = new Tensor(scores.gpu, [S, 3], 'f32', undefined, 'depthHead');
  scores.gpu.launch(depthHeadKernel.depth_head, {
    flags: { RADFINDER: radfinder },
    params: { S, D, sigma, binMm },
    buffers: { SCORES: scores.buffer, VALID: valid.buffer, TARGET: target.buffer, OUT: out.buffer },
    workgroups: [Math.ceil(S / 64)],
    label: `depthHead ${fmtShape(scores.shape)}`,
  });
  return out;
}

/** The scores' gradient [S, D] of the depth head given its output `head` [S, 3] and the
 * output's gradient g [S, 3] (the argmax column's gradient is ignored). No autograd. */
export function depthHeadBackward(scores: Tensor, valid: Tensor, target: Tensor, head: Tensor, g: Tensor, opts: DepthHeadOptions = {}): Tensor {
  const { S, D, sigma, binMm, radfinder } = checkHead('depthHead.backward', scores, valid, target, opts);
  checkInputs('depthHead.backward', [scores, head, g]);
  if (head.size !== S * 3 || g.size !== S * 3)
    throw new ShapeError(`depthHead.backward: output ${fmtShape(head.shape)} and its gradient ${fmtShape(g.shape)} must be [${S}x3]`);
  const ds = new Tensor(scores.gpu, scores.shape, 'f32', undefined, 'grad.depthHead');
  scores.gpu.launch(depthHeadKernel.depth_head_backward, {
    flags: { RADFINDER: radfinder },
    params: { S, D, sigma, binMm },
    buffers: { SCORES: scores.buffer, VALID: valid.buffer, TARGET: target.buffer, HEAD: head.buffer, G_OUT: g.buffer, D_SCORES: ds.buffer },
    workgroups: [Math.ceil(S / 64)],
    label: `depthHead.backward ${fmtShape(scores.shape)}`,
  });
  return ds;
}

/**
 * Per snippet: soft cross-entropy of the masked softmax over depth bins against a Gaussian
 * around the target bin, the expected depth (mm, from the first bin's start) and the
 * argmax bin. scores [S, D] (cos / tau), valid [S, D] (1/0), target [S] (i32 bin).
 * Returns [S, 3] = (loss, expected depth mm, argmax bin); the last column has no gradient.
 * Exact for scores of any size: the max is subtracted from each score and from the
 * log-sum-exp separately. A snippet without a valid bin gives (0, 0, 0) and a zero gradient.
 * @throws ShapeError on mismatched shapes; ValueError for a target bin outside [0, D), a
 * non-positive or non-finite sigma or binMm, an unknown target mode, a valid mask that
 * requires a gradient.
 */
export function depthHead(scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions = {}): Tensor {
  const { S, D } = checkHead('depthHead', scores, valid, target, opts);
  if (valid.requiresGrad) throw new ValueError('depthHead: the valid mask takes no gradient');
  const host = hostInts(target);
  if (host) for (let s = 0; s < S; s++) if (host[s] < 0 || host[s] >= D) throw new ValueError(`depthHead: target bin ${host[s]} of snippet ${s} is outside [0, ${D})`);
  const out = depthHeadForward(scores, valid, target, opts);
  return record(out, 'depthHead', [scores], (g) => [depthHeadBackward(scores, valid, target, out, g, opts)]);
}

export interface LocalizationResult {
  /** Mean soft cross-entropy (plus l1Weight times the mean expected-depth error, if set). */
  loss: Tensor;
  /** [S, 3] per snippet: loss, expected depth (mm), argmax bin. */
  head: Tensor;
}

/**
 * The localization objective over S snippets: mean soft cross-entropy, optionally plus
 * l1Weight * mean |expected depth - target depth| (mm, the regression readout).
 * The L1 term's mean is over all S snippets (a snippet without a valid bin has expected depth 0;
 * give it targetMm 0 or drop it).
 * @throws as depthHead; ValueError when l1Weight is set without targetMm; ShapeError when
 * targetMm is not [S, 1].
 */
export function localizationLoss(scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions & { l1Weight?: number; targetMm?: Tensor } = {}): LocalizationResult {
  const head = depthHead(scores, valid, target, opts);
  const ce = mean(slice(head, 1, 0, 1));
  if (!opts.l1Weight) return { loss: ce, head };
  if (!opts.targetMm) throw new ValueError('localizationLoss: l1Weight needs targetMm [S, 1] (target depths in mm)');
  if (opts.targetMm.rank !== 2 || opts.targetMm.shape[0] !== head.shape[0] || opts.targetMm.shape[1] !== 1)
    throw new ShapeError(`localizationLoss: targetMm ${fmtShape(opts.targetMm.shape)} must be [${head.shape[0]}, 1] (one depth in mm per snippet)`);
  const err = mean(abs(sub(slice(head, 1, 1, 2), opts.targetMm)));
  return { loss: add(ce, mulScalar(err, opts.l1Weight)), head };
}
