// A strided copy kernel (kernels/layout.wgsl gather): every output element is one read at a
// computed offset; the peer transposes too. Each layout of the copy (in a quick run only the
// one 'auto' picks, marked '*').
import { transpose } from '../../src/ops/layout.ts';
import { layoutVariantFor, rowStrides, type LayoutVariant } from '../../src/launch/layout.ts';
import type { Ctx } from '../lib/case.ts';
import { benchSimple } from '../lib/simple.ts';

export async function benchLayout(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const xs = rowStrides([4096, 1024]);
  const chosen = layoutVariantFor(gpu, 'gather', [1024, 4096], [xs[1], xs[0]]);
  const names: LayoutVariant[] = ctx.quick ? [chosen] : [chosen, ...(['run', 'element', 'tiled'] as const).filter((v) => v !== chosen)];
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
      variants: { names, chosen, use: (v) => void (gpu.tuning.layout.variant = (v ?? 'auto') as LayoutVariant) },
    },
    7,
  );
}
