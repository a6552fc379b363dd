// Rasterising analytic shapes into an HU grid with a tissue-class map beside it. Shapes are
// signed-distance functions (mm, negative inside), painted over their bounding box with a
// one-voxel soft edge (partial-volume blending), optionally only over voxels whose current
// tissue class is in a mask. Browser-safe.

export type Vec3 = [number, number, number];

/** Tissue classes of the synthetic phantom (one byte per voxel). */
export const T = {
  AIR: 0,
  FAT: 1,
  MUSCLE: 2,
  BONE: 3,
  LUNG_R: 4,
  LUNG_L: 5,
  MEDIASTINUM: 6,
  HEART: 7,
  VESSEL: 8,
  AIRWAY: 9,
  ABDOMEN: 10,
  PVESSEL: 11,
  BRONCHUS: 12,
  FINDING: 13,
  DEVICE: 14,
  AIRWAY_WALL: 15,
} as const;

export const bit = (...classes: number[]): number => classes.reduce((m, c) => m | (1 << c), 0);

/** Every class except air outside the body. */
export const MASK_BODY = 0xffff & ~bit(T.AIR);
/** Lung parenchyma and what runs through it. */
export const MASK_LUNG = bit(T.LUNG_R, T.LUNG_L, T.PVESSEL, T.BRONCHUS, T.FINDING);

export interface Grid {
  nx: number;
  ny: number;
  nz: number;
  /** Voxel size in mm. */
  sx: number;
  sy: number;
  sz: number;
  /** World (RAS, mm) position of voxel (0, 0, 0). */
  ox: number;
  oy: number;
  oz: number;
}

export type Sdf = (x: number, y: number, z: number) => number;
export type HuFn = (x: number, y: number, z: number) => number;

export interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  z0: number;
  z1: number;
}

export class Canvas {
  readonly hu: Float32Array;
  readonly lab: Uint8Array;
  /** In-plane edge width (mm) of the soft edge. */
  readonly edge: number;

  constructor(
    readonly g: Grid,
    fill = true,
  ) {
    const n = g.nx * g.ny * g.nz;
    this.hu = new Float32Array(n);
    if (fill) this.hu.fill(-1000);
    this.lab = new Uint8Array(n);
    this.edge = Math.max(g.sx, g.sy);
  }

  zOf(k: number): number {
    return this.g.oz + k * this.g.sz;
  }

  /** Copies a one-slice canvas of the same in-plane grid into every slice. */
  fillFromPlane(plane: Canvas): void {
    const n = this.g.nx * this.g.ny;
    for (let k = 0; k < this.g.nz; k++) {
      this.hu.set(plane.hu, k * n);
      this.lab.set(plane.lab, k * n);
    }
  }

  /**
   * Paints `value` (a constant or a function of position) where sdf < 0, blending over one
   * voxel at the edge; sets the tissue class where the shape covers at least half a voxel.
   * `mask`: a bit set of tissue classes that may be painted over (default: any).
   */
  paint(box: Box, sdf: Sdf, value: number | HuFn, label: number, mask = 0xffffffff): void {
    const g = this.g;
    const i0 = Math.max(0, Math.floor((box.x0 - g.ox) / g.sx) - 1);
    const i1 = Math.min(g.nx - 1, Math.ceil((box.x1 - g.ox) / g.sx) + 1);
    const j0 = Math.max(0, Math.floor((box.y0 - g.oy) / g.sy) - 1);
    const j1 = Math.min(g.ny - 1, Math.ceil((box.y1 - g.oy) / g.sy) + 1);
    const k0 = Math.max(0, Math.floor((box.z0 - g.oz) / g.sz));
    const k1 = Math.min(g.nz - 1, Math.ceil((box.z1 - g.oz) / g.sz));
    if (i0 > i1 || j0 > j1 || k0 > k1) return;
    const e = this.edge;
    const hu = this.hu;
    const lab = this.lab;
    const constant = typeof value === 'number' ? value : 0;
    const fn = typeof value === 'function' ? value : null;
    for (let k = k0; k <= k1; k++) {
      const z = g.oz + k * g.sz;
      for (let j = j0; j <= j1; j++) {
        const y = g.oy + j * g.sy;
        let idx = i0 + g.nx * (j + g.ny * k);
        for (let i = i0; i <= i1; i++, idx++) {
          if (((mask >>> lab[idx]!) & 1) === 0) continue;
          const x = g.ox + i * g.sx;
          const d = sdf(x, y, z);
          if (d >= 0.5 * e) continue;
          const a = d <= -0.5 * e ? 1 : 0.5 - d / e;
          const v = fn ? fn(x, y, z) : constant;
          hu[idx] = a === 1 ? v : hu[idx]! + a * (v - hu[idx]!);
          if (a >= 0.5) lab[idx] = label;
        }
      }
    }
  }
}

/** z-invariant shapes: the in-plane coverage is computed once and applied to slices k0..k1. */
export type Sdf2 = (x: number, y: number) => number;

