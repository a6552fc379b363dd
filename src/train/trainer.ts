// The training loop: seeded data order, batches prepared on the CPU while the device works
// on the previous step, one submit per step (only the logged losses are read back),
// atomic checkpoints, resume, metrics as JSON lines, SVG plots and evaluation.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile, appendFile, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CtvlmError, DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { fmtBytes } from '../gpu/runtime.ts';
import { CtDataset, type PreparedCase } from '../data/dataset.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { allPrompts } from '../data/prompts.ts';
import { RadFinderModel } from '../model/model.ts';
import { toRadfinderJson } from '../model/config.ts';
import { wordPieceForModel } from '../model/text.ts';
import { AdamW, type ParamGroup } from '../ops/optim.ts';
import type { Tensor } from '../tensor.ts';
import { zeroShotTexts } from '../model/tasks.ts';
import { backward } from '../autograd.ts';
import { scope } from '../tensor.ts';
import { Rng, hashString, mixSeed } from '../rng.ts';
import { learningRate, type TrainConfig } from './config.ts';
import { makeBatch } from './batch.ts';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, writeAtomic } from './checkpoint.ts';
import { lineChartSvg } from './plot.ts';
import type { EvalReport } from '../eval/summary.ts';
import { evaluateSplits } from '../eval/run.ts';
import { writeRunReport } from '../eval/report.ts';
import { quietly } from '../gpu/polling.ts';

export interface TrainOptions {
  /** A dataset folder (with manifest.jsonl) or a manifest file. */
  data: string;
  /** The run folder: config, tokenizer, checkpoints, metrics, plots, evaluation. */
  out: string;
  config: TrainConfig;
  /** Continue from the run folder's latest checkpoint. */
  resume?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Evaluate on the test split at the end (default true). */
  evaluateAtEnd?: boolean;
  /** Stop (with a checkpoint) after this many steps of the schedule, as if killed there. */
  stopAfter?: number;
  /**
   * On resume, a new total step count (the CLI's --steps); otherwise a resumed run keeps its
   * saved configuration whole.
   */
  stepsOverride?: number;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  finalLoss: number;
  evaluation: EvalReport | null;
}

/** The run folder's training configuration (the model's own config.json is in each checkpoint). */
export const TRAIN_CONFIG = 'train-config.json';

/**
 * Parameter groups: SigLIP's scalars t and b learn scalarLrScale times faster (a scalar moves
 * by about lr per AdamW step; see siglipBias), and scalars, biases, norms, LayerScale, CLS
 * tokens and the RoPE-free 1-d tensors take no weight decay (the usual exclusions, as timm's
 * param_groups_weight_decay).
 */
function paramGroup(model: RadFinderModel, cfg: TrainConfig): (p: Tensor) => ParamGroup {
  const scalars = new Set([model.criterion.t, model.criterion.b]);
  return (p) => {
    if (scalars.has(p)) return { lrScale: cfg.scalarLrScale, weightDecay: 0 };
    if (p.rank <= 1 || p.name.endsWith('cls_token')) return { weightDecay: 0 };
    return {};
  };
}

export function manifestPath(data: string): string {
  const p = existsSync(data) && statSync(data).isDirectory() ? join(data, 'manifest.jsonl') : data;
  if (!existsSync(p)) throw new DataError(data, 'manifest', `no manifest at ${p} (write one with \`ctvlm data synth --out ${data}\`)`);
  return p;
}

interface MetricLine {
  step: number;
  lr: number;
  loss: number;
  siglip: number;
  prompts: number;
  localization: number | null;
  /** Global gradient norm before clipping. */
  gradNorm: number | null;
  msPerStep: number;
  liveBytes: number;
}

/** The training cases of step `step`: a fresh seeded permutation per epoch. */
function stepIndices(n: number, batch: number, step: number, seed: number): number[] {
  const perms = new Map<number, number[]>();
  const perm = (epoch: number) => {
    let p = perms.get(epoch);
    if (!p) {
      const rng = new Rng(mixSeed(seed, epoch, 0x5eed));
      p = rng.shuffle(Array.from({ length: n }, (_, i) => i));
      perms.set(epoch, p);
    }
    return p;
  };
  return Array.from({ length: batch }, (_, j) => {
    const g = step * batch + j;
    return perm(Math.floor(g / n))[g % n];
  });
}

