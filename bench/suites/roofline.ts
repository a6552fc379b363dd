// The device's roofs, measured first so that every other row can be read as a fraction of
// them: the f32 multiply-add peak (GFLOP/s) and the bandwidth of a large copy through a
// kernel (GB/s). Each is the best of a few configurations, because which one wins depends on
// the device (lavapipe runs an invocation as one SIMD lane and wants many scalar
// accumulators; a GPU wants enough threads in flight). The rows' note names the adapter.
//
// The declaration lives here and not in src/launch: nothing in the framework launches these
// kernels, and the framework bundle stays free of them. (An autotune step that wanted to
// stop searching near the roof could move it there.)
import source from '../../kernels/roofline.wgsl';
import { defineKernel, read, uniform, write } from '../../src/gpu/kernel.ts';
import { grid1d, type Gpu } from '../../src/gpu/runtime.ts';
import { fmtSci } from '../lib/format.ts';
import { runCase, type Ctx } from '../lib/case.ts';
import type { Runner } from '../lib/measure.ts';
import { profileCalls } from '../lib/ours.ts';
import { ROOF_OPS } from '../lib/row.ts';

/** load4's window: 2048 vec4s (32 KiB), inside the first-level data cache of the CPUs here
 * (48 KiB) and of GPUs' L1; the rate measured is the loads', not the memory's. */
export const LOAD_WINDOW = 2048;

export const rooflineKernel = defineKernel({
  file: 'roofline.wgsl',
  source,
  // n: invocations that store (fma_peak, load4) or vec4s to copy (copy4); iters: rounds of the
  // FMA or load loop; m, c: the multiply-add's operands, read at run time so that nothing
  // folds; mask: load4's window in vec4s, minus 1 (a power of two).
  params: { n: 'u32', iters: 'u32', m: 'f32', c: 'f32', mask: 'u32' },
  // XU: load4u's window, LOAD_WINDOW vec4s (32 KiB; a uniform binding holds 64 KiB or more).
  buffers: { Y: write(), X4: read('vec4f'), Y4: write('vec4f'), XU: uniform('vec4f', LOAD_WINDOW) },
  entries: { fma_peak: ['Y'], copy4: ['X4', 'Y4'], load4: ['X4', 'Y'], load4u: ['XU', 'Y'] },
});

export interface FmaConfig {
  /** Independent accumulators per invocation. */
  acc: number;
  /** FMAs per accumulator per loop round. */
  unroll: number;
  wg: number;
}

// 16-32 scalar chains reached 70-83 GFLOP/s on lavapipe (../shared/ENVIRONMENT.md); 8 chains
// (fewer registers per thread, more threads resident on a GPU) and 64-wide workgroups are
// there for devices that prefer them.
export const FMA_CONFIGS: FmaConfig[] = [
  { acc: 32, unroll: 2, wg: 256 },
  { acc: 16, unroll: 4, wg: 256 },
  { acc: 16, unroll: 4, wg: 64 },
  { acc: 8, unroll: 8, wg: 256 },
];
export interface CopyConfig {
  /** vec4s per invocation. */
  per: number;
  wg: number;
}

export const COPY_CONFIGS: CopyConfig[] = [
  { per: 1, wg: 256 },
  { per: 4, wg: 256 },
  { per: 1, wg: 64 },
];

export interface LoadConfig {
  /** vec4 loads per invocation per loop round (independent sums). */
  per: number;
  wg: number;
}

// 8 loads per round as matmul_sg issues per 4 steps of k (ROWS / GROUP of A and 4 of B).
export const LOAD_CONFIGS: LoadConfig[] = [
  { per: 8, wg: 64 },
  { per: 4, wg: 256 },
];

/**
 * Invocations of the FMA kernel: on a GPU, many waves of resident threads (2^22: about 15
 * waves of an H200's 132 SMs x 2048 threads), so that the last, partial wave costs little;
 * on a CPU driver (lavapipe, SwiftShader), 2^18 (1024 workgroups of 256 for a few threads):
 * there every invocation is a loop trip of the driver, and more of them only lengthen the run.
 */
const fmaInvocations = (gpu: Gpu) => (gpu.isLavapipe ? 2 ** 18 : 2 ** 22);
/** Multiply-adds per invocation at least: per-invocation costs (a few cycles on lavapipe) stay
 * below a few per cent of the run. */
