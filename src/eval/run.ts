// Evaluation of a run: the evaluated split (test by default) and, beside it, a deterministic
// subset of the training split of the same size, so that memorisation (train) can be told
// from generalisation (test); each with 95% bootstrap intervals over cases. Written to
// RUN/eval-<split>.json (the whole training split's: eval-train-full.json) and RUN/eval-train.json
// (the subset), printed side by side.
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { CtDataset } from '../data/dataset.ts';
import type { RadFinderModel } from '../model/model.ts';
import type { TextTokenizer } from '../model/text.ts';
import type { TrainConfig } from '../train/config.ts';
import { writeAtomic } from '../io/atomic.ts';
import { hashString, mixSeed } from '../rng.ts';
import { evaluate } from './evaluate.ts';
import type { BootstrapOptions } from './bootstrap.ts';
import { reviveEvalReport, toCompactJson, type EvalReport, type Interval } from './summary.ts';

export type EvalSplit = 'test' | 'val' | 'train' | 'all';

export interface SplitsOptions {
  /** The split evaluated in full (default test). */
  split?: EvalSplit;
  /** Most training cases evaluated beside it (default 100; 0: none). The subset has the main split's size, capped here. */
  trainCases?: number;
  /** Write RUN/eval-<split>.json (and RUN/eval-train.json) into this run folder. */
  runDir?: string;
  /** The checkpoint evaluated, recorded in the reports (the run report's header shows it). */
  evaluatedCheckpoint?: { name: string; step: number };
  log?: (line: string) => void;
  bootstrap?: BootstrapOptions;
}

export interface SplitsEvaluation {
  /** The main split's report (null when the split has no cases: logged, not thrown, for the end of training). */
  main: EvalReport | null;
  /** The training subset's (null when not asked for, or the main split is train / all). */
  train: EvalReport | null;
}

export const DEFAULT_TRAIN_CASES = 100;

/**
 * A deterministic subset of k of a split's cases: those whose ids have the smallest
 * hash (FNV-1a of the id, mixed with the seed), in split order. Independent of the
 * manifest's order and of the other cases, so a case stays in (or out of) the subset as the
 * dataset grows.
 */
export function deterministicSubset(ids: readonly string[], k: number, seed = 0): number[] {
  const keyed = ids.map((id, i) => ({ i, h: mixSeed(hashString(id), seed) }));
  keyed.sort((a, b) => a.h - b.h || a.i - b.i);
  return keyed
    .slice(0, Math.max(0, Math.min(k, ids.length)))
    .map((x) => x.i)
    .sort((a, b) => a - b);
}

/**
 * Evaluates a model on `split` (default test) and on a training subset of the same size (at
 * most `trainCases`), with intervals; writes the files when `runDir` is given; logs both side
 * by side. The call the end of training and `ctvlm eval` make.
 */
export async function evaluateSplits(gpu: Gpu, model: RadFinderModel, tok: TextTokenizer, manifest: string, cfg: TrainConfig, o: SplitsOptions = {}): Promise<SplitsEvaluation> {
  const log = o.log ?? (() => {});
  const split = o.split ?? 'test';
  const base = { batch: cfg.batch, reportTokens: cfg.reportTokens, promptTokens: cfg.promptTokens, snippetTokens: cfg.snippetTokens, bootstrap: o.bootstrap };
  const data = await CtDataset.open(manifest, { split, config: cfg.data });
  if (data.size === 0) {
    log(`no '${split}' cases in ${manifest}: evaluation skipped (\`ctvlm eval --split val\` evaluates another split)`);
    return { main: null, train: null };
  }
  log(`evaluating on ${data.size} ${split} cases`);
  const main = await evaluate(gpu, model, tok, data, base);
  if (o.evaluatedCheckpoint) main.checkpoint = o.evaluatedCheckpoint;
  if (o.runDir) await writeAtomic(join(o.runDir, evalFileName(split)), toCompactJson(main) + '\n');
  let train: EvalReport | null = null;
  const maxTrain = o.trainCases ?? DEFAULT_TRAIN_CASES;
  if (maxTrain > 0 && split !== 'train' && split !== 'all') {
    const trainSet = await CtDataset.open(manifest, { split: 'train', config: cfg.data });
    const k = Math.min(main.cases, maxTrain, trainSet.size);
    if (k > 0) {
      const indices = deterministicSubset(trainSet.ids, k);
      log(`evaluating on ${k} of ${trainSet.size} train cases (memorisation vs generalisation)`);
      train = await evaluate(gpu, model, tok, trainSet, {
        ...base,
        indices,
        subsetRule: `${k} of ${trainSet.size} training cases: the smallest FNV-1a hashes of their ids (seed 0)`,
      });
      if (o.evaluatedCheckpoint) train.checkpoint = o.evaluatedCheckpoint;
      if (o.runDir) await writeAtomic(join(o.runDir, TRAIN_SUBSET_FILE), toCompactJson(train) + '\n');
    }
  }
  // A test or validation evaluation without a training subset this time: an older subset would be
  // shown beside it (by `ctvlm report`) as if it were made with it. (The training split itself and
  // every split are never shown beside one, so their evaluations leave it to the one it went with.)
  if (!train && (split === 'test' || split === 'val') && o.runDir) await rm(join(o.runDir, TRAIN_SUBSET_FILE), { force: true });
  for (const line of formatEvalSplits(main, train)) log(line);
  return { main, train };
}

