// Launches of kernels/matmul.wgsl (no autograd): batched matmul with optional transposes, a
// bias and the fused epilogues (MatmulEpilogue), the choice of kernel variant
// (gpu.tuning.matmul, or the autotuned choice per shape class), and the family's autotune
// description (matmulTuner).
import source from '../../kernels/matmul.wgsl';
import expLib from '../../kernels/lib/exp.wgsl';
import geluLib from '../../kernels/lib/gelu.wgsl';
import storeLib from '../../kernels/lib/matmul-store.wgsl';
import { laneGroup } from '../gpu/tuning.ts';
import { ShapeError, GpuError, ValueError } from '../errors.ts';
import { autotuneEnabled, autotuneSeen, autotuneSummary, cachePath, choice as tunedChoice, hash32, noteSeen, type AutotuneOptions, type Trial, type Tuner } from '../gpu/autotune.ts';
import { defineKernel, read, uniform, write } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Rng } from '../rng.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { broadcastShapes, checkInputs, prod } from './util.ts';
import { launchSplitK, splitKCandidates } from './matmul-splitk.ts';
import { MATMUL_DEFAULT_TILE, MATMUL_TILES, matmulChoiceName, matmulTileProblem, parseMatmulChoice, sgGroups, uniformSlabs, type MatmulBuffers, type MatmulChoice, type MatmulShape } from './matmul-geometry.ts';
export { uniformBByDefault, MATMUL_DEFAULT_TILE, MATMUL_TILES, matmulTileName, matmulChoiceName, parseMatmulChoice, matmulTileProblem, type MatmulChoice } from './matmul-geometry.ts';

export type { MatmulShape };