export async function train(gpu: Gpu, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? (() => {});
  const manifest = manifestPath(o.data);
  const out = o.out;
  await mkdir(out, { recursive: true });
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
  // Where the run's data is, for `ctvlm eval` and the demo (written once the folder is accepted).
  await writeAtomic(join(out, 'run.json'), JSON.stringify({ data: resolve(o.data) }, null, 1));

  const trainSet = await CtDataset.open(manifest, { split: 'train', config: cfg.data, cache: true });
  const more = '(write a larger set with `ctvlm data synth --n N`, or lower --batch)';
  if (trainSet.size < Math.max(2, cfg.batch))
    throw new DataError(manifest, 'split', `only ${trainSet.size} training case(s); a batch of ${cfg.batch} needs at least ${Math.max(2, cfg.batch)} ${more}`);
  if (o.evaluateAtEnd !== false) {
    const test = await CtDataset.open(manifest, { split: 'test', config: cfg.data });
    if (test.size < cfg.minTestCases)
      throw new DataError(manifest, 'split', `only ${test.size} test case(s); the evaluation needs at least ${cfg.minTestCases} (about ${Math.ceil(cfg.minTestCases / 0.1)} cases in all at the default 10% test split)`);
  }
  const batchSize = cfg.batch;
  const stats = trainSet.stats();

  let tok: WordPieceTokenizer;
  const tokPath = join(out, 'tokenizer.json');
  if (resumeFrom) tok = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(tokPath, 'utf8')), tokPath);
  else {
    // Prompts are part of the corpus: their words must be in the vocabulary.
    const corpus = [...trainSet.reports(), ...allPrompts().flatMap((c) => [...c.pos, ...c.neg]), ...zeroShotTexts()];
    tok = WordPieceTokenizer.train(corpus, { vocabSize: cfg.vocabSize });
    await writeAtomic(tokPath, tok.serialize());
  }
  cfg = { ...cfg, model: { ...cfg.model, text: { ...cfg.model.text, vocabSize: tok.vocabSize } } };
  if (!resumeFrom && cfg.siglipBias === 'auto')
    // SigLIP's prior: one positive among the texts each image meets in a step. RadFinder's
    // b = -10 is that prior for ~32k pairs; at a batch of 8 it is log(1/7) = -1.95, and b can
    // not travel 8 units at lr ~1e-3 (the loss then reaches its constant-predictor value by
    // collapsing every embedding onto one direction instead).
    cfg = { ...cfg, model: { ...cfg.model, siglipInit: { ...cfg.model.siglipInit, b: -Math.log(Math.max(1, cfg.batch - 1)) } } };
  if (!resumeFrom) await writeAtomic(cfgPath, JSON.stringify(cfg, null, 1));
  const textTok = wordPieceForModel(tok);
  // Every checkpoint folder is a RadFinder weights folder: config.json in the release's layout,
  // model.safetensors with its keys, tokenizer.json.
  const weightsFiles = { 'config.json': JSON.stringify(toRadfinderJson(cfg.model, { maxTextTokens: cfg.reportTokens }), null, 1), 'tokenizer.json': tok.serialize() };

  const model = new RadFinderModel(gpu, cfg.model, cfg.seed);
  const opt = new AdamW(model.parameters(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm, group: paramGroup(model, cfg) });
  let start = 0;
  const metricsPath = join(out, 'metrics.jsonl');
  // A run (re)starting from step 0 starts its metrics afresh.
  if (!resumeFrom && existsSync(metricsPath)) await writeAtomic(metricsPath, '');
  if (resumeFrom) {
    const state = await loadCheckpoint(resumeFrom, model, opt);
    start = state.step;
    // Lines logged after the checkpoint belong to steps that will run again.
    if (existsSync(metricsPath)) {
      const kept = (await readFile(metricsPath, 'utf8')).split('\n').filter((l) => {
        try {
          return l && (JSON.parse(l) as { step: number }).step <= start;
        } catch {
          return false; // a line cut off by the kill
        }
      });
      await writeAtomic(metricsPath, kept.length ? kept.join('\n') + '\n' : '');
    }
    log(`resumed ${resumeFrom} at step ${start}`);
  }
  log(
    `train: ${trainSet.size} cases, batch ${batchSize}, ${cfg.steps} steps; model ${(model.parameterCount() / 1e6).toFixed(2)} M parameters; ` +
      `vocabulary ${tok.vocabSize}; ${stats.resolved} located references of ${stats.snippets} mined`,
  );

  const prepare = (step: number): Promise<PreparedCase[]> => {
    const p = Promise.all(stepIndices(trainSet.size, batchSize, step, cfg.seed).map((i, j) => trainSet.prepare(i, 'train', mixSeed(cfg.seed, step, j))));
    // Awaited at the next step; until then a failure must not surface as an unhandled rejection.
    p.catch(() => {});
    return p;
  };
  const end = Math.min(cfg.steps, o.stopAfter ?? cfg.steps);
  let next = start < end ? prepare(start) : null;
  let lastLoss = NaN;
  let t0 = performance.now();
  let stepsSinceLog = 0;
  // At most two steps in flight: the CPU runs ahead of the device by one step (preparing and
  // encoding), not by however many steps pass between readbacks (each holds its inputs).
  const fences: Promise<void>[] = [];
  for (let step = start; step < end; step++) {
    const cases = await next!;
    if (fences.length >= 2) await fences.shift();
    opt.lr = learningRate(cfg, step);
    const rng = new Rng(mixSeed(cfg.seed, step, hashString('prompts')));
    const parts = scope(() => {
      const { batch } = makeBatch(gpu, textTok, cases, { ...cfg, posWeight: stats.posWeight, rng });
      const p = model.loss(batch);
      backward(p.total);
      opt.step();
      opt.zeroGrad();
      return p;
    });
    gpu.flush();
    fences.push(quietly(gpu.device.queue.onSubmittedWorkDone()));
    // The next batch is read and cropped on the CPU while the device runs this step.
    next = step + 1 < end ? prepare(step + 1) : null;
    stepsSinceLog++;
    const last = step + 1 === end;
    const checkpoint = (cfg.checkpointEvery && (step + 1) % cfg.checkpointEvery === 0) || last;
    if ((step + 1) % cfg.logEvery === 0 || last || step === start || checkpoint) {
      const [loss, siglip, prompts, loc, skipped] = await Promise.all([
        parts.total.item(), parts.siglip.item(), parts.prompts.item(), parts.localization?.item() ?? null, opt.skippedSteps(),
      ]);
      const gradNorm = cfg.clipNorm ? await opt.lastGradNorm() : null;
      // A non-finite loss stops the run here, before this step's checkpoint: the last one
      // saved holds finite weights (a step with a non-finite gradient never updates them).
      for (const [name, v] of [['SigLIP', siglip], ['disease-prompt', prompts], ['localization', loc], ['total', loss]] as const)
        if (v !== null && !Number.isFinite(v)) {
          const last = await latestCheckpoint(out);
          throw new CtvlmError(`step ${step + 1}: the ${name} loss is ${v}; stopping. ${last ? `The last checkpoint (${last}) holds the last finite weights; resume from it with --resume, e.g. with a lower --lr.` : 'No checkpoint was written yet.'}`);
        }
      // A step whose gradient was not finite changed nothing (the optimizer skips it); many
      // such steps mean the run itself is broken.
      if (skipped > Math.max(5, 0.1 * (step + 1)))
        throw new CtvlmError(`${skipped} of ${step + 1} steps had a gradient that was not finite (last loss ${loss}); stopping. The weights were never updated by those steps.`);
      lastLoss = loss;
      const now = performance.now();
      const line: MetricLine = { step: step + 1, lr: opt.lr, loss, siglip, prompts, localization: loc, gradNorm, msPerStep: (now - t0) / stepsSinceLog, liveBytes: gpu.poolStats().liveBytes };
      t0 = now;
      stepsSinceLog = 0;
      await appendFile(metricsPath, JSON.stringify(line) + '\n');
      const eta = ((end - step - 1) * line.msPerStep) / 1000;
      log(
        `step ${String(step + 1).padStart(5)}/${cfg.steps}  loss ${loss.toFixed(4)} (siglip ${siglip.toFixed(3)}, prompts ${prompts.toFixed(3)}` +
          `${loc === null ? '' : `, loc ${loc.toFixed(3)}`})  |g| ${gradNorm === null ? '-' : gradNorm.toPrecision(3)}  lr ${opt.lr.toExponential(2)}  ${line.msPerStep.toFixed(0)} ms/step  ETA ${eta.toFixed(0)} s  GPU ${fmtBytes(line.liveBytes)}` +
          `${skipped ? `  (${skipped} steps skipped: gradient not finite)` : ''}`,
      );
    }
    for (const t of [parts.total, parts.siglip, parts.prompts, parts.localization, parts.depthHead]) t?.dispose();
    if (checkpoint) {
      const path = await saveCheckpoint(out, model, opt, { step: step + 1, loss: lastLoss }, weightsFiles);
      log(`checkpoint ${path}`);
    }
  }
  await writePlots(out, metricsPath);

  let evaluation: EvalReport | null = null;
  if (o.evaluateAtEnd !== false && end === cfg.steps) {
    // The test split and a same-size subset of the training split, with bootstrap intervals;
    // eval-test.json, eval-train.json and the run report.
    evaluation = (await evaluateSplits(gpu, model, textTok, manifest, cfg, { runDir: out, log })).main;
    if (evaluation) log(`report: ${await writeRunReport(out)}`);
  }
  opt.dispose();
  model.dispose();
  return { runDir: out, steps: end, finalLoss: lastLoss, evaluation };
}

/** Leftovers of saves interrupted by a kill (`*.tmp-<pid>`): never complete, safe to remove. */
async function removeTemporaries(out: string): Promise<void> {
  if (!existsSync(out)) return;
  for (const f of await readdir(out)) if (/\.tmp-\d+$/.test(f)) await rm(join(out, f), { recursive: true, force: true });
}

export async function writePlots(out: string, metricsPath: string): Promise<void> {
  if (!existsSync(metricsPath)) return;
  const rows = (await readFile(metricsPath, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MetricLine);
  await mkdir(join(out, 'plots'), { recursive: true });
  const series = (key: keyof MetricLine, name: string) => ({ name, points: rows.filter((r) => r[key] !== null).map((r) => [r.step, r[key] as number] as [number, number]) });
  await writeFile(
    join(out, 'plots', 'loss.svg'),
    lineChartSvg([series('loss', 'total'), series('siglip', 'SigLIP'), series('prompts', 'disease prompts'), series('localization', 'localization')], { title: 'training loss', xLabel: 'step', logY: true }),
  );
  await writeFile(join(out, 'plots', 'lr.svg'), lineChartSvg([series('lr', 'learning rate')], { title: 'learning rate', xLabel: 'step' }));
}
