// A CT volume in memory: voxels, grid and the voxel -> world (RAS+, mm) affine, and the
// geometry helpers on it (world <-> voxel, orientation codes, sampling). Pure code: no
// Node built-ins, so the browser bundle can use it.
//
// Conventions used here and in nifti.ts, dicom.ts and prep.ts:
// - Voxel indices (i, j, k) are continuous; integer values are voxel CENTRES (as in NIfTI),
//   so voxel (0, 0, 0) covers [-0.5, 0.5]^3 in index space.
// - The affine is a gl-matrix mat4, column-major: affine[4 * col + row]; column 3
//   (affine[12..14]) is the translation = world position of the centre of voxel (0, 0, 0).
//   Affines made here are Float64Array; any mat4 (Float32Array, number[]) is accepted.
// - World space is RAS+ millimetres (NIfTI / nibabel): +x towards the patient's Right,
//   +y Anterior, +z Superior. DICOM's LPS+ is (x_RAS, y_RAS, z_RAS) = (-x_LPS, -y_LPS, z_LPS).
import { mat4 } from 'gl-matrix';

export interface Volume {
  /** Voxel values (HU for CT), x fastest: index = i + nx * (j + ny * k). */
  data: Float32Array;
  /** Grid size [nx, ny, nz]. */
  shape: [number, number, number];
  /** Voxel size in mm along i, j, k (the column norms of the affine's 3x3 part). */
  spacing: [number, number, number];
  /** Maps voxel (i, j, k, 1) to world (x, y, z, 1) in RAS+ millimetres (NIfTI convention). */
  affine: mat4;
  /** Read from DICOM: slice k's InstanceNumber and, in a multi-frame file, its frame (1-based),
   * so that a slice index can be named as a reader of the series names it. Not carried over by
   * reorientation or resampling (they make new volumes). */
  dicomSlices?: { instanceNumber: number | null; frame: number | null }[];
}

export type Vec3 = [number, number, number];
/** Anything with an affine: a Volume or a bare mat4. */
type HasAffine = Volume | mat4;

function affineOf(v: HasAffine): mat4 {
  return (v as Volume).affine !== undefined && (v as Volume).shape !== undefined ? (v as Volume).affine : (v as mat4);
}

/** A new Float64Array 4x4 identity (gl-matrix layout). */
export function identityAffine(): Float64Array {
  const m = new Float64Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

/** A Float64Array copy of any mat4. */
export function toAffine64(m: mat4): Float64Array {
  const out = new Float64Array(16);
  for (let i = 0; i < 16; i++) out[i] = m[i];
  return out;
}

/** Affine from a 3x3 matrix given as rows and a translation: world = R * ijk + t. */
export function affineFromRows(rows: number[][], translation: ArrayLike<number> = [0, 0, 0]): Float64Array {
  const m = identityAffine();
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) m[4 * c + r] = rows[r][c];
  m[12] = translation[0];
  m[13] = translation[1];
  m[14] = translation[2];
  return m;
}

/** Diagonal affine: world = spacing * ijk + origin (origin = world position of voxel 0). */
export function affineFromSpacing(spacing: ArrayLike<number>, origin: ArrayLike<number> = [0, 0, 0]): Float64Array {
  return affineFromRows(
    [
      [spacing[0], 0, 0],
      [0, spacing[1], 0],
      [0, 0, spacing[2]],
    ],
    origin,
  );
}

/** Element (row, col) of an affine. */
export function affineAt(m: mat4, row: number, col: number): number {
  return m[4 * col + row];
}

/** Matrix product a * b as a new Float64Array (float64 arithmetic whatever the inputs). */
export function multiplyAffines(a: mat4, b: mat4): Float64Array {
  const out = new Float64Array(16);
  mat4.multiply(out, a, b);
  return out;
}

/** Inverse as a new Float64Array; throws when singular. */
export function invertAffine(m: mat4): Float64Array {
  const out = new Float64Array(16);
  if (!mat4.invert(out, m)) throw new Error('affine is singular (zero spacing or collinear axes)');
  return out;
}

