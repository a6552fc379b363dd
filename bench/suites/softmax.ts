// Softmax over rows of 1024, in the layout 'auto' picks (marked '*') and, in a full run, the other.
import { softmax } from '../../src/ops/softmax.ts';
import { softmaxVariantFor } from '../../src/launch/softmax.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants, rowCache } from '../lib/simple.ts';

export async function benchSoftmax(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const cols = 1024;
  const rowStats = rowCache(cols, (x, at) => {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[at + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(x[at + j] - max);
    return [max, sum];
  });
  await benchSimple(
    ctx,
    {
      section: 'softmax',
      op: 'softmax rows',
      shape: [4096, cols],
      inputs: 1,
      bytes: (n) => 2 * 4 * n,
      ours: ([x]) => softmax(x),
      peer: ([x], p) => p.tf.softmax(x),
      ref: ([x], i) => {
        const [max, sum] = rowStats(x, i);
        return Math.exp(x[i] - max) / sum;
      },
      variants: layoutVariants(ctx, gpu.tuning.softmax, softmaxVariantFor(gpu, 1024, 4096), ['row', 'workgroup']),
    },
    20,
  );
}
