// Training configurations. 'small' is the default job: RadFinder's architecture (window
// backbone, feature combiner over window tokens, the per-depth path, four heads, a Qwen3
// text decoder) at sizes that train and evaluate on the built-in synthetic dataset in
// minutes on a 2-core machine without a GPU (lavapipe). 'tiny' is for tests; 'paper' is the
// released model's sizes (1.03 B parameters: it builds and runs a forward here, and loads the
// published weights; training it needs real GPUs). Every field can be overridden from the CLI.
import { CtvlmError } from '../app-errors.ts';
import type { DatasetConfig } from '../data/crop.ts';
import { paperConfig, type RadFinderConfig } from '../model/config.ts';
import { SEP_ID } from '../data/tokenizer-vocab.ts';

export interface TrainConfig {
  data: DatasetConfig;
  model: RadFinderConfig;
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
  /** SigLIP's initial b: a number as it is; 'auto' sets log(1 / (texts per image - 1)), the prior of the batch. */
  siglipBias: number | 'auto';
  /** Learning-rate multiple of SigLIP's t and b. */
  scalarLrScale: number;
  /**
   * Reports of other training cases added to each step's SigLIP as negatives for every image
   * (text-side only, so cheap: see siglipLoss); 0 or absent: none, B texts per image as RadFinder
   * at its per-step batch (it reaches 4096 through embedding caching, which we do not do).
   */
  negativeReports?: number;
  /** Steps of the text warm-up stage before the joint training (src/train/text-warmup.ts);
   * 0 or absent: none (RadFinder starts from a pretrained text model instead). */
  textWarmupSteps?: number;
  /** The evaluation's test split must hold at least this many cases. */
  minTestCases: number;
  seed: number;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
}

/**
 * Bin centres in HU of the reduced presets' patch histograms: dense over lung densities
 * (emphysema, ground glass, mosaic attenuation), fat, fluid and soft tissue (effusions, the
 * heart, nodules, consolidation) and calcium.
 */
export const PATCH_HISTOGRAM_HU: readonly number[] = [-1000, -950, -900, -850, -800, -700, -600, -500, -400, -300, -200, -100, -50, 0, 25, 50, 75, 100, 200, 400, 700, 1000];

/** A RadFinder configuration at reduced sizes, for models trained here with our WordPiece tokenizer. */
function reduced(o: {
  pixdim: [number, number, number];
  window: [number, number, number];
  patch: [number, number, number];
  width: number;
  heads: number;
  depth: number;
  combinerDepth: number;
  combinerHeads: number;
  head: RadFinderConfig['head'];
  text: { hidden: number; layers: number; heads: number; kvHeads: number; headDim: number; intermediate: number };
}): RadFinderConfig {
  const p = paperConfig();
  return {
    vision: {
      backbone: { embedDim: o.width, depth: o.depth, heads: o.heads, mlpRatio: 4, ropeBase: 1000, layerScale: 1 },
      combiner: { depth: o.combinerDepth, heads: o.combinerHeads, mlpRatio: 4, ropeBase: 100, layerScale: 1 },
      patch: o.patch,
      window: o.window,
      // Not RadFinder's: see VisionConfig.featureNorm / patchHistogram and README "Learning".
      featureNorm: 'batch',
      patchHistogram: [...PATCH_HISTOGRAM_HU],
    },
    text: {
      hiddenSize: o.text.hidden,
      numHiddenLayers: o.text.layers,
      numAttentionHeads: o.text.heads,
      numKeyValueHeads: o.text.kvHeads,
      headDim: o.text.headDim,
      intermediateSize: o.text.intermediate,
      vocabSize: 0, // set from the trained tokenizer
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      eosTokenId: SEP_ID, // our WordPiece tokenizer ends every text with [SEP]
    },
    head: o.head,
    // Our synthetic volumes are written as float32; keep the values as they are.
    preprocessing: { pixdim: o.pixdim, huMin: -1000, huMax: 1000, dtype: 'float32' },
    // The paper weights localization 0.004 next to a loss over a 4096-pair batch; with batches
    // of 8 the same weight would leave the depth path untrained.
    localization: { ...p.localization, weight: 0.25 },
    promptWeight: 0.5,
    siglipInit: p.siglipInit,
  };
}

