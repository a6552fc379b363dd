// The 18 CT-RATE abnormality labels, in the order CT-RATE's label CSV and RadFinder use.
// Label vectors everywhere in the project (manifest, model heads, metrics) follow this order.

export const LABELS = [
  'Medical material',
  'Arterial wall calcification',
  'Cardiomegaly',
  'Pericardial effusion',
  'Coronary artery wall calcification',
  'Hiatal hernia',
  'Lymphadenopathy',
  'Emphysema',
  'Atelectasis',
  'Lung nodule',
  'Lung opacity',
  'Pulmonary fibrotic sequela',
  'Pleural effusion',
  'Mosaic attenuation pattern',
  'Peribronchial thickening',
  'Consolidation',
  'Bronchiectasis',
  'Interlobular septal thickening',
] as const;

export type LabelName = (typeof LABELS)[number];

export const NUM_LABELS = LABELS.length; // 18

/** Index of a label by its exact name, or -1. */
export function labelIndex(name: string): number {
  return (LABELS as readonly string[]).indexOf(name);
}

/**
 * Index of a label by a loosely written name (case, spaces, underscores, hyphens ignored),
 * e.g. "pleural_effusion" or "Pleural Effusion"; -1 when none matches.
 */
export function findLabel(name: string): number {
  const key = normKey(name);
  return LABELS.findIndex((l) => normKey(l) === key);
}

function normKey(s: string): string {
  return s.toLowerCase().replace(/[^a-z]/g, '');
}
