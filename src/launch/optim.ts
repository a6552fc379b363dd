// Launches of kernels/optim.wgsl (no autograd): one optimizer update of a parameter in place,
// and the device-side gradient clipping scale. The optimizers themselves live in src/optim.
import source from '../../kernels/optim.wgsl';
import gradNormSource from '../../kernels/gradnorm.wgsl';
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
  // adamw3: n0..n2, P0..V2 the three slots' sizes and buffers.
  params: { n: 'u32', maxNorm: 'f32', n0: 'u32', n1: 'u32', n2: 'u32' },
  buffers: {
    P: write(), G: read(), M: write(), V: write(), hyper: read('Hyper'), state: read('ClipState'), sq: read(), stateOut: write('ClipState'),
    P0: write(), G0: read(), M0: write(), V0: write(),
    P1: write(), G1: read(), M1: write(), V1: write(),
    P2: write(), G2: read(), M2: write(), V2: write(),
  },
  entries: {
    sgd: ['P', 'G', 'M', 'hyper', 'state'],
    adamw: ['P', 'G', 'M', 'V', 'hyper', 'state'],
    adamw3: ['P0', 'G0', 'M0', 'V0', 'P1', 'G1', 'M1', 'V1', 'P2', 'G2', 'M2', 'V2', 'hyper', 'state'],
    clip_scale: ['sq', 'stateOut'],
  },
});

const gslot = read('f32', { optional: true });
/** kernels/gradnorm.wgsl: n0..n6 the elements of gradients G0..G6 (0: no tensor in that slot),
 * i0..i6 where their sums go in sq. */
export const gradNormKernel = defineKernel({
  file: 'gradnorm.wgsl',
  source: gradNormSource,
  params: { i0: 'u32', i1: 'u32', i2: 'u32', i3: 'u32', i4: 'u32', i5: 'u32', i6: 'u32', n0: 'u32', n1: 'u32', n2: 'u32', n3: 'u32', n4: 'u32', n5: 'u32', n6: 'u32' },
  buffers: { G0: gslot, G1: gslot, G2: gslot, G3: gslot, G4: gslot, G5: gslot, G6: gslot, sq: write() },
  entries: { sum_squares_multi: ['G0', 'G1', 'G2', 'G3', 'G4', 'G5', 'G6', 'sq'] },
});

/** Gradients one sum_squares_multi launch reads: 7 and the output make 8 storage buffers,
 * WebGPU's default maxStorageBuffersPerShaderStage. */
export const SUM_SQUARES_GROUP = 7;
/** The largest gradient (elements) summed by one workgroup in that launch: 256 lanes walk it
 * in at most 256 strides. */
export const GRAD_NORM_BATCH_MAX = 65536;

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
  const common = { params: { n: p.size, maxNorm: 0, n0: 0, n1: 0, n2: 0 }, workgroups: grid1d(p.size, 256), label: `${kind} ${p.name}` };
  const { m, v, hyper } = state;
  if (kind === 'sgd') p.gpu.launch(optimKernel.sgd, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, hyper, state: state.state } });
  else {
    if (!v) throw new ValueError(`adamw ${p.name}: the second-moment buffer is missing`);
    p.gpu.launch(optimKernel.adamw, { ...common, buffers: { P: p.buffer, G: grad.buffer, M: m, V: v, hyper, state: state.state } });
  }
}

/** Storage buffers adamw3 binds: the device must allow this many per shader stage. */
export const ADAMW3_STORAGE_BUFFERS = 14;

/** Whether the device can run adamw3 (lavapipe's 16 storage buffers per stage can; WebGPU's
 * default 8 cannot, and AdamW then updates one parameter per dispatch). */
export function canUpdateThree(gpu: Gpu): boolean {
  return gpu.limits.maxStorageBuffersPerShaderStage >= ADAMW3_STORAGE_BUFFERS;
}

