import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyTuningOptions, numberOption, parseCliArgs, TUNING_USAGE, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { defaultTuning } from '../gpu/tuning.ts';
import { preset, PRESETS, type TrainConfig } from '../train/config.ts';
import { paperWidths, profileTrainingStep, scaleWidths, withDepth } from '../train/profile.ts';
import { formatProfile } from '../train/profile-format.ts';
import { writeSyntheticDataset } from '../data/synthetic/node.ts';

const usage = `usage: ctvlm profile [--preset ${Object.keys(PRESETS).join('|')}] [--width-scale K | --paper-width] [options]

Profiles the training step (the one \`ctvlm train\` runs: batch, forward, losses, backward,
clipping, AdamW) after warm-up: its wall time without profiling, the host's share (encoding,
submits), dispatches, submits, copies and clears per step, then the device time of the same
step from timestamp queries by op family, by op and by shape, split into forward, backward and
optimizer. Profiling opens one compute pass per dispatch, which itself costs time: both step
times are printed. The model is freshly initialised; without --data the steps read a small
synthetic dataset written to a temporary folder. Where autotuning is on (GPU adapters), the
matmul variants and the row layouts (softmax, layerNorm, sums) are timed after the warm-up, as
\`ctvlm train\` does after its first step, and the choices cached
(~/.cache/ct-vlm-webgpu/autotune-<adapter>.json).

options:
  --preset NAME      training configuration: data geometry, batch, model (default small)
  --width-scale K    every model width times K (vision, text, MLP, projection heads)
  --paper-width      the released model's widths (vision 1080 / 12 heads, Qwen3-0.6B's text
                     widths, heads 2048/256/512) at the preset's depths and window geometry
  --depth N          N backbone blocks, N combiner blocks and N text layers
  --batch B          volumes per step (at least 2)
  --data DIR|FILE    dataset folder or manifest (default: synthetic cases in a temporary folder)
  --warmup N         unmeasured steps first (default 1)
  --steps N          measured rounds, each the same step without and with profiling (default 2)
  --top N            rows of the by-op and by-shape tables (default 15)
  --json FILE        also write the profile (with every dispatch record) as JSON
${TUNING_USAGE}`;

export const command: Command = {
  name: 'profile',
  summary: 'where the training step\'s time goes: by op family, dispatches and submits per step',
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({
      args: argv,
      options: {
        preset: { type: 'string' },
        'width-scale': { type: 'string' },
        'paper-width': { type: 'boolean' },
        depth: { type: 'string' },
        batch: { type: 'string' },
        data: { type: 'string' },
        warmup: { type: 'string' },
        steps: { type: 'string' },
        top: { type: 'string' },
        json: { type: 'string' },
        tuning: { type: 'string', multiple: true },
      },
    });
    const name = a.preset ?? 'small';
    if (name === 'paper') throw new UsageError("'paper' is not a training preset: profile its widths with --paper-width (the small preset's depths and windows; --depth N)");
    const cfg: TrainConfig = preset(name);
    const scale = numberOption(a['width-scale'], 'width-scale', true);
    if (scale !== undefined && a['paper-width']) throw new UsageError('--width-scale and --paper-width exclude each other');
    if (scale === 0) throw new UsageError('--width-scale must be at least 1');
    const depth = numberOption(a.depth, 'depth', true);
    if (depth === 0) throw new UsageError('--depth must be at least 1');
    cfg.batch = numberOption(a.batch, 'batch', true) ?? cfg.batch;
    if (cfg.batch < 2) throw new UsageError('--batch must be at least 2 (SigLIP contrasts the cases of a batch)');
    const steps = numberOption(a.steps, 'steps', true) ?? 2;
    if (steps < 1) throw new UsageError('--steps must be at least 1');
    const warmup = numberOption(a.warmup, 'warmup', true) ?? 1;
    const top = numberOption(a.top, 'top', true) ?? 15;
    const parts = [`preset ${name}`];
    if (scale !== undefined && scale !== 1) {
      cfg.model = scaleWidths(cfg.model, scale);
      parts.push(`widths x${scale}`);
    }
    if (a['paper-width']) {
      cfg.model = paperWidths(cfg.model);
      parts.push("the paper's widths");
    }
    if (depth !== undefined) {
      cfg.model = withDepth(cfg.model, depth);
      parts.push(`depth ${depth}`);
    }
    parts.push(`batch ${cfg.batch}`);

    applyTuningOptions(defaultTuning(), a.tuning); // a bad --tuning fails before a device starts
    const work = mkdtempSync(join(tmpdir(), 'ctvlm-profile-'));
    const gpu = await Gpu.create();
    try {
      for (const t of applyTuningOptions(gpu.tuning, a.tuning)) parts.push(`tuning ${t}`);
      let data = a.data;
      if (!data) {
        data = join(work, 'data');
        // Twice a batch of training cases (no validation or test split): the steps meet
        // different cases, as in training, and the dataset is written in seconds.
        await writeSyntheticDataset({ out: data, n: 2 * cfg.batch, seed: 0, splits: { val: 0, test: 0 } });
        parts.push(`${2 * cfg.batch} synthetic cases`);
      }
      const p = await profileTrainingStep(gpu, { data, config: cfg, workDir: work, warmup, steps, log: (l) => console.error(l) });
      console.log(formatProfile(p, parts.join(', '), top));
      if (a.json) {
        await writeFile(a.json, JSON.stringify({ title: parts.join(', '), ...p }, null, 1));
        console.log(`\nwritten: ${a.json}`);
      }
    } finally {
      gpu.destroy();
      rmSync(work, { recursive: true, force: true });
    }
  },
};
