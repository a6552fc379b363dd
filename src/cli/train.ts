import { join } from 'node:path';
import { applyTuningOptions, numberOption, parseCliArgs, TUNING_USAGE, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { defaultTuning } from '../gpu/tuning.ts';
import { preset, PRESETS, type TrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { evaluateAtEnd } from '../eval/run-folder.ts';

const usage = `usage: ctvlm train --data DIR --out RUN [--resume] [--preset ${Object.keys(PRESETS).join('|')}] [options]

Trains the CT vision-language model (SigLIP + disease prompts + localization) on a dataset
written by \`ctvlm data synth\` (or any manifest.jsonl), checkpointing to RUN and evaluating
on the test split at the end. A killed run continues with --resume.

options:
  --data DIR|FILE    dataset folder (manifest.jsonl) or manifest file (required; with
                     --resume, default the run's own, and no other)
  --out RUN          run folder (required)
  --preset NAME      configuration (default small)
  --steps N          training steps (default: the preset's; small: 400)
  --batch B          volumes per step
  --lr X             peak learning rate
  --weight-decay W   AdamW's decoupled weight decay of the matrices (default 1e-4; scalars,
                     biases, norms, LayerScale and CLS tokens take none)
  --seed S           seed of weights, data order, crops and prompts
  --prompt-weight W  weight of the disease-prompt loss (default 0.5, RadFinder's)
  --report-prompt-weight W
                     weight of the disease-prompt loss on the report embeddings (default:
                     the preset's; RadFinder has none)
  --text-warmup-steps N
                     steps of the text warm-up stage (report -> labels) before the joint
                     training (default: the preset's; 0 for none, as RadFinder)
  --negative-reports N
                     reports of other training cases added to each step's SigLIP as
                     negatives for every image (default: the preset's; 0 for none, as
                     RadFinder at its per-step batch)
  --checkpoint-every N
                     a checkpoint every N steps (default: the preset's; small: 100; one is
                     always written at the end)
  --resume           continue RUN from its latest checkpoint
  --no-eval          skip the evaluation at the end
${TUNING_USAGE}`;

export const command: Command = {
  name: 'train',
  summary: 'train the model on a dataset, with checkpoints, resume and evaluation',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        out: { type: 'string' },
        preset: { type: 'string' },
        steps: { type: 'string' },
        batch: { type: 'string' },
        lr: { type: 'string' },
        'weight-decay': { type: 'string' },
        seed: { type: 'string' },
        'prompt-weight': { type: 'string' },
        'report-prompt-weight': { type: 'string' },
        'text-warmup-steps': { type: 'string' },
        'negative-reports': { type: 'string' },
        'checkpoint-every': { type: 'string' },
        resume: { type: 'boolean' },
        'no-eval': { type: 'boolean' },
        tuning: { type: 'string', multiple: true },
      },
    });
    if (!a.data && !a.resume) throw new UsageError('--data is required');
    if (!a.out) throw new UsageError('--out is required');
    const cfg: TrainConfig = preset(a.preset ?? 'small');
    cfg.steps = numberOption(a.steps, 'steps', true) ?? cfg.steps;
    cfg.batch = numberOption(a.batch, 'batch', true) ?? cfg.batch;
    cfg.lr = numberOption(a.lr, 'lr', false) ?? cfg.lr;
    cfg.weightDecay = numberOption(a['weight-decay'], 'weight-decay', false) ?? cfg.weightDecay;
    cfg.seed = numberOption(a.seed, 'seed', true) ?? cfg.seed;
    cfg.model.promptWeight = numberOption(a['prompt-weight'], 'prompt-weight', false) ?? cfg.model.promptWeight;
    cfg.model.reportPromptWeight = numberOption(a['report-prompt-weight'], 'report-prompt-weight', false) ?? cfg.model.reportPromptWeight;
    cfg.textWarmupSteps = numberOption(a['text-warmup-steps'], 'text-warmup-steps', true) ?? cfg.textWarmupSteps;
    cfg.negativeReports = numberOption(a['negative-reports'], 'negative-reports', true) ?? cfg.negativeReports;
    const every = numberOption(a['checkpoint-every'], 'checkpoint-every', true);
    if (every === 0) throw new UsageError('--checkpoint-every must be at least 1');
    cfg.checkpointEvery = every ?? cfg.checkpointEvery;
    if (cfg.steps < 1) throw new UsageError('--steps must be at least 1');
    if (cfg.batch < 2) throw new UsageError('--batch must be at least 2 (SigLIP contrasts the cases of a batch)');
    applyTuningOptions(defaultTuning(), a.tuning); // a bad --tuning fails before a device starts
    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      const tuned = applyTuningOptions(gpu.tuning, a.tuning);
      if (tuned.length) console.log(`tuning: ${tuned.join(', ')}`);
      if (a.resume && (a.preset || a.batch || a.lr || a['weight-decay'] || a.seed || a['prompt-weight'] || a['report-prompt-weight'] || a['text-warmup-steps'] || a['negative-reports']))
        console.log('resuming: the run keeps its saved configuration (--preset, --batch, --lr, --weight-decay, --seed, the loss weights, --text-warmup-steps and --negative-reports are ignored; --steps may change the length, --checkpoint-every the checkpoints)');
      const r = await train(gpu, {
        data: a.data,
        out: a.out,
        config: cfg,
        resume: a.resume,
        stepsOverride: a.resume ? numberOption(a.steps, 'steps', true) : undefined,
        checkpointEvery: every,
        evaluate: a['no-eval'] ? undefined : evaluateAtEnd,
        log: (l) => console.log(l),
      });
      console.log(`done: ${r.steps} steps, final loss ${r.finalLoss.toFixed(4)}; plots in ${join(r.runDir, 'plots')}`);
    } finally {
      gpu.destroy();
    }
  },
};
