// The project's built-in synthetic chest-CT benchmark: procedurally generated CT volumes (HU,
// RAS affine) with the 18 CT-RATE abnormalities drawn where they occur, a report per case in
// English or German with image references resolved through DICOM-style slice metadata, the 18
// labels, and the ground truth of every reference. Deterministic from a seed; no downloads;
// browser-safe (writing files is in node.ts). Cases are generated in RAS voxel order; about
// half are stored LPS-oriented (storedVolume), so readers exercise the affine / reorientation.
import { LABELS, NUM_LABELS } from '../labels.ts';
import type { GroundTruthReference, ManifestEntry, SeriesMeta } from '../manifest.ts';
import { splitFor } from '../splits.ts';
import type { Volume } from '../volume.ts';
import { flipAxes } from '../prep.ts';
import { type Anatomy, sampleAnatomy } from './anatomy.ts';
import type { Finding } from './finding-types.ts';
import { DEFAULT_PREVALENCE, sampleFindings, sampleLabelSet } from './findings.ts';
import type { Grid } from './paint.ts';
import { renderCase } from './render.ts';
import type { Lang } from './report-wording.ts';
import { writeReport } from './report.ts';
import { Rng, mixSeed } from '../../rng.ts';

export { LABELS };
export type { Finding, Lang, Grid, Anatomy };

export interface SynthOptions {
  /** Report language (default 'en'). */
  lang?: Lang;
  /** In-plane matrix size range (square), pixels. Default [160, 192]. */
  size?: [number, number];
  /** In-plane field of view range, mm (spacing = fov / size). Default [380, 440]. */
  fov?: [number, number];
  /** Number of slices range. Default [60, 110]. */
  slices?: [number, number];
  /** Slice thickness (= spacing) range, mm, in 0.5 mm steps. Default [2.5, 5]. */
  thickness?: [number, number];
  /** Noise standard deviation, HU. Default 12. */
  noise?: number;
  /** Probability of each label (one number for all, or 18). Default: DEFAULT_PREVALENCE. */
  prevalence?: number | readonly number[];
  /** Force these labels (indices) present and every other absent. */
  labels?: number[];
  /** Probability that a positive finding carries an image reference. Default 0.85. */
  refRate?: number;
  /**
   * Probability that a case's volume is stored LPS-oriented (voxel i towards the patient's left,
   * j posterior: the DICOM row/column order) instead of RAS. Default 0.5. The world content is
   * the same either way, so readers must go through the affine (reorientToRas).
   */
  lpsRate?: number;
  /** Fractions of cases in the validation and test splits (by a hash of the case id). Default 0.1 and 0.1. */
  splits?: { val: number; test: number };
}

/** Everything needed to render a case again (e.g. without one finding). */
export interface CaseSpec {
  id: string;
  seed: number;
  grid: Grid;
  anatomy: Anatomy;
  findings: Finding[];
  noise: number;
}

/** Voxel order of a stored synthetic volume (see SynthOptions.lpsRate). */
export type StorageOrientation = 'RAS' | 'LPS';

export interface SyntheticCase {
  id: string;
  spec: CaseSpec;
  /** The volume in RAS voxel order (axis-aligned affine, positive diagonal); `tissue` has the same order. */
  volume: Volume;
  /** How the volume is stored on disk (storedVolume): 'RAS' as `volume`, or 'LPS' (x and y reversed). */
  storage: StorageOrientation;
  /** Tissue class per voxel (see paint.ts T), for tests and debugging. */
  tissue: Uint8Array;
  report: string;
  labels: number[];
  series: SeriesMeta & { sliceThickness: number };
  references: GroundTruthReference[];
  split: 'train' | 'val' | 'test';
}

export const DEFAULT_SYNTH: Required<Omit<SynthOptions, 'labels' | 'prevalence' | 'splits'>> = {
  lang: 'en',
  size: [160, 192],
  fov: [380, 440],
  slices: [60, 110],
  thickness: [2.5, 5],
  noise: 12,
  refRate: 0.85,
  lpsRate: 0.5,
};

/** Options with defaults filled in (undefined fields take the default). */
export function synthDefaults(opts: SynthOptions = {}): Required<Omit<SynthOptions, 'labels' | 'prevalence' | 'splits'>> & SynthOptions {
  const out: Record<string, unknown> = { ...DEFAULT_SYNTH };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as unknown as Required<Omit<SynthOptions, 'labels' | 'prevalence' | 'splits'>> & SynthOptions;
}

export function caseId(index: number): string {
  return `synth-${String(index).padStart(5, '0')}`;
}

/** The seed of case `index` of a dataset with seed `seed`. */
export function caseSeed(seed: number, index: number): number {
  return mixSeed(seed >>> 0, index >>> 0, 0xc7);
}

