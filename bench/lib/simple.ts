// A bandwidth-bound case on random inputs of one shape: our op and the peer's (when it has
// one) on the same data, checked against the peer and, where given, a host reference.
import type { Tensor } from '../../src/tensor.ts';
import { tensor } from '../../src/ops/creation.ts';
import { checkRow, hostRandn, runCase, shapeStr, type Ctx, type PeerPlan } from './case.ts';
import { kernelsOf, opRunner } from './ours.ts';
import type { Peer, TfTensor } from './peer.ts';
import type { Section } from './row.ts';

export interface SimpleCase {
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
  /** Kernel layouts to measure one after another (a row each, the peer measured once beside
   * the first): `use(name)` forces one in gpu.tuning, `use(null)` restores 'auto'; `chosen`
   * is the one 'auto' picks on this device, marked with '*'. */
  variants?: { names: readonly string[]; chosen: string; use: (name: string | null) => void };
}

/** Measures one case and pushes its row; the inputs are drawn from seeds seed, seed + 1. */
export async function benchSimple(ctx: Ctx, c: SimpleCase, seed: number): Promise<void> {
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
    try {
    for (const v of c.variants?.names ?? ['']) {
      c.variants?.use(v);
      const { row, peerRun } = await runCase(ctx, {
        section: c.section,
        op: c.op,
        shape: `${shapeStr(c.shape)}${n >= 2 ** 20 ? ` (${n / 2 ** 20}M)` : ''}`,
        variant: v && v === c.variants?.chosen ? `${v}*` : v,
        metric: 'GB/s',
        work: c.bytes(n),
        ours: () => opRunner(gpu, call),
        kernels: () => kernelsOf(gpu, call),
        peer: peerPlan,
      });
      peerPlan = { reuse: peerRun };
      const ref = c.ref;
      await checkRow(
        row,
        call,
        peerRun.out,
        ref
          ? (out) => {
              let worst = 0;
              // About 4096 samples; the + 1 keeps the stride from being a multiple of a row's
              // length, so that the samples walk across the columns too.
              const stride = Math.floor(out.length / 4096) + 1;
              for (let i = 0; i < out.length; i += stride) worst = Math.max(worst, Math.abs(out[i] - ref(hosts, i)));
              return worst;
            }
          : undefined,
        'host',
      );
      ctx.rows.push(row);
    }
  } finally {
    c.variants?.use(null);
  }
  for (const t of txs) t.dispose();
  for (const x of xs) x.dispose();
  gpu.trim();
}

/**
 * A case's `variants`: the layout 'auto' chose on this device first (measured beside the peer),
 * then, in a full run, the rest of `all`; each forced through `group`, a gpu.tuning group whose
 * `variant` field names the layout ('auto' restored after).
 */
export function layoutVariants(ctx: Ctx, group: { variant: string }, chosen: string, all: readonly string[]): NonNullable<SimpleCase['variants']> {
  const names = ctx.quick ? [chosen] : [chosen, ...all.filter((v) => v !== chosen)];
  return { names, chosen, use: (v) => void (group.variant = v ?? 'auto') };
}

/**
 * Per-row statistics for a host reference that samples elements of [rows, cols]: stats(x, at)
 * of the row starting at element `at`, computed once per row (float64) and reused for its
 * other sampled elements.
 */
export function rowCache(cols: number, stats: (x: Float32Array, at: number) => [number, number]): (x: Float32Array, i: number) => [number, number] {
  let key: Float32Array | null = null;
  const cache = new Map<number, [number, number]>();
  return (x, i) => {
    if (x !== key) (key = x), cache.clear();
    const row = Math.floor(i / cols);
    let s = cache.get(row);
    if (!s) cache.set(row, (s = stats(x, row * cols)));
    return s;
  };
}
