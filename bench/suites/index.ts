// The bench's sections, each a suite in a file of its own.
import type { Suite } from '../lib/case.ts';
import type { Section } from '../lib/row.ts';
import { benchAttention } from './attention.ts';
import { benchData } from './data.ts';
import { benchElementwise } from './elementwise.ts';
import { benchLayerNorm } from './layernorm.ts';
import { benchLayout } from './layout.ts';
import { benchMatmul } from './matmul.ts';
import { benchPatch } from './patch.ts';
import { benchReduce } from './reduce.ts';
import { benchRoofline } from './roofline.ts';
import { benchSoftmax } from './softmax.ts';
import { benchStep } from './step.ts';

/** The suite of each section (they run in SECTIONS' order). */
export const SUITES: Record<Section, Suite> = {
  roofline: benchRoofline,
  matmul: benchMatmul,
  attention: benchAttention,
  patch: benchPatch,
  elementwise: benchElementwise,
  layout: benchLayout,
  reduce: benchReduce,
  softmax: benchSoftmax,
  layernorm: benchLayerNorm,
  data: benchData,
  step: benchStep,
};
