// Percentile bootstrap over cases (the unit the paper resamples): every resample draws the
// evaluated cases with replacement, and every metric of an evaluation is recomputed on the
// same resamples (a paired bootstrap), weighting each case by how often it was drawn. A
// case's snippets and its retrieval query travel with it.
//
// Resamples are kept as multiplicities (weights) per case, so a metric on a resample is a
// weighted version of the metric on the original cases: recall@k a weighted mean of hits,
// AUROC the Mann-Whitney statistic with pair weights w_i * w_j, MAE a weighted mean of the
// case's snippet errors. Each equals the plain metric on the materialised resample (the
// tests check this).
//
// When the number of distinct resamples (multisets of n cases, C(2n-1, n)) is no larger
// than the requested number, the bootstrap distribution is enumerated exactly, each multiset
// with its multinomial probability; otherwise `resamples` are drawn from a seeded Rng.
import { Rng } from '../rng.ts';

/** A 95% (or other level) interval [lo, hi]; NaN (null in JSON) when undefined. */
export type Interval = [number, number];

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the draws (default 0). */
  seed?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
}

export const BOOTSTRAP_DEFAULTS: Required<BootstrapOptions> = { resamples: 1000, seed: 0, level: 0.95 };

/** A set of resamples of n cases: weights[r * n + i] = times case i was drawn in resample r. */
export interface ResamplePlan {
  n: number;
  count: number;
  weights: Uint16Array;
  /** Probability of each resample (1 / count when drawn; multinomial when enumerated). */
  prob: Float64Array;
  exact: boolean;
}

/** Number of multisets of size n from n items, C(2n-1, n), or Infinity above 1e7. */
export function multisetCount(n: number): number {
  let c = 1;
  for (let k = 1; k <= n; k++) {
    c = (c * (n - 1 + k)) / k;
    if (c > 1e7) return Infinity;
  }
  return Math.round(c);
}

/** Every multiset of n cases with its multinomial probability n! / (prod c_i!) / n^n. */
export function exactPlan(n: number): ResamplePlan {
  const count = multisetCount(n);
  if (!Number.isFinite(count)) throw new RangeError(`exactPlan: ${n} cases have too many resamples to enumerate`);
  const weights = new Uint16Array(count * n);
  const prob = new Float64Array(count);
  const logFact = [0];
  for (let k = 1; k <= n; k++) logFact.push(logFact[k - 1] + Math.log(k));
  const c = new Array<number>(n).fill(0);
  let r = 0;
  const rec = (i: number, left: number) => {
    if (i === n - 1) {
      c[i] = left;
      let lp = logFact[n] - n * Math.log(n);
      for (let j = 0; j < n; j++) {
        weights[r * n + j] = c[j];
        lp -= logFact[c[j]];
      }
      prob[r++] = Math.exp(lp);
      return;
    }
    for (let v = left; v >= 0; v--) {
      c[i] = v;
      rec(i + 1, left - v);
    }
  };
  if (n > 0) rec(0, n);
  return { n, count: r, weights, prob, exact: true };
}

/** `resamples` seeded draws of n cases with replacement. */
export function drawnPlan(n: number, resamples: number, seed: number): ResamplePlan {
  if (n > 65535) throw new RangeError(`bootstrap: ${n} cases exceed the plan's 16-bit weights`);
  const weights = new Uint16Array(resamples * n);
  const rng = new Rng(seed);
  for (let r = 0; r < resamples; r++) for (let k = 0; k < n; k++) weights[r * n + Math.floor(rng.next() * n)]++;
  return { n, count: resamples, weights, prob: new Float64Array(resamples).fill(1 / resamples), exact: false };
}

/** The plan an evaluation uses: exact enumeration when it is no larger than `resamples`, else seeded draws. */
export function resamplePlan(n: number, o: BootstrapOptions = {}): ResamplePlan {
  const resamples = o.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  const seed = o.seed ?? BOOTSTRAP_DEFAULTS.seed;
  return multisetCount(n) <= resamples ? exactPlan(n) : drawnPlan(n, resamples, seed);
}

/**
 * The q-quantile of a discrete distribution (values with probabilities): the smallest value
 * whose cumulative probability reaches q (the inverse CDF). NaN values are left out and the
 * rest renormalised; NaN when none is left.
 */
export function quantile(values: ArrayLike<number>, prob: ArrayLike<number>, q: number): number {
  const idx: number[] = [];
  let total = 0;
  for (let i = 0; i < values.length; i++)
    if (Number.isFinite(values[i])) {
      idx.push(i);
      total += prob[i];
    }
  if (idx.length === 0 || !(total > 0)) return NaN;
  idx.sort((a, b) => values[a] - values[b]);
  let acc = 0;
  for (const i of idx) {
    acc += prob[i] / total;
    if (acc >= q - 1e-9) return values[i];
  }
  return values[idx[idx.length - 1]];
}

