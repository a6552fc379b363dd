// The training loop: seeded data order, batches prepared on the CPU while the device works
// on the previous step, one submit per step (only the logged losses are read back), atomic
// checkpoints on a schedule, resume, and an evaluation after the last step when the caller
// passes one (src/eval/run-folder.ts's evaluateAtEnd: the trainer does not import src/eval).
// Its parts: run-folder.ts (configuration, tokenizer, resume), step.ts (data order,
// optimizer, the step, loss checks), metrics.ts (metrics.jsonl, progress lines, plots),
// checkpoint.ts.
import { DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { quietly } from '../gpu/polling.ts';
import { autotuneEnabled } from '../gpu/autotune.ts';
import { autotuneSeenKernels } from '../launch/layout-tuners.ts';
import { CtDataset, type PreparedCase } from '../data/dataset.ts';
import { RadFinderModel } from '../model/model.ts';
import { wordPieceForModel, type TextTokenizer } from '../model/text.ts';
import { minTrainingCases, type TrainConfig } from './config.ts';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { checkNegativeReports } from './step.ts';
import { manifestPath, openRunFolder, recordRunData, RunLock, runTokenizer, saveTrainConfig, settleConfig, weightsFolderFiles } from './run-folder.ts';
import { checkLosses, createOptimizer, disposeLosses, prepareStep, readLosses, trainStep } from './step.ts';
import { textWarmup } from './text-warmup.ts';
import { MetricsFile, etaSeconds, formatMetricLine, writePlots, type MetricLine } from './metrics.ts';

/** The trained model as the evaluation after the last step gets it (still on the device). */
export interface TrainedRun {
  gpu: Gpu;
  model: RadFinderModel;
  tokenizer: TextTokenizer;
  manifest: string;
  config: TrainConfig;
  runDir: string;
  log: (line: string) => void;
}

/** What runs on the trained model after the last step of the schedule; its result is TrainResult.evaluation. */
export interface EndOfTraining<R> {
  /** Runs before the first step, so that a run that could not be evaluated fails before it trains, not after. */
  check?(manifest: string, cfg: TrainConfig): Promise<void>;
  run(t: TrainedRun): Promise<R>;
}

export interface TrainOptions<R = unknown> {
  /** A dataset folder (with manifest.jsonl) or a manifest file; on resume, default the run's
   * own (run.json), and another one is refused. */
  data?: string;
  /** The run folder: config, tokenizer, checkpoints, metrics, plots, evaluation. */
  out: string;
  config: TrainConfig;
  /** Continue from the run folder's latest checkpoint. */
  resume?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * Evaluation after the last step (e.g. evaluateAtEnd from src/eval/run-folder.ts: the test
   * split and a training subset, and the run report); none when absent, or when the run stops
   * early (stopAfter).
   */
  evaluate?: EndOfTraining<R>;
  /** Stop (with a checkpoint) after this many steps of the schedule, as if killed there. */
  stopAfter?: number;
  /**
   * On resume, a new total step count (the CLI's --steps); otherwise a resumed run keeps its
   * saved configuration whole.
   */
  stepsOverride?: number;
  /** Checkpoints every this many steps instead of the configuration's (a resumed run's too). */
  checkpointEvery?: number;
  /**
   * Where autotuned kernel choices are cached (see autotune()); only used where autotuning is
   * on (gpu.tuning.autotune, by default on GPUs and off on CPU adapters). Default: the user's
   * cache folder; null keeps them in memory.
   */
  autotuneCacheDir?: string | null;
}

export interface TrainResult<R = unknown> {
  runDir: string;
  steps: number;
  finalLoss: number;
  /** What `evaluate` returned (null when it did not run). */
  evaluation: R | null;
}

export async function train<R = unknown>(gpu: Gpu, o: TrainOptions<R>): Promise<TrainResult<R>> {
  const lock = new RunLock(o.out);
  try {
    return await trainLocked(gpu, o, lock);
  } finally {
    lock.release();
  }
}

async function trainLocked<R>(gpu: Gpu, o: TrainOptions<R>, lock: RunLock): Promise<TrainResult<R>> {
  const log = o.log ?? (() => {});
  const out = o.out;
  // Before anything in the folder is touched (openRunFolder removes interrupted writes' files,
  // which a running process may be writing).
  lock.acquire();
  const opened = await openRunFolder(o, log);
  if (o.checkpointEvery !== undefined) opened.cfg.checkpointEvery = o.checkpointEvery;
  const resumeFrom = opened.resumeFrom;
  const manifest = manifestPath(opened.data);

  const trainSet = await CtDataset.open(manifest, { split: 'train', config: opened.cfg.data, cache: true });
  const batchSize = opened.cfg.batch;
  const more = '(write a larger set with `ctvlm data synth --n N`, or lower --batch)';
  if (trainSet.size < minTrainingCases(opened.cfg))
    throw new DataError(manifest, 'split', `only ${trainSet.size} training case(s); a batch of ${batchSize} needs at least ${minTrainingCases(opened.cfg)} ${more}`);
  await trainSet.checkVolumesExist(manifest);
  checkNegativeReports(opened.cfg, trainSet.size, manifest);
  await o.evaluate?.check?.(manifest, opened.cfg);
  await recordRunData(out, opened.data);
  lock.acquire(); // a new run's folder exists from here
  if (opened.stepsChanged) await saveTrainConfig(out, opened.cfg);
  const stats = trainSet.stats();

  const tok = await runTokenizer(out, resumeFrom !== null, trainSet, opened.cfg.vocabSize);
  const cfg = await settleConfig(out, opened.cfg, tok, resumeFrom !== null);
  const textTok = wordPieceForModel(tok);
  const weightsFiles = weightsFolderFiles(cfg, tok);

  // Training mode: a BatchNorm1d (vision.featureNorm) normalises by batch statistics and keeps running ones.
  const model = new RadFinderModel(gpu, cfg.model, cfg.seed).train();
  const opt = createOptimizer(model, cfg);
  const metrics = new MetricsFile(out);
  let start = 0;
  // A resumed run that has nothing left to train still reports its loss: the checkpoint's.
  let resumedLoss = NaN;
  if (resumeFrom) {
    const state = await loadCheckpoint(resumeFrom, model, opt);
    start = state.step;
    if (typeof state.loss === 'number') resumedLoss = state.loss;
    await metrics.keepUpTo(start);
    log(`resumed ${resumeFrom} at step ${start}`);
  } else {
    await metrics.reset();
  }
  if (cfg.warmupSteps >= cfg.steps)
    log(`note: the learning rate warms up over ${cfg.warmupSteps} steps and this run has ${cfg.steps}, so it never decays (the preset's schedule is meant for runs of a few hundred steps)`);
  log(
    `train: ${trainSet.size} cases, batch ${batchSize}, ${cfg.steps} steps; model ${(model.parameterCount() / 1e6).toFixed(2)} M parameters; ` +
      `vocabulary ${tok.vocabSize}; ${stats.resolved} located references of ${stats.snippets} mined`,
  );
  // A resumed run's checkpoint already holds the warmed-up text backbone. A checkpoint at step 0
  // keeps the warm-up's work (20 s to minutes) from a run killed before its first scheduled one;
  // the joint stage's optimizer is still fresh there, so resuming from it is the same run.
  if (!resumeFrom && (await textWarmup(gpu, model, textTok, trainSet, cfg, stats.posWeight, log))) {
    const path = await saveCheckpoint(out, model, opt, { step: 0, loss: null }, weightsFiles);
    log(`checkpoint ${path} (after the text warm-up)`);
  }

  const ctx = { gpu, model, opt, tok: textTok, cfg, posWeight: stats.posWeight, reports: trainSet.reports() };
  const end = Math.min(cfg.steps, o.stopAfter ?? cfg.steps);
  let next: Promise<PreparedCase[]> | null = start < end ? prepareStep(trainSet, cfg, start) : null;
  let lastLoss = resumedLoss;
  let t0 = performance.now();
  let stepsSinceLog = 0;
  let waitSinceLog = 0;
  // What a step costs once its volumes are in memory, measured once on this process's second
  // step (pipelines compiled) by waiting for it before the next read starts: the ETA's rate for
  // the steps after the first epoch, which the first epoch's reading hides. Costs that one step's
  // overlap with reading (about 0.4 s in the main job).
  let warmMs: number | null = null;
  // This process reads every training case once (the dataset keeps them in memory) in its
  // first ceil(cases / batch) steps: the ETA counts those at the measured rate, the rest at warmMs.
  const readingEnd = start + Math.ceil(trainSet.size / batchSize);
  // At most two steps in flight: the CPU runs ahead of the device by one step (preparing and
  // encoding), not by however many steps pass between readbacks (each holds its inputs).
  const fences: Promise<void>[] = [];
  for (let step = start; step < end; step++) {
    const w0 = performance.now();
    const cases = await next!;
    waitSinceLog += performance.now() - w0;
    if (fences.length >= 2) await fences.shift();
    const probe = step === start + 1 && end > start + 2 && readingEnd > step + 1;
    if (probe) await Promise.all(fences.splice(0));
    const e0 = performance.now();
    const parts = trainStep(ctx, cases, step);
    fences.push(quietly(gpu.device.queue.onSubmittedWorkDone()));
    if (probe) {
      await fences.at(-1);
      warmMs = performance.now() - e0;
    }
    // The next batch is read and cropped on the CPU while the device runs this step.
    next = step + 1 < end ? prepareStep(trainSet, cfg, step + 1) : null;
    stepsSinceLog++;
    const { log: logged, checkpoint } = due(cfg, step, start, end);
    if (logged) {
      const l = await readLosses(parts, opt, cfg);
      await checkLosses(step, l, () => latestCheckpoint(out));
      lastLoss = l.loss;
      const now = performance.now();
      const line: MetricLine = {
        step: step + 1, lr: opt.lr, loss: l.loss, siglip: l.siglip, prompts: l.prompts, ...(l.reportPrompts === null ? {} : { reportPrompts: l.reportPrompts }), localization: l.localization, gradNorm: l.gradNorm,
        msPerStep: (now - t0) / stepsSinceLog, dataWaitMs: waitSinceLog / stepsSinceLog, liveBytes: gpu.poolStats().liveBytes,
      };
      t0 = now;
      stepsSinceLog = waitSinceLog = 0;
      await metrics.append(line);
      log(formatMetricLine(line, cfg.steps, etaSeconds(line.msPerStep, end - step - 1, readingEnd - step - 1, warmMs, step === start), l.skipped));
    }
    disposeLosses(parts);
    if (checkpoint) {
      const path = await saveCheckpoint(out, model, opt, { step: step + 1, loss: lastLoss }, weightsFiles);
      log(`checkpoint ${path}`);
    }
    // After this process's first step every matmul shape class of the step has been met:
    // where autotuning is on, time the variants of the classes without a cached choice once
    // (outside a step's batch, the step logged first), so that the following steps launch the
    // fastest; the next progress line's ms/step leaves the tuning out.
    if (step === start && end > start + 1 && autotuneEnabled(gpu)) {
      await Promise.all(fences.splice(0));
      const line = await autotuneSeenKernels(gpu, { cacheDir: o.autotuneCacheDir, log });
      if (line) log(line);
      t0 = performance.now();
    }
  }
  await writePlots(out, metrics.path);

  let evaluation: R | null = null;
  model.eval();
  if (o.evaluate && end === cfg.steps) evaluation = await o.evaluate.run({ gpu, model, tokenizer: textTok, manifest, config: cfg, runDir: out, log });
  opt.dispose();
  model.dispose();
  return { runDir: out, steps: end, finalLoss: lastLoss, evaluation };
}

/**
 * What step `step` (0-based) of a run going from `start` to `end` does after it: a checkpoint
 * every checkpointEvery steps and at the end; losses read back and logged every logEvery
 * steps, at the first and the last step, and at each checkpoint.
 */
function due(cfg: TrainConfig, step: number, start: number, end: number): { log: boolean; checkpoint: boolean } {
  const last = step + 1 === end;
  const checkpoint = Boolean(cfg.checkpointEvery && (step + 1) % cfg.checkpointEvery === 0) || last;
  return { checkpoint, log: (step + 1) % cfg.logEvery === 0 || last || step === start || checkpoint };
}
