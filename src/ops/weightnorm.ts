// Weight normalisation (a composite of existing ops; the tape gives both gradients).
import { ShapeError } from '../errors.ts';
import { isGradEnabled } from '../autograd.ts';
import { scope, fmtShape, type Tensor } from '../tensor.ts';
import { checkInputs } from '../launch/util.ts';
import { mul, rsqrt, square } from './elementwise.ts';
import { sum } from './reduce.ts';
import { reshape } from './layout.ts';

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
  const build = () => {
    const v2 = v.rank === 2 ? v : reshape(v, [O, v.size / O]);
    const g2 = g.rank === 2 ? g : reshape(g, [O, 1]);
    const w2 = mul(v2, mul(g2, rsqrt(sum(square(v2), 1, true))));
    return v.rank === 2 ? w2 : reshape(w2, v.shape);
  };
  return isGradEnabled() && (g.requiresGrad || v.requiresGrad) ? build() : scope(build);
}
