// How a launch of the subgroup matmul (kernels/matmul.wgsl matmul_sg) is cut up: groups of
// lanes per workgroup, balanced over the CPU driver's threads, and the slabs of B read through
// uniform bindings (matmul_sg_ub): pure functions of the shape and the device's limits, and
// the launch's geometry types (here so that src/launch/matmul.ts and this file form no cycle),
// and the variants' workgroup tiles (which a device can run, and their names in autotune's cache).
import type { Gpu } from '../gpu/runtime.ts';
import type { MatmulTile } from '../gpu/tuning.ts';

/** One launch's geometry after batch folding: C[b] = op(A[b]) @ op(B[b]) for b < batch. */
export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  /** Leading dimensions (BLAS's lda, ldb): the element stride between rows of A and B as
   * stored. Default: K (or M with transA) and N (or K with transB), i.e. dense; a split-K
   * slice reads a K-range of a wider operand. */
  lda?: number;
  ldb?: number;
}

export interface MatmulBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  bias: GPUBuffer | null;
  c: GPUBuffer;
  /** Element strides between batch entries of a and b (0: broadcast). */
  aBatch: number;
  bBatch: number;
  /** A fused epilogue's buffers (kernels/matmul.wgsl E, S, P), each [batch, M, N] except S [N]. */
  e?: GPUBuffer | null;
  s?: GPUBuffer | null;
  p?: GPUBuffer | null;
}

const MAX_UNIFORM_SLABS = 3;

/**
 * Whether the subgroup matmul reads B through uniform bindings when gpu.tuning.matmul.uniformB
 * is null: on lavapipe on a CPU whose widest SIMD extension is AVX2, where a lane-divergent
 * storage load measured 2.0-2.2x slower than a uniform one (scripts/issue11/ubo-loads.mjs) and
 * the kernel with B from a uniform binding 1.2-1.7x faster (the matmul harness, UBOB=1). Not on
 * AVX-512 CPUs, where both measured the same within their spread
 * (scripts/issue11/uniform-b-shapes.test.ts: 0.96-1.10 and one shape at 0.71), nor where the
 * CPU is unknown (a browser) or a GPU, whose uniform caches serve one address at a time.
 */
export function uniformBByDefault(gpu: Pick<Gpu, 'isLavapipe' | 'hostCpu'>): boolean {
  return gpu.isLavapipe && /, AVX2$/.test(gpu.hostCpu);
}

/**
 * The column slabs in which the subgroup kernel reads B through uniform bindings (flag UB),
 * or null where it reads B from storage: gpu.tuning.matmul.uniformB off (null: see
 * uniformBByDefault), B batched (not shared), or B not a vec4 layout that fits. B^T stored
 * [N, K] (a linear layer's weight, TB4) is cut into slabs of whole rows of at most
 * limits.maxUniformBufferBindingSize bytes (64 KiB: at most 160 columns at K = 96, 32 at
 * K = 512), all of one width (a multiple of the lane group's 4 * GROUP columns) but the last,
 * each launched as its own dispatch, at most MAX_UNIFORM_SLABS of them; B [K, N] row-major
 * (VEC4B) only when all of it fits in one binding.
 */
export function uniformSlabs(gpu: Gpu, s: MatmulShape, buf: MatmulBuffers, group: number): { n0: number; nU: number }[] | null {
  if (!(gpu.tuning.matmul.uniformB ?? uniformBByDefault(gpu))) return null;
  if (s.batch > 1 && buf.bBatch !== 0) return null;
  const { N, K } = s;
  if ((s.ldb ?? (s.transB ? K : N)) !== (s.transB ? K : N)) return null;
  const max = gpu.limits.maxUniformBufferBindingSize;
  if (!s.transB) return N % 4 === 0 && K * N * 4 <= max ? [{ n0: 0, nU: N }] : null;
  if (K % 4 !== 0) return null;
  const unit = 4 * group;
  const most = Math.floor(max / (K * 4) / unit) * unit;
  if (most === 0) return null;
  const count = Math.ceil(N / most);
  // Each slab is a pass over all of A: past 3 of them A no longer stays in the caches between
  // the column tiles of a row block (x4 widths on the AVX-512 EPYC: 4-48 slabs of 32-64
  // columns ran at 0.78-0.89x the storage-B kernel).
  if (count > MAX_UNIFORM_SLABS) return null;
  const width = Math.ceil(N / count / unit) * unit;
  // Each slab starts at a multiple of `width` rows of K floats: it must meet the offset
  // alignment. (With width a multiple of 16 and K of 4 that is 256 bytes, WebGPU's default;
  // a guard for devices that ask for more.)
  if (count > 1 && (width * K * 4) % gpu.limits.minUniformBufferOffsetAlignment !== 0) return null;
  const out: { n0: number; nU: number }[] = [];
  for (let n0 = 0; n0 < N; n0 += width) out.push({ n0, nU: Math.min(width, N - n0) });
  return out;
}

