// Where a mined reference lies in the prepared volume:
//   image (InstanceNumber) -> slice (series metadata) -> world z -> bin of `binDepth` voxels
//   along k of the prepared grid with the largest overlap with the slice's extent.
// A reference is never placed on a series other than the one it names; what cannot be placed
// is dropped with a reason, never thrown. Browser-safe.
import type { mat4 } from 'gl-matrix';
import { DataError } from '../errors.ts';
import type { SeriesMeta } from './manifest.ts';
import type { Snippet } from './snippets.ts';

export interface SliceLocation {
  z: number;
  thickness: number;
}

/** Slice thickness of a series: its own field, else the median spacing of slice positions. */
export function seriesThickness(series: SeriesMeta): number {
  if (series.sliceThickness && series.sliceThickness > 0) return series.sliceThickness;
  const zs = series.slices.map((s) => s.z).sort((a, b) => a - b);
  const d: number[] = [];
  for (let i = 1; i < zs.length; i++) if (zs[i]! - zs[i - 1]! > 1e-6) d.push(zs[i]! - zs[i - 1]!);
  if (d.length === 0) return 0;
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)]!;
}

/** The slice of an image (InstanceNumber) in a series, or null when the series has no such image. */
export function resolveImage(series: SeriesMeta, image: number): SliceLocation | null {
  const sl = series.slices.find((s) => s.instanceNumber === image);
  if (!sl) return null;
  return { z: sl.z, thickness: seriesThickness(series) };
}

/** A grid after preparation (resampling, cropping): voxel -> world affine and shape. */
export interface DepthGrid {
  affine: mat4 | ArrayLike<number>;
  shape: [number, number, number];
}

/**
 * The depth bin (groups of `binDepth` voxels along k; floor(nz / binDepth) bins, trailing voxels
 * belong to none) with the largest overlap with the slice extent [z - t/2, z + t/2], or null when
 * less than half the slice (its centre, for t = 0) lies inside the binned part of the grid.
 */
export function depthBin(grid: DepthGrid, z: number, thickness: number, binDepth = 4): number | null {
  const m = grid.affine;
  const [nx, ny, nz] = grid.shape;
  const dz = m[10]!;
  if (Math.abs(dz) < 1e-6) throw new DataError('prepared grid', 'affine', 'the k axis has no z component; cannot map slices to depth bins');
  // World z of voxel k at the grid's in-plane centre.
  const z0 = m[2]! * ((nx - 1) / 2) + m[6]! * ((ny - 1) / 2) + m[14]!;
  const nBins = Math.floor(nz / binDepth);
  if (nBins <= 0) return null;
  const zOfK = (k: number) => z0 + dz * k;
  const t = Math.max(thickness, 0);
  const lo = z - t / 2;
  const hi = z + t / 2;
  let best = -1;
  let bestOv = -1;
  let total = 0;
  for (let b = 0; b < nBins; b++) {
    const za = zOfK(b * binDepth - 0.5);
    const zb = zOfK((b + 1) * binDepth - 0.5);
    const bl = Math.min(za, zb);
    const bh = Math.max(za, zb);
    let ov: number;
    if (t === 0) ov = z >= bl && z < bh ? 1 : 0;
    else ov = Math.max(0, Math.min(hi, bh) - Math.max(lo, bl));
    total += ov;
    if (ov > bestOv) {
      bestOv = ov;
      best = b;
    }
  }
  if (t === 0 ? total === 0 : total < t / 2 - 1e-9) return null;
  return best;
}

export type DropReason = 'no-series-metadata' | 'other-series' | 'unknown-series' | 'ambiguous-series' | 'image-not-in-series' | 'outside-crop';

export interface LocatedSnippet extends Snippet {
  z: number;
  bin: number;
}

export interface DroppedSnippet {
  snippet: Snippet;
  reason: DropReason;
  detail: string;
}

export interface Localisation {
  located: LocatedSnippet[];
  dropped: DroppedSnippet[];
}