/** Model sizes by preset name (the `paper` preset is the release). */
export const MODEL_PRESETS: Record<string, () => RadFinderConfig> = {
  paper: paperConfig,
  small: () => PRESETS.small().model,
  tiny: () => PRESETS.tiny().model,
};

export function modelPreset(name: string): RadFinderConfig {
  const make = MODEL_PRESETS[name];
  if (!make) throw new CtvlmError(`unknown preset '${name}' (have: ${Object.keys(MODEL_PRESETS).join(', ')})`);
  return make();
}

const base = (data: DatasetConfig, model: RadFinderConfig, rest: Partial<TrainConfig>): TrainConfig => ({
  data,
  model,
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
  siglipBias: 'auto',
  scalarLrScale: 10,
  minTestCases: 10,
  seed: 0,
  logEvery: 10,
  evalEvery: 200,
  checkpointEvery: 100,
  ...rest,
});

export const PRESETS: Record<string, () => TrainConfig> = {
  /**
   * 6 x 6 x 3 mm voxels; a window is 64 x 64 x 32 voxels (the whole 384 mm field of view in
   * plane, 96 mm deep); crops of 1 x 1 x 4 windows (384 mm deep); 16 x 16 x 4 patches (one
   * depth token = 12 mm): 128 tokens a window. Width 96 with 4 heads (head width 24, divisible
   * by 6 for 3D RoPE; a width that is a multiple of 32 takes the patch-embedding kernel's fast
   * path: 72 ran 4x slower).
   */
  small: () =>
    base(
      { spacing: [6, 6, 3], window: [64, 64, 32], grid: [1, 1, 4], patch: [16, 16, 4] },
      {
        ...reduced({
          pixdim: [6, 6, 3], window: [64, 64, 32], patch: [16, 16, 4],
          width: 96, heads: 4, depth: 2, combinerDepth: 2, combinerHeads: 4,
          head: { hidden: 128, bottleneck: 64, out: 64 },
          text: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 160 },
        }),
        // Not RadFinder's: the prompt loss on the report embeddings too (see README "Learning").
        reportPromptWeight: 1,
      },
      // Not RadFinder's (which starts from a pretrained Qwen3): see README "Learning".
      { textWarmupSteps: 300 },
    ),
  /** For tests: a few hundred voxels, one block each. */
  tiny: () =>
    base(
      { spacing: [12, 12, 6], window: [32, 32, 8], grid: [1, 1, 2], patch: [16, 16, 2] },
      reduced({
        pixdim: [12, 12, 6], window: [32, 32, 8], patch: [16, 16, 2],
        width: 12, heads: 2, depth: 1, combinerDepth: 1, combinerHeads: 2,
        head: { hidden: 16, bottleneck: 8, out: 8 },
        text: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32 },
      }),
      { steps: 6, batch: 4, warmupSteps: 2, vocabSize: 300, reportTokens: 64, snippetTokens: 16, maxSnippets: 8, minTestCases: 1, logEvery: 2, evalEvery: 0, checkpointEvery: 3 },
    ),
};

/** Training cases a run needs: one batch (SigLIP contrasts the cases of a batch, so at least 2). */
export function minTrainingCases(cfg: Pick<TrainConfig, 'batch'>): number {
  return Math.max(2, cfg.batch);
}

export function preset(name: string): TrainConfig {
  const make = PRESETS[name];
  if (!make) throw new CtvlmError(`unknown preset '${name}' (training presets: ${Object.keys(PRESETS).join(', ')}; 'paper' is the released model's size, for loading and inference)`);
  return make();
}

/** Learning rate at a step: linear warm-up, then cosine decay to minLr. */
export function learningRate(cfg: TrainConfig, step: number): number {
  if (step < cfg.warmupSteps) return (cfg.lr * (step + 1)) / cfg.warmupSteps;
  const t = Math.min(1, (step - cfg.warmupSteps) / Math.max(1, cfg.steps - cfg.warmupSteps));
  return cfg.minLr + 0.5 * (cfg.lr - cfg.minLr) * (1 + Math.cos(Math.PI * t));
}
