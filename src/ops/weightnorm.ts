// Weight normalisation (a composite of existing ops; the tape gives both gradients).
import { ShapeError } from '../errors.ts';
import { willRecord } from '../autograd.ts';
import { scope, fmtShape, type Tensor } from '../tensor.ts';
import { checkInputs } from '../launch/util.ts';
import { mul, mulScalar } from './elementwise.ts';
import { reshape } from './layout.ts';
import { rmsNorm } from './rmsnorm.ts';
import { unitWeight } from './creation.ts';

/**
 * Weight normalisation over dim 0 (torch.nn.utils.weight_norm(module, dim=0) and
 * torch.nn.utils.parametrizations.weight_norm: weight_g / original0 = g, weight_v /
 * original1 = v): W[o, ...] = g[o] * v[o, ...] / ||v[o, ...]||_2, the norm over all of v's
 * other axes. v [O, ...] (a Linear's weight: [O, I]); g [O, 1, ...] (PyTorch's shape: v's
 * rank with trailing 1s) or [O] -> W with v's shape. Gradients for g and v through the
 * tape: dg[o] = sum(gW[o] * v[o]) / ||v[o]||, dv = (g / ||v||) (gW - v sum(gW v) / ||v||^2).
 * A zero row of v gives NaN, as in PyTorch.
 */
export function weightNorm(g: Tensor, v: Tensor): Tensor {
  checkInputs('weightNorm', [g, v]);
  if (v.rank < 2) throw new ShapeError(`weightNorm: v ${fmtShape(v.shape)} needs at least two dimensions ([out, in, ...])`);
  const O = v.shape[0];
  const gOk = g.size === O && g.shape[0] === O && (g.rank === 1 || (g.rank === v.rank && g.shape.slice(1).every((d) => d === 1)));
  if (!gOk)
    throw new ShapeError(`weightNorm: g ${fmtShape(g.shape)} must be [${O}] or [${[O, ...v.shape.slice(1).map(() => 1)].join('x')}] for v ${fmtShape(v.shape)}`);
  // A composite of differentiable ops. Recorded, its intermediates are inputs of the graph's
  // nodes until backward (the caller's scope frees them); without a tape they are freed now.
  // v's rows over their norms is RMSNorm with a unit weight and eps 0, over sqrt(n): 3
  // dispatches forward and 2 backward with g frozen (as in the model's heads), a few more for
  // g's gradient, where square, sum, rsqrt and two muls took 5 and about 9 (on lavapipe every
  // dispatch costs ~45 us however small the tensor).
  const build = () => {
    const n = v.size / O;
    const v2 = v.rank === 2 ? v : reshape(v, [O, n]);
    const g2 = g.rank === 2 ? g : reshape(g, [O, 1]);
    const w2 = mul(rmsNorm(v2, unitWeight(v.gpu, n), 0), mulScalar(g2, 1 / Math.sqrt(n)));
    return v.rank === 2 ? w2 : reshape(w2, v.shape);
  };
  return willRecord([g, v]) ? build() : scope(build);
}
