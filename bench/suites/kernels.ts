// The kernel sections: suites that need only a WebGPU device (no Node), shared by the Node
// bench (bench/suites/index.ts) and the browser playground (web/playground.ts).
import type { Suite } from '../lib/case.ts';
import type { Section } from '../lib/row.ts';
import { benchAttention } from './attention.ts';
import { benchElementwise } from './elementwise.ts';
import { benchEmbedding } from './embedding.ts';
import { benchLayerNorm } from './layernorm.ts';
import { benchLayout } from './layout.ts';
import { benchMatmul } from './matmul.ts';
import { benchPatch } from './patch.ts';
import { benchReduce } from './reduce.ts';
import { benchRoofline } from './roofline.ts';
import { benchSoftmax } from './softmax.ts';

export const KERNEL_SUITES = {
  roofline: benchRoofline,
  matmul: benchMatmul,
  attention: benchAttention,
  patch: benchPatch,
  elementwise: benchElementwise,
  layout: benchLayout,
  reduce: benchReduce,
  softmax: benchSoftmax,
  layernorm: benchLayerNorm,
  embedding: benchEmbedding,
} satisfies Partial<Record<Section, Suite>>;
