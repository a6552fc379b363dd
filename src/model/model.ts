// RadFinder (RADFINDER-MODEL.md; radfinder vision_language.py): the window backbone and
// feature combiner for CT crops, a Qwen3 decoder for text, four projection heads into one
// space, and the objective SigLIP + promptWeight * disease prompts + w * localization.
// Field names are the release's state-dict names, so `stateDict()` gives its keys (with the
// "model." prefix added by the checkpoint code).
import type { Tensor } from '../tensor.ts';
import { unitWeight } from '../ops/creation.ts';
import { rmsNorm } from '../ops/rmsnorm.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Module, initConstant } from '../nn/module.ts';
import { BatchNorm1d } from '../nn/layers.ts';
import { FeatureCombiner, WindowBackbone, encodeVision, type Vec3i } from './vision.ts';
import { Qwen3Model } from './qwen3.ts';
import { ProjectionHead } from './heads.ts';
import { binMm, type RadFinderConfig } from './config.ts';
import { siglipLoss } from '../losses/siglip.ts';
import { bceWithLogits } from '../ops/crossentropy.ts';
import { localizationLoss } from '../losses/localization.ts';
import { matmul } from '../ops/matmul.ts';
import { embedding } from '../ops/embedding.ts';
import { reshape, slice } from '../ops/layout.ts';
import { add, exp, mul, mulScalar, sub } from '../ops/elementwise.ts';

/**
 * x / sqrt(sum(x^2) + eps^2) along the last axis: torch F.normalize's x / max(|x|, eps), smooth
 * at eps (1e-12 keeps zero rows finite). x [..., C] -> the same shape.
 * It is RMSNorm with a unit weight, scaled by 1/sqrt(C) (x / sqrt(mean(x^2) + eps^2 / C) /
 * sqrt(C) is the same quantity): 2 dispatches forward and 2-3 backward, where square, sum,
 * addScalar, rsqrt and mul took 5 and about 8 (on lavapipe a dispatch costs ~45 us however
 * small; the objective normalises 6 tensors a step).
 */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  const C = x.shape[x.rank - 1];
  return mulScalar(rmsNorm(x, unitWeight(x.gpu, C), (eps * eps) / C), 1 / Math.sqrt(C));
}

/** Token ids of texts, right-padded, with each row's length (its last token is the EOS). */
export interface TextBatch {
  /** [N, L] i32 (made with fromInts). */
  ids: Tensor;
  /** [N, L] f32: 1 for tokens, 0 for padding. */
  mask: Tensor;
  /** Tokens per row. */
  lengths: number[];
}

/** One training or evaluation batch, on the device. */
export interface Batch {
  /** [B, 1, X, Y, Z] in [0, 1], depth fastest (RadFinder's layout), a whole number of windows. */
  volume: Tensor;
  /** The B images' reports, then any reports of other cases (negatives in SigLIP only): N >= B rows. */
  report: TextBatch;
  /** [N] f32: 1 where the report is not empty. */
  reportValid: Tensor;
  /** [B, Q] f32: 1, 0 or -1 (unknown). */
  labels: Tensor;
  /** [B, Q] f32: labels, with -1 (unknown) for the rows of empty reports (the report-side
   * prompt loss; needed only when reportPromptWeight > 0). */
  reportLabels?: Tensor;
  /** The positive prompts of the Q questions, then the negative ones (2Q rows). */
  prompts: TextBatch;
  /** [Q] f32: min(n_neg / n_pos, 20) per question. */
  posWeight: Tensor;
  snippets?: {
    text: TextBatch;
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
  /** The disease-prompt loss on the report embeddings (null when reportPromptWeight is 0). */
  reportPrompts: Tensor | null;
  localization: Tensor | null;
  /** [S, 3] per snippet: loss, expected depth (mm), argmax bin. */
  depthHead: Tensor | null;
}

/** The embeddings of a batch of crops (unnormalised head outputs). */
export interface ImageEmbeddings {
  /** [B, out]: projection_image (retrieval). */
  image: Tensor;
  /** [B, out]: projection_image_copy (disease prompts). */
  disease: Tensor;
  /** [B, D2, out]: projection_image_copy per depth bin (localization). */
  depth: Tensor;
  grid: Vec3i;
}

/** SigLIP's learned scalars (radfinder siglip_loss.py): logit = exp(t) cos + b. */
export class Criterion extends Module {
  readonly t: Tensor;
  readonly b: Tensor;
  constructor(gpu: Gpu, t: number, b: number) {
    super();
    // 0-d in the checkpoint; one value here (src/model/weights.ts maps the shapes).
    this.t = initConstant(gpu, [1], t, 'criterion.t');
    this.b = initConstant(gpu, [1], b, 'criterion.b');
  }
}

export class RadFinderModel extends Module {
  readonly backbone_image: WindowBackbone;
  readonly feature_comb_image: FeatureCombiner;
  readonly projection_image: ProjectionHead;
  readonly projection_image_copy: ProjectionHead;
  readonly projection_text: ProjectionHead;
  readonly projection_text_copy: ProjectionHead;
  readonly backbone_text: Qwen3Model;
  readonly criterion: Criterion;
  /** With vision.featureNorm 'batch' (not RadFinder's): the pooled and per-depth features' BatchNorm1d. */
  readonly image_feature_norm?: BatchNorm1d;
  readonly depth_feature_norm?: BatchNorm1d;

