// The synthetic chest phantom's anatomy: a handful of analytic shapes in world millimetres
// (RAS: +x = patient's right, +y = anterior, +z = superior), sampled per case so size,
// position, lung height, heart size, ... vary. Rendering lives in render.ts.
import type { Rng } from '../../rng.ts';
import { ellipse2, type Grid, type Segment, type Vec3 } from './paint.ts';

export interface LungShape {
  /** +1 right, -1 left. */
  side: 1 | -1;
  cx: number;
  cy: number;
  a: number;
  b: number;
  /** Lowest lung point (posterior costophrenic recess), world z. */
  zBase: number;
  /** Height of the diaphragm dome above zBase at its centre. */
  domeH: number;
}

export interface Anatomy {
  /** Body centre and outline (ellipse semi-axes, mm). */
  cx: number;
  cy: number;
  bodyA: number;
  bodyB: number;
  fat: number;
  muscle: number;
  /** Thoracic cavity (inside the chest wall). */
  cavA: number;
  cavB: number;
  zApex: number;
  lungs: [LungShape, LungShape];
  /** Half-width of the mediastinum (medial limit of the lungs). */
  medW: number;
  zCarina: number;
  trachea: { x: number; y: number; r: number };
  mainBronchi: [Segment, Segment];
  /** Lobar / segmental bronchi inside the lungs (lumen radii), right then left. */
  bronchi: Segment[];
  vessels: Segment[];
  heart: { c: Vec3; r: Vec3 };
  aorta: Segment[];
  pulmonary: Segment[];
  svc: Segment;
  esophagus: Segment[];
  stomach: { c: Vec3; r: Vec3 };
  spine: { y: number; rx: number; ry: number; vertH: number; phase: number };
  ribs: Segment[];
  sternum: { y: number; z0: number; z1: number; rx: number; ry: number };
}

/** z range of the scan. */
export function scanZ(g: Grid): [number, number] {
  return [g.oz, g.oz + (g.nz - 1) * g.sz];
}

