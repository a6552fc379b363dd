// Preprocessing for RadFinder weights (RADFINDER-MODEL.md section 1; radfinder
// shared_utils.py, largest_multiple_crop.py, and MONAI's ScaleIntensityRange, Orientation,
// Spacing, CenterSpatialCrop, SpatialPad): intensity scaled and clipped BEFORE resampling,
// RAS, trilinear resampling with MONAI's output-size rule, values rounded to float16, then per
// axis the centred crop to a whole number of windows, or symmetric zero padding to one window
// for an axis shorter than one. The result is in RadFinder's layout: [X, Y, Z], depth fastest.
// Browser-safe.
import { DataError } from '../errors.ts';
import { reorientToRas, resample } from './prep.ts';
import { huToUnitInPlace } from './crop.ts';
import { identityAffine, invertAffine, multiplyAffines, spacingFromAffine, type Vec3, type Volume } from './volume.ts';

export interface RadfinderPrepOptions {
  /** Target voxel size (x, y, z) mm. */
  pixdim: readonly [number, number, number];
  /** Voxels per window (x, y, z). */
  window: readonly [number, number, number];
  /** Depth voxels per patch (one depth bin). */
  patchDepth: number;
  huMin: number;
  huMax: number;
  dtype: 'float16' | 'float32';
}

export interface RadfinderInput {
  /** The crop, [X, Y, Z] with Z fastest (RadFinder's (H, W, D)). */
  data: Float32Array;
  shape: Vec3;
  /** Windows per axis (Hg, Wg, Dg). */
  grid: Vec3;
  /** Crop voxel (x, y, z) -> world mm (RAS world of the file's affine). */
  affine: Float64Array;
  /** Depth bins (Z / patchDepth): every one valid for a single scan (the release's mask). */
  bins: number;
  /** Resampled (pre-crop) size and the crop's start in it (negative: padding). */
  resampledShape: Vec3;
  cropStart: Vec3;
}

/** numpy's round (half to even), as MONAI's compute_shape_offset uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * MONAI Spacing leaves an axis whose spacing is within 1e-3 mm of the target as it is (no
 * resampling, no sub-voxel drift): the effective target spacing per axis.
 */
export function monaiTargetSpacing(spacing: ArrayLike<number>, pixdim: ArrayLike<number>): Vec3 {
  return [0, 1, 2].map((a) => (Math.abs(spacing[a] - pixdim[a]) <= 1e-3 ? spacing[a] : pixdim[a])) as Vec3;
}