/** Voxel sizes: the column norms of the affine's 3x3 part. */
export function spacingFromAffine(m: mat4): Vec3 {
  const s = [0, 0, 0] as Vec3;
  for (let c = 0; c < 3; c++) s[c] = Math.hypot(m[4 * c], m[4 * c + 1], m[4 * c + 2]);
  return s;
}

/** Total voxel count of a shape. */
export function voxelCount(shape: ArrayLike<number>): number {
  return shape[0] * shape[1] * shape[2];
}

/** Makes a Volume; spacing is always derived from the affine. */
export function createVolume(
  shape: ArrayLike<number>,
  opts: { affine?: mat4; spacing?: ArrayLike<number>; origin?: ArrayLike<number>; data?: Float32Array; fill?: number } = {},
): Volume {
  const s: Vec3 = [shape[0], shape[1], shape[2]];
  const n = voxelCount(s);
  const affine = opts.affine ? toAffine64(opts.affine) : affineFromSpacing(opts.spacing ?? [1, 1, 1], opts.origin ?? [0, 0, 0]);
  let data = opts.data;
  if (data && data.length !== n) throw new Error(`createVolume: data has ${data.length} values, shape ${s.join('x')} needs ${n}`);
  if (!data) {
    data = new Float32Array(n);
    if (opts.fill) data.fill(opts.fill);
  }
  return { data, shape: s, spacing: spacingFromAffine(affine), affine };
}

/** A deep copy. */
export function cloneVolume(v: Volume): Volume {
  return { data: v.data.slice(), shape: [...v.shape], spacing: [...v.spacing], affine: toAffine64(v.affine) };
}

/** World (RAS mm) position of a continuous voxel index. */
export function voxelToWorld(v: HasAffine, ijk: ArrayLike<number>): Vec3 {
  const m = affineOf(v);
  const [i, j, k] = [ijk[0], ijk[1], ijk[2]];
  return [
    m[0] * i + m[4] * j + m[8] * k + m[12],
    m[1] * i + m[5] * j + m[9] * k + m[13],
    m[2] * i + m[6] * j + m[10] * k + m[14],
  ];
}

/** Continuous voxel index of a world (RAS mm) point (integers = voxel centres). */
export function worldToVoxel(v: HasAffine, xyz: ArrayLike<number>): Vec3 {
  return voxelToWorld(invertAffine(affineOf(v)), xyz);
}

/** Index of voxel (i, j, k) in `data` (integers, no bounds check). */
export function voxelIndex(shape: ArrayLike<number>, i: number, j: number, k: number): number {
  return i + shape[0] * (j + shape[1] * k);
}

/** Value of the voxel nearest to a continuous index, or `outside` when it is off the grid. */
export function sampleNearest(v: Volume, ijk: ArrayLike<number>, outside = NaN): number {
  const [nx, ny, nz] = v.shape;
  const i = Math.round(ijk[0]), j = Math.round(ijk[1]), k = Math.round(ijk[2]);
  if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return outside;
  return v.data[i + nx * (j + ny * k)];
}

/**
 * Trilinear value at a continuous index. Points within half a voxel outside the centres'
 * hull (still inside the grid's extent) take the edge value; farther ones give `outside`.
 */
export function sampleLinear(v: Volume, ijk: ArrayLike<number>, outside = NaN): number {
  const [nx, ny, nz] = v.shape;
  const p = [ijk[0], ijk[1], ijk[2]];
  const n = [nx, ny, nz];
  const i0 = [0, 0, 0], w = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    if (!(p[a] >= -0.5 && p[a] <= n[a] - 0.5)) return outside;
    const c = Math.min(Math.max(p[a], 0), n[a] - 1);
    const f = Math.min(Math.floor(c), Math.max(n[a] - 2, 0));
    i0[a] = f;
    w[a] = n[a] === 1 ? 0 : c - f;
  }
  const sx = 1, sy = nx, sz = nx * ny;
  const dx = nx > 1 ? sx : 0, dy = ny > 1 ? sy : 0, dz = nz > 1 ? sz : 0;
  const b = i0[0] * sx + i0[1] * sy + i0[2] * sz;
  const d = v.data;
  const [wx, wy, wz] = w;
  const c00 = d[b] * (1 - wx) + d[b + dx] * wx;
  const c10 = d[b + dy] * (1 - wx) + d[b + dy + dx] * wx;
  const c01 = d[b + dz] * (1 - wx) + d[b + dz + dx] * wx;
  const c11 = d[b + dz + dy] * (1 - wx) + d[b + dz + dy + dx] * wx;
  return (c00 * (1 - wy) + c10 * wy) * (1 - wz) + (c01 * (1 - wy) + c11 * wy) * wz;
}

