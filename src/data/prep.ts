// Volume preparation for the model (RADFINDER.md "Volume preprocessing"): reorient to RAS,
// HU clip + scale to [0, 1], linear resampling to 0.75 x 0.75 x 3 mm, crop/pad to a whole
// number of 128 x 128 x 32 windows (centred for evaluation, random for training) and random
// flips. Pure functions on Volume (new Volume out, input untouched), no Node built-ins.
//
// Conventions (every function keeps the world position of every voxel value exact by
// updating the affine; voxel k of the output is where the affine says it is):
// - Reorientation permutes/flips axes only (no interpolation), so data are reordered
//   exactly; the result's axis codes are 'RAS' for any near-orthogonal affine.
// - Resampling grid: the centre of output voxel 0 is the centre of input voxel 0 (the
//   origin stays), and output voxel x along an axis sits at input index x * s_out / s_in.
//   The output size is the largest that keeps every output centre within the input's
//   centres: n_out = floor((n_in - 1) * s_in / s_out) + 1 (so nothing is extrapolated);
//   an explicit `shape` may go further, and then samples clamp to the edge voxel.
//   Interpolation is trilinear (separable: one 1D linear pass per axis, exact trilinear).
//   The target spacing is along the voxel axes: reorient to RAS first.
// - Crop/pad: output voxel x is input voxel x + start (start < 0 pads before); padding
//   uses `padValue` (default 0, i.e. -1000 HU after huToUnit). Centre crop/pad: start =
//   floor((n - target) / 2).
// - Flips (augmentation) UPDATE the affine: a flipped volume has the same world content,
//   stored in reverse along that axis, and its affine has the axis negated. So a world
//   point (e.g. a report's referenced slice) maps to the right voxel of the flipped array,
//   and depth bins, counted along the output's voxel k, follow the flip. A model sees the
//   mirrored array, which is what the augmentation is for.
import { DataError } from '../errors.ts';
import { Rng as SeededRng } from '../rng.ts';
import { axisOrientation, multiplyAffines, spacingFromAffine, identityAffine, type Vec3, type Volume } from './volume.ts';

export const DEFAULT_SPACING: Vec3 = [0.75, 0.75, 3];
export const DEFAULT_WINDOW: Vec3 = [128, 128, 32];
export const DEFAULT_TRAIN_CROP: Vec3 = [384, 384, 128];

/** Grid settings of a model: voxel size (mm), window (voxels) and training crop (voxels). */
export interface PrepPreset {
  spacing: Vec3;
  window: Vec3;
  trainCrop: Vec3;
}
/** The paper's grid: 0.75 x 0.75 x 3 mm, windows of 128 x 128 x 32 (96 mm), crops of 3 x 3 x 4 windows. */
export const PREP_PAPER: PrepPreset = { spacing: DEFAULT_SPACING, window: DEFAULT_WINDOW, trainCrop: DEFAULT_TRAIN_CROP };
/**
 * The small default model's coarser grid: half the in-plane resolution (1.5 mm), the same 3 mm
 * slices (so a 4-voxel depth patch is still 12 mm) and the same 96 mm windows (64 x 64 x 32
 * voxels), crops of 3 x 3 x 4 windows: 1/4 of the paper's voxels per window. Spread into
 * prepareVolume's options: prepareVolume(v, { ...PREP_SMALL, mode: 'eval' }).
 */
export const PREP_SMALL: PrepPreset = { spacing: [1.5, 1.5, 3], window: [64, 64, 32], trainCrop: [192, 192, 128] };
export const HU_MIN = -1000;
export const HU_MAX = 1000;

export type Rng = () => number;

/** Numbers in [0, 1) from the project's seeded generator (src/rng.ts). */
export function seededRng(seed: number): Rng {
  const rng = new SeededRng(seed);
  return () => rng.next();
}

