// The dataset manifest: JSON Lines, one case per line. The synthetic benchmark writes it, the
// CT-RATE importer writes it, the trainer and evaluators read it. Browser-safe apart from the
// helpers marked Node-only (they import node:fs lazily).
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
//   }
import { DataError } from '../errors.ts';
import { LABELS, NUM_LABELS } from './labels.ts';
import { hashString } from '../rng.ts';
import { spacingFromAffine, type Volume } from './volume.ts';

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
// Splits and paths

export interface SplitFractions {
  val: number;
  test: number;
}

/**
 * A deterministic split from a key's hash: the same key always lands in the same
 * split, whatever the order or number of cases. Default 80 / 10 / 10.
 */
export function splitFor(key: string, f: SplitFractions = { val: 0.1, test: 0.1 }): Split {
  // FNV-1a, then a murmur3 finaliser: FNV's high bits barely change with the last characters
  // ("case-17" vs "case-18"), the finaliser spreads them.
  let h = hashString(`split:${key}`);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  const u = h / 4294967296;
  if (u < f.test) return 'test';
  if (u < f.test + f.val) return 'val';
  return 'train';
}

/** The entry's split, or the hash split of its id when none is given. */
export function entrySplit(e: ManifestEntry, f?: SplitFractions): Split {
  return e.split ?? splitFor(e.id, f);
}

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

// ---------------------------------------------------------------------------------------
// CSV (RFC 4180: quoted fields with commas, quotes as "", newlines inside quotes; CRLF; BOM)

export interface CsvTable {
  header: string[];
  rows: string[][];
  /** 1-based line number where each row starts (for messages). */
  lines: number[];
}

export function parseCsv(text: string, source = 'csv'): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const starts: number[] = [];
  let field = '';
  let rec: string[] = [];
  let line = 1;
  let recStart = 1;
  let i = 0;
  const n = text.length;
  let quoted = false;
  let atFieldStart = true;
  while (i < n) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === '\n') line++;
      // Take a run of ordinary characters at once (fast on long report fields).
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== '\n') j++;
      field += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
      i++;
      continue;
    }
    if (c === ',') {
      rec.push(field);
      field = '';
      atFieldStart = true;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      rec.push(field);
      field = '';
      if (!(rec.length === 1 && rec[0] === '')) {
        records.push(rec);
        starts.push(recStart);
      }
      rec = [];
      atFieldStart = true;
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      line++;
      recStart = line;
      continue;
    }
    let j = i + 1;
    while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r' && text[j] !== '"') j++;
    field += text.slice(i, j);
    atFieldStart = false;
    i = j;
  }
  if (quoted) throw new DataError(`${source}:${recStart}`, 'quote', 'unterminated quoted field');
  if (field !== '' || rec.length > 0) {
    rec.push(field);
    records.push(rec);
    starts.push(recStart);
  }
  if (records.length === 0) throw new DataError(source, 'header', 'empty file');
  const header = records[0]!.map((h) => h.trim());
  const rows = records.slice(1);
  const lines = starts.slice(1);
  rows.forEach((r, k) => {
    if (r.length !== header.length) throw new DataError(`${source}:${lines[k]}`, 'row', `expected ${header.length} fields (as in the header), got ${r.length}`);
  });
  return { header, rows, lines };
}

/** Column index by name; DataError naming the column when it is missing. */
export function csvColumn(t: CsvTable, name: string, source: string): number {
  const i = t.header.indexOf(name);
  if (i < 0) throw new DataError(source, name, `missing column '${name}' (columns: ${t.header.slice(0, 30).join(', ')})`);
  return i;
}

// ---------------------------------------------------------------------------------------
// CT-RATE import

