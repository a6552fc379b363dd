// `ctvlm ablate`: trains and evaluates the paper's ablations on one dataset, each variant in
// its own run folder under --out (resumed where a kill left it), then writes and prints
// OUT/ablation.md: test metrics with 95% intervals per variant beside the paper's claims.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { numberOption, parseCliArgs, type Command } from './command.ts';
import { UsageError } from '../app-errors.ts';
import { Gpu } from '../gpu/runtime.ts';
import { preset, PRESETS, type TrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { manifestPath, TRAIN_CONFIG } from '../train/run-folder.ts';
import { latestCheckpoint, readRunState } from '../train/checkpoint.ts';
import { writeAtomic } from '../io/atomic.ts';
import { evaluateRunFolder } from '../eval/run-folder.ts';
import { readEvaluation, DEFAULT_TRAIN_CASES } from '../eval/run.ts';
import { ABLATION_VARIANTS, L1_WEIGHT_PER_MM, formatAblationMarkdown, objectiveText, type VariantResult } from '../eval/ablation.ts';

const usage = `usage: ctvlm ablate --data DIR --out DIR [--steps N] [--preset ${Object.keys(PRESETS).join('|')}] [--seed S] [--variants a,b,...]

Trains and evaluates the paper's ablations on one dataset, each variant in OUT/<variant>
(a normal run folder: checkpoints, metrics.jsonl, eval-test.json, eval-train.json,
report.html), then writes OUT/ablation.md (printed too): test R@10, zero-shot macro AUROC and
localization MAE (argmax and expected depth) with 95% bootstrap intervals per variant, and the
paper's claims marked held / not held on this run. Killed, it resumes: finished variants are
kept, an unfinished one continues from its last checkpoint. Trains 4 models: it takes a while.

variants (all by default):
  full              SigLIP + 0.5 x disease prompts + localization (no L1 term)
  no-prompts        disease-prompt weight 0
  no-localization   localization weight 0
  localization-l1   full + the depth-regression L1 term, ${L1_WEIGHT_PER_MM} per mm of expected-depth error

options:
  --data DIR|FILE    dataset folder (manifest.jsonl) or manifest file (required)
  --out DIR          folder of the variants' runs and ablation.md (required)
  --preset NAME      training configuration (default small)
  --steps N          training steps per variant (default: the preset's)
  --seed S           seed (the same for every variant: same initial weights and data order)
  --variants LIST    comma-separated subset of the variants
  --train-cases N    training cases evaluated beside the test split (default ${DEFAULT_TRAIN_CASES})`;

/** The marker a variant's folder gets once it is trained and evaluated. */
const DONE = 'ablation-done.json';

export const command: Command = {
  name: 'ablate',
  summary: "train and evaluate the paper's ablations; a table of metrics with intervals and claims",
  usage,
  async run(argv) {
    const { values: a } = parseCliArgs({
      args: argv,
      options: {
        data: { type: 'string' }, out: { type: 'string' }, steps: { type: 'string' }, preset: { type: 'string' },
        seed: { type: 'string' }, variants: { type: 'string' }, 'train-cases': { type: 'string' },
      },
    });
    if (!a.data) throw new UsageError('--data is required');
    if (!a.out) throw new UsageError('--out is required');
    const presetName = a.preset ?? 'small';
    const base = preset(presetName);
    const steps = numberOption(a.steps, 'steps', true) ?? base.steps;
    if (steps < 1) throw new UsageError('--steps must be at least 1');
    const seed = numberOption(a.seed, 'seed', true) ?? base.seed;
    const trainCases = numberOption(a['train-cases'], 'train-cases', true);
    const names = a.variants ? a.variants.split(',').map((s) => s.trim()).filter(Boolean) : ABLATION_VARIANTS.map((v) => v.name);
    for (const n of names) if (!ABLATION_VARIANTS.some((v) => v.name === n)) throw new UsageError(`--variants: unknown variant '${n}' (have: ${ABLATION_VARIANTS.map((v) => v.name).join(', ')})`);
    const variants = ABLATION_VARIANTS.filter((v) => names.includes(v.name));
    manifestPath(a.data); // a missing dataset fails here, before the device starts

    const gpu = await Gpu.create();
    try {
      console.log(`device: ${gpu.describe()}`);
      for (const [i, v] of variants.entries()) {
        const dir = join(a.out, v.name);
        const log = (l: string) => console.log(`[${v.name}] ${l}`);
        const done = existsSync(join(dir, DONE)) ? (JSON.parse(await readFile(join(dir, DONE), 'utf8')) as { steps: number }) : null;
        if (done && done.steps === steps && existsSync(join(dir, 'eval-test.json'))) {
          log(`variant ${i + 1}/${variants.length} already trained and evaluated (${dir})`);
          continue;
        }
        const cfg: TrainConfig = v.apply(preset(presetName));
        cfg.steps = steps;
        cfg.seed = seed;
        const latest = await latestCheckpoint(dir).catch(() => null);
        const resume = latest !== null;
        const at = latest ? (await readRunState(latest)).step : 0;
        if (at > steps) throw new UsageError(`${dir} holds this variant trained to step ${at}; --steps ${steps} is shorter: give --steps ${at} or more, or a new --out`);
        log(`variant ${i + 1}/${variants.length}: ${v.title}: ${objectiveText(cfg)}${resume ? ' (resuming)' : ''}`);
        await train(gpu, { data: a.data, out: dir, config: cfg, resume, stepsOverride: resume ? steps : undefined, log });
        const r = await evaluateRunFolder(gpu, dir, { data: a.data, split: 'test', trainCases, log });
        if (!r.main) {
          log('no test cases: nothing to compare');
          continue;
        }
        if (r.report) log(`report: ${r.report}`);
        await writeAtomic(join(dir, DONE), JSON.stringify({ variant: v.name, steps, step: r.step }) + '\n');
      }
    } finally {
      gpu.destroy();
    }
    const results = await collectResults(a.out, variants.map((v) => v.name));
    const md = formatAblationMarkdown({ data: a.data, preset: presetName, steps, seed, results });
    const path = join(a.out, 'ablation.md');
    await writeAtomic(path, md);
    console.log(`\n${md}`);
    console.log(`written: ${path}`);
  },
};

/** The variants' test evaluations and objectives, read from their run folders. */
export async function collectResults(out: string, names: string[]): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  for (const name of names) {
    const v = ABLATION_VARIANTS.find((x) => x.name === name)!;
    const dir = join(out, name);
    const cfgPath = join(dir, TRAIN_CONFIG);
    const cfg = existsSync(cfgPath) ? (JSON.parse(await readFile(cfgPath, 'utf8')) as TrainConfig) : null;
    results.push({ name, title: v.title, objective: objectiveText(cfg), test: await readEvaluation(dir, 'test') });
  }
  return results;
}