/** Samples a case's grid, anatomy and findings (no voxels yet). */
export function sampleCase(seed: number, index: number, opts: SynthOptions = {}): { spec: CaseSpec; rng: Rng; labels: number[] } {
  const o = synthDefaults(opts);
  const rng = new Rng(caseSeed(seed, index));
  const gRng = rng.fork('grid');
  const size = even(gRng.int(o.size[0], o.size[1]));
  const fov = gRng.uniform(o.fov[0], o.fov[1]);
  const sxy = round3(fov / size);
  const nz = gRng.int(o.slices[0], o.slices[1]);
  const steps = Math.max(0, Math.round((o.thickness[1] - o.thickness[0]) / 0.5));
  const sz = o.thickness[0] + 0.5 * gRng.int(0, steps);
  const grid: Grid = {
    nx: size,
    ny: size,
    nz,
    sx: sxy,
    sy: sxy,
    sz,
    ox: round3(-((size - 1) * sxy) / 2 + gRng.uniform(-15, 15)),
    oy: round3(-((size - 1) * sxy) / 2 + gRng.uniform(-25, 10)),
    oz: round3(gRng.uniform(-450, -150)),
  };
  const anatomy = sampleAnatomy(rng.fork('anatomy'), grid);
  let present: boolean[];
  if (opts.labels) {
    const want = new Set(opts.labels);
    present = LABELS.map((_, l) => want.has(l));
  } else present = sampleLabelSet(rng.fork('labels'), opts.prevalence ?? DEFAULT_PREVALENCE);
  const findings = sampleFindings(rng.fork('findings'), anatomy, grid, present);
  // A label whose finding could not be placed is absent.
  const labels = new Array<number>(NUM_LABELS).fill(0);
  for (const f of findings) labels[f.label] = 1;
  return { spec: { id: caseId(index), seed: caseSeed(seed, index), grid, anatomy, findings, noise: o.noise }, rng, labels };
}

/** Renders a case's volume (HU) from its spec; `exclude` leaves findings out (by label index). */
export function renderVolume(spec: CaseSpec, exclude: Iterable<number> = []): { volume: Volume; tissue: Uint8Array } {
  const g = spec.grid;
  const r = renderCase(spec.anatomy, g, spec.findings, { noise: spec.noise, noiseSeed: spec.seed, exclude });
  // RAS affine, column-major (gl-matrix): x = ox + i*sx, y = oy + j*sy, z = oz + k*sz.
  const affine = new Float64Array(16);
  affine[0] = g.sx;
  affine[5] = g.sy;
  affine[10] = g.sz;
  affine[12] = g.ox;
  affine[13] = g.oy;
  affine[14] = g.oz;
  affine[15] = 1;
  return { volume: { data: r.hu, shape: [g.nx, g.ny, g.nz], spacing: [g.sx, g.sy, g.sz], affine }, tissue: r.lab };
}

/** Generates case `index` of the dataset with seed `seed`. */
export function generateCase(seed: number, index: number, opts: SynthOptions = {}): SyntheticCase {
  const o = synthDefaults(opts);
  const { spec, rng, labels } = sampleCase(seed, index, opts);
  const g = spec.grid;
  const { volume, tissue } = renderVolume(spec);

  // DICOM-style slice metadata: instance 1 at the head for some cases, at the feet for
  // others; numbering may start at an arbitrary offset.
  const sRng = rng.fork('series');
  const seriesNumber = sRng.pick([2, 3, 3, 4, 5, 6, 7, 201, 301, 601]);
  const headFirst = sRng.chance(0.5);
  const first = sRng.chance(0.7) ? 1 : sRng.int(2, 400);
  const instance = (k: number) => (headFirst ? first + (g.nz - 1 - k) : first + k);
  const zOf = (k: number) => round3(g.oz + k * g.sz);
  const slices = [];
  for (let n = 0; n < g.nz; n++) {
    const k = headFirst ? g.nz - 1 - n : n; // listed in instance order
    slices.push({ instanceNumber: instance(k), z: zOf(k) });
  }
  const rep = writeReport(spec.findings, labels, { seriesNumber, instance, zOf, nz: g.nz, sliceThickness: g.sz }, rng.fork('report'), { lang: o.lang, refRate: o.refRate });
  // Drawn last, so that adding it left every other draw (and older datasets' reports) unchanged.
  const storage: StorageOrientation = rng.fork('storage').chance(o.lpsRate) ? 'LPS' : 'RAS';
  return {
    id: spec.id,
    spec,
    volume,
    storage,
    tissue,
    report: rep.text,
    labels,
    series: { seriesNumber, sliceThickness: g.sz, slices },
    references: rep.references,
    split: splitFor(spec.id, opts.splits),
  };
}

/**
 * The volume as written to disk: `volume` itself for 'RAS' storage; for 'LPS', x and y reversed
 * with the affine updated (so every value keeps its world position; reorientToRas undoes it exactly).
 */
export function storedVolume(c: Pick<SyntheticCase, 'volume' | 'storage'>): Volume {
  return c.storage === 'LPS' ? flipAxes(c.volume, [true, true, false]) : c.volume;
}

/** A manifest line for a synthetic case whose volume is written to `volumePath`. */
export function toManifestEntry(c: SyntheticCase, volumePath: string): ManifestEntry {
  return {
    id: c.id,
    volume: volumePath,
    report: c.report,
    labels: c.labels,
    series: c.series,
    references: c.references,
    split: c.split,
    meta: { storedOrientation: c.storage },
  };
}

function even(n: number): number {
  return n - (n % 2);
}
function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
