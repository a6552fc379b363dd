// Batched matmul with optional transposes and a bias epilogue (kernels/matmul.wgsl,
// src/launch/matmul.ts; the kernel variant comes from gpu.tuning.matmul).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { matmul as launchMatmul, matmulPlan, type MatmulOptions } from '../launch/matmul.ts';
import { sumToShape } from '../launch/reduce.ts';

export { matmulVariantFor, type MatmulOptions, type MatmulVariant } from '../launch/matmul.ts';

/**
 * op(a) @ op(b) (+ bias), batched over leading dimensions (broadcast when one side has none).
 * a: [..., M, K] ([..., K, M] with transA); b: [..., K, N] ([..., N, K] with transB); bias [N].
 * Returns [...batch, M, N]. Throws ShapeError naming the shapes when they do not fit.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const bias = opts.bias;
  const c = launchMatmul(a, b, { transA, transB, bias });
  const inputs = bias ? [a, b, bias] : [a, b];
  return record(c, 'matmul', inputs, (g) => {
    // C = op(A) op(B): d op(A) = G op(B)^T, d op(B) = op(A)^T G.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      const full = !transA ? launchMatmul(g, b, { transB: !transB }) : launchMatmul(b, g, { transA: transB, transB: true });
      ga = sumToShape(full, a.shape);
    }
    if (b.requiresGrad) {
      const { bBatch, batch } = matmulPlan(a, b, transA, transB);
      if (bBatch === 0 && batch > 1 && !transA) {
        // B was shared across the batch: fold the batch into the rows, one matmul sums it.
        const M = a.shape[a.rank - 2];
        const af = a.view([batch * M, a.shape[a.rank - 1]]);
        const gf = g.view([batch * M, g.shape[g.rank - 1]]);
        gb = (!transB ? launchMatmul(af, gf, { transA: true }) : launchMatmul(gf, af, { transA: true })).view(b.shape);
      } else {
        const full = !transB ? launchMatmul(a, g, { transA: !transA }) : launchMatmul(g, a, { transA: true, transB: transA });
        gb = sumToShape(full, b.shape);
      }
    }
    const gbias = bias?.requiresGrad ? sumToShape(g, bias.shape) : null;
    return bias ? [ga, gb, gbias] : [ga, gb];
  });
}