/**
 * The file of a split's evaluation in a run folder: eval-<split>.json, except the whole training
 * split's, eval-train-full.json: eval-train.json (TRAIN_SUBSET_FILE) is the training subset
 * evaluated beside the test or validation split, which `eval --split train` must not replace.
 */
export const evalFileName = (split: string): string => (split === 'train' ? 'eval-train-full.json' : `eval-${split}.json`);

/** The training subset evaluated beside the main split (memorisation vs generalisation). */
export const TRAIN_SUBSET_FILE = 'eval-train.json';

/** Reads a split's evaluation (evalFileName; null when absent). */
export async function readEvaluation(runDir: string, split: string): Promise<EvalReport | null> {
  return readEvalFile(join(runDir, evalFileName(split)));
}

async function readEvalFile(path: string): Promise<EvalReport | null> {
  if (!existsSync(path)) return null;
  try {
    return reviveEvalReport(JSON.parse(await readFile(path, 'utf8')));
  } catch (e) {
    throw new DataError(path, 'json', (e as Error).message);
  }
}

/** The run's main evaluation (`split`, by default test, else val, else all) and its training evaluation. */
export async function readEvaluations(runDir: string, split?: string): Promise<SplitsEvaluation> {
  let main: EvalReport | null = null;
  for (const s of split ? [split] : ['test', 'val', 'all']) if ((main = await readEvaluation(runDir, s))) break;
  // The training subset goes beside the main evaluation only when made with it: not beside the
  // training split (or every split) itself, and not when it is of another checkpoint.
  if (!main || main.split === 'train' || main.split === 'all') return { main, train: null };
  const train = await readEvalFile(join(runDir, TRAIN_SUBSET_FILE));
  const sameCheckpoint = !main.checkpoint || !train?.checkpoint || (main.checkpoint.name === train.checkpoint.name && main.checkpoint.step === train.checkpoint.step);
  return { main, train: train?.subset && sameCheckpoint ? train : null };
}

// ---- printing ----

const ok = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
/** A fraction as a percentage with its interval: "55.6 [48.0, 63.1]". */
export const pctCi = (v: number, ci?: Interval) => (ok(v) ? `${(100 * v).toFixed(1)}${ci && ok(ci[0]) && ok(ci[1]) ? ` [${(100 * ci[0]).toFixed(1)}, ${(100 * ci[1]).toFixed(1)}]` : ''}` : 'n/a');
/** Millimetres with an interval: "27.0 mm [22.1, 32.0]". */
export const mmCi = (v: number, ci?: Interval) => (ok(v) ? `${v.toFixed(1)} mm${ci && ok(ci[0]) && ok(ci[1]) ? ` [${ci[0].toFixed(1)}, ${ci[1].toFixed(1)}]` : ''}` : 'n/a');

/** How a report's cases read in a heading: "24 cases" or "24 of 161 cases". */
export const casesText = (r: EvalReport) => (r.subset ? `${r.cases} of ${r.subset.of} cases` : `${r.cases} cases`);

/**
 * The evaluation, one metric a line, the main split and the training subset side by side:
 * `zero-shot macro AUROC: test 55.6 [48.0, 63.1] | train 71.2 [64.0, 78.3]` (percent, 95%
 * bootstrap intervals over cases).
 */
export function formatEvalSplits(main: EvalReport, train?: EvalReport | null): string[] {
  const rs = train ? [main, train] : [main];
  const side = (f: (r: EvalReport) => string) => rs.map((r) => `${r.split} ${f(r)}`).join(' | ');
  const b = main.bootstrap;
  const lines = [
    `  ${side(casesText)}; in brackets 95% intervals, ${b ? `percentile bootstrap over cases (${b.exact ? 'exact enumeration' : `${b.resamples} resamples, seed ${b.seed}`})` : 'not computed'}`,
  ];
  for (const k of Object.keys(main.retrieval))
    lines.push(`  retrieval report -> volume ${k}: ${side((r) => (k in r.retrieval ? `${pctCi(r.retrieval[k], r.retrievalCi?.[k])} (chance ${pctCi(r.retrievalChance[k])})` : 'n/a'))}`);
  const classes = (r: EvalReport) => r.zeroShot.perClass.filter((c) => ok(c.auroc)).length;
  lines.push(`  zero-shot macro AUROC: ${side((r) => `${pctCi(r.zeroShot.macroAuroc, r.zeroShot.macroAurocCi)} (${classes(r)} classes)`)}`);
  const l = (r: EvalReport) => r.localization;
  lines.push(
    `  localization (${rs.map((r) => `${r.split} ${l(r).n}`).join(', ')} snippets): MAE argmax bin: ${side((r) => mmCi(l(r).maeArgmaxMm, l(r).ci?.maeArgmaxMm))}`,
    `  localization MAE expected depth: ${side((r) => mmCi(l(r).maeExpectedMm, l(r).ci?.maeExpectedMm))}`,
    `  localization baseline, random bin: ${side((r) => mmCi(l(r).maeRandomMm, l(r).ci?.maeRandomMm))}`,
    `  localization baseline, middle bin: ${side((r) => mmCi(l(r).maeMiddleMm, l(r).ci?.maeMiddleMm))}`,
  );
  return lines;
}