export interface CtRateTables {
  /** CSV text of the reports file (VolumeName, Findings_EN, Impressions_EN, ...). */
  reportsCsv: string;
  /** CSV text of the labels file (VolumeName + the 18 label columns). */
  labelsCsv: string;
  /** Optional CSV text of the metadata file (VolumeName, RescaleSlope, RescaleIntercept, XYSpacing, ZSpacing, ...). */
  metadataCsv?: string;
  /** Names used in messages. */
  reportsSource?: string;
  labelsSource?: string;
  metadataSource?: string;
  /**
   * Volume file name (e.g. "train_1_a_1.nii.gz") -> path relative to the manifest. When given,
   * cases without a volume are skipped (and listed); when absent, CT-RATE's own layout is assumed
   * (train/train_1/train_1_a/train_1_a_1.nii.gz) under `volumePrefix`.
   */
  volumes?: Map<string, string>;
  volumePrefix?: string;
}

export interface CtRateImport {
  entries: ManifestEntry[];
  skipped: { volumeName: string; reason: string }[];
}

/**
 * CT-RATE tables -> manifest entries (browser-safe; see fromCtRate for files). Report =
 * "Findings: <Findings_EN>\n\nImpression: <Impressions_EN>". Labels: 0/1, empty -> -1.
 * Split: CT-RATE's "valid_*" volumes -> 'test' (its validation set is the usual held-out test
 * set); "train_*" -> a hash split by patient ("train_123"), 95 % train / 5 % val, so the scans
 * and reconstructions of one patient never straddle splits.
 */
export function fromCtRateTables(t: CtRateTables): CtRateImport {
  const rs = t.reportsSource ?? 'reports.csv';
  const ls = t.labelsSource ?? 'labels.csv';
  const reports = parseCsv(t.reportsCsv, rs);
  const labels = parseCsv(t.labelsCsv, ls);
  const rName = csvColumn(reports, 'VolumeName', rs);
  const rFind = csvColumn(reports, 'Findings_EN', rs);
  const rImp = csvColumn(reports, 'Impressions_EN', rs);
  const lName = csvColumn(labels, 'VolumeName', ls);
  const lCols = LABELS.map((name) => csvColumn(labels, name, ls));

  const byName = new Map<string, { report?: string; labels?: number[]; meta?: Record<string, unknown> }>();
  const order: string[] = [];
  const get = (name: string) => {
    let v = byName.get(name);
    if (!v) {
      v = {};
      byName.set(name, v);
      order.push(name);
    }
    return v;
  };
  reports.rows.forEach((r) => {
    const name = r[rName]!.trim();
    if (!name) return;
    const findings = r[rFind]!.trim();
    const imp = r[rImp]!.trim();
    const parts: string[] = [];
    if (findings) parts.push(`Findings: ${findings}`);
    if (imp) parts.push(`Impression: ${imp}`);
    get(name).report = parts.join('\n\n');
  });
  labels.rows.forEach((r, k) => {
    const name = r[lName]!.trim();
    if (!name) return;
    get(name).labels = lCols.map((c, li) => {
      const v = r[c]!.trim();
      if (v === '' || v.toLowerCase() === 'nan') return -1;
      const x = Number(v);
      if (x === 0 || x === 1 || x === -1) return x;
      throw new DataError(`${ls}:${labels.lines[k]}`, LABELS[li]!, `expected 0, 1 or empty, got '${v}'`);
    });
  });
  if (t.metadataCsv !== undefined) {
    const ms = t.metadataSource ?? 'metadata.csv';
    const meta = parseCsv(t.metadataCsv, ms);
    const mName = csvColumn(meta, 'VolumeName', ms);
    const wanted = ['RescaleSlope', 'RescaleIntercept', 'XYSpacing', 'ZSpacing', 'ImagePositionPatient', 'ImageOrientationPatient', 'Manufacturer'];
    const cols = wanted.map((w) => [w, meta.header.indexOf(w)] as const).filter(([, i]) => i >= 0);
    meta.rows.forEach((r) => {
      const name = r[mName]!.trim();
      if (!name || !byName.has(name)) return;
      const m: Record<string, unknown> = {};
      for (const [w, i] of cols) {
        const v = r[i]!.trim();
        const num = Number(v);
        m[w] = v !== '' && Number.isFinite(num) ? num : v;
      }
      byName.get(name)!.meta = m;
    });
  }

  const entries: ManifestEntry[] = [];
  const skipped: CtRateImport['skipped'] = [];
  for (const name of order) {
    const v = byName.get(name)!;
    let volume: string;
    if (t.volumes) {
      const p = t.volumes.get(name) ?? t.volumes.get(`${name}.nii.gz`);
      if (!p) {
        skipped.push({ volumeName: name, reason: 'no volume file found' });
        continue;
      }
      volume = p;
    } else {
      volume = `${t.volumePrefix ?? ''}${ctRateRelativePath(name)}`;
    }
    const id = name.replace(/\.nii(\.gz)?$/, '');
    const e: ManifestEntry = {
      id,
      volume,
      report: v.report ?? '',
      labels: v.labels ?? new Array<number>(NUM_LABELS).fill(-1),
      split: ctRateSplit(id),
    };
    if (v.meta) e.meta = v.meta;
    entries.push(e);
  }
  return { entries, skipped };
}

