// The viewer's geometry, free of the DOM (test/browser/viewer-geometry.test.ts runs it in
// Node): the volume's voxel axes matched to the patient's R, A, S without resampling (a
// permutation and flips read off the affine), the three planes in radiological display
// (patient's right on the screen's left, anterior up on axial, head up on coronal and
// sagittal, anterior on the left on sagittal), orientation letters from the affine, and
// world z <-> slice for drawing the model's depth bins.
import { axisOrientation, invertAffine, voxelToWorld, type Vec3, type Volume } from '../src/data/volume.ts';
import type { PreparedGeometry } from './protocol.ts';

/** Canonical axes: 0 = towards the patient's Right, 1 = Anterior, 2 = Superior. */
export interface Canonical {
  /** The voxel axis that runs along R, A, S. */
  axis: Vec3;
  /** +1 when the voxel index increases towards R (A, S), -1 when away. */
  sign: Vec3;
  /** Voxels along R, A, S. */
  n: Vec3;
  /** mm per voxel along R, A, S. */
  mm: Vec3;
}

export function canonicalOf(v: Pick<Volume, 'affine' | 'shape' | 'spacing'>): Canonical {
  const o = axisOrientation(v.affine);
  const c: Canonical = { axis: [0, 0, 0], sign: [1, 1, 1], n: [0, 0, 0], mm: [0, 0, 0] };
  o.forEach(({ axis: world, sign }, voxelAxis) => {
    c.axis[world] = voxelAxis;
    c.sign[world] = sign;
    c.n[world] = v.shape[voxelAxis];
    c.mm[world] = v.spacing[voxelAxis];
  });
  return c;
}

/** The voxel index (i, j, k) of a canonical position (r, a, s); continuous values allowed. */
export function voxelOfCanonical(c: Canonical, p: ArrayLike<number>): Vec3 {
  const out: Vec3 = [0, 0, 0];
  for (let w = 0; w < 3; w++) out[c.axis[w]] = c.sign[w] > 0 ? p[w] : c.n[w] - 1 - p[w];
  return out;
}

export function canonicalOfVoxel(c: Canonical, ijk: ArrayLike<number>): Vec3 {
  return [0, 1, 2].map((w) => (c.sign[w] > 0 ? ijk[c.axis[w]] : c.n[w] - 1 - ijk[c.axis[w]])) as Vec3;
}

export type Plane = 'axial' | 'coronal' | 'sagittal';
export const PLANES: readonly Plane[] = ['axial', 'coronal', 'sagittal'];

/**
 * A plane's layout on screen: the canonical axis it fixes, and the canonical axes along its
 * columns and rows. Column c shows canonical index n - 1 - c (R and A decrease to the right),
 * row r index n - 1 - r (A and S decrease downwards).
 */
export interface PlaneLayout {
  fixed: 0 | 1 | 2;
  col: 0 | 1 | 2;
  row: 0 | 1 | 2;
}

export const LAYOUT: Record<Plane, PlaneLayout> = {
  axial: { fixed: 2, col: 0, row: 1 },
  coronal: { fixed: 1, col: 0, row: 2 },
  sagittal: { fixed: 0, col: 1, row: 2 },
};

const LETTERS = [['L', 'R'], ['P', 'A'], ['I', 'S']];

/** The orientation letter of a world direction (its largest component, RAS+). */
export function letterOf(d: ArrayLike<number>): string {
  let w = 0;
  for (let k = 1; k < 3; k++) if (Math.abs(d[k]) > Math.abs(d[w])) w = k;
  return LETTERS[w][d[w] > 0 ? 1 : 0];
}

/**
 * The letters at a plane's left, right, top and bottom edges, read from the affine: the world
 * direction the screen's right (down) points to is the voxel axis's affine column, signed.
 */
export function planeMarks(v: Pick<Volume, 'affine'>, c: Canonical, plane: Plane): { left: string; right: string; top: string; bottom: string } {
  const m = v.affine;
  const towards = (w: number, sgn: number) => {
    const a = c.axis[w];
    const s = -c.sign[w] * sgn; // screen right / down = decreasing canonical index
    return [m[4 * a] * s, m[4 * a + 1] * s, m[4 * a + 2] * s];
  };
  const L = LAYOUT[plane];
  return { right: letterOf(towards(L.col, 1)), left: letterOf(towards(L.col, -1)), bottom: letterOf(towards(L.row, 1)), top: letterOf(towards(L.row, -1)) };
}

