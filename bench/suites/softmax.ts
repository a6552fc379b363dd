// Softmax over rows of 1024.
import { softmax } from '../../src/ops/softmax.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple } from '../lib/simple.ts';

export async function benchSoftmax(ctx: Ctx): Promise<void> {
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
    },
    20,
  );
}
