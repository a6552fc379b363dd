// Layer normalisation over rows of 1024 (ours only: tfjs has no fused layerNorm), in the layout
// 'auto' picks (marked '*') and, in a full run, the other.
import { tensor } from '../../src/ops/creation.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { layerNormVariantFor } from '../../src/launch/layernorm.ts';
import { hostRandn, type Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants } from '../lib/simple.ts';

export async function benchLayerNorm(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const [rows, cols] = [4096, 1024];
  const gamma = tensor(gpu, hostRandn(cols, 21), [cols], 'gamma');
  const beta = tensor(gpu, hostRandn(cols, 22), [cols], 'beta');
  await benchSimple(
    ctx,
    {
      section: 'layernorm',
      op: 'layerNorm rows',
      shape: [rows, cols],
      inputs: 1,
      // x in, y out, gamma and beta in, the saved [rows, 2] statistics out.
      bytes: (n) => 2 * 4 * n + 2 * 4 * cols + 2 * 4 * rows,
      ours: ([x]) => layerNorm(x, gamma, beta),
      peer: null,
      peerNote: 'tfjs has no fused layerNorm (a composite would do different work)',
      variants: layoutVariants(ctx, gpu.tuning.layerNorm, layerNormVariantFor(gpu, cols, rows), ['row', 'workgroup']),
    },
    23,
  );
  gamma.dispose();
  beta.dispose();
}