/**
 * AdamW on three parameters in one dispatch (kernels/optim.wgsl, adamw3): the same update as
 * optimizerUpdate('adamw', ...) for each, bit for bit. The three share `hyper` (one parameter
 * group) and `state`; their buffers must be distinct. Check canUpdateThree first.
 */
export function adamwUpdate3(gpu: Gpu, ps: readonly [Tensor, Tensor, Tensor], grads: readonly [Tensor, Tensor, Tensor], moments: readonly { m: GPUBuffer; v: GPUBuffer | null }[], hyper: GPUBuffer, state: GPUBuffer): void {
  const v = (k: number) => {
    const b = moments[k].v;
    if (!b) throw new ValueError(`adamw ${ps[k].name}: the second-moment buffer is missing`);
    return b;
  };
  const [w0, w1] = grid1d(Math.max(ps[0].size, ps[1].size, ps[2].size), 256);
  gpu.launch(optimKernel.adamw3, {
    params: { n: 0, maxNorm: 0, n0: ps[0].size, n1: ps[1].size, n2: ps[2].size },
    buffers: {
      P0: ps[0].buffer, G0: grads[0].buffer, M0: moments[0].m, V0: v(0),
      P1: ps[1].buffer, G1: grads[1].buffer, M1: moments[1].m, V1: v(1),
      P2: ps[2].buffer, G2: grads[2].buffer, M2: moments[2].m, V2: v(2),
      hyper, state,
    },
    workgroups: [w0, w1, 3],
    label: `adamw ${ps.map((p) => p.name).join(', ')}`,
  });
}

/**
 * The global gradient norm's clipping state, on the device: sq[i] = sum(grads[i]^2) (0 for a
 * parameter without a gradient), then the ClipState in `state`: scale min(1, maxNorm / norm)
 * (1 when maxNorm is 0), the norm, skip (the norm is not finite), steps skipped so far.
 */
export function clipScale(gpu: Gpu, grads: readonly (Tensor | null)[], sq: GPUBuffer, maxNorm: number, state: GPUBuffer): void {
  // Gradients up to GRAD_NORM_BATCH_MAX elements go SUM_SQUARES_GROUP to a dispatch (a missing
  // one sums to 0): the small preset's 132 parameters in 19 dispatches, where a reduction and a
  // copy each took 314 (on lavapipe a dispatch costs ~0.1 ms however small its tensor). A
  // larger one keeps the reduction over the whole device (one workgroup would walk it alone).
  const batched: number[] = [];
  scope(() =>
    grads.forEach((g, i) => {
      if (g && g.size > GRAD_NORM_BATCH_MAX) gpu.copy(sumSquares(g).buffer, 0, sq, i * 4, 4);
      else batched.push(i);
    }),
  );
  for (let k0 = 0; k0 < batched.length; k0 += SUM_SQUARES_GROUP) {
    const idx = batched.slice(k0, k0 + SUM_SQUARES_GROUP);
    const at = (k: number) => (k < idx.length ? idx[k] : 0);
    const size = (k: number) => (k < idx.length ? (grads[idx[k]]?.size ?? 0) : 0);
    const buf = (k: number) => (k < idx.length ? (grads[idx[k]]?.buffer ?? null) : null);
    gpu.launch(gradNormKernel.sum_squares_multi, {
      params: {
        i0: at(0), i1: at(1), i2: at(2), i3: at(3), i4: at(4), i5: at(5), i6: at(6),
        n0: size(0), n1: size(1), n2: size(2), n3: size(3), n4: size(4), n5: size(5), n6: size(6),
      },
      buffers: { G0: buf(0), G1: buf(1), G2: buf(2), G3: buf(3), G4: buf(4), G5: buf(5), G6: buf(6), sq },
      workgroups: [idx.length],
      label: `sum of squares of ${idx.length} gradients`,
    });
  }
  gpu.launch(optimKernel.clip_scale, {
    params: { n: grads.length, maxNorm, n0: 0, n1: 0, n2: 0 },
    buffers: { sq, stateOut: state },
    workgroups: [1],
    label: 'clip gradient norm',
  });
}
