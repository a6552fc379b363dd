import { numberOption, parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { checkRunFolder, evaluateRunFolder } from '../eval/run-folder.ts';
import { DEFAULT_TRAIN_CASES, type EvalSplit } from '../eval/run.ts';

const usage = `usage: ctvlm eval --run RUN [--data DIR] [--out DIR] [--split test|val|train|all] [--checkpoint DIR] [--train-cases N]

Evaluates a trained run: text-to-image retrieval (recall@1/5/10/50 against chance), zero-shot
disease classification (per-class and macro AUROC from prompt embeddings), and localization
(MAE in mm of the argmax bin and of the expected depth, against the random-bin and
middle-bin baselines), each with a 95% percentile-bootstrap interval over cases. Beside the
split, a deterministic subset of the training split of the same size is evaluated
(memorisation vs generalisation). Writes RUN/eval-<split>.json (the whole training split's: eval-train-full.json), RUN/eval-train.json (the subset) and
RUN/report.html; on another dataset (--data), RUN/eval-<its folder's name>/eval-*.json
instead, so the run's own evaluation and report stay as they are.

options:
  --run RUN          run folder written by \`ctvlm train\` (required)
  --data DIR|FILE    dataset (default: the one the run was trained on)
  --out DIR          folder of the eval-*.json files (default: RUN for the run's own
                     dataset, RUN/eval-<name> for another)
  --split NAME       split to evaluate (default test)
  --checkpoint DIR   a checkpoint folder, or its name in RUN (default: the run's latest)
  --train-cases N    most training cases evaluated beside the split (default ${DEFAULT_TRAIN_CASES}; 0: none)
  --resamples N      bootstrap resamples (default 1000)`;

export const command: Command = {
  name: 'eval',
  summary: 'evaluate a trained run: retrieval, zero-shot classification, localization, with intervals',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({
      args: argv,
      options: { run: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, split: { type: 'string' }, checkpoint: { type: 'string' }, 'train-cases': { type: 'string' }, resamples: { type: 'string' } },
    });
    if (!a.run) throw new UsageError('--run is required');
    const split = (a.split ?? 'test') as EvalSplit;
    if (!['test', 'val', 'train', 'all'].includes(split)) throw new UsageError(`--split: expected test, val, train or all, got '${split}'`);
    const trainCases = numberOption(a['train-cases'], 'train-cases', true);
    const resamples = numberOption(a.resamples, 'resamples', true);
    if (resamples === 0) throw new UsageError('--resamples must be at least 1');
    checkRunFolder(a.run);
    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      const r = await evaluateRunFolder(gpu, a.run, { data: a.data, out: a.out, checkpoint: a.checkpoint, split, trainCases, bootstrap: resamples ? { resamples } : undefined, log: (l) => console.log(l) });
      if (r.report) console.log(`report: ${r.report}`);
      else if (r.main) console.log(`evaluation: ${r.outDir}`);
    } finally {
      gpu.destroy();
    }
  },
};
