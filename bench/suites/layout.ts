// A strided copy kernel (kernels/layout.wgsl gather): every output element is one read at a
// computed offset; the peer transposes too.
import { transpose } from '../../src/ops/layout.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple } from '../lib/simple.ts';

export async function benchLayout(ctx: Ctx): Promise<void> {
  await benchSimple(
    ctx,
    {
      section: 'layout',
      op: 'transpose (strided copy)',
      shape: [4096, 1024],
      inputs: 1,
      bytes: (m) => 2 * 4 * m,
      ours: ([x]) => transpose(x),
      peer: ([x], p) => p.tf.transpose(x),
      ref: ([x], i) => x[(i % 4096) * 1024 + Math.floor(i / 4096)],
    },
    7,
  );
}
