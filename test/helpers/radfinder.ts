// Our model configuration in the terms of the independent float64 reference
// (test/reference/radfinder.ts), which does not import src/.
import type * as ref from '../reference/radfinder.ts';
import type { RadFinderConfig } from '../../src/model/config.ts';

/** The reference gives the combiner the backbone's MLP ratio and LayerNorm eps 1e-6. */
export const rfConfig = (c: RadFinderConfig): ref.RfConfig => ({
  vision: { embedDim: c.vision.backbone.embedDim, depth: c.vision.backbone.depth, heads: c.vision.backbone.heads, mlpRatio: c.vision.backbone.mlpRatio, patch: c.vision.patch, window: c.vision.window, ropeBase: c.vision.backbone.ropeBase, eps: 1e-6 },
  combiner: { depth: c.vision.combiner.depth, heads: c.vision.combiner.heads, ropeBase: c.vision.combiner.ropeBase },
  head: c.head,
  text: { hidden: c.text.hiddenSize, layers: c.text.numHiddenLayers, heads: c.text.numAttentionHeads, kvHeads: c.text.numKeyValueHeads, headDim: c.text.headDim, intermediate: c.text.intermediateSize, vocab: c.text.vocabSize, eps: c.text.rmsNormEps, ropeTheta: c.text.ropeTheta, eosId: c.text.eosTokenId },
});
