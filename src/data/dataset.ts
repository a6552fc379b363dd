// The training / evaluation dataset: manifest -> prepared cases for the model (RADFINDER.md
// "Volume preprocessing" and objective 3). Node-only (reads files; node:fs and node:zlib are
// imported lazily, so importing this module costs nothing in a bundle that never opens one).
//
// Per case, once (and kept in memory with `cache`): read the volume (.nii / .nii.gz
// asynchronously, gunzip on libuv's thread pool; DICOM folders through readVolumeFile), apply
// CT-RATE rescale / spacing metadata when the entry has it, clip HU to [-1000, 1000] and scale
// to [0, 1], reorient to RAS, resample (trilinear) to `spacing`. Reports are mined for image
// references once, at open, and each reference resolved to a slice (world z) through the
// entry's series metadata (snippets.ts).
// Per prepare(index, mode, seed): crop / pad to exactly grid x window voxels (random start in
// training, centred in evaluation), flip (training, p = 0.5 per axis; the affine follows, so
// world positions, and thus snippet bins, follow the voxels), and place each snippet in the
// depth bin (patch z voxels) of the crop with the largest overlap with its slice.
//
// Decisions:
// - The crop is always grid x window voxels (fixed shape, for batching), in both modes; where
//   the scan is smaller along an axis it is padded with 0 (= -1000 HU, air): centred in eval,
//   at a random offset in training (the scan slides inside the crop). `evalCrop: 'fit'` gives
//   the method's variable eval crop instead (the largest whole number of windows up to `grid`,
//   at least one, centred).
// - binValid[b] = 1 when bin b holds at least one voxel of the scan (padding bins are 0);
//   a snippet whose best bin is not valid is dropped as 'outside-crop'.
// - The report is given as written (whole text, image references kept): RadFinder trains the
//   report encoder on the report as written, and CT-RATE reports never carry references
//   anyway. Snippet texts are the mined sentences with the references removed.
// - zMm is the target bin's centre in mm from the start of the crop's first slice,
//   (bin + 1/2) * patch z * spacing z: the convention of ops/localization.ts (z_d).
// - Randomness: one Rng per (seed, case id) (so a case keeps its crops when the split is
//   listed differently); draws in order: crop start x, y, z, then flip x, y, z.
import { DataError } from '../errors.ts';
import { NUM_LABELS } from './labels.ts';
import { entrySplit, readManifestFile, resolveVolumePath, applyCtRateMeta, type ManifestEntry, type Split } from './manifest.ts';
import { decodeNifti } from './nifti.ts';
import { cropStart, reorientToRas, resample } from './prep.ts';
import { depthBin, mineSnippets, resolveSnippet, type DropReason } from './snippets.ts';
import type { Vec3, Volume } from './volume.ts';
import { binValidity, checkConfig, cropAndFlip, cropSize, huToUnitInPlace, type CropSpec, type DatasetConfig } from './crop.ts';

export { binValidity, checkConfig, cropAndFlip, cropSize, huToUnitInPlace, prepareForModel, type CropSpec, type DatasetConfig } from './crop.ts';
import { Rng, hashString, mixSeed } from '../rng.ts';

export type DatasetSplit = Split | 'all';
export type PrepareMode = 'train' | 'eval';

export interface DatasetOptions {
  /** Which cases (manifest `split`, or the hash split of the id when absent). Default 'all'. */
  split?: DatasetSplit;
  config: DatasetConfig;
  /** Refuse volumes with more voxels than this (checked on the header, before allocating). */
  maxVoxels?: number;
  /** Keep each case's resampled (pre-crop) volume in memory after its first read. Default false. */
  cache?: boolean;
  /** With `cache`: at most this many bytes of volumes; the least recently used go first. Default 4 GiB. */
  maxCacheBytes?: number;
  /**
   * Eval crop: 'grid' (default) exactly grid x window voxels, centred, padded where the scan is
   * smaller (fixed shape for batching); 'fit' the largest whole number of windows up to `grid`
   * (at least one per axis), centred: a per-case shape, for evaluation one case at a time.
   */
  evalCrop?: 'grid' | 'fit';
  /** Training flip probability per axis (one number or x, y, z). Default 0.5. */
  flipP?: number | [number, number, number];
  /**
   * References that name a series while the case's SeriesNumber is unknown (null): 'drop'
   * (default, reason 'unknown-series') or 'accept'. See snippets.ts ResolveOptions.
   */
  unknownSeries?: 'drop' | 'accept';
}