const MIN_FMAS_PER_INVOCATION = 4096;
/** Each timed dispatch should take about this long (ms): long against timer resolution and launch cost, short for --quick. */
const TARGET_MS = 25;
// a <- a m + c converges to c / (1 - m) = 1 from below: values stay normal and the chain's
// position after N rounds is known in closed form (the check).
const FMA_M = 1 - 2 ** -12;
const FMA_C = 2 ** -12;

/** Enqueues fma_peak: `inv` invocations store their sums of c.acc chains of iters x c.unroll multiply-adds into out [inv]. */
export function launchFma(gpu: Gpu, c: FmaConfig, out: GPUBuffer, inv: number, iters: number): void {
  gpu.launch(rooflineKernel.fma_peak, {
    consts: { WG: c.wg, ACC: c.acc, U: c.unroll, PER: 1 },
    params: { n: inv, iters, m: FMA_M, c: FMA_C, mask: 0 },
    buffers: { Y: out },
    workgroups: grid1d(inv, c.wg),
    label: `roofline fma acc ${c.acc} wg ${c.wg}`,
  });
}

/** Enqueues copy4: y[0 .. n4) = x[0 .. n4) in vec4s. */
export function launchCopy(gpu: Gpu, c: CopyConfig, x: GPUBuffer, y: GPUBuffer, n4: number): void {
  gpu.launch(rooflineKernel.copy4, {
    consts: { WG: c.wg, ACC: 1, U: 1, PER: c.per },
    params: { n: n4, iters: 0, m: 0, c: 0, mask: 0 },
    buffers: { X4: x, Y4: y },
    workgroups: grid1d(Math.ceil(n4 / c.per), c.wg),
    label: `roofline copy x${c.per} wg ${c.wg}`,
  });
}

/** Enqueues load4 (load4u with `fromUniform`: the window bound as a uniform array): out[i]
 * (i < inv) = the sum of the iters x c.per vec4s invocation i loads from x[0 .. LOAD_WINDOW)
 * (the vec4 at (3 i + c.per r + k) mod LOAD_WINDOW, rounds r, loads k). */
export function launchLoad(gpu: Gpu, c: LoadConfig, x: GPUBuffer, out: GPUBuffer, inv: number, iters: number, fromUniform = false): void {
  const common = {
    consts: { WG: c.wg, ACC: 1, U: 1, PER: c.per },
    params: { n: inv, iters, m: 0, c: 0, mask: LOAD_WINDOW - 1 },
    workgroups: grid1d(inv, c.wg),
    label: `roofline load x${c.per} wg ${c.wg}${fromUniform ? ' uniform' : ''}`,
  };
  if (fromUniform) gpu.launch(rooflineKernel.load4u, { ...common, flags: { UNIFORM: true }, buffers: { XU: { buffer: x, offset: 0, size: 16 * LOAD_WINDOW }, Y: out } });
  else gpu.launch(rooflineKernel.load4, { ...common, buffers: { X4: x, Y: out } });
}

/** Host value of load4's output for invocation i, in the kernel's f32 order of additions (the
 * per-load sums over rounds, then over the loads, then the four components), so that it is
 * bit-exact for any window. x: the window, 4 LOAD_WINDOW floats. */
export function loadRef(x: Float32Array, i: number, per: number, iters: number): number {
  const f = Math.fround;
  const s = Array.from({ length: per }, () => [0, 0, 0, 0]);
  for (let r = 0; r < iters; r++)
    for (let k = 0; k < per; k++) {
      const v = (3 * i + per * r + k) % LOAD_WINDOW;
      for (let c = 0; c < 4; c++) s[k][c] = f(s[k][c] + x[4 * v + c]);
    }
  const t = [0, 0, 0, 0];
  for (let k = 0; k < per; k++) for (let c = 0; c < 4; c++) t[c] = f(t[c] + s[k][c]);
  return f(f(f(t[0] + t[1]) + t[2]) + t[3]);
}

function launchRunner(gpu: Gpu, launch: () => void): Runner {
  return { run: launch, sync: () => gpu.sync(), timestamps: gpu.canProfile ? (n) => profileCalls(gpu, launch, n) : undefined };
}