  constructor(
    readonly gpu: Gpu,
    readonly cfg: RadFinderConfig,
    seed = 0,
  ) {
    super();
    const E = cfg.vision.backbone.embedDim;
    const { hidden, bottleneck, out } = cfg.head;
    this.backbone_image = new WindowBackbone(gpu, cfg.vision, seed, cfg.preprocessing);
    this.feature_comb_image = new FeatureCombiner(gpu, cfg.vision, seed + 1000);
    this.projection_image = new ProjectionHead(gpu, { in: 2 * E, hidden, bottleneck, out }, seed + 2000, 'projection_image');
    this.projection_image_copy = new ProjectionHead(gpu, { in: 2 * E, hidden, bottleneck, out }, seed + 2001, 'projection_image_copy');
    this.projection_text = new ProjectionHead(gpu, { in: cfg.text.hiddenSize, hidden, bottleneck, out }, seed + 2002, 'projection_text');
    this.projection_text_copy = new ProjectionHead(gpu, { in: cfg.text.hiddenSize, hidden, bottleneck, out }, seed + 2003, 'projection_text_copy');
    this.backbone_text = new Qwen3Model(gpu, cfg.text, seed + 3000);
    this.criterion = new Criterion(gpu, cfg.siglipInit.t, cfg.siglipInit.b);
    if (cfg.vision.featureNorm === 'batch') {
      this.image_feature_norm = new BatchNorm1d(gpu, 2 * E, 1e-5, 0.1, 'image_feature_norm');
      this.depth_feature_norm = new BatchNorm1d(gpu, 2 * E, 1e-5, 0.1, 'depth_feature_norm');
    }
  }

  get binMm(): number {
    return binMm(this.cfg);
  }

  /** crop [B, 1, X, Y, Z] (RadFinder layout, B scans of one window grid) -> the three image embeddings. */
  encodeImage(volume: Tensor, opts: { depth?: boolean } = {}): ImageEmbeddings {
    const f = encodeVision(this.backbone_image, this.feature_comb_image, volume, opts);
    const pooled = this.image_feature_norm ? this.image_feature_norm.forward(f.pooled) : f.pooled;
    const depth = opts.depth === false ? null : this.depth_feature_norm ? this.depth_feature_norm.forward(f.depth) : f.depth;
    return {
      image: this.projection_image.forward(pooled),
      disease: this.projection_image_copy.forward(pooled),
      depth: depth === null ? (null as unknown as Tensor) : this.projection_image_copy.forward(depth),
      grid: f.grid,
    };
  }

  /** The final-norm EOS state of each text, [N, hidden]. */
  textState(t: TextBatch): Tensor {
    return this.backbone_text.forward(t.ids, t.mask, t.lengths);
  }

  /** Reports and disease prompts: projection_text of the EOS state, [N, out]. */
  encodeText(t: TextBatch): Tensor {
    return this.projection_text.forward(this.textState(t));
  }

  /** Snippets: projection_text_copy of the EOS state, [N, out]. */
  encodeSnippets(t: TextBatch): Tensor {
    return this.projection_text_copy.forward(this.textState(t));
  }

  /** Localization scores [S, D2] = cos(depth_d of the snippet's case, snippet) / tau. */
  depthScores(depth: Tensor, snippets: Tensor, caseOf: Tensor): Tensor {
    const [B, D, E] = depth.shape;
    const S = snippets.shape[0];
    const mine = reshape(embedding(reshape(l2Normalize(depth), [B, D * E]), caseOf), [S, D, E]);
    const cos = matmul(mine, reshape(l2Normalize(snippets), [S, E, 1]));
    return mulScalar(reshape(cos, [S, D]), 1 / this.cfg.localization.tau);
  }

  loss(batch: Batch): LossParts {
    const { image, disease, depth } = this.encodeImage(batch.volume);
    const img = l2Normalize(image);
    const report = l2Normalize(this.encodeText(batch.report));
    const siglip = siglipLoss(img, report, this.criterion.t, this.criterion.b, batch.reportValid);

    // Disease prompts: l_pos - l_neg = exp(t) cos(img_copy, p_pos) - exp(t) cos(img_copy, p_neg) (b cancels).
    const Q = batch.labels.shape[1];
    const prompts = l2Normalize(this.encodeText(batch.prompts));
    const diff = sub(slice(prompts, 0, 0, Q), slice(prompts, 0, Q, 2 * Q));
    const scale = exp(this.criterion.t);
    const logits = mul(matmul(l2Normalize(disease), diff, { transB: true }), scale);
    const promptLoss = bceWithLogits(logits, batch.labels, batch.posWeight);

    let total = add(siglip, mulScalar(promptLoss, this.cfg.promptWeight));
    // The same prompt loss on the report embeddings (not RadFinder's; see README "Learning"):
    // it teaches the from-scratch text side to separate p_pos from p_neg from the reports alone.
    let reportPrompts: Tensor | null = null;
    const rw = this.cfg.reportPromptWeight ?? 0;
    if (rw > 0) {
      const own = report.shape[0] === img.shape[0] ? report : slice(report, 0, 0, img.shape[0]);
      const rlogits = mul(matmul(own, diff, { transB: true }), scale);
      reportPrompts = bceWithLogits(rlogits, batch.reportLabels ?? batch.labels, batch.posWeight);
      total = add(total, mulScalar(reportPrompts, rw));
    }
    let localization: Tensor | null = null;
    let head: Tensor | null = null;
    const sn = batch.snippets;
    const loc = this.cfg.localization;
    if (sn && loc.weight > 0) {
      const scores = this.depthScores(depth, this.encodeSnippets(sn.text), sn.case);
      const r = localizationLoss(scores, sn.validBins, sn.target, {
        sigma: loc.sigma,
        binMm: this.binMm,
        target: loc.target,
        l1Weight: loc.l1Weight,
        targetMm: loc.l1Weight ? sn.targetMm : undefined,
      });
      localization = r.loss;
      head = r.head;
      total = add(total, mulScalar(localization, loc.weight));
    }
    return { total, siglip, prompts: promptLoss, reportPrompts, localization, depthHead: head };
  }
}
