// The CT vision-language model: a windowed 3D ViT and a text transformer projected into one
// embedding space, trained with SigLIP + 0.5 * disease prompts + w * localization
// (../shared/RADFINDER.md; "RadFinder" is the method's name).
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Module, initConstant } from '../nn/module.ts';
import { ProjectionHead, TextEncoder, VisionEncoder3d, l2Normalize, type TextConfig, type VisionConfig } from './encoders.ts';
import { siglipLoss } from '../ops/siglip.ts';
import { bceWithLogits } from '../ops/crossentropy.ts';
import { localizationLoss } from '../ops/localization.ts';
import { matmul } from '../ops/matmul.ts';
import { embedding } from '../ops/embedding.ts';
import { reshape, slice } from '../ops/layout.ts';
import { add, exp, mul, mulScalar, sub } from '../ops/elementwise.ts';

export interface ModelConfig {
  vision: VisionConfig;
  text: TextConfig;
  /** Width of the shared embedding space. */
  embed: number;
  /** Localization temperature (paper: 0.1). */
  tau: number;
  promptWeight: number;
  locWeight: number;
  /** Weight of the expected-depth L1 term (mm), 0 for none. */
  l1Weight: number;
  /** Gaussian target width in bins (paper: 2). */
  sigma: number;
  /** Depth of one bin in mm (patch z times the z spacing). */
  binMm: number;
}

/** One training or evaluation batch, already on the device. */
export interface Batch {
  /** [B, 1, Z, Y, X] in [0, 1]. */
  volume: Tensor;
  /** [B, L] i32 and [B, L] f32 (1 token, 0 padding). */
  reportIds: Tensor;
  reportMask: Tensor;
  /** [B] f32: 1 where the report is not empty. */
  reportValid: Tensor;
  /** [B, Q] f32: 1, 0 or -1 (unknown). */
  labels: Tensor;
  /** [2Q, Lp] i32 / f32: the positive prompts of the Q questions, then the negative ones. */
  promptIds: Tensor;
  promptMask: Tensor;
  /** [Q] f32: min(n_neg / n_pos, 20) per question. */
  posWeight: Tensor;
  snippets?: {
    /** [S, Ls] i32 / f32. */
    ids: Tensor;
    mask: Tensor;
    /** [S] i32: the case (row of the batch) each snippet belongs to. */
    case: Tensor;
    /** [S] i32: the target depth bin. */
    target: Tensor;
    /** [S, bins] f32: 1 for bins inside the scan. */
    validBins: Tensor;
    /** [S, 1] f32: the target depth in mm (bin centre). */
    targetMm: Tensor;
  };
}

export interface LossParts {
  total: Tensor;
  siglip: Tensor;
  prompts: Tensor;
  localization: Tensor | null;
  /** [S, 3] per snippet: loss, expected depth (mm), argmax bin. */
  depthHead: Tensor | null;
}

export class CtClipModel extends Module {
  readonly vision: VisionEncoder3d;
  readonly text: TextEncoder;
  readonly imageHead: ProjectionHead;
  readonly depthHeadProj: ProjectionHead;
  readonly textHead: ProjectionHead;
  /** log of the logit scale (t) and the logit bias (b): SigLIP's learned scalars. */
  readonly logScale: Tensor;
  readonly logitBias: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly cfg: ModelConfig,
    seed = 0,
  ) {
    super();
    const v = cfg.vision.dim;
    const t = cfg.text.dim;
    const e = cfg.embed;
    this.vision = new VisionEncoder3d(gpu, cfg.vision, seed);
    this.text = new TextEncoder(gpu, cfg.text, seed + 1);
    // [CLS ; mean] -> 3-layer MLP -> embed (paper), per-depth features -> 2-layer MLP.
    this.imageHead = new ProjectionHead(gpu, [2 * v, 2 * v, 2 * v, e], seed + 2, 'head.image');
    this.depthHeadProj = new ProjectionHead(gpu, [v, v, e], seed + 3, 'head.depth');
    this.textHead = new ProjectionHead(gpu, [t, t, e], seed + 4, 'head.text');
    this.logScale = initConstant(gpu, [1], Math.log(10), 'siglip.t');
    this.logitBias = initConstant(gpu, [1], -10, 'siglip.b');
  }

  /** Volumes to image embeddings [B, E] and per-depth embeddings [B, D, E]. */
  embedVolume(volume: Tensor): { image: Tensor; depth: Tensor } {
    const { pooled, depth } = this.vision.forward(volume);
    return { image: this.imageHead.forward(pooled), depth: this.depthHeadProj.forward(depth) };
  }

  /** Token ids [N, L] (and mask) to text embeddings [N, E]. */
  embedText(ids: Tensor, mask: Tensor): Tensor {
    return this.textHead.forward(this.text.forward(ids, mask).pooled);
  }

  /** Localization scores [S, D] = cos(depth feature, snippet) / tau. */
  depthScores(depth: Tensor, snippetEmb: Tensor, caseOf: Tensor): Tensor {
    const [B, D, E] = depth.shape;
    const S = snippetEmb.shape[0];
    // Each snippet's case's per-depth embeddings: rows of depth viewed as [B, D * E].
    const mine = reshape(embedding(reshape(depth, [B, D * E]), caseOf), [S, D, E]);
    const cos = matmul(mine, reshape(snippetEmb, [S, E, 1]));
    return mulScalar(reshape(cos, [S, D]), 1 / this.cfg.tau);
  }

  loss(batch: Batch): LossParts {
    const { image, depth } = this.embedVolume(batch.volume);
    const report = this.embedText(batch.reportIds, batch.reportMask);
    const siglip = siglipLoss(image, report, this.logScale, this.logitBias, batch.reportValid);

    // Disease prompts: l_pos - l_neg = exp(t) <img, p_pos - p_neg> (b cancels).
    const Q = batch.labels.shape[1];
    const prompts = this.embedText(batch.promptIds, batch.promptMask);
    const diff = sub(slice(prompts, 0, 0, Q), slice(prompts, 0, Q, 2 * Q));
    const logits = mul(matmul(image, diff, { transB: true }), exp(this.logScale));
    const promptLoss = bceWithLogits(logits, batch.labels, batch.posWeight);

    let total = add(siglip, mulScalar(promptLoss, this.cfg.promptWeight));
    let localization: Tensor | null = null;
    let head: Tensor | null = null;
    const sn = batch.snippets;
    if (sn && this.cfg.locWeight > 0) {
      const snippetEmb = this.embedText(sn.ids, sn.mask);
      const scores = this.depthScores(depth, snippetEmb, sn.case);
      const r = localizationLoss(scores, sn.validBins, sn.target, {
        sigma: this.cfg.sigma,
        binMm: this.cfg.binMm,
        l1Weight: this.cfg.l1Weight,
        targetMm: this.cfg.l1Weight ? sn.targetMm : undefined,
      });
      localization = r.loss;
      head = r.head;
      total = add(total, mulScalar(localization, this.cfg.locWeight));
    }
    return { total, siglip, prompts: promptLoss, localization, depthHead: head };
  }
}

export { l2Normalize };
