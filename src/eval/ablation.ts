// The paper's ablations on one dataset: the variants (each a change to a training preset),
// the paired comparisons between their test evaluations, the paper's claims judged on them,
// and the Markdown table `ctvlm ablate` writes (RUN_ROOT/ablation.md).
//
// Judging a claim: every comparison is a difference of two numbers measured on the same test
// cases (two variants, or a variant and a baseline), so its interval comes from a paired
// percentile bootstrap over those cases (the same resamples for both numbers; 95%). "Raises" /
// "beats" holds when the whole interval of the difference lies on the better side of 0;
// "unchanged" holds when the interval contains 0. When two evaluations do not share their
// cases, the difference's interval is the conservative [lo_a - hi_b, hi_a - lo_b] from the two
// intervals instead (marked unpaired).
import type { TrainConfig } from '../train/config.ts';
import { BOOTSTRAP_DEFAULTS, bootstrapValues, percentileInterval, resamplePlan, type BootstrapOptions, type Interval } from './bootstrap.ts';
import { metricFunctions, hasPerCase, type EvalReport } from './summary.ts';

/** Weight of the depth-regression L1 term in the L1 variant: per mm of expected-depth error (0.12 per 12 mm bin). */
export const L1_WEIGHT_PER_MM = 0.01;

export interface AblationVariant {
  /** Folder name under --out. */
  name: string;
  title: string;
  apply(cfg: TrainConfig): TrainConfig;
}

export const ABLATION_VARIANTS: AblationVariant[] = [
  {
    name: 'full',
    title: 'full objective',
    apply: (cfg) => ((cfg.model.localization.l1Weight = 0), cfg),
  },
  {
    name: 'no-prompts',
    title: 'without disease prompts',
    apply: (cfg) => ((cfg.model.promptWeight = 0), (cfg.model.reportPromptWeight = 0), (cfg.model.localization.l1Weight = 0), cfg),
  },
  {
    name: 'no-localization',
    title: 'without localization',
    apply: (cfg) => ((cfg.model.localization.weight = 0), (cfg.model.localization.l1Weight = 0), cfg),
  },
  {
    name: 'localization-l1',
    title: 'localization + depth L1',
    apply: (cfg) => ((cfg.model.localization.l1Weight = L1_WEIGHT_PER_MM), cfg),
  },
];

/** The objective of a training configuration in words. */
export function objectiveText(cfg: Pick<TrainConfig, 'model'> | null | undefined): string {
  if (!cfg?.model) return '?';
  const m = cfg.model;
  const parts = ['SigLIP'];
  if (m.promptWeight) parts.push(`${m.promptWeight} x prompts`);
  if (m.reportPromptWeight) parts.push(`${m.reportPromptWeight} x report prompts`);
  if (m.localization?.weight) parts.push(`${m.localization.weight} x localization${m.localization.l1Weight ? ` (with ${m.localization.l1Weight}/mm depth L1)` : ''}`);
  return parts.join(' + ');
}

export interface VariantResult {
  name: string;
  title: string;
  /** From the variant's train-config.json. */
  objective: string;
  /** Its test evaluation (null: not trained / evaluated). */
  test: EvalReport | null;
}

export interface Difference {
  value: number;
  ci: Interval;
  paired: boolean;
}

const finite = (x: number) => Number.isFinite(x);

/**
 * metric `ka` of report a minus metric `kb` of report b (keys of metricFunctions: 'R@10',
 * 'macroAuroc', 'maeArgmaxMm', ...), with a paired bootstrap interval when both were measured
 * on the same cases.
 */
export function difference(a: EvalReport, ka: string, b: EvalReport, kb: string, o: BootstrapOptions = {}): Difference {
  const fa = metricFunctions(a)[ka], fb = metricFunctions(b)[kb];
  if (!fa || !fb) return { value: NaN, ci: [NaN, NaN], paired: false };
  const value = fa() - fb();
  const level = o.level ?? BOOTSTRAP_DEFAULTS.level;
  const ids = a.perCase.ids;
  const bIndex = new Map(b.perCase.ids.map((id, i) => [id, i]));
  const same = hasPerCase(a) && hasPerCase(b) && ids.length === b.perCase.ids.length && ids.every((id) => bIndex.has(id));
  if (same) {
    const plan = resamplePlan(ids.length, { resamples: o.resamples ?? BOOTSTRAP_DEFAULTS.resamples, seed: o.seed ?? BOOTSTRAP_DEFAULTS.seed });
    const perm = ids.map((id) => bIndex.get(id)!);
    const wb = new Uint16Array(ids.length);
    const vals = bootstrapValues(plan, (w) => {
      for (let i = 0; i < ids.length; i++) wb[perm[i]] = w[i];
      return fa(w) - fb(wb);
    });
    return { value, ci: percentileInterval(vals, plan.prob, level), paired: true };
  }
  const ia = intervalOf(a, ka), ib = intervalOf(b, kb);
  return { value, ci: [ia[0] - ib[1], ia[1] - ib[0]], paired: false };
}

