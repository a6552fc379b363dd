// The training / evaluation dataset: manifest -> prepared cases for the model (RADFINDER.md
// "Volume preprocessing" and objective 3). Node-only (reads files; node:fs and node:zlib are
// imported lazily, so importing this module costs nothing in a bundle that never opens one).
//
// Per case, once (and kept in memory with `cache`): read the volume (.nii / .nii.gz
// asynchronously, gunzip on libuv's thread pool; DICOM folders through readVolumeFile), apply
// CT-RATE rescale / spacing metadata when the entry has it, clip HU to [-1000, 1000] and scale
// to [0, 1], reorient to RAS, resample (trilinear) to `spacing`. Reports are mined for image
// references once, at open, and each reference resolved to a slice (world z) through the
// entry's series metadata (snippets.ts, snippet-locate.ts).
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
//   (bin + 1/2) * patch z * spacing z: the convention of losses/localization.ts (z_d).
// - Randomness: one Rng per (seed, case id) (so a case keeps its crops when the split is
//   listed differently); draws in order: crop start x, y, z, then flip x, y, z.
// Its parts, by job: dataset-cases.ts (labels and resolved snippets per case, the split's
// statistics), dataset-volumes.ts (reading, preparing and caching the pre-crop volumes),
// crop.ts (choosing the crop, the augmentation, and cutting it).
import { DataError } from '../errors.ts';
import { binValidity, checkConfig, chooseCrop, cropAndFlip, type CropSpec, type DatasetConfig, type PrepareMode } from './crop.ts';
import { caseInfo, caseStats, type CaseInfo, type CropCounters, type DatasetStats } from './dataset-cases.ts';
import { VolumeCache, readResampled } from './dataset-volumes.ts';
import { readManifestFile, type ManifestEntry, type Split } from './manifest.ts';
import { depthBin } from './snippet-locate.ts';
import { entrySplit } from './splits.ts';
import type { Volume } from './volume.ts';

export type DatasetSplit = Split | 'all';

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
   * (default, reason 'unknown-series') or 'accept'. See snippet-locate.ts ResolveOptions.
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

export class CtDataset {
  readonly size: number;
  readonly ids: string[];
  readonly config: DatasetConfig;
  readonly split: DatasetSplit;
  private readonly cases: CaseInfo[];
  private readonly opts: DatasetOptions;
  private readonly volumes: VolumeCache;
  private readonly counters: CropCounters = { crops: 0, located: 0, outsideCrop: 0 };

  private constructor(cases: CaseInfo[], opts: DatasetOptions) {
    this.cases = cases;
    this.opts = opts;
    this.config = opts.config;
    this.split = opts.split ?? 'all';
    this.size = cases.length;
    this.ids = cases.map((c) => c.entry.id);
    this.volumes = new VolumeCache(opts.maxCacheBytes ?? 4 * 2 ** 30);
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
      cases.push(caseInfo(manifestPath, e, opts.unknownSeries));
    }
    return new CtDataset(cases, opts);
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

  /**
   * The cases whose volume (file or DICOM folder) does not exist, in manifest order: one stat a
   * case, so that a run can refuse them before it starts rather than when it first reads one.
   */
  async missingVolumes(): Promise<{ id: string; path: string }[]> {
    const { existsSync } = await import('node:fs');
    return this.cases.filter((c) => !existsSync(c.path)).map((c) => ({ id: c.entry.id, path: c.path }));
  }

  /**
   * @throws DataError naming the manifest, how many of this split's cases have no volume and
   * the first three (id and path), when any has none.
   */
  async checkVolumesExist(manifestPath: string): Promise<void> {
    const missing = await this.missingVolumes();
    if (missing.length === 0) return;
    const first = missing.slice(0, 3).map((m) => `${m.id} (${m.path})`).join(', ');
    throw new DataError(manifestPath, 'volume', `${missing.length} of the ${this.size} ${this.split} case(s) have no volume file: ${first}${missing.length > 3 ? ', ...' : ''}`);
  }

  /** Report corpus of this split (as written; empty reports included as ''), for training the tokenizer. */
  reports(): string[] {
    return this.cases.map((c) => c.entry.report);
  }

  stats(): DatasetStats {
    return caseStats(this.cases, this.counters);
  }

  /**
   * Case `index` read, HU-scaled, reoriented to RAS and resampled to the config's spacing (the
   * pre-crop volume; kept in memory with `cache`). Concurrent calls share one read.
   */
  resampled(index: number): Promise<Volume> {
    const c = this.info(index);
    return this.volumes.get(index, () => readResampled(c.path, c.entry, this.config.spacing, this.opts.maxVoxels), this.opts.cache ?? false);
  }

  /** Drops the cached volumes (all, or one case's). */
  clearCache(index?: number): void {
    this.volumes.clear(index);
  }

  /**
   * The crop of case `index` for (mode, seed): deterministic. Training: a random start per
   * axis (uniform over the positions that keep the crop inside the scan, or the scan inside
   * the crop where it is smaller) and flips with p = flipP per axis; eval: centred, no flips.
   */
  async cropSpec(index: number, mode: PrepareMode, seed: number): Promise<CropSpec> {
    const v = await this.resampled(index);
    return chooseCrop(v.shape, this.info(index).entry.id, mode, seed, this.config, this.opts);
  }

  /** Case `index` prepared for the model: deterministic for (index, mode, seed); eval ignores the seed. */
  async prepare(index: number, mode: PrepareMode, seed: number): Promise<PreparedCase> {
    const v = await this.resampled(index);
    return this.cropCase(index, v, chooseCrop(v.shape, this.info(index).entry.id, mode, seed, this.config, this.opts));
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
