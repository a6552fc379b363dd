// The 18 CT-RATE abnormalities as drawable findings: where each sits in the phantom's
// anatomy, the shapes that render it and the z-extent it covers. Sampled per case.
// This file draws which labels a case has and dispatches each to its sampler
// (findings-mediastinum.ts, findings-lungs.ts); finding-types.ts says what a finding is.
import { NUM_LABELS } from '../labels.ts';
import type { Rng } from '../../rng.ts';
import { type Anatomy, scanZ } from './anatomy.ts';
import { shapesZ } from './finding-geometry.ts';
import { L, type Finding, type FindingContext, type FindingEnv } from './finding-types.ts';
import { sampleLungFinding } from './findings-lungs.ts';
import { sampleMediastinalFinding } from './findings-mediastinum.ts';
import type { Grid, Vec3 } from './paint.ts';

export const DEFAULT_PREVALENCE: readonly number[] = [
  0.15, 0.35, 0.2, 0.14, 0.3, 0.14, 0.25, 0.25, 0.25, 0.4, 0.33, 0.25, 0.22, 0.14, 0.16, 0.2, 0.14, 0.14,
];


/** Draws the set of present labels. */
export function sampleLabelSet(rng: Rng, prevalence: number | readonly number[], normalRate = 0.1): boolean[] {
  // Some cases are normal (no finding at all), as in a real chest-CT cohort.
  if (rng.chance(normalRate)) return new Array<boolean>(NUM_LABELS).fill(false);
  const present: boolean[] = [];
  for (let l = 0; l < NUM_LABELS; l++) {
    const p = typeof prevalence === 'number' ? prevalence : (prevalence[l] ?? 0.2);
    present.push(rng.chance(p));
  }
  return present;
}

/** Samples the findings of the present labels (order: by label). */
export function sampleFindings(rng: Rng, an: Anatomy, g: Grid, present: boolean[]): Finding[] {
  const heartScale = present[L.CARDIOMEGALY] ? rng.uniform(1.28, 1.4) : 1;
  const heartR: Vec3 = [an.heart.r[0] * heartScale, an.heart.r[1] * heartScale, an.heart.r[2] * Math.sqrt(heartScale)];
  const ctx: FindingContext = { an, g, heartR };
  const out: Finding[] = [];
  for (let l = 0; l < NUM_LABELS; l++) {
    if (!present[l]) continue;
    const r = rng.fork(l);
    out.push(...sampleOne(r, ctx, l, heartScale));
  }
  return out;
}

function sampleOne(rng: Rng, ctx: FindingContext, label: number, heartScale: number): Finding[] {
  const { g } = ctx;
  const [zBot, zTop] = scanZ(g);
  const minR = Math.max(5, 0.6 * g.sz + 1);
  const make: FindingEnv['make'] = (f) => {
    const ext = f.zExtent ?? shapesZ(f.shapes, ctx);
    const lo = Math.max(zBot, ext[0]);
    const hi = Math.min(zTop, ext[1]);
    const refZ = Math.min(hi, Math.max(lo, f.refZ));
    return { ...f, refZ, zExtent: [lo, hi] };
  };
  const env: FindingEnv = { rng, ctx, label, heartScale, minR, make };
  // Labels 0-6 sit in the heart, vessels and mediastinum (or are devices), 7-17 in the lungs.
  return label <= L.LYMPHADENOPATHY ? sampleMediastinalFinding(env) : sampleLungFinding(env);
}
