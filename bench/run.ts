// `npm run bench`: our kernels against tfjs-backend-webgpu on the same WebGPU device.
//
//   node .build/bench/run.js [--quick] [--only matmul,elementwise,reduce,softmax,layernorm]
//                            [--iters N] [--name NAME] [--no-peer] [--wall]
//
// Clocks: our ops are timed by timestamp queries (gpu.startProfile/endProfile, kernel time
// summed over the dispatches of one op call) when the device has them, and by wall time
// (a loop of calls, then gpu.sync(), divided by the calls) always. The peer is timed the
// same two ways (tf.time() kernelMs, and a loop then its queue's onSubmittedWorkDone), so
// each ratio compares equal clocks. Both sides run the same op on the same data, and their
// samples are taken in alternating rounds (the machine is shared and its load moves);
// every number is a median.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Gpu } from '../src/gpu/runtime.ts';
import type { Tensor } from '../src/tensor.ts';
import { Rng, tensor } from '../src/ops/creation.ts';
import { matmul, setMatmulVariant, type MatmulVariant } from '../src/ops/matmul.ts';
import { add, exp } from '../src/ops/elementwise.ts';
import { transpose } from '../src/ops/layout.ts';
import { sum } from '../src/ops/reduce.ts';
import { softmax } from '../src/ops/softmax.ts';
import { layerNorm } from '../src/ops/layernorm.ts';
import { attention, setAttentionVariant } from '../src/ops/attention.ts';
import { mulScalar } from '../src/ops/elementwise.ts';
import { createVolume } from '../src/data/volume.ts';
import { resample } from '../src/data/prep.ts';
import { measureInterleaved, type Budget, type Clock, type Measurement, type Runner } from './lib/measure.ts';
import { kernelsOf, opRunner } from './lib/ours.ts';
import { loadPeer, type Peer, type TfTensor } from './lib/peer.ts';
import { fmtMs, fmtRate, fmtRatio, fmtSci, table } from './lib/format.ts';
import { permute } from '../src/ops/layout.ts';
import { patchEmbed3d } from '../src/ops/patch3d.ts';
import { profileCalls } from './lib/ours.ts';

const SECTIONS = ['matmul', 'attention', 'patch', 'elementwise', 'layout', 'reduce', 'softmax', 'layernorm', 'data'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  quick: boolean;
  only: Set<Section>;
  iters?: number;
  name?: string;
  peer: boolean;
  /** Create our device without timestamp-query (tests the wall-clock fallback). */
  wallOnly: boolean;
}

class UsageError extends Error {}

