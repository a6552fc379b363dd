// Sums along the last axis (short and long rows) and, in a full run, along the first.
import { sum } from '../../src/ops/reduce.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple } from '../lib/simple.ts';

export async function benchReduce(ctx: Ctx): Promise<void> {
  const cases: { shape: number[]; axis: number }[] = [
    { shape: [4096, 1024], axis: 1 },
    { shape: [64, 262144], axis: 1 },
    ...(ctx.quick ? [] : [{ shape: [4096, 1024], axis: 0 }]),
  ];
  let seed = 10;
  for (const c of cases) {
    const outs = c.shape.filter((_, i) => i !== c.axis).reduce((p, d) => p * d, 1);
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
      },
      seed++,
    );
  }
}
