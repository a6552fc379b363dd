// Issue 7 experiment, not part of the model (measurements: README.md here, sessions 14-15):
// a vision warm-up stage. After the text warm-up, VW_STEPS steps of BCE (pos_weight) with a
// linear head on the image side, head dropped, then the joint training unchanged.
//   VW_HEAD=pooled   (default) Linear(2E, 18) on the pooled features (CLS + mean of the window
//                    tokens, before the projection heads): backbone_image, feature_comb_image trained
//   VW_HEAD=disease  Linear(out, 18) on the disease embedding (projection_image_copy trained too)
//   VW_LRX           learning-rate multiplier on the run's lr (10% warm-up + cosine of its own)
// The crops come from prepareStep at step indices 1e6 + i, so the joint stage's batches are unchanged.
// To run it, in a scratch clone add to src/train/trainer.ts
//   import { visionWarmup } from '../../scripts/issue7/vision-warmup.ts';
// and after the text warm-up
//   if (!resumeFrom) await visionWarmup(gpu, model, textTok, trainSet, cfg, stats.posWeight, log);
// then `node build.mjs --quiet && VW_STEPS=300 node dist/cli.js quickstart` (scripts/ is outside
// tsconfig's include, so the repository's own build and tests never see this file).
import type { Gpu } from '../../src/gpu/runtime.ts';
import type { CtDataset } from '../../src/data/dataset.ts';
import type { RadFinderModel } from '../../src/model/model.ts';
import type { TextTokenizer } from '../../src/model/text.ts';
import { encodeVision } from '../../src/model/vision.ts';
import { makeInputs } from '../../src/model/inputs.ts';
import { Linear } from '../../src/nn/layers.ts';
import { AdamW } from '../../src/optim/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { tensor } from '../../src/ops/creation.ts';
import { bceWithLogits } from '../../src/ops/crossentropy.ts';
import { mixSeed } from '../../src/rng.ts';
import { learningRate, type TrainConfig } from '../../src/train/config.ts';
import { prepareStep } from '../../src/train/step.ts';

export async function visionWarmup(gpu: Gpu, model: RadFinderModel, tok: TextTokenizer, trainSet: CtDataset, cfg: TrainConfig, posWeight: number[], log: (l: string) => void): Promise<void> {
  const steps = Number(process.env.VW_STEPS ?? 0);
  if (steps <= 0) return;
  const where = process.env.VW_HEAD ?? 'pooled';
  const lr = cfg.lr * Number(process.env.VW_LRX ?? 1);
  const Q = posWeight.length;
  const E2 = 2 * model.cfg.vision.backbone.embedDim;
  const head = new Linear(gpu, where === 'pooled' ? E2 : model.cfg.head.out, Q, { seed: mixSeed(cfg.seed, 0x7157), name: 'vision_warmup_head' });
  const params = [...model.backbone_image.parameters(), ...model.feature_comb_image.parameters(), ...(model.image_feature_norm?.parameters() ?? []), ...(where === 'pooled' ? [] : model.projection_image_copy.parameters()), ...head.parameters()];
  const opt = new AdamW(params, { lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm, group: (p) => (p.rank <= 1 ? { weightDecay: 0 } : {}) });
  const schedule: TrainConfig = { ...cfg, lr, steps, warmupSteps: Math.ceil(0.1 * steps) };
  const pw = tensor(gpu, posWeight, [Q], 'posWeight');
  const t0 = performance.now();
  let next = prepareStep(trainSet, cfg, 1_000_000);
  for (let step = 0; step < steps; step++) {
    const cases = await next;
    if (step + 1 < steps) next = prepareStep(trainSet, cfg, 1_000_001 + step);
    opt.lr = learningRate(schedule, step);
    const l = scope(() => {
      const { inputs } = makeInputs(gpu, tok, cases, cfg as never);
      const labels = tensor(gpu, cases.flatMap((c) => Array.from(c.labels)), [cases.length, Q], 'labels');
      let feat;
      if (where === 'pooled') {
        const f = encodeVision(model.backbone_image, model.feature_comb_image, inputs.volume, { depth: false });
        feat = model.image_feature_norm ? model.image_feature_norm.forward(f.pooled) : f.pooled;
      } else feat = model.encodeImage(inputs.volume, { depth: false }).disease;
      const bce = bceWithLogits(head.forward(feat), labels, pw);
      backward(bce);
      opt.step();
      opt.zeroGrad();
      return bce;
    });
    gpu.flush();
    if ((step + 1) % 25 === 0 || step + 1 === steps) log(`vision warm-up ${step + 1}/${steps} (${where}) BCE ${(await l.item()).toFixed(3)} ${((performance.now() - t0) / (step + 1)).toFixed(0)} ms/step`);
    l.dispose();
  }
  pw.dispose();
  opt.dispose();
  head.dispose();
}
