// Layer normalisation over rows of 1024 (ours only: tfjs has no fused layerNorm), in the layout
// 'auto' picks (marked '*') and, in a full run, the other.
import { tensor } from '../../src/ops/creation.ts';
import { layerNorm } from '../../src/ops/layernorm.ts';
import { layerNormVariantFor } from '../../src/launch/layernorm.ts';
import { hostRandn, type Ctx } from '../lib/case.ts';
import { benchSimple, layoutVariants, rowCache } from '../lib/simple.ts';

export async function benchLayerNorm(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const [rows, cols] = [4096, 1024];
  const [hg, hb] = [hostRandn(cols, 21), hostRandn(cols, 22)];
  const gamma = tensor(gpu, hg, [cols], 'gamma');
  const beta = tensor(gpu, hb, [cols], 'beta');
  const rowStats = rowCache(cols, (x, at) => {
    let mean = 0;
    for (let j = 0; j < cols; j++) mean += x[at + j];
    mean /= cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x[at + j] - mean) ** 2;
    return [mean, 1 / Math.sqrt(v / cols + 1e-5)];
  });
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
      // float64, eps 1e-5 (layerNorm's default)
      ref: ([x], i) => {
        const [mean, rstd] = rowStats(x, i);
        const j = i % cols;
        return (x[i] - mean) * rstd * hg[j] + hb[j];
      },
      variants: layoutVariants(ctx, gpu.tuning.layerNorm, layerNormVariantFor(gpu, cols, rows), ['row', 'workgroup']),
    },
    23,
  );
  gamma.dispose();
  beta.dispose();
}
