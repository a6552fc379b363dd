// Text probe: can the small preset's from-scratch text side (Qwen3-style backbone_text, EOS state)
// learn the 18 labels from the reports alone, and in how many steps? No volumes are read.
//   MODE=head     a linear head on the EOS state (hidden), BCE with pos_weight: the text model's
//                 own ceiling;
//   MODE=prompts  the disease-prompt loss with the report embedding in place of the image's:
//                 exp(t) cos(report, p_pos) - exp(t) cos(report, p_neg) (projection_text on both
//                 sides), prompts sampled as in training (src/train/batch.ts); test AUROC from the
//                 mean7 template prompts, as zero-shot evaluation scores a volume.
// Prints train / test macro AUROC every EVAL steps.
//
//   DATA=runs/quickstart/data [MODE=head|prompts] [STEPS=400] [B=8] [LR=1e-3] [EVAL=100] [SEED=0]
//     node scripts/test-only.mjs scripts/issue7/textprobe.test.ts
import { suite } from 'uvu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testGpu } from '../../test/helpers/gpu.ts';
import { preset } from '../../src/train/config.ts';
import { RadFinderModel, l2Normalize } from '../../src/model/model.ts';
import { encodeTexts, wordPieceForModel } from '../../src/model/text.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { allPrompts } from '../../src/data/prompts.ts';
import { zeroShotTexts, zeroShotPrompts, dot } from '../../src/model/tasks.ts';
import { sampleTrainingPrompts } from '../../src/train/batch.ts';
import { Linear } from '../../src/nn/layers.ts';
import { backward, noGrad } from '../../src/autograd.ts';
import { scope, scopeAsync } from '../../src/tensor.ts';
import { AdamW } from '../../src/optim/index.ts';
import { bceWithLogits } from '../../src/ops/crossentropy.ts';
import { tensor } from '../../src/ops/creation.ts';
import { slice } from '../../src/ops/layout.ts';
import { exp, mul, sub } from '../../src/ops/elementwise.ts';
import { matmul } from '../../src/ops/matmul.ts';

import { auroc, macroMean } from '../../src/eval/metrics.ts';
import { learningRate } from '../../src/train/config.ts';
import { Rng, mixSeed } from '../../src/rng.ts';

const t = suite('textprobe');
const env = (k: string, d: number) => Number(process.env[k] ?? d);

