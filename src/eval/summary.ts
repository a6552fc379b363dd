// The evaluation result (EvalReport, written as RUN/eval-<split>.json): point estimates,
// 95% percentile-bootstrap intervals over cases, and the per-case raw material they were
// computed from, so that intervals, paired comparisons and plots can be recomputed later
// from the file alone. Host code only (no GPU): `summarize` turns per-case material into a
// report; `metricFunctions` gives every metric as a function of per-case weights.
import {
  BOOTSTRAP_DEFAULTS, WeightedAuroc, bootstrapInterval, definedMean, resamplePlan, weightedRecall, weightedSnippetMean,
  type BootstrapOptions, type Interval, type ResamplePlan,
} from './bootstrap.ts';
import type { LocalizationMetrics } from './metrics.ts';

export type { Interval } from './bootstrap.ts';

/** Per located snippet, columns of equal length. */
export interface SnippetColumns {
  /** Index of the snippet's case in the evaluated list (perCase). */
  case: number[];
  /** Target depth bin and the argmax bin. */
  target: number[];
  predicted: number[];
  /** Expected depth (soft-argmax) and the target bin's centre, mm from the crop's first slice. */
  expectedMm: number[];
  targetMm: number[];
  /** The baselines' errors for this snippet (mm): a random valid bin (expected value), the middle valid bin. */
  randomMm: number[];
  middleMm: number[];
}

export interface ZeroShotClass {
  label: string;
  auroc: number;
  aurocCi: Interval;
  positives: number;
  negatives: number;
  /** Per evaluated case: p(present) from the prompts, and the label (1, 0, -1 unknown). */
  scores: number[];
  labels: number[];
}

export interface RetrievalExample {
  case: number;
  id: string;
  /** The report, cut to a few hundred characters. */
  report: string;
  /** Labels present in the case. */
  labels: string[];
  /** Rank of its own volume (1 = first). */
  rank: number;
  /** The volumes it ranked highest, best first. */
  top: { case: number; id: string; similarity: number; labels: string[] }[];
}

export interface EvalReport {
  split: string;
  /** Cases evaluated (the retrieval pool). */
  cases: number;
  /** Set when a subset of the split was evaluated: the split's size, and how the subset was chosen. */
  subset?: { of: number; rule: string };
  /** How the intervals were computed. exact: the bootstrap distribution was enumerated. */
  bootstrap: { unit: 'case'; method: 'percentile'; resamples: number; seed: number; level: number; exact: boolean };
  /** Report -> volume recall@k (k = 1, 5, 10, 50, 100 below the pool size) over cases with a report. */
  retrieval: Record<string, number>;
  retrievalCi: Record<string, Interval>;
  /** Recall@k of a random ranking: k / cases. */
  retrievalChance: Record<string, number>;
  zeroShot: { perClass: ZeroShotClass[]; macroAuroc: number; macroAurocCi: Interval };
  localization: LocalizationMetrics & {
    binMm: number;
    ci: { maeArgmaxMm: Interval; maeExpectedMm: Interval; maeRandomMm: Interval; maeMiddleMm: Interval };
    snippets: SnippetColumns;
  };
  perCase: {
    ids: string[];
    /** Rank of the case's own volume for its report (1 = first; null: empty report, not a query). */
    rank: (number | null)[];
    /** The 5 volumes its report ranked highest (case indices), best first. */
    top: number[][];
  };
  examples: RetrievalExample[];
  /** The checkpoint evaluated (its folder's name and step), where a run folder's was. */
  checkpoint?: { name: string; step: number };
}

/** What evaluate() collects per case, before summarising. */
export interface EvalRaw {
  split: string;
  ids: string[];
  /** Report texts (only the examples' are kept). */
  reports: string[];
  rank: (number | null)[];
  top: number[][];
  topSim: number[][];
  classes: { label: string; scores: number[]; labels: number[] }[];
  snippets: SnippetColumns;
  binMm: number;
  subset?: { of: number; rule: string };
}

export const RECALL_KS = [1, 5, 10, 50, 100];
/** Metric keys of the localization block, in display order. */
export const LOC_KEYS = ['maeArgmaxMm', 'maeExpectedMm', 'maeRandomMm', 'maeMiddleMm'] as const;
export type LocKey = (typeof LOC_KEYS)[number];

const round = (x: number, d: number) => (Number.isFinite(x) ? Math.round(x * d) / d : NaN);

