// Launches of kernels/layernorm.wgsl (no autograd): layer normalisation over the last axis
// with affine parameters, and its input and parameter gradients.
import source from '../../kernels/layernorm.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkFinite, checkInputs } from './util.ts';

export const layerNormKernel = defineKernel({
  file: 'layernorm.wgsl',
  source,
  // The input is a [rows, n] view; stats holds [mean, rstd] per row.
  params: { rows: 'u32', n: 'u32', eps: 'f32' },
  buffers: {
    X: read(), gamma: read(), beta: read(), Y: write(), stats: write(),
    GY: read(), GX: write(), statsIn: read(), GGamma: write(), GBeta: write(),
  },
  entries: {
    layernorm: ['X', 'gamma', 'beta', 'Y', 'stats'],
    layernorm_backward_input: ['X', 'gamma', 'GY', 'GX', 'statsIn'],
    layernorm_backward_params: ['X', 'GY', 'statsIn', 'GGamma', 'GBeta'],
  },
});

/**
 * (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; gamma and beta are [n].
 * Returns y (x's shape) and stats [rows, 2] (mean and 1/sqrt(var + eps) per row), which
 * the backward launches take.
 * @throws ShapeError when gamma or beta is not [n]; ValueError when eps is not finite.
 */
export function layerNormForward(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): { y: Tensor; stats: Tensor } {
  const gpu = checkInputs('layerNorm', [x, gamma, beta]);
  checkFinite('layerNorm', 'eps', eps);
  const n = x.shape[x.rank - 1];
  if (gamma.rank !== 1 || gamma.shape[0] !== n || beta.rank !== 1 || beta.shape[0] !== n)
    throw new ShapeError(`layerNorm: gamma ${fmtShape(gamma.shape)} and beta ${fmtShape(beta.shape)} must be [${n}] for input ${fmtShape(x.shape)}`);
  const rows = x.size / n;
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'layerNorm');
  const stats = new Tensor(gpu, [rows, 2], 'f32', undefined, 'layerNorm.stats');
  gpu.launch(layerNormKernel.layernorm, {
    params: { rows, n, eps },
    buffers: { X: x.buffer, gamma: gamma.buffer, beta: beta.buffer, Y: y.buffer, stats: stats.buffer },
    workgroups: grid1d(rows, 64),
    label: `layerNorm ${fmtShape(x.shape)}`,
  });
  return { y, stats };
}

/** The input gradient of layerNorm from x, gamma, the forward's stats and the output gradient gy. */
export function layerNormBackwardInput(x: Tensor, gamma: Tensor, stats: Tensor, gy: Tensor): Tensor {
  const gpu = checkInputs('layerNorm.backward', [x, gamma, stats, gy]);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.layerNorm.x');
  gpu.launch(layerNormKernel.layernorm_backward_input, {
    params: { rows, n, eps: 0 },
    buffers: { X: x.buffer, gamma: gamma.buffer, GY: gy.buffer, GX: gx.buffer, statsIn: stats.buffer },
    workgroups: grid1d(rows, 64),
    label: `layerNorm ${fmtShape(x.shape)}.backward`,
  });
  return gx;
}

/** The gradients of layerNorm's gamma and beta ([n] each: sums over rows). */
export function layerNormBackwardParams(x: Tensor, stats: Tensor, gy: Tensor): { gGamma: Tensor; gBeta: Tensor } {
  const gpu = checkInputs('layerNorm.backward', [x, stats, gy]);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const gGamma = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.gamma');
  const gBeta = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.beta');
  gpu.launch(layerNormKernel.layernorm_backward_params, {
    params: { rows, n, eps: 0 },
    buffers: { X: x.buffer, GY: gy.buffer, statsIn: stats.buffer, GGamma: gGamma.buffer, GBeta: gBeta.buffer },
    workgroups: [Math.ceil(n / 64), 1, 1],
    label: `layerNorm ${fmtShape(x.shape)}.backward params`,
  });
  return { gGamma, gBeta };
}