export function sampleAnatomy(rng: Rng, g: Grid): Anatomy {
  const [zBot, zTop] = scanZ(g);
  const cov = zTop - zBot;
  const fovX = g.nx * g.sx;
  const fovY = g.ny * g.sy;
  const midX = g.ox + ((g.nx - 1) * g.sx) / 2;
  const midY = g.oy + ((g.ny - 1) * g.sy) / 2;

  const bodyA = Math.min(rng.uniform(0.36, 0.43) * fovX, rng.uniform(135, 175));
  const bodyB = Math.min(bodyA * rng.uniform(0.64, 0.76), 0.42 * fovY);
  const cx = midX + rng.uniform(-0.03, 0.03) * fovX;
  const cy = midY + rng.uniform(-0.04, 0.02) * fovY;
  const fat = rng.uniform(0.05, 0.14) * bodyB;
  const muscle = rng.uniform(0.07, 0.11) * bodyB;
  const cavA = bodyA - fat - muscle - 4;
  const cavB = bodyB - fat - muscle - 4;

  const zApex = zTop - rng.uniform(0.02, 0.09) * cov;
  const zBaseR = zBot + rng.uniform(0.08, 0.2) * cov;
  const zBaseL = Math.max(zBot + 0.03 * cov, zBaseR - rng.uniform(0, 0.05) * cov);
  const lungH = zApex - Math.min(zBaseR, zBaseL);
  const domeH = rng.uniform(0.14, 0.2) * lungH;
  const lungA = cavA * rng.uniform(0.47, 0.52);
  const lungB = cavB * rng.uniform(0.86, 0.94);
  const lungs: [LungShape, LungShape] = [
    { side: 1, cx: cx + cavA * 0.5, cy: cy - cavB * 0.05, a: lungA, b: lungB, zBase: zBaseR, domeH: domeH * rng.uniform(1.0, 1.15) },
    { side: -1, cx: cx - cavA * 0.5, cy: cy - cavB * 0.05, a: lungA, b: lungB, zBase: zBaseL, domeH: domeH * rng.uniform(0.85, 1.0) },
  ];
  const medW = rng.uniform(0.1, 0.15) * cavA;

  const zCarina = Math.min(zBaseR, zBaseL) + lungH * rng.uniform(0.58, 0.66);

  const spineRy = rng.uniform(14, 17);
  const spine = {
    y: cy - cavB * 0.8,
    rx: rng.uniform(17, 21),
    ry: spineRy,
    vertH: Math.min(30, Math.max(21, lungH / 10.5)),
    phase: rng.uniform(0, 1),
  };

  const trachea = { x: cx + rng.uniform(-4, 4), y: spine.y + spine.ry + rng.uniform(22, 28), r: rng.uniform(8, 11) };
  const carina: Vec3 = [trachea.x, trachea.y, zCarina];
  const hilumR: Vec3 = [cx + medW + rng.uniform(18, 26), trachea.y - rng.uniform(4, 10), zCarina - rng.uniform(18, 26)];
  const hilumL: Vec3 = [cx - medW - rng.uniform(20, 28), trachea.y - rng.uniform(6, 12), zCarina - rng.uniform(28, 40)];
  const mainBronchi: [Segment, Segment] = [
    { p0: carina, p1: hilumR, r0: trachea.r * 0.72, r1: trachea.r * 0.62 },
    { p0: carina, p1: hilumL, r0: trachea.r * 0.66, r1: trachea.r * 0.58 },
  ];

  // Heart: sits on the left dome, anterior and left of the midline.
  const heartR: Vec3 = [cavA * rng.uniform(0.38, 0.44), cavB * rng.uniform(0.42, 0.5), lungH * rng.uniform(0.15, 0.19)];
  const heartC: Vec3 = [
    cx - heartR[0] * rng.uniform(0.25, 0.4),
    cy + cavB * rng.uniform(0.2, 0.3),
    zBaseL + lungs[1].domeH * 0.75 + heartR[2] * 0.8,
  ];

  // Bronchial and vascular trees from each hilum.
  const bronchi: Segment[] = [];
  const vessels: Segment[] = [];
  for (const lung of lungs) {
    const hil = lung.side === 1 ? hilumR : hilumL;
    const lobarDirs: Vec3[] = [
      [0.35, 0.1, 1], // upper
      [0.6, lung.side === 1 ? 0.6 : 0.5, -0.35], // middle lobe / lingula
      [0.35, -0.45, -1], // lower
    ];
    for (const d0 of lobarDirs) {
      const d = norm([d0[0] * lung.side + rng.uniform(-0.1, 0.1), d0[1] + rng.uniform(-0.15, 0.15), d0[2] + rng.uniform(-0.15, 0.15)]);
      const len = rng.uniform(25, 35);
      const mid = add(hil, scale(d, len));
      bronchi.push({ p0: hil, p1: mid, r0: 4.5, r1: 3.6 });
      for (let s = 0; s < 2; s++) {
        const e = norm([d[0] + rng.uniform(-0.4, 0.4), d[1] + rng.uniform(-0.5, 0.5), d[2] + rng.uniform(-0.4, 0.4)]);
        bronchi.push({ p0: mid, p1: add(mid, scale(e, rng.uniform(35, 60))), r0: 3.2, r1: 1.8 });
      }
    }
    const nv = rng.int(12, 18);
    for (let v = 0; v < nv; v++) {
      const e = norm([lung.side * rng.uniform(0.2, 1), rng.uniform(-0.8, 0.8), rng.uniform(-1, 1)]);
      const start = add(hil, [rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(-6, 6)]);
      const len = rng.uniform(50, 110);
      const mid = add(start, scale(e, len * 0.5));
      vessels.push({ p0: start, p1: mid, r0: rng.uniform(3.5, 5), r1: 2.6 });
      const e2 = norm([e[0] + rng.uniform(-0.3, 0.3), e[1] + rng.uniform(-0.3, 0.3), e[2] + rng.uniform(-0.3, 0.3)]);
      vessels.push({ p0: mid, p1: add(mid, scale(e2, len * 0.5)), r0: 2.6, r1: 1.4 });
    }
  }

  // Aorta: ascending, arch, descending.
  const rAsc = rng.uniform(13, 17);
  const rDesc = rAsc * rng.uniform(0.75, 0.85);
  const zArch = zCarina + rng.uniform(15, 28);
  const yAsc = heartC[1] - heartR[1] * 0.2;
  const xAsc = cx + rng.uniform(5, 12);
  const yDesc = spine.y + spine.ry + rDesc * 0.6;
  const xDesc = cx - spine.rx - rDesc * 0.5;
  const aorta: Segment[] = [{ p0: [xAsc, heartC[1] - heartR[1] * 0.1, heartC[2] + heartR[2] * 0.4], p1: [xAsc, yAsc, zArch], r0: rAsc, r1: rAsc }];
  const archPts: Vec3[] = [];
  for (let t = 0; t <= 6; t++) {
    const u = t / 6;
    const ang = Math.PI * u;
    const ym = (yAsc + yDesc) / 2;
    archPts.push([xAsc + (xDesc - xAsc) * u, ym + ((yAsc - yDesc) / 2) * Math.cos(ang), zArch + rng.uniform(18, 22) * Math.sin(ang)]);
  }
  for (let t = 0; t < 6; t++) {
    const r0 = rAsc + (rDesc - rAsc) * (t / 6);
    const r1 = rAsc + (rDesc - rAsc) * ((t + 1) / 6);
    aorta.push({ p0: archPts[t]!, p1: archPts[t + 1]!, r0, r1 });
  }
  aorta.push({ p0: [xDesc, yDesc, zArch], p1: [xDesc + rng.uniform(0, 8), yDesc, zBot - 20], r0: rDesc, r1: rDesc * 0.95 });

  const ptStart: Vec3 = [heartC[0] + 10, heartC[1] + heartR[1] * 0.5, heartC[2] + heartR[2] * 0.5];
  const ptEnd: Vec3 = [cx - 14, trachea.y + 14, zCarina - 12];
  const pulmonary: Segment[] = [
    { p0: ptStart, p1: ptEnd, r0: 13, r1: 12 },
    { p0: ptEnd, p1: [hilumR[0] - 4, hilumR[1] + 10, hilumR[2] - 4], r0: 9, r1: 8 },
    { p0: ptEnd, p1: [hilumL[0] + 4, hilumL[1] + 6, hilumL[2] + 6], r0: 9, r1: 8 },
  ];
  const svc: Segment = { p0: [cx + cavA * 0.2, yAsc + 2, zTop + 10], p1: [cx + cavA * 0.2, yAsc, heartC[2] + heartR[2] * 0.55], r0: 9, r1: 10 };

  const stomach = {
    c: [cx - cavA * 0.45, cy + cavB * 0.1, zBaseL + lungs[1].domeH * 0.1] as Vec3,
    r: [cavA * 0.32, cavB * 0.4, lungs[1].domeH * 0.9] as Vec3,
  };
  const esoY = spine.y + spine.ry + 6;
  const esoLow: Vec3 = [cx - 12, esoY + 6, zBaseL + lungs[1].domeH * 0.6];
  const esophagus: Segment[] = [
    { p0: [cx - 6, esoY, zTop + 10], p1: [cx - 8, esoY, zCarina - 30], r0: 7, r1: 7 },
    { p0: [cx - 8, esoY, zCarina - 30], p1: esoLow, r0: 7, r1: 7.5 },
    { p0: esoLow, p1: stomach.c, r0: 7.5, r1: 9 },
  ];

  // Ribs: twelve pairs, heads at the spine, sloping down anteriorly along the cavity wall.
  const ribs: Segment[] = [];
  const ribGap = spine.vertH * rng.uniform(0.9, 1.0);
  const rr = rng.uniform(3.6, 4.6);
  for (let n = 0; n < 12; n++) {
    const zHead = zApex + 8 - n * ribGap;
    const drop = rng.uniform(35, 60);
    for (const s of [1, -1]) {
      const pts: Vec3[] = [[cx + s * (spine.rx + 6), spine.y - 4, zHead]];
      const p0 = -78;
      const p1 = 58;
      for (let t = 0; t <= 10; t++) {
        const u = t / 10;
        const phi = ((p0 + (p1 - p0) * u) * Math.PI) / 180;
        pts.push([cx + s * (cavA + rr + 2) * Math.cos(phi), cy + (cavB + rr + 2) * Math.sin(phi), zHead - drop * Math.pow(u, 1.4)]);
      }
      for (let t = 0; t + 1 < pts.length; t++) ribs.push({ p0: pts[t]!, p1: pts[t + 1]!, r0: rr, r1: rr });
    }
  }

  const sternum = {
    y: cy + cavB + 3,
    z0: heartC[2] - heartR[2] * 0.3,
    z1: Math.min(zTop + 10, zArch + rng.uniform(40, 70)),
    rx: rng.uniform(12, 16),
    ry: rng.uniform(5, 7),
  };

  return {
    cx,
    cy,
    bodyA,
    bodyB,
    fat,
    muscle,
    cavA,
    cavB,
    zApex,
    lungs,
    medW,
    zCarina,
    trachea,
    mainBronchi,
    bronchi,
    vessels,
    heart: { c: heartC, r: heartR },
    aorta,
    pulmonary,
    svc,
    esophagus,
    stomach,
    spine,
    ribs,
    sternum,
  };
}