/** MONAI Spacing's output size per axis for an axis-aligned volume: round((n - 1) s_in / s_out + 1). */
export function monaiResampledShape(shape: ArrayLike<number>, spacing: ArrayLike<number>, target: ArrayLike<number>): Vec3 {
  return [0, 1, 2].map((a) => Math.max(1, roundHalfEven(((shape[a] - 1) * spacing[a]) / target[a] + 1))) as Vec3;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x rounded to the nearest float16 (ties to even), as torch's .half(), returned as a number. */
export function roundToHalf(x: number): number {
  const a = Math.abs(x);
  if (!Number.isFinite(x) || a === 0) return x;
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  if (a >= 2 ** -14) {
    // A normal half keeps 10 of the f32's 23 mantissa bits: round the bit pattern to a
    // multiple of 2^13 (ties to even; a carry into the exponent is the right result).
    f32[0] = x;
    const b = u32[0];
    u32[0] = (b + 0xfff + ((b >>> 13) & 1)) & ~0x1fff;
    return f32[0];
  }
  // Subnormal halves are multiples of 2^-24; x / 2^-24 is exact in double.
  return roundHalfEven(x * 2 ** 24) * 2 ** -24;
}

/** The IEEE half bits of x (after roundToHalf), for writing float16 files. */
export function halfBits(x: number): number {
  const v = roundToHalf(x);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (Number.isNaN(v)) return 0x7e00;
  if (a < 2 ** -14) return sign | (a * 2 ** 24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
}

/** The crop cut into windows (N, w0, w1, w2), N in (ih, iw, id) order, depth fastest: RadFinder's pixel_values. */
export function windowsOf(input: RadfinderInput, window: readonly [number, number, number]): Float32Array {
  const [X, Y, Z] = input.shape;
  const [w0, w1, w2] = window;
  const out = new Float32Array(X * Y * Z);
  let o = 0;
  for (let a = 0; a < input.grid[0]; a++)
    for (let b = 0; b < input.grid[1]; b++)
      for (let c = 0; c < input.grid[2]; c++)
        for (let x = 0; x < w0; x++)
          for (let y = 0; y < w1; y++) {
            const base = ((a * w0 + x) * Y + b * w1 + y) * Z + c * w2;
            out.set(input.data.subarray(base, base + w2), o);
            o += w2;
          }
  return out;
}

export interface RadfinderGeometry {
  resampledShape: Vec3;
  cropStart: Vec3;
  shape: Vec3;
  grid: Vec3;
}

/**
 * Sizes and offsets of the release's preprocessing for a RAS volume of `shape` voxels of
 * `spacing` mm: MONAI's resampled size, then per axis the centred crop to a whole number of
 * windows (CenterSpatialCrop: start n // 2 - size // 2), or, for an axis shorter than one
 * window, symmetric padding to one window (SpatialPad: left floor(diff / 2); start < 0).
 */
export function radfinderGeometry(shape: ArrayLike<number>, spacing: ArrayLike<number>, pixdim: ArrayLike<number>, window: ArrayLike<number>): RadfinderGeometry {
  const resampledShape = monaiResampledShape(shape, spacing, monaiTargetSpacing(spacing, pixdim));
  const out = { resampledShape, cropStart: [0, 0, 0] as Vec3, shape: [0, 0, 0] as Vec3, grid: [0, 0, 0] as Vec3 };
  for (let a = 0; a < 3; a++) {
    const n = resampledShape[a];
    const w = window[a];
    const m = Math.floor(n / w);
    out.grid[a] = Math.max(1, m);
    out.shape[a] = out.grid[a] * w;
    out.cropStart[a] = m >= 1 ? Math.floor(n / 2) - Math.floor(out.shape[a] / 2) : -Math.floor((w - n) / 2);
  }
  return out;
}

/**
 * The release's preprocessing of one volume (in HU, any orientation). Throws a DataError when
 * the volume is empty. An axis shorter than one window is padded with 0 (-1000 HU).
 */
export function prepareRadfinder(v: Volume, o: RadfinderPrepOptions, source = 'volume'): RadfinderInput {
  if (v.shape.some((n) => !(n >= 1))) throw new DataError(source, 'shape', `${v.shape.join('x')} holds no voxels`);
  const data = Float32Array.from(v.data);
  huToUnitInPlace(data, o.huMin, o.huMax);
  const ras = reorientToRas({ ...v, data });
  const g = radfinderGeometry(ras.shape, spacingFromAffine(ras.affine), o.pixdim, o.window);
  for (let a = 0; a < 3; a++) {
    // A window is padded when the scan is shorter, but a scan shorter than one depth patch
    // (one 12 mm bin) or a single row in plane is an image, not a volume.
    const least = a === 2 ? o.patchDepth : 2;
    if (g.resampledShape[a] < least)
      throw new DataError(source, 'shape', `${'xyz'[a]} is ${g.resampledShape[a]} voxel(s) after resampling to ${o.pixdim[a]} mm (from ${v.shape.join('x')}); at least ${least} are needed (not a CT volume?)`);
  }
  const r = resample(ras, { spacing: monaiTargetSpacing(spacingFromAffine(ras.affine), o.pixdim), shape: g.resampledShape });
  if (o.dtype === 'float16') for (let i = 0; i < r.data.length; i++) r.data[i] = roundToHalf(r.data[i]);
  const size = g.shape;
  const start = g.cropStart;
  const grid = g.grid;
  const [X, Y, Z] = size;
  const [nx, ny, nz] = r.shape;
  const out = new Float32Array(X * Y * Z);
  for (let x = 0; x < X; x++) {
    const ix = x + start[0];
    if (ix < 0 || ix >= nx) continue;
    for (let y = 0; y < Y; y++) {
      const iy = y + start[1];
      if (iy < 0 || iy >= ny) continue;
      const ob = (x * Y + y) * Z;
      for (let z = 0; z < Z; z++) {
        const iz = z + start[2];
        if (iz >= 0 && iz < nz) out[ob + z] = r.data[(iz * ny + iy) * nx + ix];
      }
    }
  }
  const T = identityAffine();
  T[12] = start[0];
  T[13] = start[1];
  T[14] = start[2];
  if (Z % o.patchDepth) throw new DataError(source, 'window', `window depth ${o.window[2]} is not a whole number of ${o.patchDepth}-voxel patches`);
  return { data: out, shape: size, grid, affine: multiplyAffines(r.affine, T), bins: Z / o.patchDepth, resampledShape: r.shape as Vec3, cropStart: start };
}

/**
 * Where depth bin k of a prepared crop lies in the original file: the world point of the
 * bin's centre (crop voxel (X/2, Y/2, k * patchDepth + (patchDepth - 1) / 2)) and the file's
 * voxel there (continuous), with the nearest slice index along the file's third axis.
 */
export function binToSourceVoxel(input: RadfinderInput, source: Pick<Volume, 'affine' | 'shape'>, bin: number, patchDepth: number): { world: Vec3; voxel: Vec3; slice: number } {
  const c = [(input.shape[0] - 1) / 2, (input.shape[1] - 1) / 2, bin * patchDepth + (patchDepth - 1) / 2, 1];
  const a = input.affine;
  const world = [0, 1, 2].map((r) => a[r] * c[0] + a[4 + r] * c[1] + a[8 + r] * c[2] + a[12 + r]) as Vec3;
  const inv = invertAffine(source.affine);
  const voxel = [0, 1, 2].map((r) => inv[r] * world[0] + inv[4 + r] * world[1] + inv[8 + r] * world[2] + inv[12 + r]) as Vec3;
  const slice = Math.min(source.shape[2] - 1, Math.max(0, Math.round(voxel[2])));
  return { world, voxel, slice };
}
