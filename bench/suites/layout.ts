// A strided copy kernel (kernels/layout.wgsl gather): every output element is one read at a
// computed offset; the peer transposes too. Each layout of the copy (in a quick run only the
// one 'auto' picks, marked '*').
import { transpose } from '../../src/ops/layout.ts';
import { layoutVariantFor, rowStrides } from '../../src/launch/layout.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants } from '../lib/simple.ts';

export async function benchLayout(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const xs = rowStrides([4096, 1024]);
  const chosen = layoutVariantFor(gpu, 'gather', [1024, 4096], [xs[1], xs[0]]);
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
      variants: layoutVariants(ctx, gpu.tuning.layout, chosen, ['run', 'element', 'tiled']),
    },
    7,
  );
}
