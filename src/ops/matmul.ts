// Batched matmul with optional transposes and a bias epilogue (kernels/matmul.wgsl).
import source from '../../kernels/matmul.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Uniforms, broadcastShapes, checkInputs, prod } from '../launch/util.ts';
import { sumToShape } from './reduce.ts';

export type MatmulVariant = 'auto' | 'subgroup' | 'tiled';

export interface MatmulOptions {
  /** Use A^T: a is stored [..., K, M]. */
  transA?: boolean;
  /** Use B^T: b is stored [..., N, K]. */
  transB?: boolean;
  /** Added to every row: shape [N]. */
  bias?: Tensor;
}

let variantChoice: MatmulVariant = 'auto';

/** Rows per group of lanes in the subgroup kernel (a multiple of 8; see kernels/matmul.wgsl). */
let SG_ROWS = 32;
/** For tuning experiments (bench): the subgroup kernel's rows per group of lanes. */
export function setMatmulRows(rows: number): void {
  if (!Number.isInteger(rows) || rows <= 0 || rows % 8) throw new ShapeError(`setMatmulRows: ${rows} is not a positive multiple of 8`);
  SG_ROWS = rows;
}

/** Picks the matmul kernel (benchmarks compare them); 'auto' takes the subgroup kernel where it runs. */
export function setMatmulVariant(v: MatmulVariant): void {
  variantChoice = v;
}

let groupChoice: 4 | 8 | null = null;
/** Forces the subgroup kernel's lane group (tests run the 4-lane form on 8-lane devices). */
export function setMatmulGroup(g: 4 | 8 | null): void {
  groupChoice = g;
}

/** Lanes that share A rows in the subgroup kernel: 8 where subgroups have 8 or more, else 4. */
function groupSize(gpu: Gpu): number {
  const natural = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
  return groupChoice && groupChoice <= gpu.subgroupMinSize ? groupChoice : natural;
}

export function matmulVariantFor(gpu: Gpu): 'subgroup' | 'tiled' {
  const canSubgroup = groupSize(gpu) > 0;
  if (variantChoice === 'subgroup' && !canSubgroup)
    throw new ShapeError(`matmul: the subgroup kernel needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  if (variantChoice === 'auto') return canSubgroup ? 'subgroup' : 'tiled';
  return variantChoice;
}

interface Plan {
  batchShape: number[];
  M: number;
  N: number;
  K: number;
  batch: number;
  aBatch: number;
  bBatch: number;
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan {
  const what = () => `matmul: ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`;
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`${what()}: both operands need at least 2 dimensions`);
  const [am, ak] = a.shape.slice(-2);
  const [bk, bn] = b.shape.slice(-2);
  const M = transA ? ak : am;
  const K = transA ? am : ak;
  const K2 = transB ? bn : bk;
  const N = transB ? bk : bn;
  if (K !== K2) throw new ShapeError(`${what()}: inner dimensions differ (${K} vs ${K2})`);
  const aLead = a.shape.slice(0, -2);
  const bLead = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul (batch dimensions)', aLead, bLead);
  const batch = prod(batchShape);
  const stride = (lead: readonly number[], size: number) => {
    const n = prod(lead);
    if (n === batch) return size;
    if (n === 1) return 0;
    throw new ShapeError(`${what()}: batch dimensions ${fmtShape(aLead)} and ${fmtShape(bLead)} broadcast only partly; expand one first`);
  };
  return { batchShape, M, N, K, batch, aBatch: stride(aLead, M * K), bBatch: stride(bLead, K * N) };
}

/** The kernel launch without autograd. */
function matmulRaw(a: Tensor, b: Tensor, transA: boolean, transB: boolean, bias?: Tensor): Tensor {
  const gpu = checkInputs('matmul', bias ? [a, b, bias] : [a, b]);
  let { batchShape, M, N, K, batch, aBatch, bBatch } = plan(a, b, transA, transB);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== N))
    throw new ShapeError(`matmul: bias ${fmtShape(bias.shape)} must have shape [${N}] for ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const outShape = [...batchShape, M, N];
  // A shared (unbatched) B and a plain A: one tall matmul instead of a batch of short ones,
  // unless the tall one would need more row blocks than a dispatch dimension allows.
  let foldedBatch = batch;
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (batch > 1 && bBatch === 0 && !transA && Math.ceil((M * batch) / 32) <= maxWg) {
    M *= batch;
    foldedBatch = 1;
    aBatch = 0;
  }
  const label = `matmul ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''}@${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}${bias ? '+bias' : ''}`;
  const c = new Tensor(gpu, outShape, 'f32', undefined, 'matmul');
  const variant = matmulVariantFor(gpu);
  const sg = variant === 'subgroup';
  const group = sg ? groupSize(gpu) : 8;
  const flags = {
    SUBGROUPS: sg,
    SGEXACT: sg && gpu.subgroupMinSize === group && gpu.subgroupMaxSize === group,
    VEC4A: !transA && K % 4 === 0,
    VEC4B: !transB && N % 4 === 0,
    TB4: sg && transB && K % 4 === 0,
    VEC4C: N % 4 === 0,
    BIAS: !!bias,
  };
  // Rows per workgroup (sg): SG_ROWS per group of lanes; fewer groups for short matrices.
  const groups = sg ? Math.min(64 / group, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(M / SG_ROWS))))) : 0;
  const k = gpu.kernel({
    file: 'matmul.wgsl',
    source,
    entry: sg ? 'matmul_sg' : 'matmul_tiled',
    flags,
    consts: { ROWS: SG_ROWS, GROUP: group },
    overrides: sg ? { WG: groups * group } : {},
    bindings: ['uniform', 'read', 'read', 'read', 'write'],
  });
  // Element strides of op(A) (m, k) and op(B) (k, n); a transpose only swaps them.
  const [sAm, sAk] = transA ? [1, M] : [K, 1];
  const [sBk, sBn] = transB ? [1, K] : [N, 1];
  const uniforms = new Uniforms().u32(M, N, K, foldedBatch, sAm, sAk, sBk, sBn, aBatch, bBatch, M * N, 0).bytes();
  if (Math.ceil(M / (sg ? SG_ROWS * groups : 32)) > maxWg || foldedBatch > maxWg)
    throw new ShapeError(`${label}: ${M} rows x ${foldedBatch} batches is more than one dispatch covers here; split the batch`);
  const workgroups: [number, number, number] = sg
    ? [Math.ceil(N / (4 * group)), Math.ceil(M / (SG_ROWS * groups)), foldedBatch]
    : [Math.ceil(N / 32), Math.ceil(M / 32), foldedBatch];
  gpu.dispatch(k, { uniforms, buffers: [a.buffer, b.buffer, bias ? bias.buffer : gpu.placeholder, c.buffer], workgroups, label });
  return c;
}