export interface PreparedSnippet {
  /** The mined sentence with its image reference removed (what the text encoder embeds). */
  text: string;
  /** Target depth bin of the crop, 0 <= bin < bins, binValid[bin] = 1. */
  bin: number;
  /** Centre of the target bin in mm from the start of the crop's first slice: (bin + 1/2) * patch z * spacing z. */
  zMm: number;
  /** World z (mm) of the referenced slice. */
  z: number;
}

export interface PreparedCase {
  id: string;
  /** Index in this dataset (its split). */
  index: number;
  /** HU clipped to [-1000, 1000], scaled to [0, 1], RAS, resampled, cropped / padded (0), flipped; x fastest: x + X * (y + Y * z). */
  volume: Float32Array;
  /** [Z, Y, X] (the model's [B, 1, Z, Y, X] input order). */
  shape: [number, number, number];
  /** Depth bins: Z / patch z. */
  bins: number;
  /** Number of bins that hold scan (sum of binValid). */
  validBins: number;
  /** Per bin: 1 when it holds at least one voxel of the scan, 0 when it is all padding. */
  binValid: Uint8Array;
  /** 18 values: 1, 0, -1 (unknown), LABELS order. */
  labels: Int8Array;
  /** The report as written. */
  report: string;
  /** Snippets located in this crop (after flips); those outside are dropped (see `dropped`). */
  snippets: PreparedSnippet[];
  /** This case's snippets dropped, by reason (resolution failures and 'outside-crop'). */
  dropped: Record<string, number>;
  /** Voxel (x, y, z) of the crop -> world RAS mm (flips included). */
  affine: Float64Array;
  crop: CropSpec;
}

export interface DatasetStats {
  cases: number;
  /** Image references mined from the split's reports. */
  snippets: number;
  /** Of those, resolved to a slice of their case's series (candidates for every crop). */
  resolved: number;
  /**
   * Dropped snippets by reason: resolution failures ('no-series-metadata', 'other-series',
   * 'unknown-series', 'ambiguous-series', 'image-not-in-series', 'empty-sentence': counted once, at open) and
   * 'outside-crop' (cumulative over every prepare() call so far: a crop-dependent count).
   */
  snippetsDropped: Record<string, number>;
  /** Per label: cases with a known label (1 or 0). */
  labelCounts: number[];
  /** Per label: cases with the label present (1). */
  positives: number[];
  /** Per label: cases with the label absent (0). */
  negatives: number[];
  /** Per label: min(n_neg / n_pos, 20) (1 when a label has no positives), the disease-prompt loss's pos_weight. */
  posWeight: number[];
  /** Cumulative over prepare() calls: crops made, snippets located, snippets outside their crop. */
  prepared: { crops: number; located: number; outsideCrop: number };
}

interface ResolvedSnippet {
  text: string;
  z: number;
  thickness: number;
}

interface CaseInfo {
  entry: ManifestEntry;
  path: string;
  labels: Int8Array;
  snippets: ResolvedSnippet[];
  /** Mined snippets that could not be resolved, by reason. */
  dropped: Record<string, number>;
  minedCount: number;
}

const STATIC_REASONS = ['no-series-metadata', 'other-series', 'unknown-series', 'ambiguous-series', 'image-not-in-series', 'empty-sentence'] as const;
export type SnippetDropReason = DropReason | 'empty-sentence';

const CTRATE_META_FIELDS = ['RescaleSlope', 'RescaleIntercept', 'XYSpacing', 'ZSpacing'];

/** min(n_neg / n_pos, cap) per label; 1 for a label without positives or negatives. */
export function posWeights(positives: readonly number[], negatives: readonly number[], cap = 20): number[] {
  return positives.map((p, i) => (p > 0 && negatives[i]! > 0 ? Math.min(negatives[i]! / p, cap) : 1));
}

function emptyDropCounts(): Record<string, number> {
  const r: Record<string, number> = {};
  for (const k of STATIC_REASONS) r[k] = 0;
  r['outside-crop'] = 0;
  return r;
}

/** Lets other work (GPU callbacks, file reads) run between heavy synchronous steps. */
const yieldToLoop = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