/** Canvas size of a plane in voxels (columns, rows) and mm per voxel along each. */
export function planeSize(c: Canonical, plane: Plane): { cols: number; rows: number; colMm: number; rowMm: number; slices: number } {
  const L = LAYOUT[plane];
  return { cols: c.n[L.col], rows: c.n[L.row], colMm: c.mm[L.col], rowMm: c.mm[L.row], slices: c.n[L.fixed] };
}

/**
 * Voxel offsets (into `data`, x fastest) of a plane: base + colOff[c] + rowOff[r] is the voxel
 * at column c, row r of slice `index`.
 */
export function planeOffsets(c: Canonical, shape: Vec3, plane: Plane, index: number): { base: number; colOff: Int32Array; rowOff: Int32Array } {
  const stride = [1, shape[0], shape[0] * shape[1]];
  const off = (w: number, canonicalIndex: number) => stride[c.axis[w]] * (c.sign[w] > 0 ? canonicalIndex : c.n[w] - 1 - canonicalIndex);
  const L = LAYOUT[plane];
  const colOff = Int32Array.from({ length: c.n[L.col] }, (_, k) => off(L.col, c.n[L.col] - 1 - k));
  const rowOff = Int32Array.from({ length: c.n[L.row] }, (_, k) => off(L.row, c.n[L.row] - 1 - k));
  return { base: off(L.fixed, index), colOff, rowOff };
}

export interface WindowLevel {
  /** Window width and level (centre), HU. */
  width: number;
  level: number;
}

export const PRESETS: Record<string, WindowLevel> = {
  lung: { width: 1500, level: -600 },
  mediastinum: { width: 350, level: 50 },
  bone: { width: 1800, level: 400 },
};

/**
 * Draws one slice of a plane into RGBA pixels (cols x rows), gray through the window. The
 * canvas's pixels are the volume's voxels: the CT at its own resolution.
 */
export function renderPlane(data: Float32Array, c: Canonical, shape: Vec3, plane: Plane, index: number, w: WindowLevel, out: Uint8ClampedArray): void {
  const { base, colOff, rowOff } = planeOffsets(c, shape, plane, index);
  const px = new Uint32Array(out.buffer, out.byteOffset, out.length >> 2);
  const lo = w.level - w.width / 2;
  const k = 255 / Math.max(w.width, 1);
  const cols = colOff.length;
  for (let r = 0; r < rowOff.length; r++) {
    const rb = base + rowOff[r];
    const ob = r * cols;
    for (let col = 0; col < cols; col++) {
      let g = (data[rb + colOff[col]] - lo) * k;
      g = g < 0 ? 0 : g > 255 ? 255 : g | 0;
      // RGBA bytes in a little-endian word: alpha in the top byte.
      px[ob + col] = 0xff000000 | (g << 16) | (g << 8) | g;
    }
  }
}

/** World <-> canonical S index along the volume's central S line (exact for axis-aligned volumes). */
export class DepthAxis {
  private readonly inverse: Float64Array;
  private readonly centre: Vec3;

  constructor(
    private readonly v: Pick<Volume, 'affine' | 'shape'>,
    private readonly c: Canonical,
  ) {
    this.inverse = invertAffine(v.affine);
    this.centre = voxelToWorld(v.affine, v.shape.map((n) => (n - 1) / 2));
  }

  /** Continuous canonical S index of the world height z. */
  sOfZ(z: number): number {
    const ijk = voxelToWorld(this.inverse, [this.centre[0], this.centre[1], z]);
    return canonicalOfVoxel(this.c, ijk)[2];
  }

  /** World z of canonical S index s (at the in-plane centre). */
  zOfS(s: number): number {
    const mid = [(this.c.n[0] - 1) / 2, (this.c.n[1] - 1) / 2, s];
    return voxelToWorld(this.v.affine, voxelOfCanonical(this.c, mid))[2];
  }

  /** The axial slice nearest to world z, clamped to the volume. */
  sliceOfZ(z: number): number {
    return Math.min(this.c.n[2] - 1, Math.max(0, Math.round(this.sOfZ(z))));
  }
}

/** World z range [low, high] of a depth bin of the model's crop (its voxel edges, at the crop's centre line). */
export function binZRange(g: PreparedGeometry, bin: number): [number, number] {
  const [X, Y] = g.shape;
  const z = (k: number) => voxelToWorld(g.affine, [(X - 1) / 2, (Y - 1) / 2, k])[2];
  const a = z(bin * g.patchDepth - 0.5);
  const b = z((bin + 1) * g.patchDepth - 0.5);
  return [Math.min(a, b), Math.max(a, b)];
}
