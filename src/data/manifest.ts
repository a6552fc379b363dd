// The dataset manifest: JSON Lines, one case per line. The synthetic benchmark writes it, the
// CT-RATE importer (ctrate.ts) writes it, the trainer and evaluators read it. This file holds
// its schema, reading and validating it, and writing it; splits.ts assigns a case its split.
// Browser-safe apart from readManifestFile (Node-only: it imports node:fs lazily).
//
// One line:
//   {
//     "id": "synth-00001",
//     "volume": "volumes/synth-00001.nii.gz",      // relative to the manifest's folder
//     "report": "Findings: ...\n\nImpression: ...",
//     "labels": [0, 1, 0, ... 18 values],          // 1 present, 0 absent, -1 unknown; LABELS order
//     "series": {                                   // optional: how report image numbers map to slices
//       "seriesNumber": 3,                          // or null when unknown (empty in the DICOM)
//       "seriesCount": 2,                           // optional: image series in the study (default 1);
//                                                   // with more, "image 45" alone is not resolved
//       "sliceThickness": 2.5,                      // optional (else: spacing between slice positions)
//       "slices": [{ "instanceNumber": 1, "z": -120.5 }, ...]   // z: world z (mm); or
//                                                   // "position": [x, y, z] (DICOM ImagePositionPatient)
//     },
//     "references": [                               // optional ground truth (synthetic data)
//       { "label": "Lung nodule", "sentence": "...", "series": 3, "images": [45], "kind": "single",
//         "image": 45, "z": -60.5, "zExtent": [-66, -54] }
//     ],
//     "split": "train",                             // optional: train | val | test
//     "meta": { ... }                               // optional, free-form (e.g. CT-RATE rescale fields)
import { DataError } from '../errors.ts';
import { LABELS, NUM_LABELS } from './labels.ts';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface SliceMeta {
  instanceNumber: number;
  /** World z (mm) of the slice centre. z is the same in DICOM LPS and NIfTI RAS. */
  z: number;
}

export interface SeriesMeta {
  /**
   * The series' SeriesNumber, or null when the source has none (e.g. anonymised DICOM with an
   * empty (0020,0011)): then references naming a series cannot be checked against it and are
   * dropped by locateSnippets unless it is told to accept them.
   */
  seriesNumber: number | null;
  /** Slice thickness (mm); when absent, the median spacing of neighbouring slice positions. */
  sliceThickness?: number;
  /**
   * How many image series the case's study has (default 1). With more than one, a reference
   * that names no series ("image 45") could mean any of them and is not resolved.
   */
  seriesCount?: number;
  slices: SliceMeta[];
}

export type RefKind = 'single' | 'range' | 'list';

/** A ground-truth image reference in a report (synthetic data): what the miner should find. */
export interface GroundTruthReference {
  /** The finding's label (a LABELS name). */
  label: string;
  /** The sentence with the reference removed. */
  sentence: string;
  series: number | null;
  /** One image, a range's two ends, or a list (as written). */
  images: number[];
  kind: RefKind;
  /** The image the localisation uses (middle of a range, median of a list). */
  image: number;
  /** World z of that image's slice. */
  z: number;
  /** World z range of the finding. */
  zExtent: [number, number];
}