/** ms of one call after a warm-up call (timestamps where the device has them). */
async function timeOnce(gpu: Gpu, launch: () => void): Promise<number> {
  launch();
  await gpu.sync();
  if (gpu.canProfile) return (await profileCalls(gpu, launch, 1))[0];
  const t0 = performance.now();
  launch();
  await gpu.sync();
  return performance.now() - t0;
}

/** Host value of invocation i's output after `steps` multiply-adds per chain (float64, closed form). */
export function fmaRef(i: number, acc: number, steps: number): number {
  const f = Math.fround;
  const seed = f(f(i & 1023) * f(1e-4));
  const limit = FMA_C / (1 - FMA_M);
  const decay = Math.pow(FMA_M, steps);
  let s = 0;
  for (let a = 0; a < acc; a++) {
    const a0 = f(seed + f(f(a) * f(1e-3)));
    s += limit + (a0 - limit) * decay;
  }
  return s;
}

async function benchFma(ctx: Ctx, c: FmaConfig, adapter: string): Promise<void> {
  const { gpu } = ctx;
  const inv = fmaInvocations(gpu);
  const out = gpu.acquire(4 * inv, 'roofline fma out');
  try {
    const minIters = Math.ceil(MIN_FMAS_PER_INVOCATION / (c.acc * c.unroll));
    let iters = minIters;
    const launch = () => launchFma(gpu, c, out, inv, iters);
    // Two rounds of sizing (the first dispatch may be far from the target on a GPU), never
    // below the minimum work per invocation.
    for (let round = 0; round < 2; round++) {
      const ms = await timeOnce(gpu, launch);
      iters = Math.max(minIters, Math.min(2 ** 20, Math.round((iters * TARGET_MS) / Math.max(ms, 1e-3))));
    }
    const steps = iters * c.unroll;
    const { row } = await runCase(ctx, {
      section: 'roofline',
      op: ROOF_OPS.fma,
      shape: `${inv / 1024}k inv x ${c.acc} chains x ${steps}`,
      variant: `acc ${c.acc} x${c.unroll}, wg ${c.wg}`,
      metric: 'GFLOP/s',
      work: 2 * inv * c.acc * steps,
      ours: () => launchRunner(gpu, launch),
      kernels: async () => ['roofline.wgsl:fma_peak'],
      peer: { op: null, note: `adapter: ${adapter}` },
    });
    if (!row.error) {
      // The outputs show the chains ran their length: a skipped or shortened loop leaves them
      // elsewhere. Each step's f32 rounding (2^-24 relative) decays by m per step, so the
      // error stays below 2^-24 / (1 - m) = 2.4e-4 relative at any length: 1e-3 has margin.
      const y = new Float32Array(await gpu.read(out, 4 * inv));
      let worst = 0;
      for (let k = 0; k < 64; k++) {
        const i = Math.floor((k * (inv - 1)) / 63);
        const ref = fmaRef(i, c.acc, steps);
        worst = Math.max(worst, Math.abs(y[i] - ref) / Math.abs(ref));
      }
      row.maxAbsDiffRef = worst;
      const bad = !(worst <= 1e-3); // NaN too
      row.check = `max rel diff vs f64 closed form ${fmtSci(worst)} (64 invocations)${bad ? ' TOO LARGE: not a valid roof' : ''}`;
      if (bad) row.error = `fma_peak output off by ${fmtSci(worst)} relative: the kernel did not run its chains`;
    }
    ctx.rows.push(row);
  } finally {
    gpu.release(out);
  }
}

async function benchCopy(ctx: Ctx, c: CopyConfig, bytes: number, x: GPUBuffer, y: GPUBuffer, host: Float32Array, adapter: string): Promise<void> {
  const { gpu } = ctx;
  const n4 = bytes / 16;
  const launch = () => launchCopy(gpu, c, x, y, n4);
  gpu.clear(y);
  const { row } = await runCase(ctx, {
    section: 'roofline',
    op: ROOF_OPS.copy,
    shape: `${bytes / 2 ** 20} MiB`,
    variant: `${c.per} vec4/inv, wg ${c.wg}`,
    metric: 'GB/s',
    work: 2 * bytes,
    ours: () => launchRunner(gpu, launch),
    kernels: async () => ['roofline.wgsl:copy4'],
    peer: { op: null, note: `adapter: ${adapter}` },
  });
  if (!row.error) {
    const out = new Float32Array(await gpu.read(y, bytes));
    let bad = 0;
    for (let i = 0; i < out.length; i++) if (out[i] !== host[i]) bad++;
    row.maxAbsDiffRef = bad ? 1 : 0;
    row.check = bad ? `${bad} of ${out.length} floats differ` : 'output equals input';
    if (bad) row.error = `copy4 left ${bad} floats wrong`;
  }
  ctx.rows.push(row);
}

