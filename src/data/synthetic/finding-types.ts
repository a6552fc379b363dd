// What a synthetic finding is: its label (L, in LABELS order), the shapes that draw it, where
// it sits and the z-extent it covers, and what each label's sampler (findings-mediastinum.ts,
// findings-lungs.ts) works with. Browser-safe.
import type { Rng } from '../../rng.ts';
import type { Anatomy } from './anatomy.ts';
import type { Grid, Segment, Vec3 } from './paint.ts';

/** Label indices (order of LABELS). */
export const L = {
  MEDICAL_MATERIAL: 0,
  ARTERIAL_CALC: 1,
  CARDIOMEGALY: 2,
  PERICARDIAL_EFFUSION: 3,
  CORONARY_CALC: 4,
  HIATAL_HERNIA: 5,
  LYMPHADENOPATHY: 6,
  EMPHYSEMA: 7,
  ATELECTASIS: 8,
  NODULE: 9,
  OPACITY: 10,
  FIBROTIC: 11,
  PLEURAL_EFFUSION: 12,
  MOSAIC: 13,
  PERIBRONCHIAL: 14,
  CONSOLIDATION: 15,
  BRONCHIECTASIS: 16,
  SEPTAL: 17,
} as const;

export type Shape =
  | { kind: 'ellipsoid'; c: Vec3; r: Vec3; hu: number; mask: number }
  | { kind: 'capsule'; s: Segment; hu: number; mask: number }
  | { kind: 'effusion'; lung: 0 | 1; height: number; depth: number; hu: number }
  | { kind: 'hernia'; c: Vec3; r: Vec3; airLevel: number }
  | { kind: 'mosaic'; z0: number; z1: number; cell: number; seed: number }
  | { kind: 'septal'; z0: number; z1: number; spacing: number; rim: number; sides: number };

export interface Finding {
  /** Index into LABELS. */
  label: number;
  /** Where (a lobe key like 'RUL', 'upper', a lymph-node station, a device type, ...). */
  where: string;
  side: 'right' | 'left' | 'both' | null;
  /** The main measure in mm (nodule diameter, effusion depth, node short axis...), 0 if none. */
  size: number;
  /** Label-specific numbers (heart scale, rim thickness...). */
  params: Record<string, number>;
  shapes: Shape[];
  /** The world z the report's image reference should point at (inside zExtent). */
  refZ: number;
  /** World z range the finding covers (clipped to the scan). */
  zExtent: [number, number];
}

export interface FindingContext {
  an: Anatomy;
  g: Grid;
  /** The heart radii after cardiomegaly (if present). */
  heartR: Vec3;
}

/** What each label's sampler works with; findings.ts builds it per finding. */
export interface FindingEnv {
  rng: Rng;
  ctx: FindingContext;
  label: number;
  /** The heart's scale under cardiomegaly (1 without). */
  heartScale: number;
  /** The smallest radius (mm) a finding is given: max(5, 0.6 slice spacing + 1). */
  minR: number;
  /** The finding with its z-extent (from its shapes unless given) and reference z clipped to the scan. */
  make: (f: Omit<Finding, 'zExtent'> & { zExtent?: [number, number] }) => Finding;
}
