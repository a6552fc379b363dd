// Batched matmul with optional transposes and a bias epilogue (kernels/matmul.wgsl,
// src/launch/matmul.ts; the kernel variant comes from gpu.tuning.matmul), and the fused
// linear layers built on its epilogues (linearResidual, mlpGelu): the same arithmetic as the
// separate ops, bit for bit, in fewer dispatches (gpu.tuning.fuseEpilogues switches them off).
import { record, willRecord, type Accumulated } from '../autograd.ts';
import { ValueError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { matmul as launchMatmul, matmulEpilogue, matmulPlan, type MatmulOptions } from '../launch/matmul.ts';
import { mul as launchMul, unaryBackward } from '../launch/elementwise.ts';
import { sumToShape } from '../launch/reduce.ts';
import { prod, sameShape } from '../launch/util.ts';
import { add as addOp, gelu as geluOp, mul as mulOp } from './elementwise.ts';

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
  return record(c, 'matmul', inputs, (g, acc) => matmulGrads(a, b, bias, transA, transB, g, a.requiresGrad, launchMatmul, takes(acc)));
}

/**
 * The gradients of C = op(a) op(b) (+ bias) for dC = g: [da, db, dbias] (null where not
 * needed; da where needA, by default where a requires a gradient). `da` may come from a fused
 * launch (the GELU gradient in its store): daLaunch, which only a non-transposed a takes
 * (refused otherwise, so that a fused step is never dropped silently).
 */
function matmulGrads(
  a: Tensor, b: Tensor, bias: Tensor | undefined, transA: boolean, transB: boolean, g: Tensor,
  needA = a.requiresGrad, daLaunch: (g: Tensor, b: Tensor, opts: MatmulOptions) => Tensor = launchMatmul,
  take: { a?: Take; b?: Take; bias?: Take } = {},
): (Tensor | null)[] {
  // C = op(A) op(B): d op(A) = G op(B)^T, d op(B) = op(A)^T G.
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (transA && daLaunch !== launchMatmul) throw new ValueError('matmulGrads: a fused input-gradient launch needs a non-transposed a');
  if (needA) {
    const full = daLaunch !== launchMatmul ? daLaunch(g, b, { transB: !transB })
      : !transA ? matmulInto(g, b, { transB: !transB }, a.shape, take.a) : matmulInto(b, g, { transA: transB, transB: true }, a.shape, take.a);
    ga = sumToShape(full, a.shape);
  }
  if (b.requiresGrad) {
    const { bBatch, batch } = matmulPlan(a, b, transA, transB);
    if (bBatch === 0 && batch > 1 && !transA) {
      // B was shared across the batch: fold the batch into the rows, one matmul sums it.
      const M = a.shape[a.rank - 2];
      const af = a.view([batch * M, a.shape[a.rank - 1]]);
      const gf = g.view([batch * M, g.shape[g.rank - 1]]);
      gb = (!transB ? matmulInto(af, gf, { transA: true }, b.shape, take.b) : matmulInto(gf, af, { transA: true }, b.shape, take.b)).view(b.shape);
    } else {
      const full = !transB ? matmulInto(a, g, { transA: !transA }, b.shape, take.b) : matmulInto(g, a, { transA: true, transB: transA }, b.shape, take.b);
      gb = sumToShape(full, b.shape);
    }
  }
  const gbias = bias?.requiresGrad ? sumToShape(g, bias.shape, take.bias) : null;
  return bias ? [ga, gb, gbias] : [ga, gb];
}

type Take = () => Tensor | null;

/** The handovers of a linear layer's x, weight and bias, inputs 0, 1 and 2 of its node. */
const takes = (acc: Accumulated) => ({ a: () => acc(0), b: () => acc(1), bias: () => acc(2) });

/**
 * op(x) op(y), plus the gradient `take` hands over (GradNode.backward's `accumulated`) in the
 * matmul's residual epilogue where the result fills `target` as it is (no sum over broadcast
 * dimensions) and the epilogue applies (fuseEpilogues, a last dimension that is a multiple of
 * 4): the engine's add, in the same store, with the same bits. Else the plain matmul, nothing
 * taken, and the engine adds (as it does when gpu.tuning.fuseEpilogues is off: take gives null).
 */
