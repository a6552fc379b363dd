// Training configurations. 'small' is the default job: sized so that training and
// evaluating on the built-in synthetic dataset finishes in minutes on a 2-core machine
// without a GPU (lavapipe), while keeping the method's structure: 96 mm windows along
// depth, 12 mm depth bins, a local ViT per window and a global combiner, SigLIP + disease
// prompts + localization. 'tiny' is for tests. Every field can be overridden from the CLI.
import { CtvlmError } from '../errors.ts';
import type { DatasetConfig } from '../data/dataset.ts';
import type { ModelConfig } from '../model/model.ts';

export interface TrainConfig {
  data: DatasetConfig;
  model: ModelConfig;
  steps: number;
  batch: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
  beta1: number;
  beta2: number;
  vocabSize: number;
  /** Token limits: reports, prompts, snippets. */
  reportTokens: number;
  promptTokens: number;
  snippetTokens: number;
  /** Snippets per batch at most (the rest of a batch's snippets wait for another crop). */
  maxSnippets: number;
  seed: number;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
}

const base = (data: DatasetConfig, vision: ModelConfig['vision'], text: Omit<ModelConfig['text'], 'vocab'>, rest: Partial<TrainConfig>): TrainConfig => ({
  data,
  model: {
    vision,
    text: { ...text, vocab: 0 },
    embed: 64,
    tau: 0.1,
    promptWeight: 0.5,
    // The paper weights localization 0.004 next to a loss computed over a 4096-pair batch;
    // with batches of 8 the same weight would leave the depth head untrained.
    locWeight: 0.25,
    l1Weight: 0,
    sigma: 2,
    binMm: data.patch[2] * data.spacing[2],
  },
  steps: 400,
  batch: 8,
  lr: 1e-3,
  minLr: 1e-5,
  warmupSteps: 40,
  weightDecay: 1e-4,
  clipNorm: 1,
  beta1: 0.9,
  beta2: 0.95,
  vocabSize: 2000,
  reportTokens: 192,
  promptTokens: 16,
  snippetTokens: 24,
  maxSnippets: 24,
  seed: 0,
  logEvery: 10,
  evalEvery: 200,
  checkpointEvery: 100,
  ...rest,
});

export const PRESETS: Record<string, () => TrainConfig> = {
  /**
   * 6 x 6 x 3 mm voxels; a window is 64 x 64 x 32 voxels (the whole 384 mm field of view in
   * plane, 96 mm deep); 4 windows deep (384 mm); 16 x 16 x 4 patches (one depth token = 12 mm):
   * 128 tokens a window, 512 a volume.
   */
  small: () =>
    base(
      { spacing: [6, 6, 3], window: [64, 64, 32], grid: [1, 1, 4], patch: [16, 16, 4] },
      { dim: 64, heads: 4, localDepth: 2, globalDepth: 2, patch: [16, 16, 4], window: [64, 64, 32], ropeBase: 100, globalRopeBase: 50 },
      { dim: 64, heads: 4, depth: 2, ropeBase: 1000 },
      {},
    ),
  /** For tests: a few hundred voxels, one block each. */
  tiny: () =>
    base(
      { spacing: [12, 12, 6], window: [32, 32, 8], grid: [1, 1, 2], patch: [16, 16, 2] },
      { dim: 16, heads: 2, localDepth: 1, globalDepth: 1, patch: [16, 16, 2], window: [32, 32, 8], ropeBase: 100, globalRopeBase: 50 },
      { dim: 16, heads: 2, depth: 1, ropeBase: 100 },
      { steps: 6, batch: 4, warmupSteps: 2, vocabSize: 300, reportTokens: 64, snippetTokens: 16, maxSnippets: 8, logEvery: 2, evalEvery: 0, checkpointEvery: 3 },
    ),
};

export function preset(name: string): TrainConfig {
  const make = PRESETS[name];
  if (!make) throw new CtvlmError(`unknown preset '${name}' (have: ${Object.keys(PRESETS).join(', ')})`);
  return make();
}

/** Learning rate at a step: linear warm-up, then cosine decay to minLr. */
export function learningRate(cfg: TrainConfig, step: number): number {
  if (step < cfg.warmupSteps) return (cfg.lr * (step + 1)) / cfg.warmupSteps;
  const t = Math.min(1, (step - cfg.warmupSteps) / Math.max(1, cfg.steps - cfg.warmupSteps));
  return cfg.minLr + 0.5 * (cfg.lr - cfg.minLr) * (1 + Math.cos(Math.PI * t));
}