/**
 * op(a) @ op(b) (+ bias), batched over leading dimensions (broadcast when one side has none).
 * a: [..., M, K] ([..., K, M] with transA); b: [..., K, N] ([..., N, K] with transB).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const bias = opts.bias;
  const c = matmulRaw(a, b, transA, transB, bias);
  const inputs = bias ? [a, b, bias] : [a, b];
  return record(c, 'matmul', inputs, (g) => {
    // C = op(A) op(B): d op(A) = G op(B)^T, d op(B) = op(A)^T G.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      const full = !transA ? matmulRaw(g, b, false, !transB) : matmulRaw(b, g, transB, true);
      ga = reduceTo(full, a);
    }
    if (b.requiresGrad) {
      const { bBatch, batch } = plan(a, b, transA, transB);
      if (bBatch === 0 && batch > 1 && !transA) {
        // B was shared across the batch: fold the batch into the rows, one matmul sums it.
        const M = a.shape[a.rank - 2];
        const af = a.view([batch * M, a.shape[a.rank - 1]]);
        const gf = g.view([batch * M, g.shape[g.rank - 1]]);
        const r = !transB ? matmulRaw(af, gf, true, false) : matmulRaw(gf, af, true, false);
        af.dispose();
        gf.dispose();
        gb = reshapeTo(r, b);
      } else {
        const full = !transB ? matmulRaw(a, g, !transA, false) : matmulRaw(g, a, true, transA);
        gb = reduceTo(full, b);
      }
    }
    const gbias = bias?.requiresGrad ? sumToShape(g, bias.shape) : null;
    return bias ? [ga, gb, gbias] : [ga, gb];
  });
}

function reduceTo(full: Tensor, like: Tensor): Tensor {
  if (full.shape.join() === like.shape.join()) return full;
  const r = sumToShape(full, like.shape);
  full.dispose();
  return r;
}

function reshapeTo(t: Tensor, like: Tensor): Tensor {
  if (t.shape.join() === like.shape.join()) return t;
  const v = t.view(like.shape);
  t.dispose();
  return v;
}