export interface CtRateMetaResult {
  volume: Volume;
  /** Whether RescaleSlope / RescaleIntercept were applied, and why not when they were not. */
  rescaled: boolean;
  /** Whether the voxel size was taken from XYSpacing / ZSpacing. */
  respaced: boolean;
  notes: string[];
}

/**
 * Applies an entry's CT-RATE metadata (`meta` of fromCtRateTables) to its volume as read from
 * the NIfTI file: CT-RATE's volumes store the scanner's values, HU = RescaleSlope * stored +
 * RescaleIntercept, with the factors in the metadata CSV (not in scl_slope / scl_inter), and
 * their headers may lack the true voxel size (XYSpacing "[x, y]", ZSpacing).
 * - Rescaling is skipped when the file already applied a scaling (`headerScaled`), or when the
 *   result would not be a CT (median below air, -1050 HU): the values are HU already.
 * - The voxel size replaces the affine's column lengths (directions and origin kept).
 * Returns a new Volume (the input is untouched; its voxel array is shared when not rescaled) and
 * what was done. Bad metadata values are a DataError naming `source` and the field.
 */
export function applyCtRateMeta(volume: Volume, meta: Record<string, unknown> | undefined, source: string, headerScaled = false): CtRateMetaResult {
  const notes: string[] = [];
  let data = volume.data;
  const affine = Float64Array.from(volume.affine as ArrayLike<number>);
  let rescaled = false, respaced = false;
  const num = (field: string): number | undefined => {
    const v = meta?.[field];
    if (v === undefined || v === '') return undefined;
    const x = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(x)) throw new DataError(source, field, `expected a number, got ${JSON.stringify(v)}`);
    return x;
  };
  const slope = num('RescaleSlope'), inter = num('RescaleIntercept');
  if (slope !== undefined || inter !== undefined) {
    const a = slope ?? 1, b = inter ?? 0;
    if (a === 0) throw new DataError(source, 'RescaleSlope', 'is 0');
    if (headerScaled) notes.push('RescaleSlope/Intercept not applied: the NIfTI header already scales the values');
    else if (a === 1 && b === 0) notes.push('RescaleSlope 1, RescaleIntercept 0: nothing to apply');
    else {
      // Median of a sample of voxels (enough to tell stored values from HU).
      const n = data.length;
      const step = Math.max(1, Math.floor(n / 20001));
      const sample: number[] = [];
      for (let i = 0; i < n; i += step) sample.push(data[i]!);
      sample.sort((x, y) => x - y);
      const median = sample.length ? sample[sample.length >> 1]! : 0;
      if (a * median + b < -1050) notes.push(`RescaleSlope/Intercept not applied: the values look like HU already (median ${median}; rescaled it would be ${a * median + b})`);
      else {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = a * data[i]! + b;
        data = out;
        rescaled = true;
      }
    }
  }
  const xy = meta?.XYSpacing;
  const z = num('ZSpacing');
  if (xy !== undefined && xy !== '' || z !== undefined) {
    let sx: number | undefined, sy: number | undefined;
    if (xy !== undefined && xy !== '') {
      const parts = (typeof xy === 'number' ? [xy, xy] : Array.isArray(xy) ? xy : String(xy).replace(/[[\]()]/g, '').split(/[,\s]+/).filter(Boolean)).map(Number);
      if (parts.length === 1) parts.push(parts[0]!);
      if (parts.length !== 2 || !parts.every((p) => Number.isFinite(p) && p > 0)) throw new DataError(source, 'XYSpacing', `expected "[x, y]" in mm, got ${JSON.stringify(xy)}`);
      [sx, sy] = parts as [number, number];
    }
    if (z !== undefined && !(z > 0)) throw new DataError(source, 'ZSpacing', `expected a positive number, got ${z}`);
    const want = [sx, sy, z];
    const cur = [0, 1, 2].map((c) => Math.hypot(affine[4 * c]!, affine[4 * c + 1]!, affine[4 * c + 2]!));
    for (let c = 0; c < 3; c++) {
      const w = want[c];
      if (w === undefined || Math.abs(w - cur[c]!) < 1e-4) continue;
      for (let r = 0; r < 3; r++) affine[4 * c + r] = (affine[4 * c + r]! / cur[c]!) * w;
      respaced = true;
    }
    if (respaced) notes.push(`voxel size ${cur.map((x) => +x.toFixed(4)).join(' x ')} -> ${[0, 1, 2].map((c) => +(want[c] ?? cur[c]!).toFixed(4)).join(' x ')} mm from XYSpacing / ZSpacing`);
  }
  return {
    volume: { data: rescaled ? data : volume.data, shape: [...volume.shape], spacing: spacingFromAffine(affine), affine },
    rescaled,
    respaced,
    notes,
  };
}

