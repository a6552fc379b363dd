// Softmax and log-softmax over the last axis (kernels/softmax.wgsl, src/launch/softmax.ts).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { softmaxBackward, softmaxForward } from '../launch/softmax.ts';

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const y = softmaxForward(x, log);
  return record(y, log ? 'logSoftmax' : 'softmax', [x], (gy) => [softmaxBackward(y, gy, log)]);
}

/** exp(x) / sum(exp(x)) over the last axis. Any shape; the result has x's shape. */
export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
/** (x - max) - log(sum(exp(x - max))) over the last axis (the two parts kept apart: exact
 * for logits of any size, as torch.log_softmax). Any shape; the result has x's shape. */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);