async function benchLoad(ctx: Ctx, c: LoadConfig, adapter: string, fromUniform = false): Promise<void> {
  const { gpu } = ctx;
  const inv = fmaInvocations(gpu);
  // Small non-negative integers: every partial sum is exact in f32 (at most 2^16 x 8 vec4s of
  // 4 x 4 < 2^24), so the check is equality, and no run of loads sums to zero.
  const host = Float32Array.from({ length: 4 * LOAD_WINDOW }, (_, k) => (k * 7919) % 5);
  const x = gpu.acquire(host.byteLength, 'roofline load window');
  const out = gpu.acquire(4 * inv, 'roofline load out');
  try {
    gpu.upload(x, host);
    let iters = 16;
    const launch = () => launchLoad(gpu, c, x, out, inv, iters, fromUniform);
    for (let round = 0; round < 2; round++) {
      const ms = await timeOnce(gpu, launch);
      iters = Math.max(16, Math.min(2 ** 16, Math.round((iters * TARGET_MS) / Math.max(ms, 1e-3))));
    }
    const { row } = await runCase(ctx, {
      section: 'roofline',
      op: fromUniform ? ROOF_OPS.uniformLoad : ROOF_OPS.load,
      shape: `${inv / 1024}k inv x ${iters * c.per} vec4`,
      variant: `${c.per} vec4/round, wg ${c.wg}`,
      metric: 'GB/s',
      work: 16 * inv * iters * c.per,
      ours: () => launchRunner(gpu, launch),
      kernels: async () => [fromUniform ? 'roofline.wgsl:load4u' : 'roofline.wgsl:load4'],
      peer: { op: null, note: `adapter: ${adapter}` },
    });
    if (!row.error) {
      const y = new Float32Array(await gpu.read(out, 4 * inv));
      let bad = 0;
      for (let k = 0; k < 64; k++) {
        const i = Math.floor((k * (inv - 1)) / 63);
        if (y[i] !== loadRef(host, i, c.per, iters)) bad++;
      }
      row.maxAbsDiffRef = bad ? 1 : 0;
      row.check = bad ? `${bad} of 64 sampled sums wrong` : 'sums exact (64 invocations)';
      if (bad) row.error = `${fromUniform ? 'load4u' : 'load4'} left ${bad} of 64 sampled sums wrong: not a valid roof`;
    }
    ctx.rows.push(row);
  } finally {
    gpu.release(x);
    gpu.release(out);
  }
}

/** The roofline section: FMA-peak, copy-bandwidth and load-rate rows; the best of each is a roof (report.ts). */
export async function benchRoofline(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const i = gpu.adapterInfo;
  const adapter = i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(' ') || 'unknown adapter';
  for (const c of FMA_CONFIGS) await benchFma(ctx, c, adapter);
  for (const c of LOAD_CONFIGS) await benchLoad(ctx, c, adapter);
  // The same loads from a uniform buffer: what the matmul's uniform-B path
  // (kernels/matmul.wgsl UB) stands on.
  for (const c of LOAD_CONFIGS) await benchLoad(ctx, c, adapter, true);

  // Larger than the last-level caches of the CPUs here and of large GPUs (H200: 60 MB L2),
  // within lavapipe's 128 MiB binding limit.
  const bytes = Math.min(128 * 2 ** 20, Math.floor(gpu.limits.maxStorageBufferBindingSize / 16) * 16);
  const host = new Float32Array(bytes / 4);
  for (let k = 0; k < host.length; k++) host[k] = (k % 4099) - 2049.5;
  const x = gpu.acquire(bytes, 'roofline copy src');
  const y = gpu.acquire(bytes, 'roofline copy dst');
  try {
    gpu.upload(x, host);
    for (const c of COPY_CONFIGS) await benchCopy(ctx, c, bytes, x, y, host, adapter);
  } finally {
    gpu.release(x);
    gpu.release(y);
    gpu.trim();
  }
}
