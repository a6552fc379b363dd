// Timing helpers shared by our runtime and the peer: warm-up, then two clocks.
//   - 'timestamp': GPU timestamp queries around each dispatch (kernel time only), one
//     sample per op call (an op of several dispatches is the sum of them).
//   - 'wall': host wall time of a loop of calls followed by a full sync, divided by the
//     number of calls (includes encoding, submit and queue overhead).
// Every number reported is a median over samples: the machine is shared and noisy. When
// two backends are compared, their samples are taken in alternating rounds, so that both
// see the same spells of load from other processes.
import { quietly } from '../../src/gpu/polling.ts';

export type Clock = 'timestamp' | 'wall';

/** One backend's way to run and time a prepared op (inputs made, outputs disposed per call). */
export interface Runner {
  /** Enqueues one op call; disposes its output. */
  run(): void;
  /** Waits until all enqueued work is done (and surfaces errors). */
  sync(): Promise<void>;
  /** Per-call GPU times (ms) for `iters` calls, by timestamp queries; absent where unavailable. */
  timestamps?: (iters: number) => Promise<number[]>;
}

export interface Budget {
  /** Warm-up calls (the first compiles the pipelines). */
  warmup: number;
  /** Seconds to spend on the timestamp samples (sets the count within [minIters, maxIters]). */
  tsSeconds: number;
  /** Seconds to spend on each wall-clock loop. */
  wallSeconds: number;
  /** Rounds: each takes a share of the timestamp samples and one wall loop. */
  rounds: number;
  minIters: number;
  maxIters: number;
  /** When set, exactly this many timestamp samples and calls per wall loop. */
  fixedIters?: number;
}

export interface Measurement {
  /** Median per-call ms by timestamp queries (null: not available). */
  tsMs: number | null;
  tsSamples: number[];
  /** Median over rounds of (loop time / calls). */
  wallMs: number;
  wallSamples: number[];
  /** Calls per wall loop. */
  wallIters: number;
  /** Wall time of the last warm-up call including its sync (ms), used to size the loops. */
  warmupMs: number;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const clamp = (x: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, x));

interface State {
  r: Runner;
  warmupMs: number;
  tsTotal: number;
  perLoop: number;
  ts: number[];
  wall: number[];
  error: Error | null;
}

/**
 * Measures several runners of the same work in alternating rounds. Returns, per runner,
 * its measurement or the error it failed with (one runner failing does not stop the others).
 */
export async function measureInterleaved(runners: Runner[], b: Budget): Promise<(Measurement | Error)[]> {
  const states: State[] = runners.map((r) => ({ r, warmupMs: 0, tsTotal: 0, perLoop: 1, ts: [], wall: [], error: null }));
  const guard = async (s: State, f: () => Promise<void>) => {
    if (s.error) return;
    try {
      // Both sides wait with dawn.node polling on a timer, not spinning (src/gpu/polling.ts):
      // a spinning wait takes a core from lavapipe, and the peer must not pay that alone.
      await quietly(f());
    } catch (e) {
      s.error = e instanceof Error ? e : new Error(String(e));
    }
  };
  for (const s of states)
    await guard(s, async () => {
      for (let i = 0; i < Math.max(1, b.warmup); i++) {
        const t0 = performance.now();
        s.r.run();
        await s.r.sync();
        s.warmupMs = performance.now() - t0;
      }
      const est = Math.max(s.warmupMs, 1e-3);
      s.tsTotal = s.r.timestamps ? (b.fixedIters ?? clamp(Math.round((b.tsSeconds * 1000) / est), b.minIters, b.maxIters)) : 0;
      // Wall loops: enough calls per loop that sync latency is amortised; at least one.
      s.perLoop = b.fixedIters ?? clamp(Math.round((b.wallSeconds * 1000) / est), 1, 50 * b.maxIters);
    });
  const rounds = Math.max(1, b.rounds);
  for (let round = 0; round < rounds; round++) {
    // Alternate who goes first.
    const order = round % 2 ? [...states].reverse() : states;
    for (const s of order) {
      await guard(s, async () => {
        const n = Math.ceil((s.tsTotal * (round + 1)) / rounds) - Math.ceil((s.tsTotal * round) / rounds);
        if (n > 0 && s.r.timestamps) s.ts.push(...(await s.r.timestamps(n)));
        await s.r.sync();
        const t0 = performance.now();
        for (let i = 0; i < s.perLoop; i++) s.r.run();
        await s.r.sync();
        s.wall.push((performance.now() - t0) / s.perLoop);
      });
    }
  }
  return states.map((s) =>
    s.error
      ? s.error
      : {
          tsMs: s.ts.length ? median(s.ts) : null,
          tsSamples: s.ts,
          wallMs: median(s.wall),
          wallSamples: s.wall,
          wallIters: s.perLoop,
          warmupMs: s.warmupMs,
        },
  );
}

export async function measure(r: Runner, b: Budget): Promise<Measurement> {
  const [m] = await measureInterleaved([r], b);
  if (m instanceof Error) throw m;
  return m;
}
