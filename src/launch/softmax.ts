// Launches of kernels/softmax.wgsl (no autograd): softmax and log-softmax over the last axis,
// one invocation or one workgroup per row (gpu.tuning.softmax.variant).
import source from '../../kernels/softmax.wgsl';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';
import { tunedRowLayout } from './row-layout.ts';

export const softmaxKernel = defineKernel({
  file: 'softmax.wgsl',
  source,
  params: { rows: 'u32', n: 'u32' },
  buffers: { X: read(), Y: write(), GY: read(), GX: write() },
  entries: {
    softmax: ['X', 'Y'],
    softmax_backward: ['X', 'GY', 'GX'],
    softmax_wg: ['X', 'Y'],
    softmax_backward_wg: ['X', 'GY', 'GX'],
  },
});

export type SoftmaxLayout = Exclude<Tuning['softmax']['variant'], 'auto'>;

/**
 * The layout for rows of n values: gpu.tuning.softmax.variant, or on 'auto' one invocation per
 * row on CPU adapters (lavapipe, SwiftShader: a barrier switches between coroutines there; at
 * [4096x1024] 'row' measured 8.4-13.7 ms forward and 'workgroup' 15.4-21.1 ms, `npm run bench -- --only
 * softmax` on the 2-thread AVX-512 EPYC) and one workgroup per row
 * on GPUs for rows of 128 or more, where per-row invocations read with a stride of a row
 * between neighbouring lanes (uncoalesced: an H200 ran 'row' at 90 GB/s against a 3.8 TB/s
 * copy; 'workgroup' is unmeasured on a GPU). Where autotuning is on, 'auto' follows the measured
 * choice of the shape class once it has one (src/launch/row-layout.ts; the backward takes the
 * forward's class).
 */
export function softmaxVariantFor(gpu: Gpu, n: number, rows: number): SoftmaxLayout {
  const choice = gpu.tuning.softmax.variant;
  if (choice !== 'auto') return choice;
  return tunedRowLayout(gpu, { op: 'softmax', rows, n }, !gpu.isLavapipe && n >= 128 ? 'workgroup' : 'row');
}

/** The workgroups of softmax's kernels for [rows, n] and whether they are the workgroup layout's. */
function layout(gpu: Gpu, rows: number, n: number): { wg: boolean; workgroups: [number, number, number] } {
  const wg = softmaxVariantFor(gpu, n, rows) === 'workgroup';
  return { wg, workgroups: wg ? grid1d(rows, 1) : grid1d(rows, 64) };
}

/** softmax (or, with `log`, log-softmax) of x over its last axis: a new tensor of x's shape. */
export function softmaxForward(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  const gpu = checkInputs(op, [x]);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const y = new Tensor(gpu, x.shape, 'f32', undefined, op);
  const { wg, workgroups } = layout(gpu, rows, n);
  gpu.launch(wg ? softmaxKernel.softmax_wg : softmaxKernel.softmax, {
    flags: { LOG: log },
    params: { rows, n },
    buffers: { X: x.buffer, Y: y.buffer },
    workgroups,
    label: `${op} ${fmtShape(x.shape)}`,
  });
  return y;
}

/** The input gradient of softmax (log-softmax) from its output y and output gradient gy. */
export function softmaxBackward(y: Tensor, gy: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  const gpu = checkInputs(`${op}.backward`, [y, gy]);
  const n = y.shape[y.rank - 1];
  const rows = y.size / n;
  const gx = new Tensor(gpu, y.shape, 'f32', undefined, `grad.${op}`);
  const { wg, workgroups } = layout(gpu, rows, n);
  gpu.launch(wg ? softmaxKernel.softmax_backward_wg : softmaxKernel.softmax_backward, {
    flags: { LOG: log },
    params: { rows, n },
    buffers: { X: y.buffer, GY: gy.buffer, GX: gx.buffer },
    workgroups,
    label: `${op}.backward ${fmtShape(y.shape)}`,
  });
  return gx;
}
