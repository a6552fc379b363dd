// The text warm-up stage (src/train/text-warmup.ts) and the report-side prompt loss: the stage
// lowers its report -> labels loss, touches only the text backbone, is skipped on resume (the
// checkpoint holds its result), and a run with both stays deterministic across a resume.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset, type TrainConfig } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { textWarmup } from '../../src/train/text-warmup.ts';
import { CtDataset } from '../../src/data/dataset.ts';
import { RadFinderModel } from '../../src/model/model.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { wordPieceForModel } from '../../src/model/text.ts';
import { latestWeights as weights } from '../helpers/run.ts';

const t = suite('text-warmup');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-warmup-'));
const data = join(dir, 'data');

t.before(async () => {
  await writeSyntheticDataset({ out: data, n: 24, seed: 5, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

t('the stage lowers its loss and changes the text backbone only', async () => {
  const gpu = await testGpu();
  const cfg: TrainConfig = { ...preset('tiny'), textWarmupSteps: 60, logEvery: 2, lr: 3e-3 };
  const set = await CtDataset.open(join(data, 'manifest.jsonl'), { split: 'train', config: cfg.data });
  const wp = WordPieceTokenizer.train(set.reports(), { vocabSize: cfg.vocabSize });
  cfg.model.text.vocabSize = wp.vocabSize;
  const model = new RadFinderModel(gpu, cfg.model, 0).train();
  const before = new Map<string, number[]>();
  for (const [name, p] of model.namedParameters()) before.set(name, [...(await p.floats())]);
  const lines: string[] = [];
  const r = await textWarmup(gpu, model, wordPieceForModel(wp), set, cfg, set.stats().posWeight, (l) => lines.push(l));
  const bce = lines.map((l) => Number(/BCE ([\d.]+)/.exec(l)?.[1]));
  assert.is(bce.length, 6, lines.join('\n'));
  assert.ok(r && Number.isFinite(r.loss) && bce.at(-1)! < 0.7 * bce[0], `BCE ${bce.join(' -> ')}`);
  let text = 0;
  for (const [name, p] of model.namedParameters()) {
    const changed = (await p.floats()).some((v, i) => v !== before.get(name)![i]);
    if (name.startsWith('backbone_text.')) text += changed ? 1 : 0;
    else assert.not.ok(changed, `${name} changed`);
  }
  assert.ok(text > 0, 'the text backbone changed');
  assert.is(await textWarmup(gpu, model, wordPieceForModel(wp), set, { ...cfg, textWarmupSteps: 0 }, set.stats().posWeight, () => {}), null);
  model.dispose();
});

t('with the warm-up and the report-side prompt loss, a resumed run ends with the weights of an uninterrupted one', async () => {
  const gpu = await testGpu();
  const cfg: TrainConfig = { ...preset('tiny'), steps: 6, checkpointEvery: 3, textWarmupSteps: 10 };
  cfg.model = { ...cfg.model, reportPromptWeight: 1 };
  await train(gpu, { data, out: join(dir, 'full'), config: cfg });
  await train(gpu, { data, out: join(dir, 'cut'), config: cfg, stopAfter: 3 });
  const lines: string[] = [];
  await train(gpu, { data, out: join(dir, 'cut'), config: cfg, resume: true, log: (l) => lines.push(l) });
  assert.not.ok(lines.some((l) => l.startsWith('text warm-up')), 'a resumed run does not warm up again');
  const a = weights(join(dir, 'full'));
  const b = weights(join(dir, 'cut'));
  for (const name of Object.keys(a)) assert.equal([...b[name]], [...a[name]], `${name} differs after resume`);
  // Killed right after the warm-up, before any step: its checkpoint at step 0 is resumed, the
  // warm-up not run again, and the run ends as the uninterrupted one.
  const early: string[] = [];
  await train(gpu, { data, out: join(dir, 'early'), config: cfg, stopAfter: 0, log: (l) => early.push(l) });
  assert.ok(early.some((l) => /^checkpoint .*ckpt-0000000 \(after the text warm-up\)$/.test(l)), early.join('\n'));
  const resumed: string[] = [];
  await train(gpu, { data, out: join(dir, 'early'), config: cfg, resume: true, log: (l) => resumed.push(l) });
  assert.ok(resumed.some((l) => /resumed .*ckpt-0000000 at step 0/.test(l)), resumed.join('\n'));
  assert.not.ok(resumed.some((l) => l.startsWith('text warm-up')), 'the warm-up is not run again');
  const c = weights(join(dir, 'early'));
  for (const name of Object.keys(a)) assert.equal([...c[name]], [...a[name]], `${name} differs after a resume from step 0`);
  const metrics = readFileSync(join(dir, 'full', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(metrics.every((m) => Number.isFinite(m.reportPrompts)), 'the report-side prompt loss is logged');
});

t.run();