function matmulInto(x: Tensor, y: Tensor, opts: MatmulOptions, target: readonly number[], take?: Take): Tensor {
  const { batchShape, M, N } = matmulPlan(x, y, !!opts.transA, !!opts.transB);
  const out = [...batchShape, M, N];
  const fits = prod(out) === prod(target) && sameShape(target.slice(-2), [M, N]);
  const acc = take && fits && N % 4 === 0 ? take() : null;
  if (!acc) return launchMatmul(x, y, opts);
  return matmulEpilogue(x, y, opts, { op: 'residual', residual: acc.view(out), keep: false, as: 'accumulate' }).out;
}

/** A linear layer's parameters, as torch.nn.Linear holds them: weight [out, in], bias [out]. */
export interface LinearParams {
  weight: Tensor;
  bias?: Tensor | null;
}

/** What follows a linear layer: LayerScale (scale [out], optional) and a residual add. */
export interface ResidualOptions {
  residual: Tensor;
  scale?: Tensor | null;
}

/** The gradients of out = residual + scale * p for dOut = g: [dp (null where not needed), dscale, dresidual]. */
function residualGrads(g: Tensor, p: Tensor | null, scale: Tensor | undefined, residual: Tensor, needP: boolean): [Tensor | null, Tensor | null, Tensor | null] {
  const dp = !needP ? null : scale ? launchMul(g, scale) : g;
  const dscale = scale?.requiresGrad ? sumToShape(launchMul(g, p!), scale.shape) : null;
  return [dp, dscale, residual.requiresGrad ? g : null];
}

/** Whether a linear layer's output [..., out] can take the residual epilogue as given (else the
 * separate ops run, which also broadcast a residual or scale of another shape). */
function fusable(x: Tensor, inShape: readonly number[], w: Tensor, r?: ResidualOptions): boolean {
  const out = w.shape[0];
  if (!x.gpu.tuning.fuseEpilogues || w.rank !== 2 || inShape.length < 2 || out % 4 !== 0) return false;
  if (!r) return true;
  const shape = [...inShape.slice(0, -1), out].join();
  return r.residual.shape.join() === shape && (!r.scale || (r.scale.rank === 1 && r.scale.shape[0] === out));
}

/**
 * residual + scale * (x W^T + b): a linear layer followed by LayerScale and a residual add
 * (timm's `x + ls(proj(...))`), with LayerScale and the add in the matmul's store (two
 * dispatches fewer forward, the same bits as linear, mul and add).
 * x [..., in], weight [out, in], bias [out], scale [out], residual [..., out] -> [..., out].
 * Other shapes that broadcast (a residual or scale of fewer dimensions), an `out` that is not a
 * multiple of 4, or gpu.tuning.fuseEpilogues = false run the separate ops instead.
 * @throws ShapeError naming the op and the shapes when they do not fit (matmul, mul and add's).
 */
export function linearResidual(x: Tensor, lin: LinearParams, r: ResidualOptions): Tensor {
  const bias = lin.bias ?? undefined;
  const scale = r.scale ?? undefined;
  if (!fusable(x, x.shape, lin.weight, r)) {
    const p = matmul(x, lin.weight, { transB: true, bias });
    return addOp(r.residual, scale ? mulOp(p, scale) : p);
  }
  const inputs = [x, lin.weight, ...(bias ? [bias] : []), ...(scale ? [scale] : []), r.residual];
  const keep = willRecord(inputs) && !!scale?.requiresGrad;
  const { out, kept } = matmulEpilogue(x, lin.weight, { transB: true, bias }, { op: 'residual', residual: r.residual, scale, keep });
  if (kept) out.own(kept);
  return record(out, 'linearResidual', inputs, (g, acc) => {
    const needP = x.requiresGrad || lin.weight.requiresGrad || !!bias?.requiresGrad;
    const [dp, dscale, dres] = residualGrads(g, kept, scale, r.residual, needP);
    return [...(dp ? matmulGrads(x, lin.weight, bias, false, true, dp, x.requiresGrad, launchMatmul, takes(acc)) : bias ? [null, null, null] : [null, null]), ...(scale ? [dscale] : []), dres];
  });
}