function checkVolume(v: Volume, what: string): void {
  const [nx, ny, nz] = v.shape;
  if (!(nx >= 1 && ny >= 1 && nz >= 1) || v.data.length !== nx * ny * nz)
    throw new DataError(what, 'shape', `volume shape ${v.shape.join('x')} does not match its ${v.data.length} values`);
}

/**
 * Reorders axes: output axis n is input axis perm[n], reversed when flip[n]. Exact (no
 * interpolation); the affine is updated so every value keeps its world position.
 */
export function permuteFlip(v: Volume, perm: readonly number[], flip: readonly boolean[]): Volume {
  checkVolume(v, 'permuteFlip');
  if ([...perm].sort().join() !== '0,1,2') throw new Error(`permuteFlip: perm ${perm} is not a permutation of 0,1,2`);
  const S = v.shape;
  const st = [1, S[0], S[0] * S[1]];
  const N: Vec3 = [S[perm[0]], S[perm[1]], S[perm[2]]];
  const step = [0, 1, 2].map((n) => (flip[n] ? -1 : 1) * st[perm[n]]);
  let base = 0;
  for (let n = 0; n < 3; n++) if (flip[n]) base += (N[n] - 1) * st[perm[n]];
  const out = new Float32Array(v.data.length);
  const src = v.data;
  const [nx, ny, nz] = N;
  const [sx, sy, sz] = step;
  let o = 0;
  if (sx === 1) {
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++) {
        const b = base + z * sz + y * sy;
        out.set(src.subarray(b, b + nx), o);
        o += nx;
      }
  } else {
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++) {
        let b = base + z * sz + y * sy;
        for (let x = 0; x < nx; x++, b += sx) out[o++] = src[b];
      }
  }
  // old index = T * new index
  const T = new Float64Array(16);
  T[15] = 1;
  for (let n = 0; n < 3; n++) {
    const a = perm[n];
    T[4 * n + a] = flip[n] ? -1 : 1;
    if (flip[n]) T[12 + a] = N[n] - 1;
  }
  const affine = multiplyAffines(v.affine, T);
  return { data: out, shape: N, spacing: spacingFromAffine(affine), affine };
}

/** The axis permutation and flips that bring a volume to RAS (see reorientToRas). */
export function rasTransform(v: Volume): { perm: Vec3; flip: [boolean, boolean, boolean] } {
  const o = axisOrientation(v.affine);
  const perm: Vec3 = [0, 1, 2];
  const flip: [boolean, boolean, boolean] = [false, false, false];
  for (let a = 0; a < 3; a++) {
    perm[o[a].axis] = a;
    flip[o[a].axis] = o[a].sign < 0;
  }
  return { perm, flip };
}

/**
 * Reorients to RAS: axis i runs towards +x (Right), j +y (Anterior), k +z (Superior), so the
 * affine's 3x3 part is as close to diagonal-positive as an axis permutation/flip can make
 * it. Exact data reordering; world coordinates of every voxel unchanged.
 */
export function reorientToRas(v: Volume): Volume {
  const { perm, flip } = rasTransform(v);
  return permuteFlip(v, perm, flip);
}

/** Flips the chosen voxel axes (exact; affine updated, world content unchanged). */
export function flipAxes(v: Volume, flip: readonly boolean[]): Volume {
  return permuteFlip(v, [0, 1, 2], flip);
}

/**
 * reorientToRas for a volume whose array the caller owns: where reaching RAS takes flips only
 * (no axis permutation; every volume the synthetic benchmark writes, and most scanners'), the
 * axes are flipped in place and the same array comes back (the input volume itself when no flip
 * is needed), else reorientToRas's new one. Same voxels and affine as reorientToRas. Why: the copy allocated a volume-sized array per case
 * read, 10-15 MB, and the collections it caused took 25-45 ms on some reads of the training
 * loop's first epoch (2-core EPYC, 2026-12-04).
 */
