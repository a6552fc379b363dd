// Disease prompts for the 18 CT-RATE labels (RADFINDER.md, objective 2 and zero-shot
// classification): for each label a few English positive / negative phrasings, always with
// the method's own pair "{X} is present." / "{X} is not present." (X = the label name as in
// LABELS). Training samples one phrasing per label per step (samplePromptPair /
// samplePromptSet); zero-shot evaluation averages the embeddings of every template of a
// class (allPrompts). Pure code, browser-safe.
//
// Each label has:
// - the required pair, with the label name as written ("Pulmonary fibrotic sequela is present.");
// - two templated pairs on a lowercase noun phrase `x` that reads well in running text
//   ("There is {a}{x}." / "There is no {x}.", "Findings consistent with {a}{x}." / "No evidence
//   of {a}{x}."), with an article for count nouns ("a lung nodule") and "are" for plurals
//   ("pulmonary fibrotic sequelae"); a label may skip a template that reads badly;
// - one or two hand-written pairs in the register of a report ("The heart is enlarged." /
//   "The heart is normal in size.").
// So every label has at least 3 pairs; the pairs are fixed (no randomness at build time), in a
// fixed order: the required pair first.
import { LABELS, labelIndex } from './labels.ts';
import type { Rng } from '../rng.ts';

export interface PromptPair {
  pos: string;
  neg: string;
}

interface LabelPhrasing {
  /** Lowercase noun phrase for running text (no article). */
  x: string;
  /** Article for the positive existential: 'a ' for count nouns, '' for mass nouns. */
  a?: string;
  /** Plural noun phrase ("there are ..."). */
  plural?: boolean;
  /** Generic templates this label leaves out (they read badly for it). */
  skip?: TemplateName[];
  /** Hand-written pairs, [positive, negative]. */
  extra: [string, string][];
}

type TemplateName = 'there-is' | 'consistent';

// In LABELS order.
const PHRASINGS: Record<(typeof LABELS)[number], LabelPhrasing> = {
  // "Medical material" in CT-RATE means devices: lines, tubes, catheters, pacemakers, stents, clips.
  'Medical material': {
    x: 'medical material (devices)',
    skip: ['consistent'],
    extra: [
      ['Medical devices such as lines, tubes or implants are seen.', 'No medical devices are seen.'],
      ['Postoperative or implanted medical material is seen.', 'No implanted medical material is seen.'],
    ],
  },
  'Arterial wall calcification': {
    x: 'arterial wall calcification',
    extra: [['Calcified atherosclerotic plaques are seen in the arterial walls.', 'The arterial walls show no calcification.']],
  },
  Cardiomegaly: {
    x: 'cardiomegaly',
    extra: [
      ['The heart is enlarged.', 'The heart is normal in size.'],
      ['Cardiac size is increased.', 'Cardiac size is normal.'],
    ],
  },
  'Pericardial effusion': {
    x: 'pericardial effusion',
    extra: [['Fluid is seen in the pericardial sac.', 'No fluid is seen in the pericardial sac.']],
  },
  'Coronary artery wall calcification': {
    x: 'coronary artery calcification',
    extra: [['Calcified plaques are seen in the coronary arteries.', 'No calcification is seen in the coronary arteries.']],
  },
  'Hiatal hernia': {
    x: 'hiatal hernia',
    a: 'a ',
    extra: [['Part of the stomach has herniated through the esophageal hiatus.', 'The stomach lies entirely below the diaphragm.']],
  },
  Lymphadenopathy: {
    x: 'lymphadenopathy',
    extra: [['Pathologically enlarged lymph nodes are seen.', 'No pathologically enlarged lymph nodes are seen.']],
  },
  Emphysema: {
    x: 'emphysema',
    extra: [['Emphysematous changes are seen in the lungs.', 'No emphysematous changes are seen in the lungs.']],
  },
  Atelectasis: {
    x: 'atelectasis',
    extra: [['Atelectatic changes are seen in the lungs.', 'No atelectatic changes are seen in the lungs.']],
  },
  'Lung nodule': {
    x: 'lung nodule',
    a: 'a ',
    extra: [['A nodule is seen in the lung.', 'No nodules are seen in the lungs.']],
  },
  'Lung opacity': {
    x: 'lung opacity',
    extra: [['An opacity is seen in the lung parenchyma.', 'The lung parenchyma shows no opacities.']],
  },
  'Pulmonary fibrotic sequela': {
    x: 'pulmonary fibrotic sequelae',
    plural: true,
    extra: [['Fibrotic changes are seen in the lungs.', 'No fibrotic changes are seen in the lungs.']],
  },
  'Pleural effusion': {
    x: 'pleural effusion',
    extra: [['Fluid is seen in the pleural space.', 'No fluid is seen in the pleural space.']],
  },
  'Mosaic attenuation pattern': {
    x: 'mosaic attenuation pattern',
    a: 'a ',
    extra: [['The lungs show mosaic attenuation.', 'The lungs show no mosaic attenuation.']],
  },
  'Peribronchial thickening': {
    x: 'peribronchial thickening',
    extra: [['The bronchial walls are thickened.', 'The bronchial walls are not thickened.']],
  },
  Consolidation: {
    x: 'consolidation',
    extra: [['An area of consolidation is seen in the lung.', 'No consolidation is seen in the lungs.']],
  },
  Bronchiectasis: {
    x: 'bronchiectasis',
    extra: [['The bronchi are dilated.', 'The bronchi are not dilated.']],
  },
  'Interlobular septal thickening': {
    x: 'interlobular septal thickening',
    extra: [['The interlobular septa are thickened.', 'The interlobular septa are not thickened.']],
  },
};