/**
 * timm's Mlp, fc2(gelu(fc1(x))), optionally followed by LayerScale and a residual add, with
 * the exact-erf GELU in fc1's store (its pre-activation kept), LayerScale and the add in fc2's
 * store and, where gpu.tuning.fuseGeluBackward allows, the GELU gradient in the store of the
 * matmul that makes fc2's input gradient: three or four dispatches fewer per step than
 * linear, gelu, linear, mul, add, with the same bits.
 * x [..., in], fc1 weight [hidden, in], fc2 weight [out, hidden] -> [..., out] (residual
 * [..., out] and scale [out] when given). Shapes the fused form does not take (see
 * linearResidual) run the separate ops.
 * @throws ShapeError naming the op and the shapes when they do not fit.
 */
export function mlpGelu(x: Tensor, fc1: LinearParams, fc2: LinearParams, r?: ResidualOptions): Tensor {
  const [b1, b2] = [fc1.bias ?? undefined, fc2.bias ?? undefined];
  const scale = r?.scale ?? undefined;
  const hiddenShape = [...x.shape.slice(0, -1), fc1.weight.shape[0]];
  if (!fusable(x, x.shape, fc1.weight) || fc2.weight.rank !== 2 || (r && !fusable(x, hiddenShape, fc2.weight, r))) {
    const m = matmul(geluOp(matmul(x, fc1.weight, { transB: true, bias: b1 })), fc2.weight, { transB: true, bias: b2 });
    return r ? addOp(r.residual, scale ? mulOp(m, scale) : m) : m;
  }
  const inputs = [x, fc1.weight, ...(b1 ? [b1] : []), fc2.weight, ...(b2 ? [b2] : []), ...(scale ? [scale] : []), ...(r ? [r.residual] : [])];
  const keep = willRecord(inputs);
  const need1 = x.requiresGrad || fc1.weight.requiresGrad || !!b1?.requiresGrad;
  const h = matmulEpilogue(x, fc1.weight, { transB: true, bias: b1 }, { op: 'gelu', keep: keep && need1 });
  const a = h.out;
  const f2 = r
    ? matmulEpilogue(a, fc2.weight, { transB: true, bias: b2 }, { op: 'residual', residual: r.residual, scale, keep: keep && !!scale?.requiresGrad })
    : { out: launchMatmul(a, fc2.weight, { transB: true, bias: b2 }), kept: null };
  const out = f2.out;
  // What the backward reads lives as long as the output (the hidden activation for fc2's
  // weight gradient, the pre-activation for GELU', the pre-scale value for LayerScale's).
  if (keep) out.own(a);
  else a.dispose();
  for (const t of [h.kept, f2.kept]) if (t) out.own(t);
  return record(out, 'mlpGelu', inputs, (g, acc) => {
    const need2 = need1 || fc2.weight.requiresGrad || !!b2?.requiresGrad;
    const [dp, dscale, dres] = r ? residualGrads(g, f2.kept, scale, r.residual, need2) : [g, null, null];
    const none = (bias: unknown) => (bias ? [null, null, null] : [null, null]);
    const tail = r ? [...(scale ? [dscale] : []), dres] : [];
    // Nothing before LayerScale needs a gradient: nulls for x, fc1 (weight, bias) and fc2 (weight, bias).
    if (!dp) return [...none(b1), null, ...(b2 ? [null] : []), ...tail];
    // fc2's input gradient goes through GELU' in the same store (d pre-activation directly),
    // or, where that measured slower (CPU adapters: gpu.tuning.fuseGeluBackward), after it.
    const pre = h.kept;
    const fused = x.gpu.tuning.fuseGeluBackward ?? !x.gpu.isLavapipe;
    const geluGrad = fused
      ? (gg: Tensor, w: Tensor, o: MatmulOptions) => matmulEpilogue(gg, w, o, { op: 'geluBackward', pre: pre! }).out
      : (gg: Tensor, w: Tensor, o: MatmulOptions) => unaryBackward('gelu', pre!, a, launchMatmul(gg, w, o));
    // The hidden activation's gradient only where fc1's side needs it.
    const w2 = b1 ? 3 : 2;
    const [dh, dw2, db2] = matmulGrads(a, fc2.weight, b2, false, true, dp, need1, geluGrad, { b: () => acc(w2), bias: () => acc(w2 + 1) });
    const [dx, dw1, db1] = dh ? matmulGrads(x, fc1.weight, b1, false, true, dh, x.requiresGrad, launchMatmul, takes(acc)) : none(b1);
    return [dx, dw1, ...(b1 ? [db1] : []), dw2, ...(b2 ? [db2] : []), ...tail];
  });
}