export function reorientToRasInPlace(v: Volume): Volume {
  const { perm, flip } = rasTransform(v);
  if (perm[0] !== 0 || perm[1] !== 1 || perm[2] !== 2) return permuteFlip(v, perm, flip);
  checkVolume(v, 'reorientToRasInPlace');
  if (!flip.some((f) => f)) return v;
  const [nx, ny, nz] = v.shape;
  const d = v.data;
  const plane = nx * ny;
  // Flips commute: one axis at a time, with native reverse and block copies.
  if (flip[0]) for (let r = 0; r < ny * nz; r++) d.subarray(r * nx, (r + 1) * nx).reverse();
  const swap = (tmp: Float32Array, a: number, b: number) => {
    const n = tmp.length;
    tmp.set(d.subarray(a, a + n));
    d.copyWithin(a, b, b + n);
    d.set(tmp, b);
  };
  if (flip[1]) {
    const tmp = new Float32Array(nx);
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny >> 1; y++) swap(tmp, z * plane + y * nx, z * plane + (ny - 1 - y) * nx);
  }
  if (flip[2]) {
    const tmp = new Float32Array(plane);
    for (let z = 0; z < nz >> 1; z++) swap(tmp, z * plane, (nz - 1 - z) * plane);
  }
  const T = identityAffine();
  for (let n = 0; n < 3; n++)
    if (flip[n]) {
      T[5 * n] = -1;
      T[12 + n] = v.shape[n]! - 1;
    }
  const affine = multiplyAffines(v.affine, T);
  return { data: d, shape: [nx, ny, nz], spacing: spacingFromAffine(affine), affine };
}

/** Flips each axis with probability p (default 0.5) using `rng`; returns which were flipped. */
export function randomFlip(v: Volume, rng: Rng, p = 0.5): { volume: Volume; flipped: [boolean, boolean, boolean] } {
  const flipped: [boolean, boolean, boolean] = [rng() < p, rng() < p, rng() < p];
  return { volume: flipped.some((f) => f) ? flipAxes(v, flipped) : v, flipped };
}

/** Clips to [min, max] HU (default -1000..1000) and scales linearly to [0, 1]. NaN stays NaN. */
export function huToUnit(v: Volume, opts: { min?: number; max?: number } = {}): Volume {
  const lo = opts.min ?? HU_MIN, hi = opts.max ?? HU_MAX;
  if (!(hi > lo)) throw new Error(`huToUnit: max ${hi} must exceed min ${lo}`);
  const inv = 1 / (hi - lo);
  const src = v.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    out[i] = ((x < lo ? lo : x > hi ? hi : x) - lo) * inv;
  }
  return { data: out, shape: [...v.shape], spacing: [...v.spacing], affine: Float64Array.from(v.affine as ArrayLike<number>) };
}

/** Output size of resampling `shape` from `spacing` to `target` (see the grid convention above). */
export function resampledShape(shape: ArrayLike<number>, spacing: ArrayLike<number>, target: ArrayLike<number>): Vec3 {
  const out: Vec3 = [1, 1, 1];
  for (let a = 0; a < 3; a++) out[a] = Math.floor(((shape[a] - 1) * spacing[a]) / target[a] + 1e-6) + 1;
  return out;
}