/** Every metric of a report as a function of per-case weights (undefined: all 1, the point estimate). */
export function metricFunctions(r: Pick<EvalReport, 'retrieval' | 'zeroShot' | 'localization' | 'perCase'>): Record<string, (w?: ArrayLike<number>) => number> {
  const f: Record<string, (w?: ArrayLike<number>) => number> = {};
  for (const key of Object.keys(r.retrieval)) {
    const k = Number(key.slice(2));
    f[key] = (w) => weightedRecall(r.perCase.rank, k, w);
  }
  const aucs = r.zeroShot.perClass.map((c) => new WeightedAuroc(c.scores, c.labels));
  r.zeroShot.perClass.forEach((c, q) => (f[`auroc:${c.label}`] = (w) => aucs[q].auc(w)));
  f.macroAuroc = (w) => definedMean(aucs.map((a) => a.auc(w)));
  const s = r.localization.snippets;
  const col: Record<LocKey, number[]> = {
    maeArgmaxMm: s.target.map((t, k) => Math.abs(s.predicted[k] - t) * r.localization.binMm),
    maeExpectedMm: s.targetMm.map((t, k) => Math.abs(s.expectedMm[k] - t)),
    maeRandomMm: s.randomMm,
    maeMiddleMm: s.middleMm,
  };
  for (const key of LOC_KEYS) f[key] = (w) => weightedSnippetMean(col[key], s.case, w);
  return f;
}

/** Chooses up to `count` retrieval examples: half found in the top 5, half not (fewer when the split has fewer). */
function pickExamples(raw: EvalRaw, count: number): RetrievalExample[] {
  const present = (i: number) => raw.classes.filter((c) => c.labels[i] === 1).map((c) => c.label);
  const queries = raw.rank.flatMap((r, i) => (r === null ? [] : [i]));
  const hits = queries.filter((i) => raw.rank[i]! <= 5);
  const misses = queries.filter((i) => raw.rank[i]! > 5);
  const half = Math.ceil(count / 2);
  let chosen = [...hits.slice(0, half), ...misses.slice(0, half)];
  if (chosen.length < count) chosen = [...chosen, ...queries.filter((i) => !chosen.includes(i))].slice(0, count);
  chosen = chosen.slice(0, count).sort((a, b) => a - b);
  return chosen.map((i) => {
    const text = raw.reports[i].replace(/\s+/g, ' ').trim();
    return {
      case: i,
      id: raw.ids[i],
      report: text.length > 360 ? `${text.slice(0, 357)}...` : text,
      labels: present(i),
      rank: raw.rank[i]!,
      top: raw.top[i].map((j, k) => ({ case: j, id: raw.ids[j], similarity: round(raw.topSim[i][k], 1e4), labels: present(j) })),
    };
  });
}

/** Point estimates and bootstrap intervals from per-case material. */
export function summarize(raw: EvalRaw, o: BootstrapOptions & { examples?: number } = {}): EvalReport {
  const n = raw.ids.length;
  const resamples = o.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  const seed = o.seed ?? BOOTSTRAP_DEFAULTS.seed;
  const level = o.level ?? BOOTSTRAP_DEFAULTS.level;
  const plan = resamplePlan(n, { resamples, seed });
  const ks = RECALL_KS.filter((k) => k < n);
  const nan: Interval = [NaN, NaN];
  const s = raw.snippets;
  const snippets: SnippetColumns = {
    case: s.case.slice(), target: s.target.slice(), predicted: s.predicted.slice(),
    expectedMm: s.expectedMm.map((v) => round(v, 100)), targetMm: s.targetMm.map((v) => round(v, 100)),
    randomMm: s.randomMm.map((v) => round(v, 1e4)), middleMm: s.middleMm.map((v) => round(v, 1e4)),
  };
  const report: EvalReport = {
    split: raw.split,
    cases: n,
    ...(raw.subset ? { subset: raw.subset } : {}),
    bootstrap: { unit: 'case', method: 'percentile', resamples: plan.count, seed, level, exact: plan.exact },
    retrieval: Object.fromEntries(ks.map((k) => [`R@${k}`, NaN])),
    retrievalCi: {},
    retrievalChance: Object.fromEntries(ks.map((k) => [`R@${k}`, k / n])),
    zeroShot: {
      // Scores kept to 1e-6 (and every metric computed from the kept values, so the file reproduces them).
      perClass: raw.classes.map((c) => ({
        label: c.label, auroc: NaN, aurocCi: nan,
        positives: c.labels.filter((v) => v === 1).length, negatives: c.labels.filter((v) => v === 0).length,
        scores: c.scores.map((v) => round(v, 1e6)), labels: c.labels.slice(),
      })),
      macroAuroc: NaN,
      macroAurocCi: nan,
    },
    localization: {
      n: s.case.length, maeArgmaxMm: NaN, maeExpectedMm: NaN, maeRandomMm: NaN, maeMiddleMm: NaN, binMm: raw.binMm,
      ci: { maeArgmaxMm: nan, maeExpectedMm: nan, maeRandomMm: nan, maeMiddleMm: nan },
      snippets,
    },
    perCase: { ids: raw.ids.slice(), rank: raw.rank.slice(), top: raw.top.map((t) => t.slice()) },
    examples: pickExamples(raw, o.examples ?? 4),
  };
  fillIntervals(report, plan, level);
  return report;
}