export interface ManifestEntry {
  id: string;
  volume: string;
  report: string;
  labels: number[];
  series?: SeriesMeta;
  references?: GroundTruthReference[];
  split?: Split;
  meta?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------
// Parsing and validation

/** Parses JSONL text; every problem is a DataError naming `source:line` and the field. */
export function parseManifest(text: string, source = 'manifest.jsonl'): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '') continue;
    const where = `${source}:${n + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new DataError(where, 'line', `not valid JSON (${(e as Error).message})`);
    }
    const entry = validateEntry(obj, where);
    const prev = seen.get(entry.id);
    if (prev !== undefined) throw new DataError(where, 'id', `duplicate id '${entry.id}' (first on line ${prev})`);
    seen.set(entry.id, n + 1);
    out.push(entry);
  }
  return out;
}

/** Validates one manifest object (already parsed JSON); `where` names it in errors. */
export function validateEntry(obj: unknown, where: string): ManifestEntry {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DataError(where, 'line', 'expected a JSON object');
  const o = obj as Record<string, unknown>;
  const str = (field: string, allowEmpty: boolean): string => {
    const v = o[field];
    if (v === undefined) throw new DataError(where, field, 'missing');
    if (typeof v !== 'string') throw new DataError(where, field, `expected a string, got ${typeName(v)}`);
    if (!allowEmpty && v.trim() === '') throw new DataError(where, field, 'empty');
    return v;
  };
  const id = str('id', false);
  const volume = str('volume', false);
  const report = str('report', true);
  const labels = o.labels;
  if (labels === undefined) throw new DataError(where, 'labels', 'missing');
  if (!Array.isArray(labels)) throw new DataError(where, 'labels', `expected an array of ${NUM_LABELS} numbers, got ${typeName(labels)}`);
  if (labels.length !== NUM_LABELS) throw new DataError(where, 'labels', `expected ${NUM_LABELS} values (one per CT-RATE label), got ${labels.length}`);
  labels.forEach((v, i) => {
    if (v !== 0 && v !== 1 && v !== -1) throw new DataError(where, `labels[${i}]`, `expected 1, 0 or -1 (${LABELS[i]}), got ${JSON.stringify(v)}`);
  });
  const entry: ManifestEntry = { id, volume, report, labels: labels as number[] };
  if (o.series !== undefined) entry.series = validateSeries(o.series, where);
  if (o.references !== undefined) entry.references = validateReferences(o.references, where);
  if (o.split !== undefined) {
    if (!SPLITS.includes(o.split as Split)) throw new DataError(where, 'split', `expected one of ${SPLITS.join(', ')}, got ${JSON.stringify(o.split)}`);
    entry.split = o.split as Split;
  }
  if (o.meta !== undefined) {
    if (typeof o.meta !== 'object' || o.meta === null || Array.isArray(o.meta)) throw new DataError(where, 'meta', 'expected an object');
    entry.meta = o.meta as Record<string, unknown>;
  }
  return entry;
}

function validateSeries(v: unknown, where: string): SeriesMeta {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(where, 'series', 'expected an object');
  const s = v as Record<string, unknown>;
  if (s.seriesNumber !== null && !isInt(s.seriesNumber))
    throw new DataError(where, 'series.seriesNumber', `expected an integer or null (unknown), got ${JSON.stringify(s.seriesNumber)}`);
  const out: SeriesMeta = { seriesNumber: s.seriesNumber as number | null, slices: [] };
  if (s.sliceThickness !== undefined) {
    if (!isNum(s.sliceThickness) || (s.sliceThickness as number) <= 0) throw new DataError(where, 'series.sliceThickness', 'expected a positive number');
    out.sliceThickness = s.sliceThickness as number;
  }
  if (s.seriesCount !== undefined) {
    if (!isInt(s.seriesCount) || (s.seriesCount as number) < 1) throw new DataError(where, 'series.seriesCount', `expected a positive integer, got ${JSON.stringify(s.seriesCount)}`);
    if ((s.seriesCount as number) > 1) out.seriesCount = s.seriesCount as number;
  }
  if (!Array.isArray(s.slices) || s.slices.length === 0) throw new DataError(where, 'series.slices', 'expected a non-empty array');
  const seen = new Set<number>();
  s.slices.forEach((sl, i) => {
    const f = `series.slices[${i}]`;
    if (typeof sl !== 'object' || sl === null) throw new DataError(where, f, 'expected an object { instanceNumber, z } or { instanceNumber, position }');
    const r = sl as Record<string, unknown>;
    if (!isInt(r.instanceNumber)) throw new DataError(where, `${f}.instanceNumber`, `expected an integer, got ${JSON.stringify(r.instanceNumber)}`);
    let z: number;
    if (r.z !== undefined) {
      if (!isNum(r.z)) throw new DataError(where, `${f}.z`, `expected a number, got ${JSON.stringify(r.z)}`);
      z = r.z as number;
    } else if (Array.isArray(r.position) && r.position.length === 3 && r.position.every(isNum)) {
      z = r.position[2] as number;
    } else {
      throw new DataError(where, f, 'needs z (number) or position ([x, y, z])');
    }
    const inst = r.instanceNumber as number;
    if (seen.has(inst)) throw new DataError(where, `${f}.instanceNumber`, `duplicate instance number ${inst}`);
    seen.add(inst);
    out.slices.push({ instanceNumber: inst, z });
  });
  return out;
}

function validateReferences(v: unknown, where: string): GroundTruthReference[] {
  if (!Array.isArray(v)) throw new DataError(where, 'references', 'expected an array');
  return v.map((r, i) => {
    const f = `references[${i}]`;
    if (typeof r !== 'object' || r === null) throw new DataError(where, f, 'expected an object');
    const o = r as Record<string, unknown>;
    if (typeof o.label !== 'string' || !(LABELS as readonly string[]).includes(o.label)) throw new DataError(where, `${f}.label`, `expected a CT-RATE label name, got ${JSON.stringify(o.label)}`);
    if (typeof o.sentence !== 'string') throw new DataError(where, `${f}.sentence`, 'expected a string');
    if (o.series !== null && !isInt(o.series)) throw new DataError(where, `${f}.series`, 'expected an integer or null');
    if (!Array.isArray(o.images) || o.images.length === 0 || !o.images.every(isInt)) throw new DataError(where, `${f}.images`, 'expected a non-empty array of integers');
    if (o.kind !== 'single' && o.kind !== 'range' && o.kind !== 'list') throw new DataError(where, `${f}.kind`, 'expected single, range or list');
    if (!isInt(o.image)) throw new DataError(where, `${f}.image`, 'expected an integer');
    if (!isNum(o.z)) throw new DataError(where, `${f}.z`, 'expected a number');
    if (!Array.isArray(o.zExtent) || o.zExtent.length !== 2 || !o.zExtent.every(isNum)) throw new DataError(where, `${f}.zExtent`, 'expected [zmin, zmax]');
    return o as unknown as GroundTruthReference;
  });
}

const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v);
function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** One JSON line per entry (keys in schema order). */
export function serializeManifest(entries: ManifestEntry[]): string {
  return entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : '');
}

// ---------------------------------------------------------------------------------------
// Paths and files

/** The volume's path: the manifest's folder joined with the entry's relative path (POSIX or URL style). */
export function resolveVolumePath(manifestPath: string, e: ManifestEntry): string {
  if (/^([a-z]+:|\/)/i.test(e.volume)) return e.volume;
  const cut = manifestPath.lastIndexOf('/');
  return cut < 0 ? e.volume : `${manifestPath.slice(0, cut + 1)}${e.volume}`;
}

/** Node-only: reads and parses a manifest file. */
export async function readManifestFile(path: string): Promise<ManifestEntry[]> {
  const fs = await import('node:fs/promises');
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new DataError(path, 'file', `cannot read (${(e as Error).message})`);
  }
  return parseManifest(text, path);
}
