// Softmax and log-softmax over the last axis (kernels/softmax.wgsl).
import source from '../../kernels/softmax.wgsl';
import { record } from '../autograd.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Uniforms, checkInputs } from './util.ts';

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  const gpu = checkInputs(op, [x]);
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const uniforms = new Uniforms().u32(rows, n, 0, 0).bytes();
  const y = new Tensor(gpu, x.shape, 'f32', undefined, op);
  const fwd = gpu.kernel({ file: 'softmax.wgsl', source, entry: 'softmax', flags: { LOG: log }, bindings: ['uniform', 'read', 'write'] });
  gpu.dispatch(fwd, { uniforms, buffers: [x.buffer, y.buffer], workgroups: grid1d(rows, 64), label: `${op} ${fmtShape(x.shape)}` });
  return record(y, op, [x], (gy) => {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, `grad.${op}`);
    const bwd = gpu.kernel({
      file: 'softmax.wgsl',
      source,
      entry: 'softmax_backward',
      flags: { LOG: log },
      bindings: ['uniform', 'read', null, 'read', 'write'],
    });
    gpu.dispatch(bwd, { uniforms, buffers: [y.buffer, gy.buffer, gx.buffer], workgroups: grid1d(rows, 64), label: `${op}.backward ${fmtShape(x.shape)}` });
    return [gx];
  });
}

/** exp(x) / sum(exp(x)) over the last axis. */
export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
/** x - logsumexp(x) over the last axis. */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);
