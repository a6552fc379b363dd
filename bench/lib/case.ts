// What every suite shares: the context a section runs in, host data, and one measured case
// (our op and the peer's, sampled in alternating rounds, into a row), and its check.
import type { Gpu } from '../../src/gpu/runtime.ts';
import type { Tensor } from '../../src/tensor.ts';
import { Rng } from '../../src/ops/creation.ts';
import { fmtSci } from './format.ts';
import { measureInterleaved, type Budget, type Measurement, type Runner } from './measure.ts';
import type { Peer, TfTensor } from './peer.ts';
import { newRow, setOurs, setPeer, sideOf, type PeerRun, type Row, type RowHead } from './row.ts';

export interface Ctx {
  gpu: Gpu;
  peer: Peer | null;
  /** Why there is no peer (the note of rows without one). */
  peerMissing: string;
  budget: Budget;
  quick: boolean;
  rows: Row[];
  progress(msg: string): void;
}

/** A suite: one section of the bench; pushes its rows onto ctx.rows. */
export type Suite = (ctx: Ctx) => Promise<void>;

export function hostRandn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal();
  return d;
}

export const shapeStr = (s: readonly number[]) => s.join('x');

/** The peer's part in a row: an op to measure alongside ours, or a measurement to reuse. */
export type PeerPlan = { op: (() => TfTensor) | null; note?: string } | { reuse: PeerRun };

export type PeerRunner = Runner & { programs: string };

/** Follows a plan: a reused run, a note, or the peer's output of one call and a runner to
 * measure (the note says why when the peer is absent or its first call fails). */
export async function preparePeer(ctx: Ctx, plan: PeerPlan): Promise<{ run: PeerRun; runner: PeerRunner | null }> {
  if ('reuse' in plan) return { run: plan.reuse, runner: null };
  const run: PeerRun = { side: null, note: '', programs: '', out: null };
  if (!plan.op) run.note = plan.note ?? '';
  else if (!ctx.peer) run.note = ctx.peerMissing;
  else {
    try {
      const y = plan.op();
      run.out = (await y.data()) as Float32Array;
      y.dispose();
      return { run, runner: ctx.peer.runner(plan.op) };
    } catch (e) {
      run.note = `tfjs failed: ${(e as Error).message}`;
    }
  }
  return { run, runner: null };
}

/** Records the peer's measurement (or its failure, or the errors its device raised) in `run`. */
export function settlePeer(ctx: Ctx, run: PeerRun, runner: PeerRunner, m: Measurement | Error): void {
  const errs = ctx.peer?.takeErrors() ?? [];
  if (m instanceof Error || errs.length) {
    run.note = `tfjs failed: ${m instanceof Error ? m.message : `device error: ${errs[0]}`}`;
    run.out = null;
    ctx.progress(`  ${run.note}`);
  } else {
    run.side = sideOf(m);
    run.programs = runner.programs;
  }
}

export interface CaseSpec extends RowHead {
  ours: () => Runner;
  kernels?: () => Promise<string[]>;
  peer: PeerPlan;
}

/** Measures our op and (when planned) the peer's in alternating rounds; never throws. */
export async function runCase(ctx: Ctx, c: CaseSpec): Promise<{ row: Row; peerRun: PeerRun }> {
  const { run: peerRun, runner: peerRunner } = await preparePeer(ctx, c.peer);
  const row = newRow(c);
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
  if (ours) setOurs(row, results[0]);
  if (row.error) ctx.progress(`  ours failed: ${row.error}`);
  if (peerRunner) settlePeer(ctx, peerRun, peerRunner, results[ours ? 1 : 0]);
  setPeer(row, peerRun);
  return { row, peerRun };
}

function maxAbsDiff(x: Float32Array, y: Float32Array): number {
  if (x.length !== y.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (Number.isNaN(d)) return NaN; // a NaN is the worst difference, and no later one hides it
    if (d > worst) worst = d;
  }
  return worst;
}

/**
 * The largest difference a row's check accepts: rtol times the largest finite magnitude of the
 * expected output (the peer's where there is one, else ours), so that a softmax's outputs of
 * 1e-3 are judged at their own scale. rtol is 1e-4 for float32 kernels: the rows' sums run over
 * at most a few thousand terms of random normal inputs, whose float32 rounding stays near 1e-6
 * of the output's scale (the bench's own runs: 6e-6 at K = 4128; softmax 4e-6 of its largest
 * entry), so 1e-4 leaves a margin and still catches a wrong index or a lost term. The f16
 * variants round their inputs to 11 bits (about 5e-4 each), hence 1e-2 there (measured 1.5e-3
 * at 1024^3).
 */
export function checkTolerance(row: Row, expected: Float32Array): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = Math.abs(expected[i]);
    if (a > scale && a !== Infinity) scale = a;
  }
  return (row.variant.includes('f16') ? 1e-2 : 1e-4) * scale;
}

/** Runs our op once more and fills the row's check: against the peer's output (all entries)
 * and, where given, a host reference (ref returns the max abs error; most sample). A non-finite
 * value in our output, or either difference over checkTolerance, marks the row wrong, naming
 * which comparison failed (tfjs's output or the reference). */
export async function checkRow(row: Row, op: () => Tensor, peerOut: Float32Array | null, ref?: (out: Float32Array) => number, refLabel = 'f64'): Promise<void> {
  if (row.error) return;
  try {
    const c = op();
    const out = await c.floats();
    c.dispose();
    const tol = checkTolerance(row, peerOut && peerOut.length === out.length ? peerOut : out);
    const parts: string[] = [];
    const over: string[] = [];
    const judge = (label: string, d: number) => {
      parts.push(`${label} ${fmtSci(d)}`);
      if (!(d <= tol)) over.push(`${label} ${fmtSci(d)}`);
    };
    if (peerOut) judge('tfjs', (row.maxAbsDiffPeer = maxAbsDiff(out, peerOut)));
    if (ref) judge(refLabel, (row.maxAbsDiffRef = ref(out)));
    row.check = parts.length ? `max|diff| ${parts.join(', ')}` : '';
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) row.wrong = `our output holds ${out[bad]} at element ${bad}`;
    else if (over.length) row.wrong = `max|diff| ${over.join(', ')} over the tolerance ${fmtSci(tol)}`;
  } catch (e) {
    row.check = `check failed: ${(e as Error).message}`;
    row.wrong = row.check;
  }
}