export const matmulKernel = defineKernel({
  file: 'matmul.wgsl',
  source,
  // C[b] = op(A[b]) @ op(B[b]): element (m, k) of op(A[b]) is A[b * aBatch + m * sAm + k * sAk],
  // (k, n) of op(B[b]) is B[b * bBatch + k * sBk + n * sBn]; C[b] starts at b * cBatch.
  params: {
    M: 'u32', N: 'u32', K: 'u32', batch: 'u32',
    sAm: 'u32', sAk: 'u32', sBk: 'u32', sBn: 'u32',
    aBatch: 'u32', bBatch: 'u32', cBatch: 'u32',
    // Columns n0 .. n0 + nU - 1 of C, the ones a uniform slab of B holds (matmul_sg_ub; the
    // other entries take n0 = 0, nU = N).
    n0: 'u32', nU: 'u32',
    // 0, read at run time (the RES epilogue ORs it into a product so that it is rounded alone).
    zero: 'u32',
  },
  includes: [{ file: 'lib/exp.wgsl', source: expLib }, { file: 'lib/gelu.wgsl', source: geluLib }, { file: 'lib/matmul-store.wgsl', source: storeLib, expand: true }],
  // AE, BE, CE: vec4f or f32 by flag (VEC4A or TA4; VEC4B or TB4; VEC4C), aliases in the file.
  // BU: B (or a slab of it) as a uniform array of UBN vec4s (flag UB).
  // E, S, P: the epilogues' input, scale and saved pre-epilogue value (flags GELU, DGELU, RES).
  buffers: {
    A: read('AE'), B: read('BE'), BU: uniform('vec4f', '{UBN}'), bias: read('f32', { optional: true }), C: write('CE'),
    E: read('CE', { optional: true }), S: read('f32', { optional: true }), P: write('CE', { optional: true }),
  },
  entries: {
    matmul_sg: ['A', 'B', 'bias', 'C', 'E', 'S', 'P'],
    matmul_sg_ub: ['A', 'BU', 'bias', 'C', 'E', 'S', 'P'],
    matmul_tiled: ['A', 'B', 'bias', 'C', 'E', 'S', 'P'],
    matmul_wg: ['A', 'B', 'bias', 'C', 'E', 'S', 'P'],
  },
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

/**
 * An elementwise step fused into the matmul's store, after the bias (v = op(a) op(b) + bias;
 * kernels/lib/matmul-store.wgsl, every variant; N a multiple of 4). Each rounds as the
 * separate ops it replaces, so the result is bit for bit theirs:
 * - gelu: C = gelu(v) (exact erf), v kept as the pre-activation for the backward;
 * - geluBackward: C = v * gelu'(pre), pre [..., M, N] the forward's pre-activation;
 * - residual: C = residual + scale * v (scale [N], LayerScale; without it C = residual + v),
 *   residual [..., M, N]; v kept for LayerScale's gradient.
 * `keep: false` (gelu, residual) skips writing v: inference, or no gradient that reads it.
 */
export type MatmulEpilogue =
  | { op: 'gelu'; keep?: boolean }
  | { op: 'geluBackward'; pre: Tensor }
  // `as`: the name in labels and profiles (default 'residual'; 'accumulate' where the residual
  // is a gradient gathered so far, src/ops/matmul.ts matmulInto).
  | { op: 'residual'; residual: Tensor; scale?: Tensor; keep?: boolean; as?: string };

/** Lanes that share A rows in the subgroup kernel: 8 where subgroups have 8 or more, else 4
 * (gpu.tuning.matmul.group forces 4 or 8 where the device allows it); 0 without subgroups. */
function groupSize(gpu: Gpu): number {
  const natural = laneGroup(gpu.subgroupMinSize);
  const choice = gpu.tuning.matmul.group;
  return choice && choice <= gpu.subgroupMinSize ? choice : natural;
}

/** Rows per group of lanes in the subgroup kernel (gpu.tuning.matmul.rows; see kernels/matmul.wgsl). */
function sgRows(gpu: Gpu): number {
  const rows = gpu.tuning.matmul.rows;
  if (!Number.isInteger(rows) || rows <= 0 || rows % 8) throw new ValueError(`matmul: gpu.tuning.matmul.rows = ${rows} is not a positive multiple of 8`);
  return rows;
}

/** The fixed choice when nothing is tuned: the subgroup kernel where subgroups of at least 4
 * lanes exist (CPU drivers, where it is the measured best), else the portable tiled one. */
function fixedChoice(gpu: Gpu): MatmulChoice {
  return { kind: groupSize(gpu) > 0 ? 'subgroup' : 'tiled' };
}

/**
 * The matmul kernel gpu.tuning.matmul.variant names, for any shape: 'auto' gives the fixed
 * default (subgroup where subgroups of at least 4 lanes exist, else tiled); an autotuned
 * choice, which depends on the shape class, is applied by matmul() itself.
 * @throws GpuError when the named variant needs what the device lacks (subgroups, shader-f16).
 */
export function matmulVariantFor(gpu: Gpu): MatmulChoice['kind'] {
  return explicitChoice(gpu)?.kind ?? fixedChoice(gpu).kind;
}

/**
 * Bytes of per-lane storage loads per FLOP of a matmul variant's inner loop (both operands
 * read as vec4s): matmul_sg loads ROWS / GROUP vec4s of A and 4 of B per lane per 4 steps of
 * k, for 16 ROWS multiply-adds (0.125 B at ROWS 32, GROUP 8); matmul_tiled 8 vec4s for 64.
 * Null for the workgroup-memory variants, whose operands pass through workgroup memory. On a
 * CPU driver every such load is a loop over the SIMD lanes (kernels/roofline.wgsl, load4), so
 * this and the device's load rate bound the kernel (the bench's load-bound line).
 */
export function matmulLoadBytesPerFlop(gpu: Gpu, kind: MatmulChoice['kind']): number | null {
  if (kind === 'tiled') return (16 * 8) / (2 * 64);
  if (kind !== 'subgroup') return null;
  const rows = sgRows(gpu);
  return (16 * (rows / groupSize(gpu) + 4)) / (2 * 16 * rows);
}

/** The variant tuning names explicitly (null for 'auto'), checked against the device. */
function explicitChoice(gpu: Gpu): MatmulChoice | null {
  const v = gpu.tuning.matmul.variant;
  if (v === 'auto') return null;
  if (v === 'subgroup' && groupSize(gpu) === 0)
    throw new GpuError(`matmul: the subgroup kernel needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  if (v === 'f16' && !gpu.features.has('shader-f16')) throw new GpuError(`matmul: the f16 variant needs the shader-f16 feature, which this device lacks`);
  if (v === 'subgroup' || v === 'tiled') return { kind: v };
  if (v !== 'tiled-wg' && v !== 'f16') throw new ValueError(`matmul: gpu.tuning.matmul.variant = '${v}' is not one of auto, subgroup, tiled, tiled-wg, f16`);
  const tile = gpu.tuning.matmul.tile ?? MATMUL_DEFAULT_TILE;
  const why = matmulTileProblem(gpu, tile, v === 'f16');
  if (why) throw new ValueError(`matmul: gpu.tuning.matmul.tile: ${why}`);
  return { kind: v, tile };
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
 * The kernel: gpu.tuning.matmul.variant, or for 'auto' the autotuned choice of the shape's
 * class where autotuning is on and has measured it (src/gpu/autotune.ts), else the fixed one.
 * @throws ShapeError naming the shapes (see matmulPlan; a bias that is not [N]; more rows or
 * batches than one dispatch covers); GpuError / ValueError for a variant or tile the device
 * cannot run (named in the message).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return matmulWith(a, b, opts, null).out;
}

/**
 * matmul() with a fused epilogue (MatmulEpilogue): { out, kept }, kept the value before the
 * epilogue (v) where the epilogue keeps it (gelu, residual), else null.
 * @throws ShapeError as matmul(), and naming the epilogue's tensor whose shape does not fit
 * (pre and residual must be [...batch, M, N], scale [N]) or an N that is not a multiple of 4.
 */
export function matmulEpilogue(a: Tensor, b: Tensor, opts: MatmulOptions, epilogue: MatmulEpilogue): { out: Tensor; kept: Tensor | null } {
  return matmulWith(a, b, opts, epilogue);
}

function matmulWith(a: Tensor, b: Tensor, opts: MatmulOptions, epi: MatmulEpilogue | null): { out: Tensor; kept: Tensor | null } {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const bias = opts.bias;
  const extra = !epi ? [] : epi.op === 'geluBackward' ? [epi.pre] : epi.op === 'residual' ? [epi.residual, ...(epi.scale ? [epi.scale] : [])] : [];
  const gpu = checkInputs('matmul', [a, b, ...(bias ? [bias] : []), ...extra]);
  let { batchShape, M, N, K, batch, aBatch, bBatch } = matmulPlan(a, b, transA, transB);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== N))
    throw new ShapeError(`matmul: bias ${fmtShape(bias.shape)} must have shape [${N}] for ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const outShape = [...batchShape, M, N];
  if (epi) {
    const what = `matmul ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} with the ${epi.op} epilogue`;
    if (N % 4 !== 0) throw new ShapeError(`${what}: the output's last dimension ${N} must be a multiple of 4`);
    const full = epi.op === 'geluBackward' ? { name: 'pre', t: epi.pre } : epi.op === 'residual' ? { name: 'residual', t: epi.residual } : null;
    if (full && full.t.shape.join() !== outShape.join()) throw new ShapeError(`${what}: ${full.name} ${fmtShape(full.t.shape)} must have the output's shape ${fmtShape(outShape)}`);
    if (epi.op === 'residual' && epi.scale && (epi.scale.rank !== 1 || epi.scale.shape[0] !== N)) throw new ShapeError(`${what}: scale ${fmtShape(epi.scale.shape)} must have shape [${N}]`);
  }
  // A shared (unbatched) B and a plain A: one tall matmul instead of a batch of short ones,
  // unless the tall one would need more row blocks than a dispatch dimension allows.
  let foldedBatch = batch;
  if (batch > 1 && bBatch === 0 && !transA && Math.ceil((M * batch) / 32) <= gpu.limits.maxComputeWorkgroupsPerDimension) {
    M *= batch;
    foldedBatch = 1;
    aBatch = 0;
  }
  const label = `matmul ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''}@${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}${bias ? '+bias' : ''}${epi ? ` ${epi.op === 'residual' ? (epi.as ?? 'residual') : epi.op}` : ''}`;
  const shape: MatmulShape = { M, N, K, batch: foldedBatch, transA, transB };
  const c = new Tensor(gpu, outShape, 'f32', undefined, 'matmul');
  const kept = epi && epi.op !== 'geluBackward' && epi.keep !== false ? new Tensor(gpu, outShape, 'f32', undefined, 'matmul (before its epilogue)') : null;
  const buffers: MatmulBuffers = { a: a.buffer, b: b.buffer, bias: bias?.buffer ?? null, c: c.buffer, aBatch, bBatch, p: kept?.buffer ?? null };
  if (epi?.op === 'geluBackward') buffers.e = epi.pre.buffer;
  if (epi?.op === 'residual') [buffers.e, buffers.s] = [epi.residual.buffer, epi.scale?.buffer ?? null];
  launchMatmul(gpu, resolveChoice(gpu, shape), shape, buffers, label, epi);
  return { out: c, kept };
}

function resolveChoice(gpu: Gpu, shape: MatmulShape): MatmulChoice {
  const split = gpu.tuning.matmul.splitK;
  if (split === null) return resolveKernel(gpu, shape);
  if (!Number.isInteger(split) || split < 1) throw new ValueError(`matmul: gpu.tuning.matmul.splitK = ${split} is not a positive integer (or null)`);
  return { ...resolveKernel(gpu, shape), splitK: split };
}

function resolveKernel(gpu: Gpu, shape: MatmulShape): MatmulChoice {
  const explicit = explicitChoice(gpu);
  if (explicit) return explicit;
  if (autotuneEnabled(gpu)) {
    const key = matmulTuner.classOf(shape);
    const name = tunedChoice(gpu, matmulTuner, key);
    const tuned = name ? parseMatmulChoice(name) : null;
    if (tuned) return tuned;
    noteSeen(gpu, matmulTuner, key, shape);
  }
  return fixedChoice(gpu);
}

/** Encodes one matmul of the given geometry with the given kernel (C [batch, M, N] dense). */
function launchMatmul(gpu: Gpu, choice: MatmulChoice, s: MatmulShape, buf: MatmulBuffers, label: string, epi: MatmulEpilogue | null = null): void {
  const plainResidual = !epi ? null : epi.op === 'residual' && !buf.s && !buf.p;
  if ((choice.splitK ?? 1) > 1 && launchSplitK(gpu, choice, s, buf, label, plainResidual, (c, s2, b2, l2) => launchMatmul(gpu, c, s2, b2, l2))) return;
  const { M, N, K, transA, transB } = s;
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
  // Element strides of op(A) (m, k) and op(B) (k, n); a transpose only swaps them. The vec4
  // loads assume dense rows (kernels/matmul.wgsl), so a wider lda or ldb turns them off.
  const lda = s.lda ?? (transA ? M : K);
  const ldb = s.ldb ?? (transB ? K : N);
  const dense = { A: lda === (transA ? M : K), B: ldb === (transB ? K : N) };
  const [sAm, sAk] = transA ? [1, lda] : [lda, 1];
  const [sBk, sBn] = transB ? [1, ldb] : [ldb, 1];
  const params = { M, N, K, batch: s.batch, sAm, sAk, sBk, sBn, aBatch: buf.aBatch, bBatch: buf.bBatch, cBatch: M * N, n0: 0, nU: N, zero: 0 };
  const epiBuffers = { E: buf.e ?? null, S: buf.s ?? null, P: buf.p ?? null };
  const buffers = { A: buf.a, B: buf.b, bias: buf.bias, C: buf.c, ...epiBuffers };
  const tooBig = (rowsPerWg: number) => {
    if (Math.ceil(M / rowsPerWg) > maxWg || s.batch > maxWg)
      throw new ShapeError(`${label}: ${M} rows x ${s.batch} batches is more than one dispatch covers here; split the batch`);
  };
  const common = {
    VEC4A: !transA && K % 4 === 0 && dense.A, VEC4B: !transB && N % 4 === 0 && dense.B, VEC4C: N % 4 === 0, BIAS: !!buf.bias,
    GELU: epi?.op === 'gelu', DGELU: epi?.op === 'geluBackward', RES: epi?.op === 'residual', SCALE: epi?.op === 'residual' && !!buf.s, EPILOOP: !!epi, KEEP: !!buf.p,
  };
  if (choice.kind === 'tiled-wg' || choice.kind === 'f16') {
    const t = choice.tile ?? MATMUL_DEFAULT_TILE;
    const why = matmulTileProblem(gpu, t, choice.kind === 'f16');
    if (why) throw new ValueError(`${label}: ${why}`);
    if (choice.kind === 'f16' && !gpu.features.has('shader-f16')) throw new GpuError(`${label}: the f16 variant needs the shader-f16 feature, which this device lacks`);
    tooBig(t.bm);
    const threads = (t.bm / t.tm) * (t.bn / t.tn);
    gpu.launch(matmulKernel.matmul_wg, {
      flags: { ...common, WGT: true, F16: choice.kind === 'f16', TA4: transA && M % 4 === 0 && dense.A, TB4: transB && K % 4 === 0 && dense.B },
      consts: { BM: t.bm, BN: t.bn, BK: t.bk, TM: t.tm, TN: t.tn, THREADS: threads, LA: (t.bm * t.bk) / 4 / threads, LB: (t.bn * t.bk) / 4 / threads },
      params,
      buffers,
      workgroups: [Math.ceil(N / t.bn), Math.ceil(M / t.bm), s.batch],
      label,
    });
    return;
  }
  if (choice.kind === 'tiled') {
    tooBig(32);
    gpu.launch(matmulKernel.matmul_tiled, { flags: common, consts: {}, params, buffers, workgroups: [Math.ceil(N / 32), Math.ceil(M / 32), s.batch], label });
    return;
  }
  const group = groupSize(gpu);
  const rows = sgRows(gpu);
  const threads = gpu.tuning.matmul.threads ?? gpu.hostThreads;
  if (!Number.isInteger(threads) || threads < 1) throw new ValueError(`matmul: gpu.tuning.matmul.threads = ${threads} is not a positive integer (or null)`);
  const flags = {
    ...common,
    SUBGROUPS: true,
    SGEXACT: gpu.subgroupMinSize === group && gpu.subgroupMaxSize === group,
    TB4: transB && K % 4 === 0 && dense.B,
    // A^T read as vec4 along m (see kernels/matmul.wgsl); else 4 strided scalars per vec4.
    TA4: transA && M % 4 === 0 && rows % (4 * group) === 0 && dense.A,
  };
  const slabs = uniformSlabs(gpu, s, buf, group);
  for (const { n0, nU } of slabs ?? [{ n0: 0, nU: N }]) {
    const groups = sgGroups(Math.ceil(M / rows), Math.ceil(nU / (4 * group)) * s.batch, 64 / group, maxWg, threads);
    tooBig(rows * groups);
    const workgroups = [Math.ceil(nU / (4 * group)), Math.ceil(M / (rows * groups)), s.batch] as const;
    if (!slabs) {
      gpu.launch(matmulKernel.matmul_sg, { flags, consts: { ROWS: rows, GROUP: group }, overrides: { WG: groups * group }, params, buffers, workgroups, label });
      continue;
    }
    // With TB4 the slab is rows n0 .. n0 + nU - 1 of B [N, K]; with VEC4B it is all of B.
    const [offset, size] = flags.TB4 ? [n0 * K * 4, nU * K * 4] : [0, K * N * 4];
    gpu.launch(matmulKernel.matmul_sg_ub, {
      flags: { ...flags, UB: true },
      consts: { ROWS: rows, GROUP: group, UBN: size / 16 },
      overrides: { WG: groups * group },
      params: { ...params, n0, nU },
      buffers: { A: buf.a, BU: { buffer: buf.b, offset, size }, bias: buf.bias, C: buf.c, ...epiBuffers },
      workgroups,
      // A slab computes only its columns: the profile counts its FLOPs from this (matmulFlops).
      label: slabs.length > 1 ? `${label} columns ${n0}-${n0 + nU - 1}` : label,
    });
  }
}

// ---------------------------------------------------------------- autotuning

const p2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const parsed = new Map<string, MatmulChoice | null>();
const parseCached = (name: string) => {
  if (!parsed.has(name)) parsed.set(name, parseMatmulChoice(name));
  return parsed.get(name)!;
};
const f16Allowed = (gpu: Gpu) => gpu.features.has('shader-f16') && gpu.tuning.matmul.allowF16;

const U32 = 2 ** -24;
/** f16's rounding of x as WGSL converts it: 2^-10 relative (WGSL rounds up or down, not
 * necessarily to nearest, so twice the unit roundoff 2^-11), and at most 2^-14 below f16's
 * normal range, whether subnormals are kept or flushed. */
const f16Err = (x: number) => (Math.abs(x) >= 2 ** -14 ? 2 ** -10 * Math.abs(x) : 2 ** -14);

/**
 * A bound on |computed - exact| for one entry C = sum_k a_k b_k of a K-term dot product:
 * f32 kernels (K + 2) 2^-24 sum |a_k b_k| (a rounding per multiply and per add, first order);
 * f16 adds each operand's rounding, E = sum (|a| e(b) + |b| e(a) + e(a) e(b)), to that bound
 * taken over the rounded operands (the f16 x f16 products themselves are exact in f32).
 */
export function matmulErrorBound(kind: MatmulChoice['kind'], as: ArrayLike<number>, bs: ArrayLike<number>): number {
  let S = 0;
  let E = 0;
  for (let k = 0; k < as.length; k++) {
    S += Math.abs(as[k] * bs[k]);
    if (kind === 'f16') {
      const ea = f16Err(as[k]);
      const eb = f16Err(bs[k]);
      E += Math.abs(as[k]) * eb + Math.abs(bs[k]) * ea + ea * eb;
    }
  }
  return E + (as.length + 2) * U32 * (S + E);
}

/** Random inputs for one shape; checks 64 sampled entries against float64. */
class MatmulTrial implements Trial {
  private readonly ha: Float32Array;
  private readonly hb: Float32Array;
  private readonly a: Tensor;
  private readonly b: Tensor;
  private readonly c: Tensor;
  private readonly cleared = new Set<string>();

  constructor(
    private readonly gpu: Gpu,
    private readonly s: MatmulShape,
  ) {
    const { M, N, K, batch } = s;
    const rng = new Rng(0x6d617431);
    this.ha = Float32Array.from({ length: batch * M * K }, () => rng.uniform(-1, 1));
    this.hb = Float32Array.from({ length: batch * K * N }, () => rng.uniform(-1, 1));
    this.a = new Tensor(gpu, [this.ha.length], 'f32', undefined, 'autotune A');
    this.b = new Tensor(gpu, [this.hb.length], 'f32', undefined, 'autotune B');
    this.c = new Tensor(gpu, [batch * M * N], 'f32', undefined, 'autotune C');
    gpu.upload(this.a.buffer, this.ha);
    gpu.upload(this.b.buffer, this.hb);
  }

  run(variant: string): void {
    const choice = parseCached(variant);
    if (!choice) throw new ValueError(`matmul autotune: unknown variant '${variant}'`);
    // A variant that fails must not pass its check on an earlier variant's output.
    if (!this.cleared.has(variant)) {
      this.cleared.add(variant);
      this.gpu.clear(this.c.buffer);
    }
    const { M, N, K, batch, transA, transB } = this.s;
    const label = `autotune matmul ${variant} [${batch}x${M}x${K}]${transA ? 'ᵀ' : ''}@[${K}x${N}]${transB ? 'ᵀ' : ''}`;
    const strides = { aBatch: batch > 1 ? M * K : 0, bBatch: batch > 1 ? K * N : 0 };
    launchMatmul(this.gpu, choice, this.s, { a: this.a.buffer, b: this.b.buffer, bias: null, c: this.c.buffer, ...strides }, label);
  }

  async check(variant: string): Promise<string | null> {
    const kind = parseCached(variant)!.kind;
    const out = await this.c.floats();
    const { M, N, K, transA, transB } = this.s;
    const rng = new Rng(0x63686b);
    const as = new Float64Array(K);
    const bs = new Float64Array(K);
    for (let t = 0; t < 64; t++) {
      const bi = rng.int(0, this.s.batch - 1);
      const i = rng.int(0, M - 1);
      const j = rng.int(0, N - 1);
      let exact = 0;
      for (let k = 0; k < K; k++) {
        as[k] = this.ha[bi * M * K + (transA ? k * M + i : i * K + k)];
        bs[k] = this.hb[bi * K * N + (transB ? j * K + k : k * N + j)];
        exact += as[k] * bs[k];
      }
      const got = out[(bi * M + i) * N + j];
      const bound = matmulErrorBound(kind, as, bs);
      if (!(Math.abs(got - exact) <= bound))
        return `incorrect: C[${bi}, ${i}, ${j}] = ${got}, float64 ${exact.toPrecision(8)} (bound ${bound.toExponential(2)})`;
    }
    return null;
  }

  dispose(): void {
    for (const t of [this.a, this.b, this.c]) t.dispose();
  }
}

/**
 * matmul's autotune description (src/gpu/autotune.ts). Shape class: M, N, K and the batch
 * rounded up to powers of two, the transposes, and which operands allow vec4 reads (aligned
 * and unaligned shapes run different code). Candidates: subgroup (where it runs), tiled,
 * tiled-wg at every tile of MATMUL_TILES the device can hold, and f16 at those tiles when the
 * device has shader-f16 and gpu.tuning.matmul.allowF16 is set.
 *
 *   await autotune(gpu, matmulTuner, [{ M: 4096, N: 1024, K: 256, batch: 1, transA: false, transB: true }]);
 */
export const matmulTuner: Tuner<MatmulShape> = {
  family: 'matmul',
  version: hash32(source + JSON.stringify(MATMUL_TILES)),
  classOf(s) {
    const vecA = s.transA ? s.M % 4 === 0 : s.K % 4 === 0;
    const vecB = s.transB ? s.K % 4 === 0 : s.N % 4 === 0;
    return `M${p2(s.M)} N${p2(s.N)} K${p2(s.K)} b${p2(s.batch)} ${s.transA ? 'At' : 'A'}${s.transB ? 'Bt' : 'B'} v${+vecA}${+vecB}${+(s.N % 4 === 0)}`;
  },
  candidates(gpu, s) {
    const out: string[] = groupSize(gpu) > 0 ? ['subgroup', 'tiled'] : ['tiled'];
    for (const kind of ['tiled-wg', 'f16'] as const) {
      if (kind === 'f16' && !f16Allowed(gpu)) continue;
      for (const tile of MATMUL_TILES) if (!matmulTileProblem(gpu, tile, kind === 'f16')) out.push(matmulChoiceName({ kind, tile }));
    }
    if (!matmulTileProblem(gpu, MATMUL_DEFAULT_TILE, false)) out.push(...splitKCandidates(s).map(matmulChoiceName));
    return out;
  },
  usable(gpu, name) {
    const c = parseCached(name);
    if (!c) return false;
    if (c.kind === 'subgroup') return groupSize(gpu) > 0;
    if (c.kind === 'f16' && !f16Allowed(gpu)) return false;
    return !c.tile || !matmulTileProblem(gpu, c.tile, c.kind === 'f16');
  },
  trial: (gpu, s) => new MatmulTrial(gpu, s),
};

/**
 * Where autotuning is on (gpu.tuning.autotune; by default on GPUs, off on CPU adapters), times
 * the matmul classes that launches met without a cached choice (autotuneSeen) and returns one
 * log line: classes, timed now, from the cache, wins per variant, the cache file. Null where
 * it is off. Run after a first step has met the step's shapes: `ctvlm train` after its first
 * step, `ctvlm profile` after its warm-up, the bench's step section after its check.
 */
export async function autotuneSeenMatmuls(gpu: Gpu, opts: AutotuneOptions = {}): Promise<string | null> {
  if (!autotuneEnabled(gpu)) return null;
  const classes = await autotuneSeen(gpu, matmulTuner, opts);
  const file = await cachePath(gpu, opts.cacheDir);
  return `autotune: ${autotuneSummary('matmul', classes)}${file ? `; each class's times and choice in ${file}` : ''}`;
}
