// Launches of kernels/matmul.wgsl (no autograd): batched matmul with optional transposes and
// a bias epilogue, and the choice of kernel variant (gpu.tuning.matmul).
import source from '../../kernels/matmul.wgsl';
import { ShapeError, GpuError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { broadcastShapes, checkInputs, prod } from './util.ts';

export const matmulKernel = defineKernel({
  file: 'matmul.wgsl',
  source,
  // C[b] = op(A[b]) @ op(B[b]): element (m, k) of op(A[b]) is A[b * aBatch + m * sAm + k * sAk],
  // (k, n) of op(B[b]) is B[b * bBatch + k * sBk + n * sBn]; C[b] starts at b * cBatch.
  params: {
    M: 'u32', N: 'u32', K: 'u32', batch: 'u32',
    sAm: 'u32', sAk: 'u32', sBk: 'u32', sBn: 'u32',
    aBatch: 'u32', bBatch: 'u32', cBatch: 'u32',
  },
  // AE, BE, CE: vec4f or f32 by flag (VEC4A; VEC4B or TB4; VEC4C), aliases in the file.
  buffers: { A: read('AE'), B: read('BE'), bias: read('f32', { optional: true }), C: write('CE') },
  entries: { matmul_sg: ['A', 'B', 'bias', 'C'], matmul_tiled: ['A', 'B', 'bias', 'C'] },
});

export type MatmulVariant = Tuning['matmul']['variant'];

export interface MatmulOptions {
  /** Use A^T: a is stored [..., K, M]. */
  transA?: boolean;
  /** Use B^T: b is stored [..., N, K]. */
  transB?: boolean;
  /** Added to every row: shape [N]. */
  bias?: Tensor;
}

/** Lanes that share A rows in the subgroup kernel: 8 where subgroups have 8 or more, else 4
 * (gpu.tuning.matmul.group forces 4 or 8 where the device allows it); 0 without subgroups. */
function groupSize(gpu: Gpu): number {
  const natural = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
  const choice = gpu.tuning.matmul.group;
  return choice && choice <= gpu.subgroupMinSize ? choice : natural;
}

/** Rows per group of lanes in the subgroup kernel (gpu.tuning.matmul.rows; see kernels/matmul.wgsl). */
function sgRows(gpu: Gpu): number {
  const rows = gpu.tuning.matmul.rows;
  if (!Number.isInteger(rows) || rows <= 0 || rows % 8) throw new ValueError(`matmul: gpu.tuning.matmul.rows = ${rows} is not a positive multiple of 8`);
  return rows;
}

/**
 * The matmul kernel this device runs: gpu.tuning.matmul.variant, where 'auto' takes the
 * subgroup kernel where it runs (subgroups of at least 4 lanes), else the tiled one.
 * @throws ShapeError when 'subgroup' is asked for on a device without such subgroups.
 */
export function matmulVariantFor(gpu: Gpu): 'subgroup' | 'tiled' {
  const choice = gpu.tuning.matmul.variant;
  const canSubgroup = groupSize(gpu) > 0;
  if (choice === 'subgroup' && !canSubgroup)
    throw new GpuError(`matmul: the subgroup kernel needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  if (choice === 'auto') return canSubgroup ? 'subgroup' : 'tiled';
  return choice;
}

export interface MatmulPlan {
  batchShape: number[];
  M: number;
  N: number;
  K: number;
  /** Batch entries (the product of batchShape). */
  batch: number;
  /** Element strides between batch entries of a and b (0: broadcast over the batch). */
  aBatch: number;
  bBatch: number;
}

/**
 * Sizes and batch strides of op(a) @ op(b).
 * @throws ShapeError naming the shapes for a rank below 2, inner dimensions that differ, or
 * batch dimensions that broadcast only partly.
 */
export function matmulPlan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): MatmulPlan {
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

/**
 * op(a) @ op(b) (+ bias), batched over leading dimensions (broadcast when one side has none),
 * without autograd: a new tensor [...batch, M, N].
 * a: [..., M, K] ([..., K, M] with transA); b: [..., K, N] ([..., N, K] with transB); bias [N].
 * @throws ShapeError naming the shapes (see matmulPlan; a bias that is not [N]; more rows or
 * batches than one dispatch covers).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const bias = opts.bias;
  const gpu = checkInputs('matmul', bias ? [a, b, bias] : [a, b]);
  let { batchShape, M, N, K, batch, aBatch, bBatch } = matmulPlan(a, b, transA, transB);
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
  const rows = sgRows(gpu);
  const flags = {
    SUBGROUPS: sg,
    SGEXACT: sg && gpu.subgroupMinSize === group && gpu.subgroupMaxSize === group,
    VEC4A: !transA && K % 4 === 0,
    VEC4B: !transB && N % 4 === 0,
    TB4: sg && transB && K % 4 === 0,
    VEC4C: N % 4 === 0,
    BIAS: !!bias,
  };
  // Rows per workgroup (sg): `rows` per group of lanes; fewer groups for short matrices.
  const groups = sg ? Math.min(64 / group, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(M / rows))))) : 0;
  // Element strides of op(A) (m, k) and op(B) (k, n); a transpose only swaps them.
  const [sAm, sAk] = transA ? [1, M] : [K, 1];
  const [sBk, sBn] = transB ? [1, K] : [N, 1];
  if (Math.ceil(M / (sg ? rows * groups : 32)) > maxWg || foldedBatch > maxWg)
    throw new ShapeError(`${label}: ${M} rows x ${foldedBatch} batches is more than one dispatch covers here; split the batch`);
  const workgroups: [number, number, number] = sg
    ? [Math.ceil(N / (4 * group)), Math.ceil(M / (rows * groups)), foldedBatch]
    : [Math.ceil(N / 32), Math.ceil(M / 32), foldedBatch];
  gpu.launch(sg ? matmulKernel.matmul_sg : matmulKernel.matmul_tiled, {
    flags,
    consts: { ROWS: rows, GROUP: group },
    overrides: sg ? { WG: groups * group } : {},
    params: { M, N, K, batch: foldedBatch, sAm, sAk, sBk, sBn, aBatch, bBatch, cBatch: M * N },
    buffers: { A: a.buffer, B: b.buffer, bias: bias ? bias.buffer : null, C: c.buffer },
    workgroups,
    label,
  });
  return c;
}
