// Sums along the last axis (short and long rows; in a full run in both layouts, the one 'auto'
// picks marked '*') and, in a full run, along the first.
import { sum } from '../../src/ops/reduce.ts';
import { reduceChunks, reduceVariantFor } from '../../src/launch/reduce.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants } from '../lib/simple.ts';

export async function benchReduce(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const cases: { shape: number[]; axis: number }[] = [
    { shape: [4096, 1024], axis: 1 },
    { shape: [64, 262144], axis: 1 },
    ...(ctx.quick ? [] : [{ shape: [4096, 1024], axis: 0 }]),
  ];
  let seed = 10;
  for (const c of cases) {
    const outs = c.shape.filter((_, i) => i !== c.axis).reduce((p, d) => p * d, 1);
    // The layout of the (first) pass; along the first axis there is one layout.
    const last = c.axis === c.shape.length - 1;
    const chunks = reduceChunks(outs, c.shape[c.axis]);
    const chosen = reduceVariantFor(gpu, last ? 1 : 2, Math.ceil(c.shape[c.axis] / chunks), outs * chunks);
    await benchSimple(
      ctx,
      {
        section: 'reduce',
        op: `sum axis ${c.axis}`,
        shape: c.shape,
        inputs: 1,
        bytes: (n) => 4 * n + 4 * outs,
        ours: ([x]) => sum(x, c.axis),
        peer: ([x], p) => p.tf.sum(x, c.axis),
        variants: last ? layoutVariants(ctx, gpu.tuning.reduce, chosen, ['row', 'workgroup']) : undefined,
      },
      seed++,
    );
  }
}
