// Evaluation of a run folder from its files: the training configuration, the tokenizer and a
// checkpoint -> evaluateSplits (the split and the training subset, written beside the run)
// -> RUN/report.html. What `ctvlm eval` and `ctvlm ablate` do after training.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { TrainConfig } from '../train/config.ts';
import { manifestPath, TRAIN_CONFIG } from '../train/trainer.ts';
import { latestCheckpoint, loadCheckpoint } from '../train/checkpoint.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { RadFinderModel } from '../model/model.ts';
import { wordPieceForModel } from '../model/text.ts';
import { evaluateSplits, type SplitsEvaluation, type SplitsOptions } from './run.ts';
import { writeRunReport } from './report.ts';

export interface RunFolderOptions extends Omit<SplitsOptions, 'runDir'> {
  /** Dataset folder or manifest (default: the one recorded in RUN/run.json). */
  data?: string;
  /** Checkpoint folder (default: the run's latest). */
  checkpoint?: string;
}

export interface RunFolderEvaluation extends SplitsEvaluation {
  checkpoint: string;
  step: number;
  /** RUN/report.html (null when the main split had no cases). */
  report: string | null;
}

/** The run's dataset as recorded in RUN/run.json. */
export async function runDataset(run: string): Promise<string | null> {
  const runInfo = join(run, 'run.json');
  if (!existsSync(runInfo)) return null;
  return (JSON.parse(await readFile(runInfo, 'utf8')) as { data: string }).data;
}

/** Throws a DataError naming the missing file when `run` is not a training run folder. */
export function checkRunFolder(run: string): void {
  if (!existsSync(run)) throw new DataError(run, 'folder', 'does not exist');
  if (!existsSync(join(run, TRAIN_CONFIG))) throw new DataError(run, TRAIN_CONFIG, 'missing: not a run folder written by `ctvlm train` (RadFinder weights folders: `ctvlm embed / classify / localize / retrieve --weights`)');
  if (!existsSync(join(run, 'tokenizer.json'))) throw new DataError(run, 'tokenizer.json', 'missing: the run folder is incomplete');
}

export async function evaluateRunFolder(gpu: Gpu, run: string, o: RunFolderOptions = {}): Promise<RunFolderEvaluation> {
  const log = o.log ?? (() => {});
  checkRunFolder(run);
  const cfgPath = join(run, TRAIN_CONFIG);
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as TrainConfig;
  const data = o.data ?? (await runDataset(run));
  if (!data) throw new DataError(run, 'run.json', 'missing: the run does not record its dataset (give --data)');
  const ckpt = o.checkpoint ?? (await latestCheckpoint(run));
  if (!ckpt) throw new DataError(run, 'checkpoint', 'no checkpoint yet');
  const tokPath = join(run, 'tokenizer.json');
  const tok = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(tokPath, 'utf8')), tokPath);
  const model = new RadFinderModel(gpu, cfg.model, cfg.seed);
  try {
    const state = await loadCheckpoint(ckpt, model, null);
    log(`checkpoint ${ckpt} (step ${state.step})`);
    const r = await evaluateSplits(gpu, model, wordPieceForModel(tok), manifestPath(data), cfg, { ...o, runDir: run });
    const report = r.main && existsSync(join(run, 'metrics.jsonl')) ? await writeRunReport(run, { split: o.split ?? 'test' }) : null;
    return { ...r, checkpoint: ckpt, step: state.step, report };
  } finally {
    model.dispose();
  }
}