/** One 1D linear pass along `axis`: output x samples input index min(x * ratio, n - 1). */
function resampleAxis(src: Float32Array, shape: Vec3, axis: number, nOut: number, ratio: number): { data: Float32Array; shape: Vec3 } {
  const n = shape[axis];
  const i0 = new Int32Array(nOut);
  const w = new Float32Array(nOut);
  for (let x = 0; x < nOut; x++) {
    let c = x * ratio;
    if (c > n - 1) c = n - 1;
    if (c < 0) c = 0;
    let f = Math.floor(c);
    if (f > n - 2) f = Math.max(n - 2, 0);
    i0[x] = f;
    w[x] = n === 1 ? 0 : c - f;
  }
  const one = n > 1 ? 1 : 0; // offset to the second neighbour, in units of the axis stride
  const outShape: Vec3 = [...shape];
  outShape[axis] = nOut;
  const [nx, ny, nz] = shape;
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  if (axis === 0) {
    const rows = ny * nz;
    for (let r = 0, ib = 0, ob = 0; r < rows; r++, ib += nx, ob += nOut)
      for (let x = 0; x < nOut; x++) {
        const a = ib + i0[x], t = w[x];
        out[ob + x] = src[a] + (src[a + one] - src[a]) * t;
      }
  } else if (axis === 1) {
    const s = nx;
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < nOut; y++) {
        const a = (z * ny + i0[y]) * nx, b = a + one * s, t = w[y];
        const ob = (z * nOut + y) * nx;
        for (let x = 0; x < nx; x++) out[ob + x] = src[a + x] + (src[b + x] - src[a + x]) * t;
      }
  } else {
    const plane = nx * ny;
    for (let z = 0; z < nOut; z++) {
      const a = i0[z] * plane, b = a + one * plane, t = w[z], ob = z * plane;
      for (let p = 0; p < plane; p++) out[ob + p] = src[a + p] + (src[b + p] - src[a + p]) * t;
    }
  }
  return { data: out, shape: outShape };
}

export interface ResampleOptions {
  /** Target voxel size in mm along i, j, k. Default 0.75 x 0.75 x 3. */
  spacing?: ArrayLike<number>;
  /** Output grid size; default resampledShape(...) (no extrapolation). */
  shape?: ArrayLike<number>;
}

/**
 * Trilinear resampling to a target spacing along the voxel axes. Output voxel 0's centre is
 * input voxel 0's centre; the affine's columns are rescaled (translation unchanged).
 * Separable (a 1D pass per axis, the most-shrinking axis first), cache-friendly.
 */
export function resample(v: Volume, opts: ResampleOptions = {}): Volume {
  checkVolume(v, 'resample');
  const target = opts.spacing ?? DEFAULT_SPACING;
  const sp = spacingFromAffine(v.affine);
  for (let a = 0; a < 3; a++)
    if (!(target[a] > 0) || !(sp[a] > 0)) throw new Error(`resample: spacing must be positive (target ${Array.from(target)}, input ${sp})`);
  const outShape: Vec3 = opts.shape ? [opts.shape[0], opts.shape[1], opts.shape[2]] : resampledShape(v.shape, sp, target);
  const ratio = [0, 1, 2].map((a) => target[a] / sp[a]);
  // Shrink first: the pass that reduces the data most goes first.
  const order = [0, 1, 2].sort((a, b) => outShape[a] / v.shape[a] - outShape[b] / v.shape[b]);
  let data = v.data;
  let shape: Vec3 = [...v.shape];
  for (const a of order) {
    if (outShape[a] === shape[a] && Math.abs(ratio[a] - 1) < 1e-12) continue; // identity along this axis
    ({ data, shape } = resampleAxis(data, shape, a, outShape[a], ratio[a]));
  }
  if (data === v.data) data = v.data.slice();
  const S = identityAffine();
  for (let a = 0; a < 3; a++) S[5 * a] = ratio[a];
  const affine = multiplyAffines(v.affine, S);
  return { data, shape, spacing: spacingFromAffine(affine), affine };
}

/** Extracts `shape` voxels starting at input voxel `start` (negative / past the end = padding). */
export function extractRegion(v: Volume, start: ArrayLike<number>, shape: ArrayLike<number>, padValue = 0): Volume {
  checkVolume(v, 'extractRegion');
  const [nx, ny, nz] = v.shape;
  const [tx, ty, tz] = [shape[0], shape[1], shape[2]];
  for (const t of [tx, ty, tz]) if (!(Number.isInteger(t) && t >= 1)) throw new Error(`extractRegion: bad shape ${Array.from(shape)}`);
  const [x0, y0, z0] = [start[0], start[1], start[2]];
  const out = new Float32Array(tx * ty * tz);
  if (padValue !== 0) out.fill(padValue);
  const xa = Math.max(0, -x0), xb = Math.min(tx, nx - x0); // output x range that hits input
  const src = v.data;
  if (xb > xa)
    for (let z = 0; z < tz; z++) {
      const iz = z + z0;
      if (iz < 0 || iz >= nz) continue;
      for (let y = 0; y < ty; y++) {
        const iy = y + y0;
        if (iy < 0 || iy >= ny) continue;
        const ib = (iz * ny + iy) * nx + x0;
        out.set(src.subarray(ib + xa, ib + xb), (z * ty + y) * tx + xa);
      }
    }
  const T = identityAffine();
  T[12] = x0;
  T[13] = y0;
  T[14] = z0;
  const affine = multiplyAffines(v.affine, T);
  return { data: out, shape: [tx, ty, tz], spacing: spacingFromAffine(affine), affine };
}

