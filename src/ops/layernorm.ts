// Layer normalisation over the last axis with affine parameters (kernels/layernorm.wgsl,
// src/launch/layernorm.ts).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { layerNormBackwardInput, layerNormBackwardParams, layerNormForward } from '../launch/layernorm.ts';

/** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; gamma and beta are [n]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const { y, stats } = layerNormForward(x, gamma, beta, eps);
  y.own(stats);
  return record(y, 'layerNorm', [x, gamma, beta], (gy, acc) => {
    // Gradients gathered so far (x's from the residual stream, gamma's and beta's from other
    // calls of a shared norm) are added in the kernels' stores.
    const gx = x.requiresGrad ? layerNormBackwardInput(x, gamma, stats, gy, acc(0)) : null;
    if (!gamma.requiresGrad && !beta.requiresGrad) return [gx, null, null];
    const sofar = { gamma: gamma.requiresGrad ? acc(1) : null, beta: beta.requiresGrad ? acc(2) : null };
    const { gGamma, gBeta } = layerNormBackwardParams(x, stats, gy, sofar);
    return [gx, gamma.requiresGrad ? gGamma : null, beta.requiresGrad ? gBeta : null];
  });
}