/**
 * Groups of lanes per workgroup of the subgroup kernel (1 .. max), for `blocks` blocks of
 * rows and `others` workgroups across (column tiles x batch), with at most maxWg workgroups
 * down. A CPU driver runs each workgroup on one thread, idle groups (rows past M) included,
 * so a workgroup costs its group count; the choice minimizes the time of the slowest of the
 * `threads` worker threads (gpu.tuning.matmul.threads, by default gpu.hostThreads),
 * ceil(workgroups / threads) x groups, then takes the most groups (fewer, larger
 * workgroups). With 2 threads, few blocks in all (a weight gradient's 96 x 96 output is 3 x 3
 * tiles) get one group per workgroup (9 workgroups: 5 rounds of 1, not 3 of 3: 2 rounds of 3);
 * many get the least padding (12 blocks as 2 x 6, not 2 x 8). Measured on the model's
 * shapes, this and TA4 lifted the weight gradients from 50-80% to 85-105% of the 1024^3 rate.
 */
export function sgGroups(blocks: number, others: number, max: number, maxWg: number, threads: number): number {
  let best = max;
  let bestCost = Infinity;
  for (let g = 1; g <= Math.min(max, blocks); g++) {
    // Row blocks beyond one dispatch dimension: only more groups per workgroup fit them.
    if (Math.ceil(blocks / g) > maxWg) continue;
    const cost = Math.ceil((Math.ceil(blocks / g) * others) / threads) * g;
    if (cost <= bestCost) [best, bestCost] = [g, cost];
  }
  return best;
}

/** A variant with its tile: what one launch runs. */
export interface MatmulChoice {
  kind: 'subgroup' | 'tiled' | 'tiled-wg' | 'f16';
  /** The workgroup tile ('tiled-wg' and 'f16'). */
  tile?: MatmulTile;
  /** Split-K: the product as this many partial products over slices of K, then their sum
   * (src/launch/matmul-splitk.ts). Absent or 1: one pass over K. */
  splitK?: number;
}

/** 'tiled-wg' and 'f16' tile when gpu.tuning.matmul.tile is null: 256 invocations of 4x4, a
 * common choice that fits WebGPU's default 16 KiB of workgroup memory double-buffered. */
export const MATMUL_DEFAULT_TILE: MatmulTile = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
/** The tiles autotune() measures: small matrices, the default, taller invocation blocks, and
 * the 128 x 128 tile of 8 x 8 blocks that hand-written CUDA SGEMMs use for large matrices. */
export const MATMUL_TILES: readonly MatmulTile[] = [
  { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 },
  MATMUL_DEFAULT_TILE,
  { bm: 64, bn: 64, bk: 16, tm: 8, tn: 4 },
  { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 },
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
];

export const matmulTileName = (t: MatmulTile): string => `${t.bm}x${t.bn}x${t.bk}/${t.tm}x${t.tn}`;

/** A choice as autotune names it: 'subgroup', 'tiled', 'tiled-wg 64x64x16/4x4', 'f16 ...', each
 * optionally followed by ' splitK8'. */
export const matmulChoiceName = (c: MatmulChoice): string =>
  `${c.tile ? `${c.kind} ${matmulTileName(c.tile)}` : c.kind}${c.splitK && c.splitK > 1 ? ` splitK${c.splitK}` : ''}`;

/** The inverse of matmulChoiceName, or null for a name this code does not know (an old cache). */
export function parseMatmulChoice(name: string): MatmulChoice | null {
  const m = /^(?:(subgroup|tiled)|(tiled-wg|f16) (\d+)x(\d+)x(\d+)\/(\d+)x(\d+))(?: splitK(\d+))?$/.exec(name);
  if (!m) return null;
  const split = m[8] ? Number(m[8]) : 0;
  if (m[8] && split < 2) return null;
  const c: MatmulChoice = m[1] ? { kind: m[1] as 'subgroup' | 'tiled' } : { kind: m[2] as 'tiled-wg' | 'f16', tile: (([bm, bn, bk, tm, tn]) => ({ bm, bn, bk, tm, tn }))(m.slice(3, 8).map(Number)) };
  if (split) c.splitK = split;
  return c;
}

/** Why this device cannot run a tile (null: it can): its shape, its invocation count or its
 * workgroup memory (two k-steps of both operand tiles, 4 bytes an element, 2 in f16). */
export function matmulTileProblem(gpu: Gpu, t: MatmulTile, f16: boolean): string | null {
  const { bm, bn, bk, tm, tn } = t;
  if (![bm, bn, bk, tm, tn].every((x) => Number.isInteger(x) && x > 0) || tm % 4 || tn % 4 || bk % 4 || bm % tm || bn % tn)
    return `tile ${matmulTileName(t)} needs positive integers with tm, tn and bk multiples of 4, bm a multiple of tm and bn of tn`;
  const threads = (bm / tm) * (bn / tn);
  if (((bm * bk) / 4) % threads || ((bn * bk) / 4) % threads)
    return `tile ${matmulTileName(t)}: the ${bm}x${bk} and ${bk}x${bn} operand tiles do not split into whole vec4s per invocation (${threads} invocations)`;
  const maxInv = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  if (threads > maxInv) return `tile ${matmulTileName(t)} needs ${threads} invocations per workgroup; this device allows ${maxInv}`;
  const bytes = 2 * bk * (bm + bn) * (f16 ? 2 : 4);
  if (bytes > gpu.limits.maxComputeWorkgroupStorageSize)
    return `tile ${matmulTileName(t)} needs ${bytes} bytes of workgroup memory; this device allows ${gpu.limits.maxComputeWorkgroupStorageSize}`;
  return null;
}