export class CtDataset {
  readonly size: number;
  readonly ids: string[];
  readonly config: DatasetConfig;
  readonly split: DatasetSplit;
  private readonly cases: CaseInfo[];
  private readonly opts: DatasetOptions;
  private readonly cache = new Map<number, Promise<Volume>>();
  private readonly cacheBytes = new Map<number, number>();
  private readonly counters = { crops: 0, located: 0, outsideCrop: 0 };

  private constructor(cases: CaseInfo[], opts: DatasetOptions) {
    this.cases = cases;
    this.opts = opts;
    this.config = opts.config;
    this.split = opts.split ?? 'all';
    this.size = cases.length;
    this.ids = cases.map((c) => c.entry.id);
  }

  /** Reads the manifest, keeps the split's cases, mines and resolves every report's image references. */
  static async open(manifestPath: string, opts: DatasetOptions): Promise<CtDataset> {
    checkConfig(opts.config);
    const split = opts.split ?? 'all';
    if (!['train', 'val', 'test', 'all'].includes(split)) throw new DataError('dataset options', 'split', `expected train, val, test or all, got ${JSON.stringify(split)}`);
    const entries = await readManifestFile(manifestPath);
    const cases: CaseInfo[] = [];
    for (const e of entries) {
      if (split !== 'all' && entrySplit(e) !== split) continue;
      cases.push(CtDataset.caseInfo(manifestPath, e, opts));
    }
    return new CtDataset(cases, opts);
  }

  private static caseInfo(manifestPath: string, e: ManifestEntry, opts: DatasetOptions): CaseInfo {
    const dropped = emptyDropCounts();
    const snippets: ResolvedSnippet[] = [];
    const mined = mineSnippets(e.report);
    for (const sn of mined) {
      const text = sn.sentence.trim();
      if (text === '' || !/[\p{L}]/u.test(text)) {
        dropped['empty-sentence']!++;
        continue;
      }
      const loc = resolveSnippet(sn, e.series, { unknownSeries: opts.unknownSeries });
      if ('reason' in loc) {
        dropped[loc.reason] = (dropped[loc.reason] ?? 0) + 1;
        continue;
      }
      snippets.push({ text, z: loc.z, thickness: loc.thickness });
    }
    return { entry: e, path: resolveVolumePath(manifestPath, e), labels: Int8Array.from(e.labels), snippets, dropped, minedCount: mined.length };
  }

  /** The manifest entry of case `index`. */
  entry(index: number): ManifestEntry {
    return this.info(index).entry;
  }

  /** Labels of case `index` (no volume read). */
  labels(index: number): Int8Array {
    return this.info(index).labels.slice();
  }

  private info(index: number): CaseInfo {
    const c = this.cases[index];
    if (!Number.isInteger(index) || !c) throw new RangeError(`CtDataset: index ${index} outside [0, ${this.size})`);
    return c;
  }

  /** Report corpus of this split (as written; empty reports included as ''), for training the tokenizer. */
  reports(): string[] {
    return this.cases.map((c) => c.entry.report);
  }

