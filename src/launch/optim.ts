// Launches of kernels/optim.wgsl (no autograd): one optimizer update of a parameter in place,
// and the device-side gradient clipping scale. The optimizers themselves live in src/optim.
import source from '../../kernels/optim.wgsl';
import { ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { scope, type Tensor } from '../tensor.ts';
import { sumSquares } from './reduce.ts';

/** The step values an update reads (struct Hyper in WGSL; written once per step per group).
 * bias1, bias2: AdamW's bias corrections 1 - beta1^t, 1 - beta2^t. */
export const HYPER_FIELDS = ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'bias1', 'bias2', 'momentum'] as const;
export type Hyper = Record<(typeof HYPER_FIELDS)[number], number>;
/** The clipping state clip_scale writes and the updates read (struct ClipState): the
 * gradient scale, the global norm, whether this step is skipped, steps skipped so far. */
export const CLIP_FIELDS = ['scale', 'norm', 'skip', 'skipped'] as const;
export type ClipState = Record<(typeof CLIP_FIELDS)[number], number>;

const struct = (name: string, fields: readonly string[]) => `struct ${name} { ${fields.map((f) => `${f}: f32`).join(', ')} }`;

export const optimKernel = defineKernel({
  file: 'optim.wgsl',
  source,
  generated: `${struct('Hyper', HYPER_FIELDS)}\n${struct('ClipState', CLIP_FIELDS)}`,
  // n: the parameter's elements (clip_scale: the number of parameter tensors); maxNorm: the
  // clipping threshold (0: report the norm only). state / stateOut: one buffer, read by the
  // updates and written by clip_scale; sq: one sum of squares per parameter tensor.
  params: { n: 'u32', maxNorm: 'f32' },
  buffers: { P: write(), G: read(), M: write(), V: write(), hyper: read('Hyper'), state: read('ClipState'), sq: read(), stateOut: write('ClipState') },
  entries: {
    sgd: ['P', 'G', 'M', 'hyper', 'state'],
    adamw: ['P', 'G', 'M', 'V', 'hyper', 'state'],
    clip_scale: ['sq', 'stateOut'],
  },
});

/** Hyper values in struct order (for gpu.upload into a group's hyper buffer). */
export function packHyper(h: Hyper): Float32Array {
  return Float32Array.from(HYPER_FIELDS, (f) => h[f]);
}

/** Unpacks a ClipState read back from the device. */
export function unpackClipState(data: ArrayBuffer): ClipState {
  const f = new Float32Array(data);
  return Object.fromEntries(CLIP_FIELDS.map((k, i) => [k, f[i]])) as ClipState;
}

/** Bytes of a ClipState buffer (and of a Hyper buffer). */
export const CLIP_STATE_BYTES = CLIP_FIELDS.length * 4;
export const HYPER_BYTES = HYPER_FIELDS.length * 4;

/** An optimizer's state buffers and step values for one parameter. */
export interface OptimState {
  /** First moment (SGD: momentum), the parameter's size. */
  m: GPUBuffer;
  /** Second moment (AdamW only). */
  v: GPUBuffer | null;
  /** The step values (Hyper, packed by packHyper). */
  hyper: GPUBuffer;
  /** The clipping state (ClipState; clipScale writes it). */
  state: GPUBuffer;
}

/** Updates p in place from its gradient: SGD with momentum, or AdamW (state.v needed). */
export function optimizerUpdate(kind: 'sgd' | 'adamw', p: Tensor, grad: Tensor, state: OptimState): void {
  const common = { params: { n: p.size, maxNorm: 0 }, workgroups: grid1d(p.size, 256), label: `${kind} ${p.name}` };
  const { m, v, hyper } = state;
  if (kind === 'sgd') p.gpu.launch(optimKernel.sgd, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, hyper, state: state.state } });
  else {
    if (!v) throw new ValueError(`adamw ${p.name}: the second-moment buffer is missing`);
    p.gpu.launch(optimKernel.adamw, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, V: v, hyper, state: state.state } });
  }
}

/**
 * The global gradient norm's clipping state, on the device: sq[i] = sum(grads[i]^2) (0 for a
 * parameter without a gradient), then the ClipState in `state`: scale min(1, maxNorm / norm)
 * (1 when maxNorm is 0), the norm, skip (the norm is not finite), steps skipped so far.
 */
export function clipScale(gpu: Gpu, grads: readonly (Tensor | null)[], sq: GPUBuffer, maxNorm: number, state: GPUBuffer): void {
  scope(() =>
    grads.forEach((g, i) => {
      if (!g) gpu.clear(sq, i * 4, 4);
      else gpu.copy(sumSquares(g).buffer, 0, sq, i * 4, 4);
    }),
  );
  gpu.launch(optimKernel.clip_scale, {
    params: { n: grads.length, maxNorm },
    buffers: { sq, stateOut: state },
    workgroups: [1],
    label: 'clip gradient norm',
  });
}
