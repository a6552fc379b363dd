// Evaluation metrics (host code on small arrays): text-to-image retrieval recall@k,
// per-class AUROC, and the localization errors with their baselines.

/**
 * Row-major similarity [queries x candidates]; the right candidate of query i is i. The rank
 * of each listed query's own candidate, 1 = first: 1 + the number of other candidates scoring
 * at least as high. A tie counts against the query (a model that gives every candidate the
 * same score must not rank first); a non-finite own score is never found (rank n + 1).
 */
export function retrievalRanks(sim: Float32Array | Float64Array, n: number, queries?: number[]): number[] {
  const qs = queries ?? Array.from({ length: n }, (_, i) => i);
  return qs.map((i) => {
    const own = sim[i * n + i];
    if (!Number.isFinite(own)) return n + 1;
    let rank = 1;
    for (let j = 0; j < n; j++) if (j !== i && !(sim[i * n + j] < own)) rank++;
    return rank;
  });
}

/** Recall@k over the listed queries (default: all): the share whose own candidate ranks k or better. */
export function recallAtK(sim: Float32Array | Float64Array, n: number, ks: number[], queries?: number[]): Record<string, number> {
  const ranks = retrievalRanks(sim, n, queries);
  const out: Record<string, number> = {};
  for (const k of ks) out[`R@${k}`] = ranks.length ? ranks.filter((r) => r <= k).length / ranks.length : NaN;
  return out;
}

/**
 * Area under the ROC curve (ties count half), or NaN when a class has no positive or no
 * negative, or when a score is not finite (a broken model must not look like a result).
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  for (let i = 0; i < scores.length; i++) if ((labels[i] === 0 || labels[i] === 1) && !Number.isFinite(scores[i])) return NaN;
  const pairs: [number, number][] = [];
  for (let i = 0; i < scores.length; i++) if (labels[i] === 0 || labels[i] === 1) pairs.push([scores[i], labels[i]]);
  const pos = pairs.filter(([, l]) => l === 1).length;
  const neg = pairs.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  pairs.sort((a, b) => a[0] - b[0]);
  // Mann-Whitney U with average ranks for ties.
  let rankSum = 0;
  for (let i = 0; i < pairs.length; ) {
    let j = i;
    while (j < pairs.length && pairs[j][0] === pairs[i][0]) j++;
    const avg = (i + j + 1) / 2;
    for (let k = i; k < j; k++) if (pairs[k][1] === 1) rankSum += avg;
    i = j;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Mean over the classes whose AUROC is defined. */
export function macroMean(values: number[]): number {
  const ok = values.filter((v) => Number.isFinite(v));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
}

export interface LocalizationSample {
  /** Target bin and the predicted (argmax) bin. */
  target: number;
  predicted: number;
  /** Expected depth (soft-argmax) in mm and the target bin centre in mm. */
  expectedMm: number;
  targetMm: number;
  /** Valid bins of the scan (for the baselines). */
  validBins: number[];
}

export interface LocalizationMetrics {
  n: number;
  maeArgmaxMm: number;
  maeExpectedMm: number;
  /** Expected MAE of a bin drawn uniformly from the valid bins (exact, not sampled). */
  maeRandomMm: number;
  /** MAE of always answering the middle valid bin. */
  maeMiddleMm: number;
}

/** One snippet's absolute errors in mm: argmax bin, expected depth, random valid bin (expected), middle valid bin. */
export function snippetErrors(s: LocalizationSample, binMm: number): { argmaxMm: number; expectedMm: number; randomMm: number; middleMm: number } {
  const mid = s.validBins[Math.floor((s.validBins.length - 1) / 2)];
  return {
    argmaxMm: Math.abs(s.predicted - s.target) * binMm,
    expectedMm: Math.abs(s.expectedMm - s.targetMm),
    randomMm: (s.validBins.reduce((a, b) => a + Math.abs(b - s.target), 0) / s.validBins.length) * binMm,
    middleMm: Math.abs(mid - s.target) * binMm,
  };
}

export function localizationMetrics(samples: LocalizationSample[], binMm: number): LocalizationMetrics {
  const n = samples.length;
  if (n === 0) return { n, maeArgmaxMm: NaN, maeExpectedMm: NaN, maeRandomMm: NaN, maeMiddleMm: NaN };
  let argmax = 0, expected = 0, random = 0, middle = 0;
  for (const s of samples) {
    const e = snippetErrors(s, binMm);
    argmax += e.argmaxMm;
    expected += e.expectedMm;
    random += e.randomMm;
    middle += e.middleMm;
  }
  return { n, maeArgmaxMm: argmax / n, maeExpectedMm: expected / n, maeRandomMm: random / n, maeMiddleMm: middle / n };
}