  stats(): DatasetStats {
    const dropped = emptyDropCounts();
    let snippets = 0, resolved = 0;
    const labelCounts = new Array<number>(NUM_LABELS).fill(0);
    const positives = new Array<number>(NUM_LABELS).fill(0);
    const negatives = new Array<number>(NUM_LABELS).fill(0);
    for (const c of this.cases) {
      snippets += c.minedCount;
      resolved += c.snippets.length;
      for (const [k, v] of Object.entries(c.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
      for (let l = 0; l < NUM_LABELS; l++) {
        const v = c.labels[l];
        if (v === 1) positives[l]!++;
        else if (v === 0) negatives[l]!++;
        if (v === 1 || v === 0) labelCounts[l]!++;
      }
    }
    dropped['outside-crop'] = this.counters.outsideCrop;
    return { cases: this.size, snippets, resolved, snippetsDropped: dropped, labelCounts, positives, negatives, posWeight: posWeights(positives, negatives), prepared: { ...this.counters } };
  }

  /**
   * Case `index` read, HU-scaled, reoriented to RAS and resampled to the config's spacing (the
   * pre-crop volume; kept in memory with `cache`). Concurrent calls share one read.
   */
  resampled(index: number): Promise<Volume> {
    const c = this.info(index);
    const hit = this.cache.get(index);
    if (hit) {
      // Most recently used last (Map order), for the eviction below.
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const p = this.load(c);
    if (this.opts.cache) {
      this.cache.set(index, p);
      p.then(
        (v) => {
          this.cacheBytes.set(index, v.data.byteLength);
          this.evict();
        },
        () => this.cache.delete(index),
      );
    }
    return p;
  }

  private evict(): void {
    const max = this.opts.maxCacheBytes ?? 4 * 2 ** 30;
    let total = 0;
    for (const b of this.cacheBytes.values()) total += b;
    for (const index of this.cache.keys()) {
      if (total <= max) break;
      const b = this.cacheBytes.get(index);
      if (b === undefined) continue; // still loading
      this.cache.delete(index);
      this.cacheBytes.delete(index);
      total -= b;
    }
  }

  /** Drops the cached volumes (all, or one case's). */
  clearCache(index?: number): void {
    if (index === undefined) {
      this.cache.clear();
      this.cacheBytes.clear();
    } else {
      this.cache.delete(index);
      this.cacheBytes.delete(index);
    }
  }

  private async load(c: CaseInfo): Promise<Volume> {
    let v = await readCaseVolume(c.path, c.entry, this.opts.maxVoxels);
    await yieldToLoop();
    huToUnitInPlace(v.data); // the volume was just read: its array is ours to overwrite
    v = reorientToRas(v);
    await yieldToLoop();
    return resample(v, { spacing: this.config.spacing });
  }

  /**
   * The crop of case `index` for (mode, seed): deterministic. Training: a random start per
   * axis (uniform over the positions that keep the crop inside the scan, or the scan inside
   * the crop where it is smaller) and flips with p = flipP per axis; eval: centred, no flips.
   */
  async cropSpec(index: number, mode: PrepareMode, seed: number): Promise<CropSpec> {
    const v = await this.resampled(index);
    return this.cropSpecFor(v.shape, this.info(index).entry.id, mode, seed);
  }

  private cropSpecFor(shape: Vec3, id: string, mode: PrepareMode, seed: number): CropSpec {
    const full = cropSize(this.config);
    if (mode === 'eval') {
      const size: Vec3 = (this.opts.evalCrop ?? 'grid') === 'fit'
        ? (full.map((_, a) => Math.min(this.config.grid[a]!, Math.max(1, Math.floor(shape[a]! / this.config.window[a]!))) * this.config.window[a]!) as Vec3)
        : full;
      return { start: [0, 1, 2].map((a) => cropStart(shape[a]!, size[a]!, 'center')) as Vec3, size, flip: [false, false, false] };
    }
    if (mode !== 'train') throw new Error(`CtDataset: mode must be 'train' or 'eval', got ${JSON.stringify(mode)}`);
    const rng = new Rng(mixSeed(seed >>> 0, hashString(id), 0x5eed));
    const u = () => rng.next();
    const start = [0, 1, 2].map((a) => cropStart(shape[a]!, full[a]!, 'random', u)) as Vec3;
    const fp = this.opts.flipP ?? 0.5;
    const p = typeof fp === 'number' ? [fp, fp, fp] : fp;
    const flip = [0, 1, 2].map((a) => u() < p[a]!) as [boolean, boolean, boolean];
    return { start, size: full, flip };
  }

  /** Case `index` prepared for the model: deterministic for (index, mode, seed); eval ignores the seed. */
  async prepare(index: number, mode: PrepareMode, seed: number): Promise<PreparedCase> {
    const v = await this.resampled(index);
    return this.cropCase(index, v, this.cropSpecFor(v.shape, this.info(index).entry.id, mode, seed));
  }

  /** Case `index` with an explicit crop (start, size, flips): what prepare() does after choosing the crop. */
  async prepareCrop(index: number, crop: CropSpec): Promise<PreparedCase> {
    return this.cropCase(index, await this.resampled(index), crop);
  }

  private cropCase(index: number, v: Volume, crop: CropSpec): PreparedCase {
    const c = this.info(index);
    const cfg = this.config;
    const pz = cfg.patch[2];
    for (let a = 0; a < 3; a++)
      if (!(Number.isInteger(crop.size[a]) && crop.size[a]! >= 1 && Number.isInteger(crop.start[a])))
        throw new Error(`CtDataset: bad crop ${JSON.stringify(crop)}`);
    if (crop.size[2] % pz !== 0) throw new Error(`CtDataset: crop depth ${crop.size[2]} is not a whole number of ${pz}-voxel bins`);
    const out = cropAndFlip(v, crop);
    const [X, Y, Z] = out.shape;
    const bins = Z / pz;
    const binValid = binValidity(v.shape[2], crop, pz);
    let validBins = 0;
    for (const b of binValid) validBins += b;
    const dropped = { ...c.dropped };
    const snippets: PreparedSnippet[] = [];
    const seen = new Set<string>();
    const grid = { affine: out.affine, shape: out.shape };
    const binMm = pz * cfg.spacing[2];
    for (const s of c.snippets) {
      const bin = depthBin(grid, s.z, s.thickness, pz);
      if (bin === null || !binValid[bin]) {
        dropped['outside-crop']!++;
        continue;
      }
      const key = `${bin}\u0000${s.text}`;
      if (seen.has(key)) continue; // the same sentence twice in one bin (e.g. two images of one finding)
      seen.add(key);
      snippets.push({ text: s.text, bin, zMm: (bin + 0.5) * binMm, z: s.z });
    }
    this.counters.crops++;
    this.counters.located += snippets.length;
    this.counters.outsideCrop += dropped['outside-crop']!;
    return {
      id: c.entry.id,
      index,
      volume: out.data,
      shape: [Z, Y, X],
      bins,
      validBins,
      binValid,
      labels: c.labels.slice(),
      report: c.entry.report,
      snippets,
      dropped,
      affine: Float64Array.from(out.affine as ArrayLike<number>),
      crop: { start: [...crop.start], size: [...crop.size], flip: [...crop.flip] },
    };
  }
}

/**
 * Reads a case's volume as HU: .nii / .nii.gz asynchronously (gunzip off the main thread), with
 * the entry's CT-RATE metadata (RescaleSlope / Intercept, XYSpacing / ZSpacing) applied when it
 * has any; other paths (DICOM folders or files) through readVolumeFile.
 */
export async function readCaseVolume(path: string, entry: Pick<ManifestEntry, 'meta'>, maxVoxels?: number): Promise<Volume> {
  const fs = await import('node:fs/promises');
  let st;
  try {
    st = await fs.stat(path);
  } catch (e) {
    throw new DataError(path, 'volume', `cannot read: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    const { readVolumeFile } = await import('./io/node.ts');
    return readVolumeFile(path, { maxVoxels });
  }
  let bytes: Uint8Array;
  try {
    const b = await fs.readFile(path);
    bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new DataError(path, 'volume', `cannot read: ${(e as Error).message}`);
  }
  const { looksLikeDicom } = await import('./dicom.ts');
  if (looksLikeDicom(bytes)) {
    // One DICOM file (with or without the Part 10 preamble): its series, from its folder.
    const { readVolumeFile } = await import('./io/node.ts');
    return readVolumeFile(path, { maxVoxels });
  }
  let v: ReturnType<typeof decodeNifti> | undefined;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const zlib = await import('node:zlib');
    const { kMaxLength } = await import('node:buffer');
    const { promisify } = await import('node:util');
    const gunzip = promisify(zlib.gunzip) as (b: Uint8Array, o: object) => Promise<Buffer>;
    // float64 voxels + header and extensions: a bound; the header check in decodeNifti is exact.
    const limit = maxVoxels !== undefined ? Math.min(maxVoxels * 8 + (1 << 20), kMaxLength) : undefined;
    try {
      const raw = await gunzip(bytes, limit !== undefined ? { maxOutputLength: limit } : {});
      bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    } catch {
      // The checked reader (fflate, on this thread) reads what it can and says precisely what
      // is wrong (truncation, CRC, size limit).
      v = decodeNifti(bytes, path, { maxVoxels });
    }
  }
  v ??= decodeNifti(bytes, path, { maxVoxels });
  const meta = entry.meta;
  if (meta && CTRATE_META_FIELDS.some((f) => meta[f] !== undefined && meta[f] !== '')) {
    // Only a real scaling in the header (not the identity slope 1, intercept 0 most writers put
    // there) means the stored values were already turned into HU; applyCtRateMeta also checks
    // the values (a median below air means they were HU already).
    const h = v.header;
    const headerScaled = h.scaled && !(h.sclSlope === 1 && (h.sclInter === 0 || !Number.isFinite(h.sclInter)));
    return applyCtRateMeta(v, meta, path, headerScaled).volume;
  }
  return v;
}

