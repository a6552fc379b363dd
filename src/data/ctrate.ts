// CT-RATE import: its reports, labels and metadata tables -> manifest entries (manifest.ts),
// its folder layout and split, and its rescale / voxel-size metadata applied to a volume as
// read from its NIfTI files. Browser-safe apart from fromCtRate (Node-only: it imports node:fs
// and node:path lazily).
import { DataError } from '../errors.ts';
import { parseCsv, csvColumn } from './csv.ts';
import { LABELS, NUM_LABELS } from './labels.ts';
import type { ManifestEntry, Split } from './manifest.ts';
import { splitFor } from './splits.ts';
import { spacingFromAffine, type Volume } from './volume.ts';

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
