// One training step and what feeds it: the seeded order of the training cases, the
// optimizer with its parameter groups, the step itself (batch -> loss -> backward -> AdamW, in
// one scope, one submit) and the read-back of its losses with the checks that stop a broken run.
import { CtvlmError } from '../app-errors.ts';
import { DataError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { CtDataset, PreparedCase } from '../data/dataset.ts';
import type { Batch, LossParts, RadFinderModel } from '../model/model.ts';
import type { TextTokenizer } from '../model/text.ts';
import { AdamW, type ParamGroup } from '../optim/index.ts';
import { backward } from '../autograd.ts';
import { scope, type Tensor } from '../tensor.ts';
import { Rng, hashString, mixSeed } from '../rng.ts';
import { learningRate, type TrainConfig } from './config.ts';
import { makeBatch } from './batch.ts';

/**
 * Parameter groups: SigLIP's scalars t and b learn scalarLrScale times faster (a scalar moves
 * by about lr per AdamW step; see siglipBias), and scalars, biases, norms, LayerScale, CLS
 * tokens and the RoPE-free 1-d tensors take no weight decay (the usual exclusions, as timm's
 * param_groups_weight_decay).
 */
export function paramGroup(model: RadFinderModel, cfg: TrainConfig): (p: Tensor) => ParamGroup {
  const scalars = new Set([model.criterion.t, model.criterion.b]);
  return (p) => {
    if (scalars.has(p)) return { lrScale: cfg.scalarLrScale, weightDecay: 0 };
    if (p.rank <= 1 || p.name.endsWith('cls_token')) return { weightDecay: 0 };
    return {};
  };
}

/** The run's AdamW over the model's parameters, with the parameter groups above. */
export function createOptimizer(model: RadFinderModel, cfg: TrainConfig): AdamW {
  return new AdamW(model.parameters(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm, group: paramGroup(model, cfg) });
}

/** The training cases of step `step`: a fresh seeded permutation per epoch. */
export function stepIndices(n: number, batch: number, step: number, seed: number): number[] {
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

/**
 * The training cases whose reports step `step` adds to SigLIP as negatives: `count` distinct
 * case indices in [0, n), none of the step's own, drawn with the step's seed; fewer only when
 * the set is too small (checkNegativeReports refuses that for a run).
 * @throws CtvlmError when count is not an integer >= 0.
 */
export function negativeIndices(n: number, cfg: TrainConfig, step: number, count: number): number[] {
  if (!Number.isInteger(count) || count < 0) throw new CtvlmError(`negative reports: expected an integer >= 0, got ${count}`);
  if (count === 0) return [];
  const own = new Set(stepIndices(n, cfg.batch, step, cfg.seed));
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !own.has(i));
  return new Rng(mixSeed(cfg.seed, step, hashString('negatives'))).shuffle(rest).slice(0, count);
}

/**
 * Refuses a configuration whose negative reports the training set cannot supply (a step needs
 * batch + negativeReports distinct cases), so that every step meets as many texts as SigLIP's
 * 'auto' b assumes.
 * @throws DataError naming the manifest and how many training cases are needed.
 */
export function checkNegativeReports(cfg: TrainConfig, trainCases: number, manifest: string): void {
  const k = cfg.negativeReports ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new DataError(manifest, 'negativeReports', `expected an integer >= 0, got ${k}`);
  if (k > 0 && trainCases < cfg.batch + k)
    throw new DataError(manifest, 'split', `only ${trainCases} training case(s); a batch of ${cfg.batch} with ${k} negative reports needs at least ${cfg.batch + k} (lower --negative-reports)`);
}

/**
 * Reads and crops step `step`'s cases on the CPU (awaited at that step, so that it overlaps
 * the device's work on the previous one).
 */
export function prepareStep(trainSet: CtDataset, cfg: TrainConfig, step: number): Promise<PreparedCase[]> {
  const p = Promise.all(stepIndices(trainSet.size, cfg.batch, step, cfg.seed).map((i, j) => trainSet.prepare(i, 'train', mixSeed(cfg.seed, step, j))));
  // Awaited at the next step; until then a failure must not surface as an unhandled rejection.
  p.catch(() => {});
  return p;
}

export interface StepContext {
  gpu: Gpu;
  model: RadFinderModel;
  opt: AdamW;
  tok: TextTokenizer;
  cfg: TrainConfig;
  /** BCE's pos_weight per label, from the training set's statistics. */
  posWeight: number[];
  /** The training set's reports, by case index (the source of cfg.negativeReports). */
  reports: readonly string[];
}

/**
 * One optimizer step on `cases` at the schedule's learning rate, encoded and submitted; the
 * loss parts come back on the device (the caller reads the ones it logs, then disposes them:
 * disposeLosses).
 */
export function trainStep(c: StepContext, cases: PreparedCase[], step: number): LossParts {
  const { gpu, model, opt, cfg } = c;
  opt.lr = learningRate(cfg, step);
  const rng = new Rng(mixSeed(cfg.seed, step, hashString('prompts')));
  const parts = scope(() => {
    const negativeReports = negativeIndices(c.reports.length, cfg, step, cfg.negativeReports ?? 0).map((i) => c.reports[i]!);
    const { batch } = makeBatch(gpu, c.tok, cases, { ...cfg, posWeight: c.posWeight, rng, reportLabels: (cfg.model.reportPromptWeight ?? 0) > 0, extraReports: negativeReports });
    return optimizeBatch(model, opt, batch);
  });
  gpu.flush();
  return parts;
}

/**
 * The device part of a training step on a batch already uploaded: the loss, its backward, the
 * optimizer's update (its gradient clipping included) and the gradients dropped, in one scope
 * that keeps only the loss parts (the batch stays the caller's). Encoded, not flushed. Shared by
 * trainStep and the bench's `step` section, so that the bench times the step training runs.
 */
export function optimizeBatch(model: RadFinderModel, opt: AdamW, batch: Batch): LossParts {
  return scope(() => {
    const p = model.loss(batch);
    backward(p.total);
    opt.step();
    opt.zeroGrad();
    return p;
  });
}

export function disposeLosses(parts: LossParts): void {
  for (const t of [parts.total, parts.siglip, parts.prompts, parts.reportPrompts, parts.localization, parts.depthHead]) t?.dispose();
}

export interface StepLosses {
  loss: number;
  siglip: number;
  prompts: number;
  reportPrompts: number | null;
  localization: number | null;
  /** Global gradient norm before clipping (null without clipNorm). */
  gradNorm: number | null;
  /** Steps so far whose gradient was not finite (the optimizer skipped them). */
  skipped: number;
}

/** Reads a step's losses back (the one readback of a logged step). */
export async function readLosses(parts: LossParts, opt: AdamW, cfg: TrainConfig): Promise<StepLosses> {
  const [loss, siglip, prompts, reportPrompts, localization, skipped] = await Promise.all([
    parts.total.item(), parts.siglip.item(), parts.prompts.item(), parts.reportPrompts?.item() ?? null, parts.localization?.item() ?? null, opt.skippedSteps(),
  ]);
  const gradNorm = cfg.clipNorm ? await opt.lastGradNorm() : null;
  return { loss, siglip, prompts, reportPrompts, localization, gradNorm, skipped };
}

/**
 * Stops a broken run: a non-finite loss (before this step's checkpoint, so that the last one
 * saved holds finite weights: a step with a non-finite gradient never updates them), or too
 * many skipped steps. `lastCheckpoint` names the one to resume from in the message.
 */
export async function checkLosses(step: number, l: StepLosses, lastCheckpoint: () => Promise<string | null>): Promise<void> {
  for (const [name, v] of [['SigLIP', l.siglip], ['disease-prompt', l.prompts], ['report-prompt', l.reportPrompts], ['localization', l.localization], ['total', l.loss]] as const)
    if (v !== null && !Number.isFinite(v)) {
      const last = await lastCheckpoint();
      throw new CtvlmError(`step ${step + 1}: the ${name} loss is ${v}; stopping. ${last ? `The last checkpoint (${last}) holds the last finite weights; resume from it with --resume, e.g. with a lower --lr.` : 'No checkpoint was written yet.'}`);
    }
  // A step whose gradient was not finite changed nothing (the optimizer skips it); many such
  // steps mean the run itself is broken.
  if (l.skipped > Math.max(5, 0.1 * (step + 1)))
    throw new CtvlmError(`${l.skipped} of ${step + 1} steps had a gradient that was not finite (last loss ${l.loss}); stopping. The weights were never updated by those steps.`);
}