// ---- analytic geometry shared by rendering and by the placement of findings ----

/** Taper of the lung cross-section towards the apex (1 below 70 % of the height). */
export function lungTaper(an: Anatomy, lung: LungShape, z: number): number {
  const u = (z - lung.zBase) / (an.zApex - lung.zBase);
  if (u > 1) return 0;
  if (u <= 0.7) return 1;
  const w = (u - 0.7) / 0.3;
  return Math.sqrt(Math.max(0, 1 - w * w));
}

/** Height of the diaphragm surface under a lung at (x, y). */
export function domeZ(lung: LungShape, x: number, y: number): number {
  const ux = (x - lung.cx) / lung.a;
  const uy = (y - (lung.cy + lung.b * 0.15)) / lung.b;
  const rho2 = ux * ux + uy * uy;
  return lung.zBase + lung.domeH * Math.max(0, 1 - rho2);
}

/** Signed distance (mm, approximate) to the lung's outline; negative inside. */
export function lungSd(an: Anatomy, lung: LungShape, x: number, y: number, z: number): number {
  const t = lungTaper(an, lung, z);
  if (t < 0.04) return Math.max(20, z - an.zApex);
  const sEll = ellipse2(x - lung.cx, y - lung.cy, lung.a * t, lung.b * t);
  const sCav = ellipse2(x - an.cx, y - an.cy, an.cavA, an.cavB);
  const sMed = an.medW - lung.side * (x - an.cx);
  const sDome = domeZ(lung, x, y) - z;
  return Math.max(sEll, sCav, sMed, sDome);
}

/** Which lobe a point in a lung belongs to (coarse: by height and front/back). */
export type Lobe = 'RUL' | 'RML' | 'RLL' | 'LUL' | 'LIN' | 'LLL';

export function lobeOf(an: Anatomy, lung: LungShape, y: number, z: number): Lobe {
  const u = (z - lung.zBase) / (an.zApex - lung.zBase);
  // The oblique fissure runs from high posteriorly to low anteriorly.
  const v = (y - lung.cy) / lung.b; // -1 posterior .. +1 anterior
  const fissure = 0.55 - 0.3 * v;
  const right = lung.side === 1;
  if (u < fissure) return right ? 'RLL' : 'LLL';
  if (u < 0.62 && v > -0.2) return right ? 'RML' : 'LIN';
  return right ? 'RUL' : 'LUL';
}

function norm(v: Vec3): Vec3 {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
}
function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}
function scale(a: Vec3, s: number): Vec3 {
  return [a[0] * s, a[1] * s, a[2] * s];
}
export const vec = { norm, add, scale };
