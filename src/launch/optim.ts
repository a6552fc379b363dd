// Launches of kernels/optim.wgsl (no autograd): one optimizer update of a parameter in place,
// and the device-side gradient clipping scale. The optimizers themselves live in src/optim.
import source from '../../kernels/optim.wgsl';
import { ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { scope, type Tensor } from '../tensor.ts';
import { square } from './elementwise.ts';
import { sum } from './reduce.ts';

export const optimKernel = defineKernel({
  file: 'optim.wgsl',
  source,
  // n: the parameter's elements (clip_scale: the number of parameter tensors). hyper: the
  // 8 step values (kernels/optim.wgsl); scale / scaleOut: one buffer, read by the updates
  // and written by clip_scale; sq: one sum of squares per parameter tensor.
  params: { n: 'u32' },
  buffers: { P: write(), G: read(), M: write(), V: write(), hyper: read(), scale: read(), sq: read(), scaleOut: write() },
  entries: {
    sgd: ['P', 'G', 'M', 'hyper', 'scale'],
    adamw: ['P', 'G', 'M', 'V', 'hyper', 'scale'],
    clip_scale: ['hyper', 'sq', 'scaleOut'],
  },
});

/** An optimizer's state buffers and step values for one parameter. */
export interface OptimState {
  /** First moment (SGD: momentum), the parameter's size. */
  m: GPUBuffer;
  /** Second moment (AdamW only). */
  v: GPUBuffer | null;
  /** The 8 step values [lr, beta1, beta2, eps, weightDecay, 1 - beta1^t, 1 - beta2^t, momentum]. */
  hyper: GPUBuffer;
  /** [gradient scale, global norm, skip, steps skipped] (clipScale writes it). */
  scale: GPUBuffer;
}

/** Updates p in place from its gradient: SGD with momentum, or AdamW (state.v needed). */
export function optimizerUpdate(kind: 'sgd' | 'adamw', p: Tensor, grad: Tensor, state: OptimState): void {
  const common = { params: { n: p.size }, workgroups: grid1d(p.size, 256), label: `${kind} ${p.name}` };
  const { m, v, hyper, scale } = state;
  if (kind === 'sgd') p.gpu.launch(optimKernel.sgd, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, hyper, scale } });
  else {
    if (!v) throw new ValueError(`adamw ${p.name}: the second-moment buffer is missing`);
    p.gpu.launch(optimKernel.adamw, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, V: v, hyper, scale } });
  }
}

/**
 * The global gradient norm's clipping scale, on the device: sq[i] = sum(grads[i]^2) (0 for a
 * parameter without a gradient), then scale = [min(1, maxNorm / norm) or 1, norm, skip,
 * skipped so far] from clipHyper[0] = maxNorm (kernels/optim.wgsl, clip_scale).
 */
export function clipScale(gpu: Gpu, grads: readonly (Tensor | null)[], sq: GPUBuffer, clipHyper: GPUBuffer, scale: GPUBuffer): void {
  scope(() =>
    grads.forEach((g, i) => {
      if (!g) gpu.clear(sq, i * 4, 4);
      else gpu.copy(sum(square(g)).buffer, 0, sq, i * 4, 4);
    }),
  );
  gpu.launch(optimKernel.clip_scale, {
    params: { n: grads.length },
    buffers: { hyper: clipHyper, sq, scaleOut: scale },
    workgroups: [1],
    label: 'clip gradient norm',
  });
}
