// The run folder a training run writes, and `ctvlm eval`, `ctvlm ablate` and `ctvlm web` read:
// train-config.json, run.json (where the data is), tokenizer.json, metrics.jsonl, plots/,
// ckpt-<step>/ with `latest` (checkpoint.ts), eval-<split>.json (src/eval). Here: opening it
// for a new or a resumed run, and the configuration and tokenizer the run keeps in it.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import { CtvlmError } from '../app-errors.ts';
import { removeTemporaries, writeAtomic } from '../io/atomic.ts';
import type { CtDataset } from '../data/dataset.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { allPrompts } from '../data/prompts.ts';
import { toRadfinderJson } from '../model/config.ts';
import { zeroShotTexts } from '../model/tasks.ts';
import { latestCheckpoint } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';

/** The run folder's training configuration (the model's own config.json is in each checkpoint). */
export const TRAIN_CONFIG = 'train-config.json';

/** A dataset folder's manifest.jsonl, or the manifest file itself; a DataError when there is none. */
export function manifestPath(data: string): string {
  const p = existsSync(data) && statSync(data).isDirectory() ? join(data, 'manifest.jsonl') : data;
  if (!existsSync(p)) throw new DataError(data, 'manifest', `no manifest at ${p} (write one with \`ctvlm data synth --out ${data}\`)`);
  return p;
}

export interface RunFolderOptions {
  /** A dataset folder (with manifest.jsonl) or a manifest file. */
  data: string;
  out: string;
  config: TrainConfig;
  resume?: boolean;
  stepsOverride?: number;
}

/**
 * Opens `out` for a run: removes what interrupted writes left, and on resume reads the saved
 * configuration back (with a new step count when asked); refuses a folder that already holds
 * a run otherwise. Writes nothing for a new run (recordRunData does, once its data is checked).
 * Returns the configuration to train with and the checkpoint to resume from (null: a new run).
 */
export async function openRunFolder(o: RunFolderOptions, log: (line: string) => void): Promise<{ cfg: TrainConfig; resumeFrom: string | null }> {
  const out = o.out;
  let cfg = o.config;
  await removeTemporaries(out);
  const resumeFrom = o.resume ? await latestCheckpoint(out) : null;
  if (o.resume && !resumeFrom) log(`no checkpoint in ${out}: starting from step 0`);
  const cfgPath = join(out, TRAIN_CONFIG);
  if (resumeFrom) {
    if (!existsSync(cfgPath)) throw new DataError(cfgPath, 'config', 'missing: the run folder has checkpoints but no configuration');
    cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as TrainConfig;
    if (o.stepsOverride !== undefined && o.stepsOverride !== cfg.steps) {
      log(`resuming with ${o.stepsOverride} steps instead of ${cfg.steps} (the learning-rate schedule follows the new length)`);
      cfg.steps = o.stepsOverride;
      await writeAtomic(cfgPath, JSON.stringify(cfg, null, 1));
    }
  } else if (existsSync(join(out, 'latest'))) {
    throw new CtvlmError(`${out} already holds a run; continue it with --resume, or choose another --out`);
  }
  return { cfg, resumeFrom };
}

/**
 * Creates the run folder and records where the run's data is (run.json, for `ctvlm eval` and
 * the demo); called once the data has been checked, so a refused run leaves nothing behind.
 */
export async function recordRunData(out: string, data: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeAtomic(join(out, 'run.json'), JSON.stringify({ data: resolve(data) }, null, 1));
}

/**
 * The run's tokenizer: read back on resume, else trained on the training reports and every
 * prompt (their words must be in the vocabulary) and saved as tokenizer.json.
 */
export async function runTokenizer(out: string, resumed: boolean, trainSet: CtDataset, vocabSize: number): Promise<WordPieceTokenizer> {
  const tokPath = join(out, 'tokenizer.json');
  if (resumed) return WordPieceTokenizer.fromJSON(JSON.parse(await readFile(tokPath, 'utf8')), tokPath);
  const corpus = [...trainSet.reports(), ...allPrompts().flatMap((c) => [...c.pos, ...c.neg]), ...zeroShotTexts()];
  const tok = WordPieceTokenizer.train(corpus, { vocabSize });
  await writeAtomic(tokPath, tok.serialize());
  return tok;
}

/**
 * The configuration a new run saves as train-config.json (a resumed one keeps its own): the
 * model's vocabulary is the tokenizer's, and SigLIP's initial b set from siglipBias: a number as
 * it is, 'auto' the prior of the texts each image meets in a step (batch + negativeReports;
 * checkNegativeReports ensures the set supplies them).
 */
export async function settleConfig(out: string, cfg: TrainConfig, tok: WordPieceTokenizer, resumed: boolean): Promise<TrainConfig> {
  cfg = { ...cfg, model: { ...cfg.model, text: { ...cfg.model.text, vocabSize: tok.vocabSize } } };
  if (!resumed && cfg.siglipBias === 'auto')
    // SigLIP's prior: one positive among the texts each image meets in a step (the batch's
    // reports and any negative reports). RadFinder's b = -10 is that prior for ~32k pairs; at
    // a batch of 8 it is log(1/7) = -1.95, and b can not travel 8 units at lr ~1e-3 (the loss
    // then reaches its constant-predictor value by collapsing every embedding onto one
    // direction instead).
    cfg = { ...cfg, model: { ...cfg.model, siglipInit: { ...cfg.model.siglipInit, b: -Math.log(Math.max(1, cfg.batch + (cfg.negativeReports ?? 0) - 1)) } } };
  // A number is the initial b itself (it was ignored before: the model kept the paper's -10).
  else if (!resumed && typeof cfg.siglipBias === 'number') cfg = { ...cfg, model: { ...cfg.model, siglipInit: { ...cfg.model.siglipInit, b: cfg.siglipBias } } };
  if (!resumed) await writeAtomic(join(out, TRAIN_CONFIG), JSON.stringify(cfg, null, 1));
  return cfg;
}

/**
 * The files beside model.safetensors that make every checkpoint folder a RadFinder weights
 * folder: config.json in the release's layout and tokenizer.json.
 */
export function weightsFolderFiles(cfg: TrainConfig, tok: WordPieceTokenizer): Record<string, string> {
  return { 'config.json': JSON.stringify(toRadfinderJson(cfg.model, { maxTextTokens: cfg.reportTokens }), null, 1), 'tokenizer.json': tok.serialize() };
}