/** The stored interval of a metric key of a report. */
export function intervalOf(r: EvalReport, key: string): Interval {
  if (key in r.retrieval) return r.retrievalCi[key] ?? [NaN, NaN];
  if (key === 'macroAuroc') return r.zeroShot.macroAurocCi;
  if (key.startsWith('auroc:')) return r.zeroShot.perClass.find((c) => `auroc:${c.label}` === key)?.aurocCi ?? [NaN, NaN];
  const l = r.localization.ci as Record<string, Interval | undefined>;
  return l[key] ?? [NaN, NaN];
}

export function valueOf(r: EvalReport, key: string): number {
  if (key in r.retrieval) return r.retrieval[key];
  if (key === 'macroAuroc') return r.zeroShot.macroAuroc;
  return (r.localization as unknown as Record<string, number>)[key] ?? NaN;
}

export type Verdict = 'held' | 'not held' | 'not tested';

/** Fewer test cases than this leave every claim 'not tested' (the bootstrap of a handful of cases says nothing). */
export const MIN_CASES_FOR_VERDICT = 10;

export interface Claim {
  claim: string;
  /** What is compared, e.g. "full - no-prompts, macro AUROC". */
  comparison: string;
  /** 'up': the difference must be above 0; 'down': below; 'zero': the interval must contain 0. */
  expect: 'up' | 'down' | 'zero';
  unit: 'points' | 'mm';
  diff: Difference | null;
  verdict: Verdict;
  /** Why a claim is not tested, when it is not. */
  note?: string;
  /** Not one of the paper's claims (the design card's question). */
  extra?: boolean;
}

/** The recall key the table reports: R@10, or the largest k the pool allows. */
export function recallKey(r: EvalReport | null): string {
  if (!r) return 'R@10';
  const ks = Object.keys(r.retrieval);
  return ks.includes('R@10') ? 'R@10' : (ks[ks.length - 1] ?? 'R@10');
}

function verdictOf(d: Difference | null, expect: Claim['expect']): Verdict {
  if (!d || !finite(d.ci[0]) || !finite(d.ci[1])) return 'not tested';
  if (expect === 'up') return d.ci[0] > 0 ? 'held' : 'not held';
  if (expect === 'down') return d.ci[1] < 0 ? 'held' : 'not held';
  return d.ci[0] <= 0 && d.ci[1] >= 0 ? 'held' : 'not held';
}

/** The paper's claims (and the L1 question) judged on the variants' test evaluations. */
export function judgeClaims(results: VariantResult[], o: BootstrapOptions = {}): Claim[] {
  const get = (name: string) => results.find((r) => r.name === name)?.test ?? null;
  const full = get('full'), noPrompts = get('no-prompts'), noLoc = get('no-localization'), l1 = get('localization-l1');
  const rk = recallKey(full);
  const few = full && full.cases < MIN_CASES_FOR_VERDICT ? `${full.cases} test cases; at least ${MIN_CASES_FOR_VERDICT} needed` : null;
  const mk = (claim: string, comparison: string, expect: Claim['expect'], unit: Claim['unit'], f: () => Difference | null, extra = false): Claim => {
    const diff = f();
    const verdict = few ? 'not tested' : verdictOf(diff, expect);
    const note = few ?? (verdict === 'not tested' ? (diff ? 'interval undefined' : 'a variant is missing or has no located snippets') : undefined);
    return { claim, comparison, expect, unit, diff, verdict, ...(note ? { note } : {}), ...(extra ? { extra } : {}) };
  };
  return [
    mk('Disease prompts raise zero-shot AUROC', 'full − no-prompts, macro AUROC', 'up', 'points', () => (full && noPrompts ? difference(full, 'macroAuroc', noPrompts, 'macroAuroc', o) : null)),
    mk('Adding localization leaves retrieval unchanged', `full − no-localization, ${rk}`, 'zero', 'points', () => (full && noLoc ? difference(full, rk, noLoc, rk, o) : null)),
    mk('Adding localization leaves zero-shot classification unchanged', 'full − no-localization, macro AUROC', 'zero', 'points', () => (full && noLoc ? difference(full, 'macroAuroc', noLoc, 'macroAuroc', o) : null)),
    mk('Localization beats the random-bin baseline', 'full: argmax MAE − random-bin MAE', 'down', 'mm', () => (full && full.localization.n ? difference(full, 'maeArgmaxMm', full, 'maeRandomMm', o) : null)),
    mk('Localization beats the middle-bin baseline', 'full: argmax MAE − middle-bin MAE', 'down', 'mm', () => (full && full.localization.n ? difference(full, 'maeArgmaxMm', full, 'maeMiddleMm', o) : null)),
    mk('The depth L1 term lowers the expected-depth error', 'localization-l1 − full, expected-depth MAE', 'down', 'mm', () => (full && l1 && full.localization.n ? difference(l1, 'maeExpectedMm', full, 'maeExpectedMm', o) : null), true),
  ];
}

