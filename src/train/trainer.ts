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
import { CtClipModel } from '../model/model.ts';
import { AdamW } from '../ops/optim.ts';
import { backward } from '../autograd.ts';
import { scope } from '../tensor.ts';
import { Rng, hashString, mixSeed } from '../rng.ts';
import { learningRate, type TrainConfig } from './config.ts';
import { makeBatch } from './batch.ts';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, writeAtomic } from './checkpoint.ts';
import { lineChartSvg } from './plot.ts';
import { evaluate, type EvalReport } from '../eval/evaluate.ts';
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
  const cfgPath = join(out, 'config.json');
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
  if (trainSet.size < 2) throw new DataError(manifest, 'split', `only ${trainSet.size} training case(s); SigLIP needs at least 2`);
  const batchSize = Math.min(cfg.batch, trainSet.size);
  const stats = trainSet.stats();

  let tok: WordPieceTokenizer;
  const tokPath = join(out, 'tokenizer.json');
  if (resumeFrom) tok = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(tokPath, 'utf8')), tokPath);
  else {
    // Prompts are part of the corpus: their words must be in the vocabulary.
    const corpus = [...trainSet.reports(), ...allPrompts().flatMap((c) => [...c.pos, ...c.neg])];
    tok = WordPieceTokenizer.train(corpus, { vocabSize: cfg.vocabSize });
    await writeAtomic(tokPath, tok.serialize());
  }
  cfg = { ...cfg, model: { ...cfg.model, text: { ...cfg.model.text, vocab: tok.vocabSize } } };
  if (!resumeFrom) await writeAtomic(cfgPath, JSON.stringify(cfg, null, 1));

  const model = new CtClipModel(gpu, cfg.model, cfg.seed);
  const opt = new AdamW(model.parameters(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm });
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
      const { batch } = makeBatch(gpu, tok, cases, { ...cfg, posWeight: stats.posWeight, rng });
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
      // A step whose gradient was not finite changed nothing (the optimizer skips it); many
      // such steps mean the run itself is broken.
      if (skipped > Math.max(5, 0.1 * (step + 1)))
        throw new CtvlmError(`${skipped} of ${step + 1} steps had a gradient that was not finite (last loss ${loss}); stopping. The weights were never updated by those steps.`);
      lastLoss = loss;
      const now = performance.now();
      const line: MetricLine = { step: step + 1, lr: opt.lr, loss, siglip, prompts, localization: loc, msPerStep: (now - t0) / stepsSinceLog, liveBytes: gpu.poolStats().liveBytes };
      t0 = now;
      stepsSinceLog = 0;
      await appendFile(metricsPath, JSON.stringify(line) + '\n');
      const eta = ((end - step - 1) * line.msPerStep) / 1000;
      log(
        `step ${String(step + 1).padStart(5)}/${cfg.steps}  loss ${loss.toFixed(4)} (siglip ${siglip.toFixed(3)}, prompts ${prompts.toFixed(3)}` +
          `${loc === null ? '' : `, loc ${loc.toFixed(3)}`})  lr ${opt.lr.toExponential(2)}  ${line.msPerStep.toFixed(0)} ms/step  ETA ${eta.toFixed(0)} s  GPU ${fmtBytes(line.liveBytes)}` +
          `${skipped ? `  (${skipped} steps skipped: gradient not finite)` : ''}`,
      );
    }
    for (const t of [parts.total, parts.siglip, parts.prompts, parts.localization, parts.depthHead]) t?.dispose();
    if (checkpoint) {
      const path = await saveCheckpoint(out, model, opt, { step: step + 1, loss: lastLoss });
      log(`checkpoint ${path}`);
    }
  }
  await writePlots(out, metricsPath);

  let evaluation: EvalReport | null = null;
  if (o.evaluateAtEnd !== false && end === cfg.steps) {
    const test = await CtDataset.open(manifest, { split: 'test', config: cfg.data });
    if (test.size === 0) log(`no test cases in ${manifest}: evaluation skipped (\`ctvlm eval --split val\` evaluates another split)`);
    else {
      evaluation = await evaluateRun(gpu, model, tok, manifest, cfg, 'test', log);
      await writeAtomic(join(out, 'eval-test.json'), JSON.stringify(evaluation, null, 1));
    }
  }
  opt.dispose();
  model.dispose();
  return { runDir: out, steps: end, finalLoss: lastLoss, evaluation };
}

export async function evaluateRun(gpu: Gpu, model: CtClipModel, tok: WordPieceTokenizer, manifest: string, cfg: TrainConfig, split: 'train' | 'val' | 'test' | 'all', log: (s: string) => void): Promise<EvalReport> {
  const data = await CtDataset.open(manifest, { split, config: cfg.data });
  if (data.size === 0) throw new DataError(manifest, 'split', `no '${split}' cases to evaluate`);
  log(`evaluating on ${data.size} ${split} cases`);
  const r = await evaluate(gpu, model, tok, data, {
    batch: cfg.batch,
    reportTokens: cfg.reportTokens,
    promptTokens: cfg.promptTokens,
    snippetTokens: cfg.snippetTokens,
    sigma: cfg.model.sigma,
    binMm: cfg.model.binMm,
  });
  for (const line of formatEval(r)) log(line);
  return r;
}

export function formatEval(r: EvalReport): string[] {
  // Read back from JSON, a NaN is null.
  const pct = (v: number | null) => (v !== null && Number.isFinite(v) ? `${(100 * v).toFixed(1)}` : 'n/a');
  const mm = (v: number | null) => (v !== null && Number.isFinite(v) ? `${v.toFixed(1)} mm` : 'n/a');
  const rec = Object.entries(r.retrieval).map(([k, v]) => `${k} ${pct(v)} (chance ${pct(r.retrievalChance[k])})`).join(', ');
  const l = r.localization;
  return [
    `  retrieval (report -> volume, ${r.cases} cases): ${rec}`,
    `  zero-shot disease classification: macro AUROC ${pct(r.zeroShot.macroAuroc)} over ${r.zeroShot.perClass.filter((c) => c.auroc !== null && Number.isFinite(c.auroc)).length} classes`,
    `  localization (${l.n} snippets): MAE ${mm(l.maeArgmaxMm)} (argmax), ${mm(l.maeExpectedMm)} (expected depth); ` +
      `baselines: random bin ${mm(l.maeRandomMm)}, middle bin ${mm(l.maeMiddleMm)}`,
  ];
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
