// The text warm-up stage (not RadFinder's; see README "Learning"): before the joint training,
// the from-scratch text backbone learns the 18 labels from the training reports with a linear
// head on its EOS state (BCE with pos_weight). RadFinder starts from a pretrained Qwen3; without
// one, the disease-prompt loss alone cannot teach a new text model to separate "X is present"
// from "X is not present" in the run's budget (measured: scripts/issue7/textprobe.test.ts).
// The head is dropped afterwards; the stage has its own AdamW, so the joint stage's optimizer
// starts fresh as before.
import { CtvlmError } from '../app-errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import type { CtDataset } from '../data/dataset.ts';
import type { RadFinderModel } from '../model/model.ts';
import { encodeTexts, type TextTokenizer } from '../model/text.ts';
import { Linear } from '../nn/layers.ts';
import { AdamW } from '../optim/index.ts';
import { backward } from '../autograd.ts';
import { scope } from '../tensor.ts';
import { tensor } from '../ops/creation.ts';
import { bceWithLogits } from '../ops/crossentropy.ts';
import { Rng, mixSeed } from '../rng.ts';
import { learningRate, type TrainConfig } from './config.ts';

export interface TextWarmupResult {
  steps: number;
  /** The BCE of the last step. */
  loss: number;
  ms: number;
}

/**
 * cfg.textWarmupSteps steps of report -> labels on the training split's non-empty reports,
 * batches of cfg.batch reports in a seeded order, cfg.lr with a 10% linear warm-up and cosine
 * decay, updating model.backbone_text only (the head is discarded). Returns null when the stage
 * is off (0 steps) or no report has text.
 */
export async function textWarmup(gpu: Gpu, model: RadFinderModel, tok: TextTokenizer, trainSet: CtDataset, cfg: TrainConfig, posWeight: number[], log: (l: string) => void): Promise<TextWarmupResult | null> {
  const steps = cfg.textWarmupSteps ?? 0;
  const reports = trainSet.reports();
  const cases = reports.map((r, i) => i).filter((i) => reports[i].trim());
  if (steps <= 0 || cases.length === 0) return null;
  const Q = posWeight.length;
  const head = new Linear(gpu, model.cfg.text.hiddenSize, Q, { seed: mixSeed(cfg.seed, 0x7e47), name: 'text_warmup_head' });
  const opt = new AdamW([...model.backbone_text.parameters(), ...head.parameters()], {
    lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm,
    group: (p) => (p.rank <= 1 ? { weightDecay: 0 } : {}),
  });
  const schedule: TrainConfig = { ...cfg, steps, warmupSteps: Math.ceil(0.1 * steps) };
  const rng = new Rng(mixSeed(cfg.seed, 0x7e47, 1));
  const B = Math.min(cfg.batch, cases.length);
  const pw = tensor(gpu, posWeight, [Q], 'posWeight');
  const t0 = performance.now();
  let order: number[] = [];
  let loss = NaN;
  try {
    for (let step = 0; step < steps; step++) {
      if (order.length < B) order.push(...rng.shuffle(cases));
      const idx = order.splice(0, B);
      opt.lr = learningRate(schedule, step);
      const l = scope(() => {
        const labels = tensor(gpu, idx.flatMap((i) => Array.from(trainSet.labels(i))), [B, Q], 'labels');
        const text = encodeTexts(gpu, tok, idx.map((i) => reports[i]), cfg.reportTokens, 'reports');
        const bce = bceWithLogits(head.forward(model.textState(text)), labels, pw);
        backward(bce);
        opt.step();
        opt.zeroGrad();
        return bce;
      });
      gpu.flush();
      if ((step + 1) % Math.max(1, cfg.logEvery * 5) === 0 || step + 1 === steps) {
        loss = await l.item();
        if (!Number.isFinite(loss)) throw new CtvlmError(`text warm-up step ${step + 1}: the report -> labels loss is ${loss}; stopping (no checkpoint was written yet); try a lower --lr`);
        log(`text warm-up ${String(step + 1).padStart(5)}/${steps}  report -> labels BCE ${loss.toFixed(3)}  ${((performance.now() - t0) / (step + 1)).toFixed(0)} ms/step`);
      }
      l.dispose();
    }
  } finally {
    pw.dispose();
    opt.dispose();
    head.dispose();
  }
  return { steps, loss, ms: performance.now() - t0 };
}
