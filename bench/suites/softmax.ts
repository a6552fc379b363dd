// Softmax over rows of 1024, in the layout 'auto' picks (marked '*') and, in a full run, the other.
import { softmax } from '../../src/ops/softmax.ts';
import { softmaxVariantFor } from '../../src/launch/softmax.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants } from '../lib/simple.ts';

export async function benchSoftmax(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  await benchSimple(
    ctx,
    {
      section: 'softmax',
      op: 'softmax rows',
      shape: [4096, 1024],
      inputs: 1,
      bytes: (n) => 2 * 4 * n,
      ours: ([x]) => softmax(x),
      peer: ([x], p) => p.tf.softmax(x),
      variants: layoutVariants(ctx, gpu.tuning.softmax, softmaxVariantFor(gpu, 1024, 4096), ['row', 'workgroup']),
    },
    20,
  );
}
