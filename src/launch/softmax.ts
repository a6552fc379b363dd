// Launches of kernels/softmax.wgsl (no autograd): softmax and log-softmax over the last axis.
import source from '../../kernels/softmax.wgsl';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';

export const softmaxKernel = defineKernel({
  file: 'softmax.wgsl',
  source,
  params: { rows: 'u32', n: 'u32' },
  buffers: { X: read(), Y: write(), GY: read(), GX: write() },
  entries: { softmax: ['X', 'Y'], softmax_backward: ['X', 'GY', 'GX'] },
});

/** softmax (or, with `log`, log-softmax) of x over its last axis: a new tensor of x's shape. */
export function softmaxForward(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  const gpu = checkInputs(op, [x]);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const y = new Tensor(gpu, x.shape, 'f32', undefined, op);
  gpu.launch(softmaxKernel.softmax, {
    flags: { LOG: log },
    params: { rows, n },
    buffers: { X: x.buffer, Y: y.buffer },
    workgroups: grid1d(rows, 64),
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
  gpu.launch(softmaxKernel.softmax_backward, {
    flags: { LOG: log },
    params: { rows, n },
    buffers: { X: y.buffer, GY: gy.buffer, GX: gx.buffer },
    workgroups: grid1d(rows, 64),
    label: `${op}.backward ${fmtShape(y.shape)}`,
  });
  return gx;
}