function buildPairs(label: (typeof LABELS)[number]): PromptPair[] {
  const p = PHRASINGS[label];
  const a = p.plural ? '' : (p.a ?? '');
  const be = p.plural ? 'are' : 'is';
  const skip = new Set(p.skip ?? []);
  const pairs: PromptPair[] = [{ pos: `${label} is present.`, neg: `${label} is not present.` }];
  if (!skip.has('there-is')) pairs.push({ pos: `There ${be} ${a}${p.x}.`, neg: `There ${be} no ${p.x}.` });
  if (!skip.has('consistent')) pairs.push({ pos: `Findings consistent with ${a}${p.x}.`, neg: `No evidence of ${a}${p.x}.` });
  for (const [pos, neg] of p.extra) pairs.push({ pos, neg });
  return pairs;
}

const PAIRS: readonly (readonly PromptPair[])[] = LABELS.map((l) => Object.freeze(buildPairs(l).map((p) => Object.freeze(p))));

/** A label as its index (0..17) or its exact name; throws (a programming error) otherwise. */
function toIndex(label: number | string): number {
  const i = typeof label === 'number' ? label : labelIndex(label);
  if (!Number.isInteger(i) || i < 0 || i >= LABELS.length) throw new Error(`prompts: unknown label ${JSON.stringify(label)}`);
  return i;
}

/** Every [positive, negative] phrasing of a label (index or exact LABELS name); the first is "{X} is present." / "{X} is not present.". */
export function promptPairs(label: number | string): PromptPair[] {
  return PAIRS[toIndex(label)]!.map((p) => ({ ...p }));
}

/** A uniformly chosen phrasing of a label: one draw from `rng` (the project's Rng, or any () => [0, 1)). */
export function samplePromptPair(label: number | string, rng: Rng | (() => number)): PromptPair {
  const pairs = PAIRS[toIndex(label)]!;
  const u = typeof rng === 'function' ? rng() : rng.next();
  const p = pairs[Math.min(pairs.length - 1, Math.floor(u * pairs.length))]!;
  return { ...p };
}

/**
 * One sampled phrasing per label (LABELS order), as two lists of 18 prompts: what a training
 * step embeds for the disease-prompt loss. 18 draws from `rng`.
 */
export function samplePromptSet(rng: Rng | (() => number)): { pos: string[]; neg: string[] } {
  const pos: string[] = [];
  const neg: string[] = [];
  for (let l = 0; l < LABELS.length; l++) {
    const p = samplePromptPair(l, rng);
    pos.push(p.pos);
    neg.push(p.neg);
  }
  return { pos, neg };
}

export interface ClassPrompts {
  index: number;
  label: string;
  /** Positive templates (embeddings averaged into the class's positive prompt). */
  pos: string[];
  /** Negative templates, in the same order as `pos` (pos[i] / neg[i] are a pair). */
  neg: string[];
}

/** Every template of every label, LABELS order, for zero-shot classification (templates averaged per class). */
export function allPrompts(): ClassPrompts[] {
  return LABELS.map((label, index) => ({ index, label, pos: PAIRS[index]!.map((p) => p.pos), neg: PAIRS[index]!.map((p) => p.neg) }));
}