// ---- the Markdown ----

const pct = (v: number) => (finite(v) ? (100 * v).toFixed(1) : 'n/a');
const pctI = (v: number, ci?: Interval) => (finite(v) ? `${pct(v)}${ci && finite(ci[0]) && finite(ci[1]) ? ` [${pct(ci[0])}, ${pct(ci[1])}]` : ''}` : 'n/a');
const mmI = (v: number, ci?: Interval) => (finite(v) ? `${v.toFixed(1)}${ci && finite(ci[0]) && finite(ci[1]) ? ` [${ci[0].toFixed(1)}, ${ci[1].toFixed(1)}]` : ''}` : 'n/a');
const signed = (v: number, digits = 1) => (v >= 0 ? '+' : '−') + Math.abs(v).toFixed(digits);
const cell = (s: string) => s.replace(/\|/g, '\\|');

function diffText(c: Claim): string {
  const d = c.diff;
  if (!d || !finite(d.value)) return 'n/a';
  const k = c.unit === 'points' ? 100 : 1;
  const ci = finite(d.ci[0]) && finite(d.ci[1]) ? ` [${signed(k * d.ci[0])}, ${signed(k * d.ci[1])}]` : '';
  return `${signed(k * d.value)}${ci} ${c.unit}${d.paired ? '' : ' (unpaired)'}`;
}

export interface AblationTableInput {
  data: string;
  preset: string;
  steps: number;
  seed: number;
  results: VariantResult[];
  bootstrap?: BootstrapOptions;
}

export function formatAblationMarkdown(t: AblationTableInput): string {
  const full = t.results.find((r) => r.name === 'full')?.test ?? t.results.find((r) => r.test)?.test ?? null;
  const rk = recallKey(full);
  const lines: string[] = [];
  lines.push(`# Ablation: ${t.data}`, '');
  const ev = full
    ? `evaluated on the ${full.split} split (${full.cases} cases, ${full.localization.n} located snippets); in brackets 95% percentile-bootstrap intervals over the test cases (${full.bootstrap?.exact ? 'exact enumeration' : `${full.bootstrap?.resamples ?? BOOTSTRAP_DEFAULTS.resamples} resamples`})`
    : 'no variant has been evaluated yet';
  lines.push(`Preset \`${t.preset}\`, ${t.steps} steps per variant, seed ${t.seed} (the same initial weights and data order for every variant); ${ev}.`, '');
  lines.push(`| variant | objective | ${rk} (%) | zero-shot macro AUROC (%) | localization MAE, argmax (mm) | localization MAE, expected depth (mm) |`);
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const r of t.results) {
    const e = r.test;
    if (!e) {
      lines.push(`| ${r.name} | ${cell(r.objective)} | not evaluated | | | |`);
      continue;
    }
    const l = e.localization;
    lines.push(`| ${r.name} | ${cell(r.objective)} | ${pctI(e.retrieval[rk] ?? NaN, e.retrievalCi[rk])} | ${pctI(e.zeroShot.macroAuroc, e.zeroShot.macroAurocCi)} | ${mmI(l.maeArgmaxMm, l.ci.maeArgmaxMm)} | ${mmI(l.maeExpectedMm, l.ci.maeExpectedMm)} |`);
  }
  if (full) {
    const l = full.localization;
    lines.push(`| reference | chance / baselines (full's snippets) | chance ${pct(full.retrievalChance[rk] ?? NaN)} | chance 50.0 | random bin ${mmI(l.maeRandomMm, l.ci.maeRandomMm)}; middle bin ${mmI(l.maeMiddleMm, l.ci.maeMiddleMm)} | |`);
  }
  lines.push('', "## The paper's claims on this run", '');
  lines.push('| claim | comparison | difference [95% interval] | on this run |', '| --- | --- | --- | --- |');
  for (const c of judgeClaims(t.results, t.bootstrap)) {
    const v = c.verdict === 'held' ? '**held**' : c.verdict === 'not held' ? '**not held**' : `not tested${c.note ? ` (${c.note})` : ''}`;
    lines.push(`| ${cell(c.claim)}${c.extra ? ' (design card, not a paper claim)' : ''} | ${cell(c.comparison)} | ${diffText(c)} | ${v} |`);
  }
  lines.push(
    '',
    'Each comparison is a difference of two numbers measured on the same test cases, with a paired percentile bootstrap over those cases (both numbers on the same resamples). ' +
      '"Raise" / "beat" / "lower" holds when the whole 95% interval of the difference lies on the better side of 0; "unchanged" holds when it contains 0. ' +
      `"Not held" on few test cases often means the run cannot tell, not that the claim is false. The L1 variant uses ${L1_WEIGHT_PER_MM} per mm of expected-depth error (${(L1_WEIGHT_PER_MM * 12).toFixed(2)} per 12 mm bin), added to the localization loss.`,
    '',
  );
  return lines.join('\n');
}
