// The dataset's volumes (dataset.ts): reading a case's file as HU (Node-only: node:fs and
// node:zlib are imported lazily), preparing it once per case up to the crop (HU scaled,
// RAS, resampled), and keeping those pre-crop volumes in memory within a byte budget.
import { DataError } from '../errors.ts';
import { huToUnitInPlace } from './crop.ts';
import { applyCtRateMeta } from './ctrate.ts';
import type { ManifestEntry } from './manifest.ts';
import { decodeNifti } from './nifti.ts';
import { reorientToRasInPlace, resample } from './prep.ts';
import type { Volume } from './volume.ts';

const CTRATE_META_FIELDS = ['RescaleSlope', 'RescaleIntercept', 'XYSpacing', 'ZSpacing'];

/** Lets other work (GPU callbacks, file reads) run between heavy synchronous steps. */
const yieldToLoop = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/**
 * A case's volume read, HU-scaled, reoriented to RAS and resampled to `spacing`: the pre-crop
 * volume every crop of the case is cut from.
 */
export async function readResampled(path: string, entry: Pick<ManifestEntry, 'meta'>, spacing: [number, number, number], maxVoxels?: number): Promise<Volume> {
  let v = await readCaseVolume(path, entry, maxVoxels);
  await yieldToLoop();
  huToUnitInPlace(v.data); // the volume was just read: its array is ours to overwrite
  v = reorientToRasInPlace(v);
  await yieldToLoop();
  return resample(v, { spacing });
}

/**
 * Pre-crop volumes by case index, kept after their first read; past `maxBytes` the least
 * recently used go first. Concurrent reads of one case share one promise.
 */
export class VolumeCache {
  private readonly cache = new Map<number, Promise<Volume>>();
  private readonly cacheBytes = new Map<number, number>();

  constructor(private readonly maxBytes: number) {}

  /** The volume of case `index`: the cached one, else `load()`'s, kept when `keep`. */
  get(index: number, load: () => Promise<Volume>, keep: boolean): Promise<Volume> {
    const hit = this.cache.get(index);
    if (hit) {
      // Most recently used last (Map order), for the eviction below.
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const p = load();
    if (keep) {
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
    const max = this.maxBytes;
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
  clear(index?: number): void {
    if (index === undefined) {
      this.cache.clear();
      this.cacheBytes.clear();
    } else {
      this.cache.delete(index);
      this.cacheBytes.delete(index);
    }
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