/** Start index for a centred (default) or random crop/pad of n voxels to t. */
export function cropStart(n: number, t: number, mode: 'center' | 'random' = 'center', rng?: Rng): number {
  if (mode === 'center') return Math.floor((n - t) / 2);
  if (!rng) throw new Error("cropStart: mode 'random' needs an rng");
  const lo = Math.min(0, n - t), hi = Math.max(0, n - t);
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export interface CropOptions {
  /** 'center' (default) or 'random' (needs rng). */
  mode?: 'center' | 'random';
  rng?: Rng;
  /** Value of padded voxels. Default 0. */
  padValue?: number;
}

/** Crops and/or pads to `shape` (per axis), centred or at a random offset; affine updated. */
export function cropOrPad(v: Volume, shape: ArrayLike<number>, opts: CropOptions = {}): Volume {
  const start = [0, 1, 2].map((a) => cropStart(v.shape[a], shape[a], opts.mode ?? 'center', opts.rng));
  return extractRegion(v, start, shape, opts.padValue ?? 0);
}

/** The largest whole number of windows that fits `shape` per axis (at least one window). */
export function windowGridShape(shape: ArrayLike<number>, window: ArrayLike<number> = DEFAULT_WINDOW): Vec3 {
  return [0, 1, 2].map((a) => Math.max(1, Math.floor(shape[a] / window[a])) * window[a]) as Vec3;
}

/** Evaluation crop: the largest centred crop that is a whole number of windows (pads when smaller than one window). */
export function centerCropToWindows(v: Volume, window: ArrayLike<number> = DEFAULT_WINDOW, padValue = 0): Volume {
  return cropOrPad(v, windowGridShape(v.shape, window), { padValue });
}

export interface PrepareOptions {
  /** 'eval': centred whole-window crop; 'train': random crop of `trainCrop` and random flips. */
  mode?: 'eval' | 'train';
  rng?: Rng;
  spacing?: ArrayLike<number>;
  window?: ArrayLike<number>;
  trainCrop?: ArrayLike<number>;
  /** Flip probability per axis in training. Default 0.5. */
  flipP?: number;
  huMin?: number;
  huMax?: number;
  /** Pad value after scaling to [0, 1]. Default 0 (-1000 HU). */
  padValue?: number;
}

/**
 * The whole preparation: HU clip + scale, reorient to RAS, resample, crop/pad (and, in
 * training, random flips). The returned affine maps the output voxels to world mm.
 */
export function prepareVolume(v: Volume, opts: PrepareOptions = {}): Volume {
  let x = huToUnit(v, { min: opts.huMin, max: opts.huMax });
  x = reorientToRas(x);
  x = resample(x, { spacing: opts.spacing ?? DEFAULT_SPACING });
  const pad = opts.padValue ?? 0;
  if ((opts.mode ?? 'eval') === 'eval') return centerCropToWindows(x, opts.window ?? DEFAULT_WINDOW, pad);
  if (!opts.rng) throw new Error("prepareVolume: mode 'train' needs an rng");
  x = cropOrPad(x, opts.trainCrop ?? DEFAULT_TRAIN_CROP, { mode: 'random', rng: opts.rng, padValue: pad });
  return randomFlip(x, opts.rng, opts.flipP ?? 0.5).volume;
}