export interface ResolveOptions {
  /**
   * When the volume's SeriesNumber is unknown (null, e.g. anonymised DICOM), references that
   * name a series: 'drop' (default; reason 'unknown-series': "series 5" may be another
   * reconstruction with other image numbers) or 'accept' (resolve the image number in this series).
   */
  unknownSeries?: 'drop' | 'accept';
}

/**
 * The slice a mined reference points to in the case's series, or why it cannot be placed
 * (never throws): no metadata, another series, an unknown series number, no series named while
 * the study has several (series.seriesCount > 1: 'ambiguous-series'), an image the series lacks.
 * A reference is never placed on a series other than the one it names.
 */
export function resolveSnippet(
  sn: Pick<Snippet, 'series' | 'image'>,
  series: SeriesMeta | undefined,
  opts: ResolveOptions = {},
): SliceLocation | { reason: Exclude<DropReason, 'outside-crop'>; detail: string } {
  if (!series) return { reason: 'no-series-metadata', detail: 'the case has no slice metadata' };
  if (sn.series !== null && series.seriesNumber === null && (opts.unknownSeries ?? 'drop') === 'drop')
    return { reason: 'unknown-series', detail: `series ${sn.series}: the volume's SeriesNumber is unknown (empty), so the reference cannot be checked` };
  if (sn.series !== null && series.seriesNumber !== null && sn.series !== series.seriesNumber)
    return { reason: 'other-series', detail: `series ${sn.series}, the volume is series ${series.seriesNumber}` };
  if (sn.series === null && (series.seriesCount ?? 1) > 1)
    return { reason: 'ambiguous-series', detail: `image ${sn.image} names no series, and the study has ${series.seriesCount} image series` };
  const loc = resolveImage(series, sn.image);
  if (!loc) {
    let lo = Infinity, hi = -Infinity;
    for (const s of series.slices) (lo = Math.min(lo, s.instanceNumber)), (hi = Math.max(hi, s.instanceNumber));
    const name = series.seriesNumber === null ? 'the series' : `series ${series.seriesNumber}`;
    return { reason: 'image-not-in-series', detail: `image ${sn.image}; ${name} has ${series.slices.length} images${series.slices.length ? ` (${lo}-${hi})` : ''}` };
  }
  return loc;
}

/**
 * Maps mined snippets to depth bins of a prepared grid through the case's series metadata.
 * Snippets that cannot be placed are dropped with a reason (never thrown): no metadata, a
 * series other than the case's (or any series, when the case's number is unknown, unless
 * opts.unknownSeries is 'accept'), an image the series lacks, a slice outside the crop.
 */
export function locateSnippets(snippets: Snippet[], series: SeriesMeta | undefined, grid: DepthGrid, binDepth = 4, opts: ResolveOptions = {}): Localisation {
  const located: LocatedSnippet[] = [];
  const dropped: DroppedSnippet[] = [];
  for (const sn of snippets) {
    const loc = resolveSnippet(sn, series, opts);
    if ('reason' in loc) {
      dropped.push({ snippet: sn, reason: loc.reason, detail: loc.detail });
      continue;
    }
    const bin = depthBin(grid, loc.z, loc.thickness, binDepth);
    if (bin === null) {
      dropped.push({ snippet: sn, reason: 'outside-crop', detail: `image ${sn.image} at z = ${loc.z.toFixed(1)} mm lies outside the prepared volume` });
      continue;
    }
    located.push({ ...sn, z: loc.z, bin });
  }
  return { located, dropped };
}

/** Counts of dropped snippets by reason. */
export function dropCounts(dropped: DroppedSnippet[]): Record<DropReason, number> {
  const c: Record<DropReason, number> = { 'no-series-metadata': 0, 'other-series': 0, 'unknown-series': 0, 'ambiguous-series': 0, 'image-not-in-series': 0, 'outside-crop': 0 };
  for (const d of dropped) c[d.reason]++;
  return c;
}