/** Value at a world (RAS mm) point, nearest-voxel or trilinear; `outside` off the grid. */
export function sampleWorld(
  v: Volume,
  xyz: ArrayLike<number>,
  opts: { interpolation?: 'nearest' | 'linear'; outside?: number } = {},
): number {
  const ijk = worldToVoxel(v, xyz);
  return opts.interpolation === 'linear' ? sampleLinear(v, ijk, opts.outside) : sampleNearest(v, ijk, opts.outside);
}

/**
 * For each voxel axis, the world axis it runs along most (0 = x, 1 = y, 2 = z) and the sign.
 * Greedy on the normalised columns (largest |component| first), as nibabel's io_orientation
 * does for the usual near-orthogonal affines; every world axis is used once.
 */
export function axisOrientation(m: mat4): { axis: number; sign: 1 | -1 }[] {
  const cols: number[][] = [];
  for (let c = 0; c < 3; c++) {
    const norm = Math.hypot(m[4 * c], m[4 * c + 1], m[4 * c + 2]) || 1;
    cols.push([m[4 * c] / norm, m[4 * c + 1] / norm, m[4 * c + 2] / norm]);
  }
  const out: { axis: number; sign: 1 | -1 }[] = [
    { axis: -1, sign: 1 },
    { axis: -1, sign: 1 },
    { axis: -1, sign: 1 },
  ];
  const usedCol = [false, false, false], usedRow = [false, false, false];
  for (let step = 0; step < 3; step++) {
    let best = -1, bc = 0, br = 0;
    for (let c = 0; c < 3; c++) {
      if (usedCol[c]) continue;
      for (let r = 0; r < 3; r++) {
        if (usedRow[r]) continue;
        const a = Math.abs(cols[c][r]);
        if (a > best) (best = a), (bc = c), (br = r);
      }
    }
    usedCol[bc] = usedRow[br] = true;
    out[bc] = { axis: br, sign: cols[bc][br] < 0 ? -1 : 1 };
  }
  return out;
}

/**
 * Orientation codes of the voxel axes in RAS+ world, e.g. 'RAS' (i runs towards Right,
 * j Anterior, k Superior) or 'LPS' (i towards Left, j Posterior, k Superior): the letter
 * names the direction in which the index INCREASES (nibabel's aff2axcodes).
 */
export function orientationCodes(v: HasAffine): string {
  const pos = ['R', 'A', 'S'], neg = ['L', 'P', 'I'];
  return axisOrientation(affineOf(v))
    .map((o) => (o.sign > 0 ? pos[o.axis] : neg[o.axis]))
    .join('');
}

/** Min, max (ignoring NaN) and the number of non-finite voxels. */
export function valueRange(data: ArrayLike<number>): { min: number; max: number; nonFinite: number } {
  let min = Infinity, max = -Infinity, nonFinite = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x === x && x !== Infinity && x !== -Infinity) {
      if (x < min) min = x;
      if (x > max) max = x;
    } else nonFinite++;
  }
  return { min, max, nonFinite };
}

/** Throws (plain Error, programming error) when a Volume's fields disagree. */
export function assertVolume(v: Volume, what = 'volume'): void {
  const [nx, ny, nz] = v.shape;
  for (const n of v.shape)
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: bad shape ${v.shape.join('x')}`);
  if (v.data.length !== nx * ny * nz)
    throw new Error(`${what}: data has ${v.data.length} values, shape ${v.shape.join('x')} needs ${nx * ny * nz}`);
}