t('text probe', async () => {
  const gpu = await testGpu();
  const dir = process.env.DATA ?? 'runs/quickstart/data';
  const modeArg = process.env.MODE ?? 'head';
  const rows = readFileSync(join(dir, 'manifest.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { report: string; labels: number[]; split: string });
  const train = rows.filter((r) => r.split === 'train'), test = rows.filter((r) => r.split === 'test');
  const cfg = preset('small');
  cfg.steps = env('STEPS', 400);
  cfg.lr = env('LR', cfg.lr);
  const B = env('B', cfg.batch), evalEvery = env('EVAL', 100), seed = env('SEED', 0);
  const wp = WordPieceTokenizer.train([...train.map((r) => r.report), ...allPrompts().flatMap((c) => [...c.pos, ...c.neg]), ...zeroShotTexts()], { vocabSize: cfg.vocabSize });
  const tok = wordPieceForModel(wp);
  cfg.model.text.vocabSize = wp.vocabSize;
  const model = new RadFinderModel(gpu, cfg.model, seed).train();
  const Q = 18;
  const head = new Linear(gpu, cfg.model.text.hiddenSize, Q, { seed: seed + 3, name: 'head' });
  // PRE=K: K steps of MODE=head first (a text pretraining stage on the labels), then MODE=prompts.
  const pre = env('PRE', 0);
  const params = [...model.backbone_text.parameters(), ...head.parameters(), ...model.projection_text.parameters(), model.criterion.t];
  // TLR: learning-rate multiple of t (the main job's scalarLrScale is 10).
  const opt = new AdamW(params, { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm, group: (p) => (p === model.criterion.t ? { lrScale: env('TLR', 1), weightDecay: 0 } : {}) });
  let mode = pre > 0 ? 'head' : modeArg;
  const pos = Array.from({ length: Q }, (_, q) => train.filter((r) => r.labels[q] === 1).length);
  const posWeight = pos.map((p) => Math.min((train.length - p) / Math.max(p, 1), 20));
  console.log(`mode ${mode}, ${train.length} train / ${test.length} test reports, vocab ${wp.vocabSize}, text params ${model.backbone_text.parameters().reduce((s, p) => s + p.size, 0)}`);

  const evaluate = async (set: typeof rows) => {
    let scores: number[][];
    if (mode === 'head') {
      scores = [];
      for (let i = 0; i < set.length; i += 16) {
        const part = set.slice(i, i + 16);
        const s = await scopeAsync(() => noGrad(() => head.forward(model.textState(encodeTexts(gpu, tok, part.map((r) => r.report), cfg.reportTokens)))).floats());
        part.forEach((_, k) => scores.push(Array.from(s.subarray(k * Q, (k + 1) * Q))));
      }
    } else {
      model.eval();
      const prompts = await zeroShotPrompts(model, tok, cfg.promptTokens);
      const { embedTexts } = await import('../../src/model/tasks.ts');
      const emb = await embedTexts(model, tok, set.map((r) => r.report), cfg.reportTokens, { which: 'report' });
      scores = emb.map((e) => prompts.map((p) => dot(e.report.normalized, p.pos) - dot(e.report.normalized, p.neg)));
      model.train();
    }
    const per = Array.from({ length: Q }, (_, q) => auroc(scores.map((s) => s[q]), set.map((r) => r.labels[q])));
    return macroMean(per);
  };

  const rng = new Rng(mixSeed(seed, 1, 2));
  let order: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < cfg.steps; step++) {
    if (pre > 0 && step === pre) {
      console.log(`step ${step}: head stage over: macro AUROC train ${(await evaluate(train.slice(0, 111))).toFixed(3)} test ${(await evaluate(test)).toFixed(3)}`);
      mode = modeArg;
    }
    if (order.length < B) order.push(...rng.shuffle(train.map((_, i) => i)));
    const idx = order.splice(0, B);
    opt.lr = learningRate(cfg, step);
    const loss = scope(() => {
      const labels = tensor(gpu, idx.flatMap((i) => train[i].labels), [B, Q], 'labels');
      const pw = tensor(gpu, posWeight, [Q], 'pw');
      const text = encodeTexts(gpu, tok, idx.map((i) => train[i].report), cfg.reportTokens);
      let l;
      if (mode === 'head') l = bceWithLogits(head.forward(model.textState(text)), labels, pw);
      else {
        const report = l2Normalize(model.encodeText(text));
        const p = sampleTrainingPrompts(rng);
        const prompts = l2Normalize(model.encodeText(encodeTexts(gpu, tok, [...p.pos, ...p.neg], cfg.promptTokens)));
        const diff = sub(slice(prompts, 0, 0, Q), slice(prompts, 0, Q, 2 * Q));
        l = bceWithLogits(mul(matmul(report, diff, { transB: true }), exp(model.criterion.t)), labels, pw);
      }
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    gpu.flush();
    if ((step + 1) % 20 === 0) console.log(`step ${step + 1} loss ${(await loss.item()).toFixed(3)} (${((performance.now() - t0) / (step + 1)).toFixed(0)} ms/step)`);
    loss.dispose();
    if ((step + 1) % evalEvery === 0 || step + 1 === cfg.steps)
      console.log(`step ${step + 1}: macro AUROC train ${(await evaluate(train.slice(0, 111))).toFixed(3)} test ${(await evaluate(test)).toFixed(3)}`);
  }
});

t.run();