export interface Box2 {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export function paintPrism(cv: Canvas, box: Box2, z0: number, z1: number, sdf: Sdf2, value: number | HuFn, label: number, mask = 0xffffffff): void {
  const g = cv.g;
  const i0 = Math.max(0, Math.floor((box.x0 - g.ox) / g.sx) - 1);
  const i1 = Math.min(g.nx - 1, Math.ceil((box.x1 - g.ox) / g.sx) + 1);
  const j0 = Math.max(0, Math.floor((box.y0 - g.oy) / g.sy) - 1);
  const j1 = Math.min(g.ny - 1, Math.ceil((box.y1 - g.oy) / g.sy) + 1);
  const k0 = Math.max(0, Math.ceil((z0 - g.oz) / g.sz - 1e-9));
  const k1 = Math.min(g.nz - 1, Math.floor((z1 - g.oz) / g.sz + 1e-9));
  if (i0 > i1 || j0 > j1 || k0 > k1) return;
  const e = cv.edge;
  // Covered in-plane pixels and their coverage.
  const cap = (i1 - i0 + 1) * (j1 - j0 + 1);
  const idx2 = new Int32Array(cap);
  const alpha = new Float32Array(cap);
  let count = 0;
  for (let j = j0; j <= j1; j++) {
    const y = g.oy + j * g.sy;
    for (let i = i0; i <= i1; i++) {
      const d = sdf(g.ox + i * g.sx, y);
      if (d >= 0.5 * e) continue;
      idx2[count] = i + g.nx * j;
      alpha[count++] = d <= -0.5 * e ? 1 : 0.5 - d / e;
    }
  }
  const hu = cv.hu;
  const lab = cv.lab;
  const plane = g.nx * g.ny;
  const fn = typeof value === 'function' ? value : null;
  const constant = typeof value === 'number' ? value : 0;
  for (let k = k0; k <= k1; k++) {
    const z = g.oz + k * g.sz;
    const base = plane * k;
    for (let p = 0; p < count; p++) {
      const idx = base + idx2[p]!;
      if (((mask >>> lab[idx]!) & 1) === 0) continue;
      const a = alpha[p]!;
      let v = constant;
      if (fn) {
        const q = idx2[p]!;
        v = fn(g.ox + (q % g.nx) * g.sx, g.oy + Math.floor(q / g.nx) * g.sy, z);
      }
      hu[idx] = a === 1 ? v : hu[idx]! + a * (v - hu[idx]!);
      if (a >= 0.5) lab[idx] = label;
    }
  }
}

// ---- signed distance functions (approximate, in mm) ----

/** Ellipsoid (approximation by Quilez: exact on the axes, good near the surface). */
export function ellipsoidSdf(c: Vec3, r: Vec3): Sdf {
  const [cx, cy, cz] = c;
  const [a, b, d] = r;
  return (x, y, z) => {
    const px = (x - cx) / a;
    const py = (y - cy) / b;
    const pz = (z - cz) / d;
    const k0 = Math.sqrt(px * px + py * py + pz * pz);
    const qx = px / a;
    const qy = py / b;
    const qz = pz / d;
    const k1 = Math.sqrt(qx * qx + qy * qy + qz * qz);
    if (k1 === 0) return -Math.min(a, b, d);
    return (k0 * (k0 - 1)) / k1;
  };
}

export function ellipsoidBox(c: Vec3, r: Vec3): Box {
  return { x0: c[0] - r[0], x1: c[0] + r[0], y0: c[1] - r[1], y1: c[1] + r[1], z0: c[2] - r[2], z1: c[2] + r[2] };
}

/** 2D ellipse distance (approximate) for cross-sections. */
export function ellipse2(px: number, py: number, a: number, b: number): number {
  if (a <= 0 || b <= 0) return 1e6;
  const ux = px / a;
  const uy = py / b;
  const k0 = Math.sqrt(ux * ux + uy * uy);
  const vx = ux / a;
  const vy = uy / b;
  const k1 = Math.sqrt(vx * vx + vy * vy);
  if (k1 === 0) return -Math.min(a, b);
  return (k0 * (k0 - 1)) / k1;
}

export interface Segment {
  p0: Vec3;
  p1: Vec3;
  r0: number;
  r1: number;
}

/** A tapered capsule along a segment. */
export function capsuleSdf(s: Segment, grow = 0): Sdf {
  const [ax, ay, az] = s.p0;
  const bx = s.p1[0] - ax;
  const by = s.p1[1] - ay;
  const bz = s.p1[2] - az;
  const bb = bx * bx + by * by + bz * bz || 1e-9;
  return (x, y, z) => {
    const px = x - ax;
    const py = y - ay;
    const pz = z - az;
    let t = (px * bx + py * by + pz * bz) / bb;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const dx = px - t * bx;
    const dy = py - t * by;
    const dz = pz - t * bz;
    return Math.sqrt(dx * dx + dy * dy + dz * dz) - (s.r0 + t * (s.r1 - s.r0) + grow);
  };
}

export function capsuleBox(s: Segment, grow = 0): Box {
  const r = Math.max(s.r0, s.r1) + grow;
  return {
    x0: Math.min(s.p0[0], s.p1[0]) - r,
    x1: Math.max(s.p0[0], s.p1[0]) + r,
    y0: Math.min(s.p0[1], s.p1[1]) - r,
    y1: Math.max(s.p0[1], s.p1[1]) + r,
    z0: Math.min(s.p0[2], s.p1[2]) - r,
    z1: Math.max(s.p0[2], s.p1[2]) + r,
  };
}

export function unionBox(a: Box, b: Box): Box {
  return {
    x0: Math.min(a.x0, b.x0),
    x1: Math.max(a.x1, b.x1),
    y0: Math.min(a.y0, b.y0),
    y1: Math.max(a.y1, b.y1),
    z0: Math.min(a.z0, b.z0),
    z1: Math.max(a.z1, b.z1),
  };
}

export const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
