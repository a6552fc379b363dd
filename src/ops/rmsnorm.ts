// RMS normalisation over the last axis (kernels/rmsnorm.wgsl, src/launch/rmsnorm.ts; the
// kernel layout is chosen per device by gpu.tuning.rmsNorm).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { rmsNormBackward, rmsNormForward } from '../launch/rmsnorm.ts';

/**
 * RMSNorm over the last axis, computed in f32 (transformers' Qwen3RMSNorm / LlamaRMSNorm;
 * torch.nn.RMSNorm with elementwise_affine): y = weight * x / sqrt(mean(x^2) + eps), with no
 * mean subtraction, no bias and no +1 offset on the weight. x [..., C], weight [C] ->
 * [..., C]. Gradients for x and weight (the weight's summed over rows deterministically).
 * Rows with |x| above 1e16 (or below 1e-16 when eps < 1e-28) are rescaled by a power of two
 * before squaring, so they neither overflow nor lose precision (PyTorch's f32 gives 0 or
 * NaN for |x| > 1.8e19). A row of zeros with eps = 0 gives NaN, as in PyTorch.
 * eps: Qwen3's rms_norm_eps is 1e-6.
 * @throws ShapeError when weight is not [C]; ValueError when eps is negative or not finite.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const { y, stats, variant } = rmsNormForward(x, weight, eps);
  y.own(stats);
  return record(y, 'rmsNorm', [x, weight], (gy, acc) => {
    const want = { x: x.requiresGrad, weight: weight.requiresGrad };
    // Gradients gathered so far by x (the residual stream) and the weight (a norm shared by
    // several calls) are added in the kernels' stores.
    const sofar = { x: want.x ? acc(0) : null, weight: want.weight ? acc(1) : null };
    const { gx, gw } = rmsNormBackward(x, weight, stats, gy, variant, want, sofar);
    return [gx, gw];
  });
}
