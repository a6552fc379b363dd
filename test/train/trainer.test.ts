// Training end to end on a small synthetic dataset with the tiny configuration: the loss
// falls, checkpoints are written and loadable, evaluation runs, and a run stopped halfway
// and resumed ends with exactly the weights of an uninterrupted run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { negativeIndices, stepIndices } from '../../src/train/step.ts';
import { evaluateAtEnd } from '../../src/eval/run-folder.ts';
import { latestWeights as weights } from '../helpers/run.ts';

const t = suite('trainer');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-train-'));
const data = join(dir, 'data');

t.before(async () => {
  await writeSyntheticDataset({ out: data, n: 24, seed: 3, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

t('tiny run: the loss falls; checkpoints, metrics, plots and the evaluation are written', async () => {
  const gpu = await testGpu();
  const cfg = { ...preset('tiny'), steps: 12, checkpointEvery: 6 };
  const lines: string[] = [];
  const r = await train(gpu, { data, out: join(dir, 'a'), config: cfg, evaluate: evaluateAtEnd, log: (l) => lines.push(l) });
  const metrics = readFileSync(join(dir, 'a', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(metrics.at(-1).loss < metrics[0].loss, `loss ${metrics[0].loss} -> ${metrics.at(-1).loss}`);
  for (const f of ['train-config.json', 'tokenizer.json', 'latest', 'plots/loss.svg', 'eval-test.json']) assert.ok(existsSync(join(dir, 'a', f)), f);
  // Each checkpoint is a RadFinder weights folder: config.json in the release's layout,
  // model.safetensors with its keys, tokenizer.json.
  const ckpt = join(dir, 'a', readFileSync(join(dir, 'a', 'latest'), 'utf8').trim());
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(ckpt, f)), `checkpoint ${f}`);
  assert.is(JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8')).model_type, 'radfinder');
  assert.ok('model.backbone_image.patch_embed.proj.weight' in weights(join(dir, 'a')));
  assert.ok(r.evaluation && Number.isFinite(r.evaluation.localization.maeRandomMm), 'evaluation ran');
  assert.ok(lines.some((l) => /retrieval/.test(l)));
  // The progress lines: no ETA from the first step alone (pipeline compilation), one after it;
  // the wait for volumes is part of the step time.
  const progress = lines.filter((l) => /^step +\d+\/12 /.test(l));
  assert.match(progress[0], /ETA - /);
  assert.ok(progress.slice(1).every((l) => / ETA \d+ s /.test(l)), progress.slice(1).join('\n'));
  for (const m of metrics) assert.ok(m.dataWaitMs >= 0 && m.dataWaitMs <= m.msPerStep, `step ${m.step}: waited ${m.dataWaitMs} of ${m.msPerStep} ms`);
});

t('where autotuning is on, the first step meets the matmul and row-layout shape classes and they are timed and cached once', async () => {
  const gpu = await testGpu();
  const cache = join(dir, 'autotune-cache');
  const before = gpu.tuning.autotune;
  // Off by default on lavapipe (its fixed defaults are the measured best); forced on here.
  gpu.tuning.autotune = true;
  try {
    const cfg = { ...preset('tiny'), steps: 3, checkpointEvery: 0 };
    const lines: string[] = [];
    await train(gpu, { data, out: join(dir, 'tuned'), config: cfg, autotuneCacheDir: cache, log: (l) => lines.push(l) });
    const line = lines.find((l) => l.startsWith('autotune:'));
    const m = line?.match(/^autotune: (\d+) matmul shape classes \((\d+) timed now/);
    assert.ok(m && Number(m[1]) > 0 && m[1] === m[2], `first run times every class: ${line}`);
    // And the row layouts' classes (layerNorm, softmax, last-axis sums), src/launch/row-layout.ts.
    const r = line?.match(/; (\d+) row-layout shape classes \((\d+) timed now/);
    assert.ok(r && Number(r[1]) > 0 && r[1] === r[2], `first run times every row-layout class: ${line}`);
    // The losses still log after the tuning, and the choices are on disk for the next run.
    assert.ok(lines.some((l) => /step\s+3\/3/.test(l)), lines.join('\n'));
    const { readdirSync } = await import('node:fs');
    assert.ok(readdirSync(cache).some((f) => f.startsWith('autotune-')), 'cache file written');
  } finally {
    gpu.tuning.autotune = before;
  }
});

t('a run stopped after 6 steps and resumed ends with the same weights as an uninterrupted one (with negative reports)', async () => {
  const gpu = await testGpu();
  // Negative reports are drawn per step from the step's seed, so a resumed run meets the same ones.
  const cfg = { ...preset('tiny'), steps: 10, checkpointEvery: 3, negativeReports: 4 };
  await train(gpu, { data, out: join(dir, 'full'), config: cfg });
  // SigLIP's b starts at the prior of one positive among batch + negatives = 8 texts.
  const saved = JSON.parse(readFileSync(join(dir, 'full', 'train-config.json'), 'utf8'));
  assert.is(saved.negativeReports, 4);
  assert.ok(Math.abs(saved.model.siglipInit.b + Math.log(7)) < 1e-12, `b = ${saved.model.siglipInit.b}`);
  await train(gpu, { data, out: join(dir, 'cut'), config: cfg, stopAfter: 6 });
  await train(gpu, { data, out: join(dir, 'cut'), config: cfg, resume: true });
  const a = weights(join(dir, 'full'));
  const b = weights(join(dir, 'cut'));
  for (const name of Object.keys(a)) assert.equal([...b[name]], [...a[name]], `${name} differs after resume`);
  // --steps on resume changes the length (and says so); the saved config follows.
  const lines: string[] = [];
  await train(gpu, { data, out: join(dir, 'cut'), config: cfg, resume: true, stepsOverride: 12, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /resuming with 12 steps instead of 10/.test(l)), lines.join('\n'));
  assert.is(JSON.parse(readFileSync(join(dir, 'cut', 'train-config.json'), 'utf8')).steps, 12);
  const steps = readFileSync(join(dir, 'cut', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  assert.equal(steps, [...steps].sort((x, y) => x - y), 'metrics steps increase (no duplicates after resume)');
  assert.equal(steps, [...new Set(steps)]);
  await train(gpu, { data, out: join(dir, 'full'), config: cfg }).then(
    () => assert.unreachable('a second run into a finished folder must be refused'),
    (e) => assert.match((e as Error).message, /already holds a run; continue it with --resume/),
  );
});

t('negative reports reach SigLIP (the first step\'s loss changes, b fixed by a numeric siglipBias); a set too small for them is refused in one line', async () => {
  const gpu = await testGpu();
  const siglipAtStep1 = async (k: number, out: string) => {
    const cfg = { ...preset('tiny'), steps: 1, checkpointEvery: 0, siglipBias: 10, negativeReports: k };
    await train(gpu, { data, out: join(dir, out), config: cfg });
    return JSON.parse(readFileSync(join(dir, out, 'metrics.jsonl'), 'utf8').trim().split('\n')[0]).siglip as number;
  };
  const without = await siglipAtStep1(0, 'neg0');
  // A numeric siglipBias is the initial b (it used to be ignored, leaving the paper's -10).
  assert.is(JSON.parse(readFileSync(join(dir, 'neg0', 'train-config.json'), 'utf8')).model.siglipInit.b, 10);
  const withNeg = await siglipAtStep1(6, 'neg6');
  // Same seed, tokenizer, weights and batch: step 1's SigLIP differs only by the negative pairs,
  // each softplus(exp(t) cos + b) >= softplus(-10 + 10) = log 2 whatever the cosine (t = log 10,
  // b = 10), 6 per image (fewer only where a drawn report is empty): at least log 2 more.
  assert.ok(withNeg - without > Math.log(2) - 1e-3, `SigLIP at step 1: ${withNeg} with 6 negative reports, ${without} without`);
  await train(gpu, { data, out: join(dir, 'neg-big'), config: { ...preset('tiny'), steps: 1, negativeReports: 100 } }).then(
    () => assert.unreachable('100 negative reports from a small set must be refused'),
    (e) => assert.match((e as Error).message, /training case\(s\); a batch of 4 with 100 negative reports needs at least 104/),
  );
  assert.not.ok(existsSync(join(dir, 'neg-big')), 'a refused run leaves no run folder behind');
});

t('negativeIndices: distinct cases, none of the step\'s own, the same for the same step, fewer when the set is small', () => {
  const cfg = { ...preset('tiny'), batch: 4, seed: 9 };
  for (let step = 0; step < 20; step++) {
    const neg = negativeIndices(30, cfg, step, 10);
    const own = new Set(stepIndices(30, 4, step, 9));
    assert.is(neg.length, 10);
    assert.is(new Set(neg).size, 10, 'distinct');
    assert.ok(neg.every((i) => i >= 0 && i < 30 && !own.has(i)), `step ${step}: ${neg} against own ${[...own]}`);
    assert.equal(negativeIndices(30, cfg, step, 10), neg, 'deterministic');
  }
  assert.is(negativeIndices(6, cfg, 0, 10).length, 2, 'a set of 6 has 2 cases outside a batch of 4');
  assert.equal(negativeIndices(30, cfg, 0, 0), []);
});

t('leftovers of an interrupted save are removed; a restart from step 0 starts its metrics afresh', async () => {
  const gpu = await testGpu();
  const out = join(dir, 'again');
  const cfg = { ...preset('tiny'), steps: 2, checkpointEvery: 0 };
  const { mkdirSync, writeFileSync, readdirSync } = await import('node:fs');
  mkdirSync(join(out, 'ckpt-0000001.tmp-123'), { recursive: true });
  writeFileSync(join(out, 'latest.tmp-456'), 'x');
  writeFileSync(join(out, 'metrics.jsonl'), '{"step":1}\n{"step":2}\n');
  await train(gpu, { data, out, config: cfg });
  assert.equal(readdirSync(out).filter((f) => f.includes('.tmp-')), []);
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  assert.equal(steps, [1, 2]);
  assert.is(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).data, data, 'run.json records the absolute data path');
});

t('a dataset without any known label trains without NaN (the prompt loss is 0)', async () => {
  const gpu = await testGpu();
  const { readFileSync: read, writeFileSync, mkdirSync, cpSync } = await import('node:fs');
  const unl = join(dir, 'unlabelled');
  mkdirSync(unl, { recursive: true });
  cpSync(join(data, 'volumes'), join(unl, 'volumes'), { recursive: true });
  const lines = read(join(data, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.stringify({ ...JSON.parse(l), labels: new Array(18).fill(-1) }));
  writeFileSync(join(unl, 'manifest.jsonl'), lines.join('\n') + '\n');
  const r = await train(gpu, { data: unl, out: join(dir, 'unl-run'), config: { ...preset('tiny'), steps: 3 } });
  assert.ok(Number.isFinite(r.finalLoss), `final loss ${r.finalLoss}`);
  const m = readFileSync(join(dir, 'unl-run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(m.every((x) => x.prompts === 0), 'prompt loss 0 without labels');
});

t.run();
