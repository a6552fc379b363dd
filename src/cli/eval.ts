import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseCliArgs, type Command } from './command.ts';
import { DataError, UsageError } from '../errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import type { TrainConfig } from '../train/config.ts';
import { evaluateRun, manifestPath } from '../train/trainer.ts';
import { latestCheckpoint, loadCheckpoint, writeAtomic } from '../train/checkpoint.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { CtClipModel } from '../model/model.ts';

const usage = `usage: ctvlm eval --run RUN [--data DIR] [--split test|val|train|all] [--checkpoint DIR]

Evaluates a trained run: text-to-image retrieval (recall@1/5/10 against chance), zero-shot
disease classification (per-class and macro AUROC from prompt embeddings), and localization
(MAE in mm of the argmax bin and of the expected depth, against the random-bin and
middle-bin baselines). Writes RUN/eval-<split>.json.

options:
  --run RUN          run folder written by \`ctvlm train\` (required)
  --data DIR|FILE    dataset (default: the one the run was trained on)
  --split NAME       split to evaluate (default test)
  --checkpoint DIR   a checkpoint folder (default: the run's latest)`;

export const command: Command = {
  name: 'eval',
  summary: 'evaluate a trained run: retrieval, zero-shot classification, localization',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({ args: argv, options: { run: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' }, checkpoint: { type: 'string' } } });
    if (!a.run) throw new UsageError('--run is required');
    const split = (a.split ?? 'test') as 'test';
    if (!['test', 'val', 'train', 'all'].includes(split)) throw new UsageError(`--split: expected test, val, train or all, got '${split}'`);
    const cfgPath = join(a.run, 'config.json');
    if (!existsSync(cfgPath)) throw new DataError(a.run, 'config.json', 'missing: not a run folder written by `ctvlm train`');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as TrainConfig;
    let data = a.data;
    if (!data) {
      const runInfo = join(a.run, 'run.json');
      if (!existsSync(runInfo)) throw new UsageError('--data is required (the run does not record its dataset)');
      data = (JSON.parse(await readFile(runInfo, 'utf8')) as { data: string }).data;
    }
    const ckpt = a.checkpoint ?? (await latestCheckpoint(a.run));
    if (!ckpt) throw new DataError(a.run, 'checkpoint', 'no checkpoint yet');
    const tokPath = join(a.run, 'tokenizer.json');
    if (!existsSync(tokPath)) throw new DataError(a.run, 'tokenizer.json', 'missing: the run folder is incomplete');
    const tok = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(tokPath, 'utf8')), tokPath);
    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      const model = new CtClipModel(gpu, cfg.model, cfg.seed);
      const state = await loadCheckpoint(ckpt, model, null);
      console.log(`checkpoint ${ckpt} (step ${state.step})`);
      const r = await evaluateRun(gpu, model, tok, manifestPath(data), cfg, split, (l) => console.log(l));
      await writeAtomic(join(a.run, `eval-${split}.json`), JSON.stringify(r, null, 1));
      model.dispose();
    } finally {
      gpu.destroy();
    }
  },
};