/** The percentile interval of a statistic's bootstrap distribution. */
export function percentileInterval(values: ArrayLike<number>, prob: ArrayLike<number>, level = BOOTSTRAP_DEFAULTS.level): Interval {
  const a = (1 - level) / 2;
  return [quantile(values, prob, a), quantile(values, prob, 1 - a)];
}

/** Runs a statistic (of the per-case weights) on every resample of a plan. */
export function bootstrapValues(plan: ResamplePlan, stat: (w: Uint16Array) => number): Float64Array {
  const out = new Float64Array(plan.count);
  for (let r = 0; r < plan.count; r++) out[r] = stat(plan.weights.subarray(r * plan.n, (r + 1) * plan.n));
  return out;
}

/** Percentile interval of `stat` over the plan's resamples. */
export function bootstrapInterval(plan: ResamplePlan, stat: (w: Uint16Array) => number, level = BOOTSTRAP_DEFAULTS.level): Interval {
  return percentileInterval(bootstrapValues(plan, stat), plan.prob, level);
}

// ---- weighted metrics (a weight per case; integer weights = a materialised resample) ----

/** Recall@k from 1-based ranks (null: the case's report is empty and does not query). */
export function weightedRecall(ranks: readonly (number | null)[], k: number, w?: ArrayLike<number>): number {
  let hit = 0, tot = 0;
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (r === null) continue;
    const wi = w ? w[i] : 1;
    tot += wi;
    if (r <= k) hit += wi;
  }
  return tot > 0 ? hit / tot : NaN;
}

/**
 * AUROC of one class prepared once for many weightings: known labels sorted by score and
 * grouped by tied scores. `auc(w)` is the Mann-Whitney AUROC with pair weights w_i * w_j
 * (ties count half); NaN without a (weighted) positive or negative, or with a non-finite score.
 */
export class WeightedAuroc {
  private readonly order: Int32Array;
  private readonly groupEnd: Int32Array;
  private readonly pos: Uint8Array;
  private readonly broken: boolean;

  constructor(scores: ArrayLike<number>, labels: ArrayLike<number>) {
    const idx: number[] = [];
    let broken = false;
    for (let i = 0; i < scores.length; i++)
      if (labels[i] === 0 || labels[i] === 1) {
        if (!Number.isFinite(scores[i])) broken = true;
        idx.push(i);
      }
    this.broken = broken;
    idx.sort((a, b) => scores[a] - scores[b]);
    this.order = Int32Array.from(idx);
    this.pos = Uint8Array.from(idx, (i) => labels[i]);
    const ends: number[] = [];
    for (let g = 0; g < idx.length; ) {
      let e = g + 1; // at least one: a NaN score equals nothing, itself included
      while (e < idx.length && scores[idx[e]] === scores[idx[g]]) e++;
      ends.push(e);
      g = e;
    }
    this.groupEnd = Int32Array.from(ends);
  }

  auc(w?: ArrayLike<number>): number {
    if (this.broken) return NaN;
    let negBelow = 0, num = 0, posTot = 0;
    let g0 = 0;
    for (const g1 of this.groupEnd) {
      let p = 0, q = 0;
      for (let k = g0; k < g1; k++) {
        const wi = w ? w[this.order[k]] : 1;
        if (this.pos[k]) p += wi;
        else q += wi;
      }
      num += p * (negBelow + 0.5 * q);
      negBelow += q;
      posTot += p;
      g0 = g1;
    }
    return posTot > 0 && negBelow > 0 ? num / (posTot * negBelow) : NaN;
  }
}

/** Mean over the defined values (NaN when none is). */
export function definedMean(values: ArrayLike<number>): number {
  let s = 0, n = 0;
  for (let i = 0; i < values.length; i++)
    if (Number.isFinite(values[i])) {
      s += values[i];
      n++;
    }
  return n ? s / n : NaN;
}

/** Mean of per-snippet errors, each weighted by its case's weight. */
export function weightedSnippetMean(errors: ArrayLike<number>, caseOf: ArrayLike<number>, w?: ArrayLike<number>): number {
  let s = 0, tot = 0;
  for (let k = 0; k < errors.length; k++) {
    const wi = w ? w[caseOf[k]] : 1;
    s += wi * errors[k];
    tot += wi;
  }
  return tot > 0 ? s / tot : NaN;
}