function usage(): string {
  return [
    'usage: node .build/bench/run.js [options]   (npm run bench -- [options])',
    '  --quick            fewer sizes and iterations (a smoke run, < 2 min on lavapipe)',
    `  --only LIST        comma-separated sections: ${SECTIONS.join(', ')}`,
    '  --iters N          exactly N timed calls per measurement (default: sized by a time budget)',
    '  --name NAME        results file bench/results/NAME.json (default: <device>-<date>)',
    '  --no-peer          skip tfjs-backend-webgpu',
    '  --wall             our device without timestamp-query: wall clock only (the fallback path)',
  ].join('\n');
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, only: new Set(SECTIONS), peer: true, wallOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value\n${usage()}`);
      return v;
    };
    const flag = a.split('=')[0];
    if (flag === '--quick') o.quick = true;
    else if (flag === '--no-peer') o.peer = false;
    else if (flag === '--wall') o.wallOnly = true;
    else if (flag === '--only') {
      const names = value().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
      for (const n of names) if (!(SECTIONS as readonly string[]).includes(n)) throw new UsageError(`--only: unknown section '${n}' (sections: ${SECTIONS.join(', ')})`);
      o.only = new Set(names as Section[]);
    } else if (flag === '--iters') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new UsageError('--iters needs a positive integer');
      o.iters = n;
    } else if (flag === '--name') {
      const n = value();
      if (!/^[\w.-]+$/.test(n)) throw new UsageError('--name: letters, digits, ".", "_" and "-" only');
      o.name = n;
    } else if (flag === '--help' || flag === '-h') {
      console.log(usage());
      process.exit(0);
    } else throw new UsageError(`unknown option ${a}\n${usage()}`);
  }
  return o;
}

// ---------------------------------------------------------------- rows

interface Side {
  clock: Clock;
  /** Median ms on `clock` (timestamp when available, else wall). */
  ms: number;
  tsMs: number | null;
  wallMs: number;
  tsSamples: number[];
  wallSamples: number[];
  wallIters: number;
}

interface Row {
  section: Section;
  op: string;
  shape: string;
  variant: string;
  metric: 'GFLOP/s' | 'GB/s';
  /** FLOPs (matmul) or bytes moved (the minimum: each input read once, each output written once). */
  work: number;
  ours: Side | null;
  /** On ours.clock. */
  rate: number | null;
  rateWall: number | null;
  kernels: string[];
  peer: Side | null;
  peerNote: string;
  /** tfjs programs of one call with their ms (tf.time's profile info). */
  peerPrograms: string;
  /** ours/peer time on the timestamp clock (both timed by it), and on wall clocks. */
  ratioTs: number | null;
  ratioWall: number | null;
  check: string;
  maxAbsDiffPeer: number | null;
  maxAbsDiffRef: number | null;
  error: string | null;
}

function side(m: Measurement): Side {
  return {
    clock: m.tsMs !== null ? 'timestamp' : 'wall',
    ms: m.tsMs ?? m.wallMs,
    tsMs: m.tsMs,
    wallMs: m.wallMs,
    tsSamples: m.tsSamples.map((x) => +x.toFixed(4)),
    wallSamples: m.wallSamples.map((x) => +x.toFixed(4)),
    wallIters: m.wallIters,
  };
}

function rateOf(work: number, ms: number | null): number | null {
  if (ms === null || !(ms > 0)) return null;
  return work / (ms * 1e-3) / 1e9;
}

// ---------------------------------------------------------------- context

interface Ctx {
  gpu: Gpu;
  peer: Peer | null;
  peerMissing: string;
  budget: Budget;
  quick: boolean;
  rows: Row[];
  progress(msg: string): void;
}

function hostRandn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal();
  return d;
}

const shapeStr = (s: readonly number[]) => s.join('x');

interface PeerRun {
  side: Side | null;
  note: string;
  programs: string;
  /** The peer's output of one call, for the correctness check. */
  out: Float32Array | null;
}

/** The peer's part in a row: an op to measure alongside ours, or a measurement to reuse. */
type PeerPlan = { op: (() => TfTensor) | null; note?: string } | { reuse: PeerRun };

interface CaseSpec {
  section: Section;
  op: string;
  shape: string;
  variant: string;
  metric: Row['metric'];
  work: number;
  ours: () => Runner;
  kernels?: () => Promise<string[]>;
  peer: PeerPlan;
}

/** Measures our op and (when planned) the peer's in alternating rounds; never throws. */
async function runCase(ctx: Ctx, c: CaseSpec): Promise<{ row: Row; peerRun: PeerRun }> {
  let peerRun: PeerRun = { side: null, note: '', programs: '', out: null };
  let peerRunner: (Runner & { programs: string }) | null = null;
  const plan = c.peer;
  if ('reuse' in plan) peerRun = plan.reuse;
  else if (!plan.op) peerRun.note = plan.note ?? '';
  else if (!ctx.peer) peerRun.note = ctx.peerMissing;
  else {
    try {
      const y = plan.op();
      peerRun.out = (await y.data()) as Float32Array;
      y.dispose();
      peerRunner = ctx.peer.runner(plan.op);
    } catch (e) {
      peerRun.note = `tfjs failed: ${(e as Error).message}`;
    }
  }
  const row: Row = {
    section: c.section,
    op: c.op,
    shape: c.shape,
    variant: c.variant,
    metric: c.metric,
    work: c.work,
    ours: null,
    rate: null,
    rateWall: null,
    kernels: [],
    peer: null,
    peerNote: '',
    peerPrograms: '',
    ratioTs: null,
    ratioWall: null,
    check: '',
    maxAbsDiffPeer: null,
    maxAbsDiffRef: null,
    error: null,
  };
  ctx.progress([c.op, c.shape, c.variant, peerRunner ? '(and tfjs, interleaved)' : ''].filter(Boolean).join(' '));
  let ours: Runner | null = null;
  try {
    if (c.kernels) row.kernels = await c.kernels();
    ours = c.ours();
  } catch (e) {
    row.error = (e as Error).message;
  }
  const runners = [ours, peerRunner].filter((r): r is Runner => r !== null);
  const results = runners.length ? await measureInterleaved(runners, ctx.budget) : [];
  if (ours) {
    const m = results[0];
    if (m instanceof Error) row.error = m.message;
    else {
      row.ours = side(m);
      row.rate = rateOf(c.work, row.ours.ms);
      row.rateWall = rateOf(c.work, row.ours.wallMs);
    }
  }
  if (row.error) ctx.progress(`  ours failed: ${row.error}`);
  if (peerRunner && ctx.peer) {
    const m = results[ours ? 1 : 0];
    const errs = ctx.peer.takeErrors();
    if (m instanceof Error || errs.length) {
      peerRun.note = `tfjs failed: ${m instanceof Error ? m.message : `device error: ${errs[0]}`}`;
      peerRun.out = null;
      ctx.progress(`  ${peerRun.note}`);
    } else if (m) {
      peerRun.side = side(m);
      peerRun.programs = peerRunner.programs;
    }
  }
  row.peer = peerRun.side;
  row.peerNote = peerRun.note;
  row.peerPrograms = peerRun.programs;
  if (row.ours && row.peer) {
    row.ratioTs = row.ours.tsMs !== null && row.peer.tsMs !== null ? row.ours.tsMs / row.peer.tsMs : null;
    row.ratioWall = row.ours.wallMs / row.peer.wallMs;
  }
  return { row, peerRun };
}

function maxAbsDiff(x: Float32Array, y: Float32Array): number {
  if (x.length !== y.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= worst)) worst = d; // NaN propagates as the worst
  }
  return worst;
}

/** Runs our op once more and fills the row's check: against the peer's output (all
 * entries) and, where given, a host reference (ref returns the max abs error). */
async function checkRow(row: Row, op: () => Tensor, peerOut: Float32Array | null, ref?: (out: Float32Array) => number, refLabel = 'f64'): Promise<void> {
  if (row.error) return;
  try {
    const c = op();
    const out = await c.floats();
    c.dispose();
    const parts: string[] = [];
    if (peerOut) {
      row.maxAbsDiffPeer = maxAbsDiff(out, peerOut);
      parts.push(`tfjs ${fmtSci(row.maxAbsDiffPeer)}`);
    }
    if (ref) {
      row.maxAbsDiffRef = ref(out);
      parts.push(`${refLabel} ${fmtSci(row.maxAbsDiffRef)}`);
    }
    row.check = parts.length ? `max|diff| ${parts.join(', ')}` : '';
  } catch (e) {
    row.check = `check failed: ${(e as Error).message}`;
  }
}

// ---------------------------------------------------------------- matmul

interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transB: boolean;
}

/** Max |ours - fp64| over sampled entries of C = A @ op(B). */
function refDiff(a: Float32Array, b: Float32Array, c: Float32Array, s: MatmulShape, samples = 64): number {
  const rng = new Rng(1234);
  let worst = 0;
  for (let t = 0; t < samples; t++) {
    const i = rng.int(0, s.M - 1);
    const j = rng.int(0, s.N - 1);
    let acc = 0;
    for (let k = 0; k < s.K; k++) acc += a[i * s.K + k] * (s.transB ? b[j * s.K + k] : b[k * s.N + j]);
    worst = Math.max(worst, Math.abs(c[i * s.N + j] - acc));
  }
  return worst;
}

async function benchMatmul(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  const square = (n: number) => ({ M: n, N: n, K: n, transB: false });
  const shapes: MatmulShape[] = ctx.quick
    ? [square(256), square(1024), { M: 1024, N: 1024, K: 1024, transB: true }]
    : [...[256, 512, 1024, 2048].map(square), { M: 4096, N: 1024, K: 256, transB: false }, { M: 1024, N: 1024, K: 1024, transB: true }];
  const allVariants: MatmulVariant[] = [...(gpu.subgroupMinSize >= 8 ? (['subgroup'] as const) : []), 'tiled'];
  for (const s of shapes) {
    const aShape = [s.M, s.K];
    const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
    const ha = hostRandn(s.M * s.K, 1);
    const hb = hostRandn(s.K * s.N, 2);
    const a = tensor(gpu, ha, aShape, 'A');
    const b = tensor(gpu, hb, bShape, 'B');
    const shape = `${shapeStr(aShape)}@${shapeStr(bShape)}${s.transB ? 'ᵀ' : ''}`;
    const op = s.transB ? 'matmul transB' : 'matmul';

    // The peer gets the same data; it is measured alongside the first (default) variant and
    // that measurement is reused for the others.
    let ta: TfTensor | null = null;
    let tb: TfTensor | null = null;
    let peerPlan: PeerPlan;
    try {
      if (peer) {
        ta = peer.tf.tensor(ha, aShape, 'float32');
        tb = peer.tf.tensor(hb, bShape, 'float32');
      }
      const [pa, pb] = [ta, tb];
      peerPlan = { op: pa && pb ? () => peer!.tf.matMul(pa, pb, false, s.transB) : () => { throw new Error('no peer inputs'); } };
    } catch (e) {
      peerPlan = { reuse: { side: null, note: `tfjs failed: ${(e as Error).message}`, programs: '', out: null } };
    }

    // --quick: the transposed case with the default variant only.
    const variants = ctx.quick && s.transB ? allVariants.slice(0, 1) : allVariants;
    for (const v of variants) {
      setMatmulVariant(v);
      const call = () => matmul(a, b, { transB: s.transB });
      const { row, peerRun } = await runCase(ctx, {
        section: 'matmul',
        op,
        shape,
        variant: v,
        metric: 'GFLOP/s',
        work: 2 * s.M * s.N * s.K,
        ours: () => opRunner(gpu, call),
        kernels: () => kernelsOf(gpu, call),
        peer: peerPlan,
      });
      await checkRow(row, call, peerRun.out, (out) => refDiff(ha, hb, out, s), 'f64 (64 samples)');
      ctx.rows.push(row);
      peerPlan = { reuse: peerRun };
    }
    ta?.dispose();
    tb?.dispose();
    setMatmulVariant('auto');
    a.dispose();
    b.dispose();
    gpu.trim();
  }
}

// ---------------------------------------------------------------- bandwidth-bound ops

interface SimpleCase {
  section: Section;
  op: string;
  shape: number[];
  /** Bytes moved per call (minimum traffic) for n input elements. */
  bytes: (n: number) => number;
  /** Inputs: one or two host arrays of the shape. */
  inputs: 1 | 2;
  ours: (xs: Tensor[]) => Tensor;
  peer: ((xs: TfTensor[], peer: Peer) => TfTensor) | null;
  peerNote?: string;
  /** Host reference of output element i (checked on a stride of elements). */
  ref?: (xs: Float32Array[], i: number) => number;
}

async function benchSimple(ctx: Ctx, c: SimpleCase, seed: number): Promise<void> {
  const { gpu, peer } = ctx;
  const n = c.shape.reduce((p, d) => p * d, 1);
  const hosts = Array.from({ length: c.inputs }, (_, i) => hostRandn(n, seed + i));
  const xs = hosts.map((h, i) => tensor(gpu, h, c.shape, `x${i}`));
  let txs: TfTensor[] = [];
  let peerPlan: PeerPlan;
  try {
    if (peer && c.peer) txs = hosts.map((h) => peer.tf.tensor(h, c.shape, 'float32'));
    const peerOp = c.peer;
    peerPlan = { op: peerOp ? () => peerOp(txs, peer!) : null, note: c.peerNote };
  } catch (e) {
    peerPlan = { reuse: { side: null, note: `tfjs failed: ${(e as Error).message}`, programs: '', out: null } };
  }
  const call = () => c.ours(xs);
  const { row, peerRun } = await runCase(ctx, {
    section: c.section,
    op: c.op,
    shape: `${shapeStr(c.shape)}${n >= 2 ** 20 ? ` (${n / 2 ** 20}M)` : ''}`,
    variant: '',
    metric: 'GB/s',
    work: c.bytes(n),
    ours: () => opRunner(gpu, call),
    kernels: () => kernelsOf(gpu, call),
    peer: peerPlan,
  });
  for (const t of txs) t.dispose();
  const ref = c.ref;
  await checkRow(
    row,
    call,
    peerRun.out,
    ref
      ? (out) => {
          let worst = 0;
          const stride = Math.max(1, Math.floor(out.length / 4096));
          for (let i = 0; i < out.length; i += stride) worst = Math.max(worst, Math.abs(out[i] - ref(hosts, i)));
          return worst;
        }
      : undefined,
    'host',
  );
  ctx.rows.push(row);
  for (const x of xs) x.dispose();
  gpu.trim();
}

/** copyBufferToBuffer through gpu.copy: no dispatch, so no timestamp; wall clock only. */
async function benchRawCopy(ctx: Ctx, n: number): Promise<void> {
  const { gpu } = ctx;
  const bytes = 4 * n;
  const src = gpu.acquire(bytes, 'bench copy src');
  const dst = gpu.acquire(bytes, 'bench copy dst');
  gpu.upload(src, hostRandn(n, 5));
  const { row } = await runCase(ctx, {
    section: 'elementwise',
    op: 'copy (op: copyBufferToBuffer)',
    shape: `${n / 2 ** 20}M f32`,
    variant: 'command',
    metric: 'GB/s',
    work: 2 * bytes,
    ours: () => ({ run: () => gpu.copy(src, 0, dst, 0, bytes), sync: () => gpu.sync() }),
    peer: { op: null, note: 'the copy() op issues this copy command; timestamp queries time passes, not copies: wall clock' },
  });
  ctx.rows.push(row);
  gpu.release(src);
  gpu.release(dst);
  gpu.trim();
}

async function benchElementwise(ctx: Ctx): Promise<void> {
  const sizes = ctx.quick ? [4 * 2 ** 20] : [4 * 2 ** 20, 16 * 2 ** 20];
  for (const n of sizes) {
    const shape = [n / 1024, 1024];
    await benchSimple(
      ctx,
      {
        section: 'elementwise',
        op: 'add',
        shape,
        inputs: 2,
        bytes: (m) => 3 * 4 * m,
        ours: ([a, b]) => add(a, b),
        peer: ([a, b], p) => p.tf.add(a, b),
        ref: ([a, b], i) => a[i] + b[i],
      },
      3,
    );
    await benchSimple(
      ctx,
      {
        section: 'elementwise',
        op: 'exp',
        shape,
        inputs: 1,
        bytes: (m) => 2 * 4 * m,
        ours: ([x]) => exp(x),
        peer: ([x], p) => p.tf.exp(x),
        ref: ([x], i) => Math.exp(x[i]),
      },
      6,
    );
    await benchRawCopy(ctx, n);
  }
}

async function benchLayout(ctx: Ctx): Promise<void> {
  // A strided copy kernel (kernels/layout.wgsl gather): every output element is one
  // read at a computed offset; the peer transposes too.
  await benchSimple(
    ctx,
    {
      section: 'layout',
      op: 'transpose (strided copy)',
      shape: [4096, 1024],
      inputs: 1,
      bytes: (m) => 2 * 4 * m,
      ours: ([x]) => transpose(x),
      peer: ([x], p) => p.tf.transpose(x),
      ref: ([x], i) => x[(i % 4096) * 1024 + Math.floor(i / 4096)],
    },
    7,
  );
}

async function benchReduce(ctx: Ctx): Promise<void> {
  const cases: { shape: number[]; axis: number }[] = [
    { shape: [4096, 1024], axis: 1 },
    { shape: [64, 262144], axis: 1 },
    ...(ctx.quick ? [] : [{ shape: [4096, 1024], axis: 0 }]),
  ];
  let seed = 10;
  for (const c of cases) {
    const outs = c.shape.filter((_, i) => i !== c.axis).reduce((p, d) => p * d, 1);
    await benchSimple(
      ctx,
      {
        section: 'reduce',
        op: `sum axis ${c.axis}`,
        shape: c.shape,
        inputs: 1,
        bytes: (n) => 4 * n + 4 * outs,
        ours: ([x]) => sum(x, c.axis),
        peer: ([x], p) => p.tf.sum(x, c.axis),
      },
      seed++,
    );
  }
}

async function benchSoftmax(ctx: Ctx): Promise<void> {
  await benchSimple(
    ctx,
    {
      section: 'softmax',
      op: 'softmax rows',
      shape: [4096, 1024],
      inputs: 1,
      bytes: (n) => 2 * 4 * n,
      ours: ([x]) => softmax(x),
      peer: ([x], p) => p.tf.softmax(x),
    },
    20,
  );
}

async function benchLayerNorm(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  const [rows, cols] = [4096, 1024];
  const gamma = tensor(gpu, hostRandn(cols, 21), [cols], 'gamma');
  const beta = tensor(gpu, hostRandn(cols, 22), [cols], 'beta');
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
    },
    23,
  );
  gamma.dispose();
  beta.dispose();
}

/**
 * Attention forward, softmax(q k^T / sqrt(D)) v: our fused kernel (both variants), our
 * composite (matmul, softmax, matmul) and tfjs's composite, on one window's tokens; also
 * the RadFinder head widths 90 (vision, padded to 92 inside) and 128 (text).
 */
async function benchAttention(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  const shapes: [number, number, number][] = ctx.quick ? [[8, 512, 32]] : [[8, 512, 32], [4, 1024, 64], [8, 256, 90], [8, 256, 128]];
  for (const [BH, L, D] of shapes) {
    const shape = [1, BH, L, D];
    const n = BH * L * D;
    const [hq, hk, hv] = [31, 32, 33].map((seed) => hostRandn(n, seed));
    const [q, k, v] = [hq, hk, hv].map((h, i) => tensor(gpu, h, shape, `qkv${i}`));
    const scale = 1 / Math.sqrt(D);
    let peerPlan: PeerPlan = { op: null, note: ctx.peerMissing };
    let tq: TfTensor | null = null, tk: TfTensor | null = null, tv: TfTensor | null = null;
    if (peer) {
      const tf = peer.tf;
      [tq, tk, tv] = [hq, hk, hv].map((h) => tf.tensor(h, [BH, L, D], 'float32'));
      peerPlan = { op: () => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(tq!, tk!, false, true), tf.scalar(scale))), tv!)) };
    }
    const work = 4 * BH * L * L * D;
    const label = `${BH}x${L}x${D} (B*H x L x D)`;
    let peerReuse: PeerRun | null = null;
    for (const variant of ['fused', 'fused-plain', 'composite'] as const) {
      if (variant === 'fused-plain' && gpu.subgroupMinSize < 4) continue;
      setAttentionVariant(variant === 'fused-plain' ? 'plain' : 'auto');
      const op = variant === 'composite'
        ? () => matmul(softmax(mulScalar(matmul(q, k, { transB: true }), scale)), v)
        : () => attention(q, k, v);
      const { row, peerRun } = await runCase(ctx, {
        section: 'attention',
        op: 'attention forward',
        shape: label,
        variant: variant === 'fused' ? (gpu.subgroupMinSize >= 4 ? 'fused (subgroup)' : 'fused') : variant,
        metric: 'GFLOP/s',
        work,
        ours: () => opRunner(gpu, op),
        kernels: () => kernelsOf(gpu, op),
        peer: peerReuse ? { reuse: peerReuse } : peerPlan,
      });
      peerReuse = peerRun;
      ctx.rows.push(row);
    }
    setAttentionVariant('auto');
    for (const x of [q, k, v]) x.dispose();
    for (const x of [tq, tk, tv]) x?.dispose();
    gpu.trim();
  }
}

/** CPU data preparation: the issue's bound is a 512 x 512 x 300 resample in under 5 s. */
async function benchData(ctx: Ctx): Promise<void> {
  const v = createVolume([512, 512, 300], { spacing: [0.7, 0.7, 1.0] });
  for (let i = 0; i < v.data.length; i++) v.data[i] = (i % 2001) - 1000;
  const { row } = await runCase(ctx, {
    section: 'data',
    op: 'resample 0.7x0.7x1 -> 0.75x0.75x3 mm (CPU)',
    shape: '512x512x300',
    variant: 'trilinear',
    metric: 'GB/s',
    work: v.data.length * 4,
    ours: () => ({ run: () => void resample(v, { spacing: [0.75, 0.75, 3] }), sync: async () => {} }),
    peer: { op: null, note: 'no peer (host code)' },
  });
  ctx.rows.push(row);
}

// ---------------------------------------------------------------- 3D patch embedding

/** A runner for a call that returns several tensors (a backward rule's gradients). */
function tensorsRunner(gpu: Gpu, call: () => (Tensor | null)[]): Runner {
  const run = () => {
    for (const t of call()) t?.dispose();
  };
  return { run, sync: () => gpu.sync(), timestamps: gpu.canProfile ? (iters) => profileCalls(gpu, run, iters) : undefined };
}

/**
 * Patch embedding (Conv3d, kernel = stride = 16x16x4, 1 channel) forward and backward (dW +
 * dbias; the volume is data): the in-place kernels of kernels/patch3d.wgsl against the
 * previous path, a permute copy (im2col) then our subgroup matmul (+ sum for dbias). The
 * peer runs tf.conv3d on the same data (channels-last, same token order) for the forward.
 */
async function benchPatch(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  const [p0, p1, p2] = [16, 16, 4];
  const K = p0 * p1 * p2;
  const shapes: [number, number, number, number, number][] = ctx.quick
    ? [[8, 64, 64, 128, 64], [1, 128, 128, 32, 1080]]
    : [[8, 64, 64, 128, 64], [8, 64, 64, 128, 256], [1, 128, 128, 32, 1080]];
  for (const [B, X, Y, Z, E] of shapes) {
    const [nH, nW, nD] = [X / p0, Y / p1, Z / p2];
    const M = B * nH * nW * nD;
    const hx = hostRandn(B * X * Y * Z, 41);
    const hw = hostRandn(E * K, 42).map((v) => v / 32);
    const hb = hostRandn(E, 43);
    const x = tensor(gpu, hx, [B, 1, X, Y, Z], 'volume');
    const w = tensor(gpu, hw, [E, 1, p0, p1, p2], 'weight');
    const b = tensor(gpu, hb, [E], 'bias');
    const w2 = w.view([E, K]); // the old path's weight as a matrix, a leaf of its own graph
    w.requiresGrad = b.requiresGrad = w2.requiresGrad = true;
    const g = tensor(gpu, hostRandn(M * E, 44), [B, nH * nW * nD, E], 'grad');
    const g2 = g.view([M, E]);
    const im2col = () => {
      const v = x.view([B, 1, nH, p0, nW, p1, nD, p2]);
      const pt = permute(v, [0, 2, 4, 6, 1, 3, 5, 7]);
      const a = pt.view([M, K]);
      v.dispose();
      pt.dispose();
      return a;
    };
    const ops = {
      new: () => patchEmbed3d(x, w, b),
      old: () => {
        const a = im2col();
        const y = matmul(a, w2, { transB: true, bias: b });
        a.dispose();
        return y;
      },
    };
    // Graphs kept for the backward rows (their rules are what is timed).
    const yNew = ops.new();
    const aOld = im2col();
    const yOld = matmul(aOld, w2, { transB: true, bias: b });
    const backs = { new: () => yNew.node!.backward(g), old: () => yOld.node!.backward(g2) };

    // f64 reference on 64 sampled outputs.
    const sampleDiff = (out: Float32Array) => {
      const rng = new Rng(7);
      let worst = 0;
      for (let s = 0; s < 64; s++) {
        const m = rng.int(0, M - 1), e = rng.int(0, E - 1);
        const bb = Math.floor(m / (nH * nW * nD)), t = m % (nH * nW * nD);
        const [ph, pw, pd] = [Math.floor(t / (nW * nD)), Math.floor(t / nD) % nW, t % nD];
        let acc = hb[e];
        for (let i = 0; i < p0; i++) for (let j = 0; j < p1; j++) for (let l = 0; l < p2; l++)
          acc += hw[e * K + (i * p1 + j) * p2 + l] * hx[((bb * X + ph * p0 + i) * Y + pw * p1 + j) * Z + pd * p2 + l];
        worst = Math.max(worst, Math.abs(out[m * E + e] - acc));
      }
      return worst;
    };

    let tx: TfTensor | null = null, tw: TfTensor | null = null, tb: TfTensor | null = null;
    let peerPlan: PeerPlan = { op: null, note: ctx.quick && peer ? 'tfjs conv3d skipped in --quick (seconds per call)' : ctx.peerMissing };
    if (peer && !ctx.quick) {
      // tf.conv3d and tf.reshape exist in tfjs-core; bench/lib/peer.ts types only what other sections use.
      const tf = peer.tf as typeof peer.tf & { conv3d(x: TfTensor, f: TfTensor, strides: number[], pad: 'valid'): TfTensor; reshape(x: TfTensor, shape: number[]): TfTensor };
      tx = tf.tensor(hx, [B, X, Y, Z, 1], 'float32');
      // [E, 1, p0, p1, p2] -> tfjs's [p0, p1, p2, in, out].
      const hwt = new Float32Array(E * K);
      for (let e = 0; e < E; e++) for (let k = 0; k < K; k++) hwt[k * E + e] = hw[e * K + k];
      tw = tf.tensor(hwt, [p0, p1, p2, 1, E], 'float32');
      tb = tf.tensor(hb, [E], 'float32');
      // (2D before the bias add: tfjs's rank-5 broadcast add fails to compile here.)
      peerPlan = { op: () => tf.tidy(() => tf.add(tf.reshape(tf.conv3d(tx!, tw!, [p0, p1, p2], 'valid'), [M, E]), tb!)) };
    }
    const shape = `${shapeStr([B, 1, X, Y, Z])}*${shapeStr([E, 1, p0, p1, p2])}`;
    for (const dir of ['forward', 'backward'] as const) {
      const op = dir === 'forward' ? 'patch embed 16x16x4' : 'patch embed backward (dW, dbias)';
      ctx.progress(`${op} ${shape}: in place and permute + matmul${dir === 'forward' && peer && !ctx.quick ? ' and tfjs conv3d' : ''}, interleaved`);
      // New and old path (and tfjs) sampled in alternating rounds, so that both see the same load.
      const runners: Runner[] = dir === 'forward' ? [opRunner(gpu, ops.new), opRunner(gpu, ops.old)] : [tensorsRunner(gpu, backs.new), tensorsRunner(gpu, backs.old)];
      const planNote = 'op' in peerPlan ? peerPlan.note : undefined;
      let peerRun: PeerRun = { side: null, note: dir === 'forward' ? planNote ?? '' : 'no peer for the backward', programs: '', out: null };
      let peerRunner: (Runner & { programs: string }) | null = null;
      if (dir === 'forward' && peer && 'op' in peerPlan && peerPlan.op) {
        try {
          const y = peerPlan.op();
          peerRun.out = (await y.data()) as Float32Array;
          y.dispose();
          peerRunner = peer.runner(peerPlan.op);
        } catch (e) {
          peerRun.note = `tfjs failed: ${(e as Error).message}`;
        }
      }
      const results = await measureInterleaved(peerRunner ? [...runners, peerRunner] : runners, ctx.budget);
      if (peerRunner && peer) {
        const m = results[2];
        const errs = peer.takeErrors();
        if (m instanceof Error || errs.length) peerRun = { ...peerRun, out: null, note: `tfjs failed: ${m instanceof Error ? m.message : errs[0]}` };
        else peerRun = { ...peerRun, side: side(m), programs: peerRunner.programs };
      }
      for (const [i, v] of (['new', 'old'] as const).entries()) {
        const m = results[i];
        const ours = m instanceof Error ? null : side(m);
        const row: Row = {
          section: 'patch', op, shape, variant: v === 'new' ? 'in place (patch3d.wgsl)' : 'permute copy + matmul', metric: 'GFLOP/s', work: 2 * M * K * E,
          ours, rate: ours ? rateOf(2 * M * K * E, ours.ms) : null, rateWall: ours ? rateOf(2 * M * K * E, ours.wallMs) : null,
          kernels: dir === 'forward' ? await kernelsOf(gpu, ops[v]) : [],
          peer: peerRun.side, peerNote: peerRun.note, peerPrograms: peerRun.programs,
          ratioTs: ours?.tsMs != null && peerRun.side?.tsMs != null ? ours.tsMs / peerRun.side.tsMs : null,
          ratioWall: ours && peerRun.side ? ours.wallMs / peerRun.side.wallMs : null,
          check: '', maxAbsDiffPeer: null, maxAbsDiffRef: null, error: m instanceof Error ? m.message : null,
        };
        if (dir === 'forward') await checkRow(row, ops[v], peerRun.out, sampleDiff, 'f64 (64 samples)');
        ctx.rows.push(row);
      }
    }
    for (const t of [x, w, w2, b, g, g2, yNew, aOld, yOld]) t.dispose();
    for (const t of [tx, tw, tb]) t?.dispose();
    gpu.trim();
  }
}

// ---------------------------------------------------------------- report

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

const clockShort = (c: Clock | undefined) => (c === 'timestamp' ? 'ts' : c === 'wall' ? 'wall' : '-');

function render(rows: Row[]): string {
  const headers = ['op', 'shape', 'variant', 'clock', 'ms', 'rate', 'wall ms', 'tfjs ms', 'tfjs wall', 'ours/tfjs', 'wall ratio', 'check / note'];
  const body = rows.map((r) => {
    if (r.error || !r.ours) return [r.op, r.shape, r.variant, '-', 'ERROR', '', '', '', '', '', '', r.error ?? ''];
    const peerOnClock = r.peer ? (r.ours.clock === 'timestamp' ? r.peer.tsMs : r.peer.wallMs) : null;
    const ratio = r.ours.clock === 'timestamp' ? r.ratioTs : r.ratioWall;
    const note = [r.check, r.peer ? '' : r.peerNote].filter(Boolean).join('; ');
    return [
      r.op,
      r.shape,
      r.variant,
      clockShort(r.ours.clock),
      fmtMs(r.ours.ms),
      `${fmtRate(r.rate)} ${r.metric}`,
      fmtMs(r.ours.wallMs),
      fmtMs(peerOnClock),
      fmtMs(r.peer?.wallMs),
      fmtRatio(ratio),
      fmtRatio(r.ratioWall),
      note,
    ];
  });
  return table(headers, body, new Set([4, 5, 6, 7, 8, 9, 10]));
}

interface Target {
  what: string;
  measured: string;
  pass: boolean | null;
}

function targets(rows: Row[]): Target[] {
  const out: Target[] = [];
  const mm = rows.filter((r) => r.op === 'matmul' && r.shape === '1024x1024@1024x1024' && r.ours && !r.error);
  if (mm.length) {
    const best = mm.reduce((p, r) => ((r.rate ?? 0) > (p.rate ?? 0) ? r : p));
    out.push({
      what: 'f32 matmul 1024^3 >= 40 GFLOP/s',
      measured: `${fmtRate(best.rate)} GFLOP/s (${best.variant}, ${best.ours!.clock}; wall ${fmtRate(best.rateWall)})`,
      pass: (best.rate ?? 0) >= 40,
    });
    if (best.peer) {
      const sTs = best.ratioTs ? 1 / best.ratioTs : null;
      const sWall = best.ratioWall ? 1 / best.ratioWall : null;
      // Every same-clock speedup we have must clear the bar.
      const speedups = [sTs, sWall].filter((x): x is number => x !== null);
      out.push({
        what: 'f32 matmul 1024^3 >= 5x tfjs-backend-webgpu (same run, same device)',
        measured: `${fmtRatio(sTs)}x on timestamps, ${fmtRatio(sWall)}x on wall clocks (tfjs/ours time)`,
        pass: speedups.length ? speedups.every((x) => x >= 5) : null,
      });
    } else out.push({ what: 'f32 matmul 1024^3 >= 5x tfjs-backend-webgpu', measured: `no peer: ${best.peerNote}`, pass: null });
  }
  const rs = rows.find((r) => r.section === 'data' && r.ours && !r.error);
  if (rs) {
    const ms = rs.ours!.ms;
    out.push({ what: 'resample 512x512x300 to 0.75x0.75x3 mm < 5 s', measured: `${(ms / 1000).toFixed(2)} s (wall, median)`, pass: ms < 5000 });
  }
  const bw = rows.filter((r) => r.section === 'elementwise' && r.ours && !r.error);
  if (bw.length) {
    const worst = bw.reduce((p, r) => ((r.rate ?? 0) < (p.rate ?? 0) ? r : p));
    out.push({
      what: 'elementwise/copy kernels >= 4 GB/s effective',
      measured: `lowest ${fmtRate(worst.rate)} GB/s (${worst.op} ${worst.shape}); all: ${bw.map((r) => `${r.op} ${r.shape.split(' ')[0]} ${fmtRate(r.rate)}`).join(', ')}`,
      pass: bw.every((r) => (r.rate ?? 0) >= 4),
    });
  }
  return out;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);

  const gpu = await Gpu.create(opts.wallOnly ? { disableFeatures: ['timestamp-query'] } : {});
  const device = gpu.describe();
  console.log(`device: ${device}`);
  const load0 = loadavg().map((x) => +x.toFixed(2));
  console.log(`node ${process.version}, ${started.toISOString()}${opts.quick ? ', --quick' : ''}; load average ${load0.join(' ')} on ${availableParallelism()} cores`);

  let peer: Peer | null = null;
  let peerMissing = 'peer disabled (--no-peer)';
  if (opts.peer) {
    progress('loading tfjs-backend-webgpu');
    const res = await loadPeer();
    if (res.ok) {
      peer = res.peer;
      console.log(`peer: ${peer.version} on ${peer.adapter} (own adapter and device, same process and driver; timestamp-query: ${peer.timestampQuery ? 'yes' : 'no'})`);
    } else {
      peerMissing = `tfjs unavailable: ${res.reason}`;
      console.log(`peer: none (${peerMissing})`);
    }
  }

  const budget: Budget = opts.quick
    ? { warmup: 2, tsSeconds: 0.3, wallSeconds: 0.15, rounds: 3, minIters: 3, maxIters: 8, fixedIters: opts.iters }
    : { warmup: 2, tsSeconds: 1.5, wallSeconds: 0.5, rounds: 3, minIters: 3, maxIters: 30, fixedIters: opts.iters };
  const ctx: Ctx = { gpu, peer, peerMissing, budget, quick: opts.quick, rows: [], progress };

  const sections: Record<Section, (c: Ctx) => Promise<void>> = {
    matmul: benchMatmul,
    attention: benchAttention,
    elementwise: benchElementwise,
    layout: benchLayout,
    reduce: benchReduce,
    softmax: benchSoftmax,
    layernorm: benchLayerNorm,
    data: benchData,
    patch: benchPatch,
  };
  for (const s of SECTIONS) {
    if (!opts.only.has(s)) continue;
    try {
      await sections[s](ctx);
    } catch (e) {
      progress(`section ${s} failed: ${(e as Error).stack ?? e}`);
      ctx.rows.push({
        section: s,
        op: s,
        shape: '',
        variant: '',
        metric: 'GB/s',
        work: 0,
        ours: null,
        rate: null,
        rateWall: null,
        kernels: [],
        peer: null,
        peerNote: '',
        peerPrograms: '',
        ratioTs: null,
        ratioWall: null,
        check: '',
        maxAbsDiffPeer: null,
        maxAbsDiffRef: null,
        error: (e as Error).message,
      });
    }
  }

  const ourClock = gpu.canProfile ? 'timestamp queries (kernel time, summed over the dispatches of one call)' : 'wall time (no timestamp-query on this device)';
  const peerClock = peer ? (peer.timestampQuery ? 'tf.time() kernelMs (timestamp queries)' : 'wall time') : 'n/a';
  console.log('');
  console.log(render(ctx.rows));
  console.log('');
  console.log(`clock: ours ${ourClock}; tfjs ${peerClock}. "ms"/"tfjs ms" use the row's clock; "wall ms"/"tfjs wall" = loop of calls + full sync, divided.`);
  console.log('ratio = ours time / tfjs time on the same clock (< 1: ours faster). Ours and tfjs are sampled in alternating rounds; matmul rows');
  console.log('after the first variant of a shape reuse the tfjs numbers taken beside it. Medians; the machine is shared, so numbers move run to run.');
  console.log('rate: GFLOP/s = 2MNK/time; GB/s = minimum bytes moved (inputs read once, outputs written once) / time, 1 GB = 1e9 B.');
  console.log('check: max |ours - tfjs| over all outputs; matmul also max |ours - float64| over 64 sampled outputs, add/exp/copy against the host.');
  const tg = targets(ctx.rows);
  if (tg.length) {
    console.log('');
    console.log('targets:');
    for (const t of tg) console.log(`  [${t.pass === null ? '  ?  ' : t.pass ? 'PASS ' : 'FAIL '}] ${t.what}: ${t.measured}`);
  }
  const load1 = loadavg().map((x) => +x.toFixed(2));
  console.log(`load average: ${load0.join(' ')} at start, ${load1.join(' ')} at end (other work on the machine slows both sides).`);
  console.log('');
  console.log(`device: ${device}${peer ? ` | peer: ${peer.version} on ${peer.adapter}` : ` | ${peerMissing}`} | node ${process.version}`);

  const date = started.toISOString();
  const name = opts.name ?? `${gpu.isLavapipe ? 'lavapipe' : (gpu.adapterInfo.description || gpu.adapterInfo.vendor || 'gpu').toLowerCase().replace(/[^\w.-]+/g, '-')}-${date.slice(0, 16).replace(/[:T]/g, '-')}`;
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const report = {
    name,
    date,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    loadAverage: { start: load0, end: load1 },
    device,
    adapterInfo: gpu.adapterInfo,
    clocks: { ours: ourClock, peer: peerClock },
    peer: peer ? { name: peer.name, version: peer.version, adapter: peer.adapter, timestampQuery: peer.timestampQuery } : { missing: peerMissing },
    options: { quick: opts.quick, only: [...opts.only], iters: opts.iters ?? null, budget },
    targets: tg,
    rows: ctx.rows,
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`results: ${file} (${report.seconds} s)`);

  peer?.destroy();
  gpu.destroy();
  return ctx.rows.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`bench: ${e instanceof UsageError ? e.message : ((e as Error).stack ?? e)}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