/** CT-RATE's folder layout: train_1_a_1.nii.gz -> train/train_1/train_1_a/train_1_a_1.nii.gz. */
export function ctRateRelativePath(volumeName: string): string {
  const file = /\.nii(\.gz)?$/.test(volumeName) ? volumeName : `${volumeName}.nii.gz`;
  const parts = file.replace(/\.nii(\.gz)?$/, '').split('_');
  if (parts.length < 4) return file;
  const top = parts[0] === 'valid' ? 'valid' : parts[0]!;
  return `${top}/${parts.slice(0, 2).join('_')}/${parts.slice(0, 3).join('_')}/${file}`;
}

function ctRateSplit(id: string): Split {
  if (id.startsWith('valid_')) return 'test';
  const patient = id.split('_').slice(0, 2).join('_');
  return splitFor(patient, { val: 0.05, test: 0 });
}

export interface CtRateFiles {
  /** Folder holding the .nii.gz volumes (searched recursively). */
  volumesDir: string;
  reportsCsv: string;
  labelsCsv: string;
  metadataCsv?: string;
  /** Folder the manifest will be written to (volume paths are made relative to it); default: cwd. */
  manifestDir?: string;
}

/** Node-only: reads CT-RATE's CSV files and finds the volumes, -> manifest entries. */
export async function fromCtRate(f: CtRateFiles): Promise<CtRateImport> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const read = async (p: string) => {
    try {
      return await fs.readFile(p, 'utf8');
    } catch (e) {
      throw new DataError(p, 'file', `cannot read (${(e as Error).message})`);
    }
  };
  const volumes = new Map<string, string>();
  const base = path.resolve(f.manifestDir ?? '.');
  const walk = async (dir: string): Promise<void> => {
    let items;
    try {
      items = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new DataError(dir, 'volumesDir', `cannot list (${(e as Error).message})`);
    }
    for (const it of items) {
      const p = path.join(dir, it.name);
      if (it.isDirectory()) await walk(p);
      else if (/\.nii(\.gz)?$/.test(it.name)) volumes.set(it.name, path.relative(base, path.resolve(p)).split(path.sep).join('/'));
    }
  };
  await walk(f.volumesDir);
  return fromCtRateTables({
    reportsCsv: await read(f.reportsCsv),
    labelsCsv: await read(f.labelsCsv),
    metadataCsv: f.metadataCsv ? await read(f.metadataCsv) : undefined,
    reportsSource: f.reportsCsv,
    labelsSource: f.labelsCsv,
    metadataSource: f.metadataCsv,
    volumes,
  });
}
