// Evaluation of a run folder: from its files (the training configuration, the tokenizer and a
// checkpoint) -> evaluateSplits (the split and the training subset, written beside the run)
// -> RUN/report.html, what `ctvlm eval` and `ctvlm ablate` do after training; and the same on
// the model in memory at the end of `ctvlm train` (evaluateAtEnd, passed to train()).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { TrainConfig } from '../train/config.ts';
import { manifestPath, realManifest, recordedRunData, TRAIN_CONFIG } from '../train/run-folder.ts';
import type { EndOfTraining } from '../train/trainer.ts';
import { CtDataset } from '../data/dataset.ts';
import { latestCheckpoint, loadCheckpoint, readRunState } from '../train/checkpoint.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { RadFinderModel } from '../model/model.ts';
import { wordPieceForModel } from '../model/text.ts';
import { evaluateSplits, type SplitsEvaluation, type SplitsOptions } from './run.ts';
import { writeRunReport } from './report.ts';
import { readJsonFile, writeAtomic } from '../io/atomic.ts';
import type { EvalReport } from './summary.ts';

export interface RunFolderOptions extends Omit<SplitsOptions, 'runDir' | 'evaluatedCheckpoint'> {
  /** Dataset folder or manifest (default: the one recorded in RUN/run.json). */
  data?: string;
  /** Checkpoint folder (default: the run's latest). */
  checkpoint?: string;
  /**
   * Folder of the eval-*.json files (default: see evalOutDir). The run report is rewritten
   * only when they go to the run folder itself.
   */
  out?: string;
}

export interface RunFolderEvaluation extends SplitsEvaluation {
  checkpoint: string;
  step: number;
  /** Where the eval-*.json files were written. */
  outDir: string;
  /** RUN/report.html (null when the main split had no cases or the files went elsewhere). */
  report: string | null;
}


/** What RUN/eval-<name>/ records about the dataset it holds the evaluation of. */
export const EVAL_DATA_FILE = 'data.json';

/**
 * Where an evaluation of `run` on `data` writes its files: the run folder for the run's own
 * dataset (the same manifest file, symlinks resolved), else RUN/eval-<name>/ with <name> the
 * dataset folder's (or manifest file's) name as given, so that evaluating on another dataset
 * never replaces the run's own evaluation (which `ctvlm quickstart` reprints and the run
 * report shows). The folder records its dataset (data.json); a folder of that name holding
 * another dataset's evaluation is left alone and eval-<name>-2, -3, ... used instead.
 * @throws DataError when `data` has no manifest.
 */
export function evalOutDir(run: string, data: string, runData: string | null, log: (line: string) => void = () => {}): string {
  const manifest = realpathSync(manifestPath(data));
  const own = runData ? realManifest(runData) : null;
  if (manifest === own) return run;
  if (runData && !own) log(`the run's dataset ${runData} (run.json) has no manifest any more: ${data} is evaluated as another dataset`);
  const given = resolve(data);
  const raw = basename(given) === 'manifest.jsonl' ? basename(dirname(given)) : basename(given).replace(/\.jsonl?$/, '');
  const name = raw.replace(/[^\w.-]+/g, '_') || 'data';
  for (let k = 1; ; k++) {
    const dir = join(run, k === 1 ? `eval-${name}` : `eval-${name}-${k}`);
    const rec = join(dir, EVAL_DATA_FILE);
    if (!existsSync(dir)) return dir;
    if (existsSync(rec) && (JSON.parse(readFileSync(rec, 'utf8')) as { manifest?: string }).manifest === manifest) return dir;
  }
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
  const cfg = await readJsonFile<TrainConfig>(cfgPath, 'config');
  const runData = await recordedRunData(run);
  const data = o.data ?? runData;
  if (!data) throw new DataError(run, 'run.json', 'missing: the run does not record its dataset (give --data)');
  const manifest = manifestPath(data);
  const outDir = o.out ?? evalOutDir(run, data, runData, log);
  // A checkpoint's name inside the run folder (ckpt-0000570) or a path.
  const ckpt = o.checkpoint === undefined ? await latestCheckpoint(run) : !existsSync(o.checkpoint) && existsSync(join(run, o.checkpoint)) ? join(run, o.checkpoint) : o.checkpoint;
  if (!ckpt) throw new DataError(run, 'checkpoint', 'no checkpoint yet');
  const tokPath = join(run, 'tokenizer.json');
  const tok = WordPieceTokenizer.fromJSON(await readJsonFile(tokPath, 'tokenizer'), tokPath);
  const model = new RadFinderModel(gpu, cfg.model, cfg.seed);
  try {
    const state = await loadCheckpoint(ckpt, model, null);
    log(`checkpoint ${ckpt} (step ${state.step})`);
    const own = resolve(outDir) === resolve(run);
    const made = !existsSync(outDir);
    await mkdir(outDir, { recursive: true });
    // Before the evaluation: a folder left by a killed one is still found again by its dataset.
    if (!own) await writeAtomic(join(outDir, EVAL_DATA_FILE), JSON.stringify({ data: resolve(data), manifest: realpathSync(manifest) }, null, 1) + '\n');
    let r: SplitsEvaluation;
    try {
      r = await evaluateSplits(gpu, model, wordPieceForModel(tok), manifest, cfg, { ...o, runDir: outDir, evaluatedCheckpoint: { name: basename(resolve(ckpt)), step: state.step } });
    } catch (e) {
      // A folder made for this evaluation holds nothing of use when it fails (a bad volume).
      if (made && !own) await rm(outDir, { recursive: true, force: true });
      throw e;
    }
    const report = own && r.main && existsSync(join(run, 'metrics.jsonl')) ? await writeRunReport(run, { split: o.split ?? 'test' }) : null;
    return { ...r, checkpoint: ckpt, step: state.step, outDir, report };
  } finally {
    model.dispose();
  }
}

/**
 * The evaluation at the end of training (train()'s `evaluate`): the test split and a training
 * subset of its size, with bootstrap intervals (eval-test.json, eval-train.json), and the run
 * report. Before the first step it checks that the test split is large enough to evaluate.
 */
export const evaluateAtEnd: EndOfTraining<EvalReport | null> = {
  async check(manifest, cfg) {
    const test = await CtDataset.open(manifest, { split: 'test', config: cfg.data });
    if (test.size < cfg.minTestCases)
      throw new DataError(manifest, 'split', `only ${test.size} test case(s); the evaluation needs at least ${cfg.minTestCases} (about ${Math.ceil(cfg.minTestCases / 0.1)} cases in all at the default 10% test split)`);
    await test.checkVolumesExist(manifest);
  },
  async run(t) {
    // The model in memory is the last step's, which the run's latest checkpoint holds.
    const latest = await latestCheckpoint(t.runDir);
    const checkpoint = latest ? { name: basename(latest), step: (await readRunState(latest)).step } : undefined;
    const evaluation = (await evaluateSplits(t.gpu, t.model, t.tokenizer, t.manifest, t.config, { runDir: t.runDir, log: t.log, evaluatedCheckpoint: checkpoint })).main;
    if (evaluation) t.log(`report: ${await writeRunReport(t.runDir)}`);
    return evaluation;
  },
};
