// The bench's sections, each a suite in a file of its own: the kernel sections
// (kernels.ts, which the browser playground runs too) and the two that need Node.
import type { Suite } from '../lib/case.ts';
import type { Section } from '../lib/row.ts';
import { benchData } from './data.ts';
import { benchStep } from './step.ts';
import { KERNEL_SUITES } from './kernels.ts';

/** The suite of each section (they run in SECTIONS' order). */
export const SUITES: Record<Section, Suite> = { ...KERNEL_SUITES, data: benchData, step: benchStep };
