// Intra-scan localization: the depth head (kernels/localization.wgsl) and the loss built on it.
import source from '../../kernels/localization.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { Uniforms, checkFinite, checkInputs } from '../launch/util.ts';
import { hostInts } from './creation.ts';
import { mean } from './reduce.ts';
import { slice } from './layout.ts';
import { abs, add, mulScalar, sub } from './elementwise.ts';

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

/**
 * Per snippet: soft cross-entropy of the masked softmax over depth bins against a Gaussian
 * around the target bin, the expected depth (mm, from the first bin's start) and the
 * argmax bin. scores [S, D] (cos / tau), valid [S, D] (1/0), target [S] (i32 bin).
 * Returns [S, 3] = (loss, expected depth mm, argmax bin); the last column has no gradient.
 */
export function depthHead(scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions = {}): Tensor {
  const gpu = checkInputs('depthHead', [scores, valid]);
  checkInputs('depthHead', [scores, target], null);
  const sigma = opts.sigma ?? 2;
  const binMm = opts.binMm ?? 12;
  checkFinite('depthHead', 'sigma', sigma);
  checkFinite('depthHead', 'binMm', binMm);
  if (sigma <= 0) throw new ShapeError(`depthHead: sigma must be positive, got ${sigma}`);
  if (scores.rank !== 2 || valid.shape.join() !== scores.shape.join())
    throw new ShapeError(`depthHead: scores ${fmtShape(scores.shape)} and valid ${fmtShape(valid.shape)} must both be [snippets, bins]`);
  const [S, D] = scores.shape;
  if (target.dtype !== 'i32' || target.size !== S) throw new ShapeError(`depthHead: target ${fmtShape(target.shape)} must be ${S} i32 bins`);
  if (valid.requiresGrad) throw new ShapeError('depthHead: the valid mask takes no gradient');
  const host = hostInts(target);
  if (host) for (let s = 0; s < S; s++) if (host[s] < 0 || host[s] >= D) throw new ShapeError(`depthHead: target bin ${host[s]} of snippet ${s} is outside [0, ${D})`);
  const uniforms = new Uniforms().u32(S, D).f32(sigma, binMm).bytes();
  const out = new Tensor(gpu, [S, 3], 'f32', undefined, 'depthHead');
  const flags = { RADFINDER: (opts.target ?? 'radfinder') === 'radfinder' };
  if (opts.target !== undefined && opts.target !== 'radfinder' && opts.target !== 'renormalized') throw new ShapeError(`depthHead: target '${opts.target}' is neither 'radfinder' nor 'renormalized'`);
  const k = gpu.kernel({ file: 'localization.wgsl', source, entry: 'depth_head', flags, bindings: ['uniform', 'read', 'read', 'read', 'write'] });
  gpu.dispatch(k, { uniforms, buffers: [scores.buffer, valid.buffer, target.buffer, out.buffer], workgroups: [Math.ceil(S / 64)], label: `depthHead ${fmtShape(scores.shape)}` });
  return record(out, 'depthHead', [scores], (g) => {
    const ds = new Tensor(gpu, scores.shape, 'f32', undefined, 'grad.depthHead');
    // `out` is bound read-write in the shared layout but only read here (the expected depth).
    const kb = gpu.kernel({ file: 'localization.wgsl', source, entry: 'depth_head_backward', flags, bindings: ['uniform', 'read', 'read', 'read', 'write', 'read', 'write'] });
    gpu.dispatch(kb, { uniforms, buffers: [scores.buffer, valid.buffer, target.buffer, out.buffer, g.buffer, ds.buffer], workgroups: [Math.ceil(S / 64)], label: `depthHead.backward ${fmtShape(scores.shape)}` });
    return [ds];
  });
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
 */
export function localizationLoss(scores: Tensor, valid: Tensor, target: Tensor, opts: DepthHeadOptions & { l1Weight?: number; targetMm?: Tensor } = {}): LocalizationResult {
  const head = depthHead(scores, valid, target, opts);
  const ce = mean(slice(head, 1, 0, 1));
  if (!opts.l1Weight) return { loss: ce, head };
  if (!opts.targetMm) throw new ShapeError('localizationLoss: l1Weight needs targetMm [S, 1] (target depths in mm)');
  const err = mean(abs(sub(slice(head, 1, 1, 2), opts.targetMm)));
  return { loss: add(ce, mulScalar(err, opts.l1Weight)), head };
}