/** (Re)computes every point estimate and interval of a report from its per-case material. */
export function fillIntervals(r: EvalReport, plan: ResamplePlan, level: number): void {
  const f = metricFunctions(r);
  const est = (key: string): [number, Interval] => [f[key](), bootstrapInterval(plan, f[key], level)];
  for (const key of Object.keys(r.retrieval)) [r.retrieval[key], r.retrievalCi[key]] = est(key);
  for (const c of r.zeroShot.perClass) [c.auroc, c.aurocCi] = est(`auroc:${c.label}`);
  [r.zeroShot.macroAuroc, r.zeroShot.macroAurocCi] = est('macroAuroc');
  for (const key of LOC_KEYS) [r.localization[key], r.localization.ci[key]] = est(key);
}

// ---- the file ----

/**
 * JSON with arrays of numbers / strings on one line (a 100-case evaluation stays a few
 * hundred kB and readable); NaN and infinities are written as null, as JSON.stringify does.
 */
export function toCompactJson(v: unknown, indent = 1, depth = 0): string {
  const pad = ' '.repeat(indent * (depth + 1)), end = ' '.repeat(indent * depth);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v !== 'object') return JSON.stringify(v);
  if (ArrayBuffer.isView(v)) v = Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (v.every((x) => x === null || typeof x !== 'object' || (Array.isArray(x) && x.every((y) => y === null || typeof y !== 'object'))))
      return `[${v.map((x) => toCompactJson(x, 0, 0).replace(/\n/g, '')).join(', ')}]`;
    return `[\n${v.map((x) => pad + toCompactJson(x, indent, depth + 1)).join(',\n')}\n${end}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${toCompactJson(x, indent, depth + 1)}`).join(',\n')}\n${end}}`;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
const iv = (v: unknown): Interval => (Array.isArray(v) ? [num(v[0]), num(v[1])] : [NaN, NaN]);

/**
 * An EvalReport read back from JSON: the numbers written as null become NaN again. Files
 * written before intervals and per-case material existed load with empty material and NaN
 * intervals (plots and intervals that need it are then left out).
 */
export function reviveEvalReport(j: Record<string, unknown>): EvalReport {
  const r = j as unknown as EvalReport;
  const mapNum = (o: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, num(v)]));
  r.retrieval = mapNum(r.retrieval as Record<string, unknown>);
  r.retrievalChance = mapNum(r.retrievalChance as Record<string, unknown>);
  r.retrievalCi = Object.fromEntries(Object.keys(r.retrieval).map((k) => [k, iv((r.retrievalCi as Record<string, unknown> | undefined)?.[k])]));
  const z = (r.zeroShot ?? { perClass: [] }) as EvalReport['zeroShot'];
  r.zeroShot = {
    perClass: (z.perClass ?? []).map((c) => ({
      label: c.label, auroc: num(c.auroc), aurocCi: iv(c.aurocCi), positives: c.positives ?? 0, negatives: c.negatives ?? 0,
      scores: (c.scores ?? []).map(num), labels: c.labels ?? [],
    })),
    macroAuroc: num(z.macroAuroc),
    macroAurocCi: iv(z.macroAurocCi),
  };
  const l = (r.localization ?? {}) as Partial<EvalReport['localization']>;
  const sn = (l.snippets ?? {}) as Partial<SnippetColumns>;
  const col = (k: keyof SnippetColumns) => (sn[k] ?? []).map(num);
  r.localization = {
    n: l.n ?? 0, maeArgmaxMm: num(l.maeArgmaxMm), maeExpectedMm: num(l.maeExpectedMm), maeRandomMm: num(l.maeRandomMm), maeMiddleMm: num(l.maeMiddleMm),
    binMm: num(l.binMm),
    ci: { maeArgmaxMm: iv(l.ci?.maeArgmaxMm), maeExpectedMm: iv(l.ci?.maeExpectedMm), maeRandomMm: iv(l.ci?.maeRandomMm), maeMiddleMm: iv(l.ci?.maeMiddleMm) },
    snippets: { case: col('case'), target: col('target'), predicted: col('predicted'), expectedMm: col('expectedMm'), targetMm: col('targetMm'), randomMm: col('randomMm'), middleMm: col('middleMm') },
  };
  r.perCase = r.perCase ?? { ids: [], rank: [], top: [] };
  r.examples = r.examples ?? [];
  return r;
}

/** Whether a report carries the per-case material (files written since intervals exist). */
export function hasPerCase(r: EvalReport): boolean {
  return r.perCase.ids.length === r.cases && r.cases > 0;
}
