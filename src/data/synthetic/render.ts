// Renders a synthetic case (anatomy + the findings to include) into an HU grid.
import { type Anatomy, domeZ, lungSd, lungTaper, scanZ } from './anatomy.ts';
import { L, type Finding, type Shape } from './finding-types.ts';
import {
  Canvas,
  T,
  bit,
  MASK_LUNG,
  capsuleBox,
  capsuleSdf,
  ellipse2,
  ellipsoidBox,
  ellipsoidSdf,
  paintPrism,
  type Box,
  type Grid,
  type Segment,
  type Vec3,
} from './paint.ts';
import { Rng, mixSeed } from '../../rng.ts';

export interface RenderOptions {
  /** Noise standard deviation in HU (default 12). */
  noise?: number;
  /** Seed of the noise (kept fixed so renders with and without a finding differ only by it). */
  noiseSeed?: number;
  /** Labels (indices) to leave out, for ablations and tests. */
  exclude?: Iterable<number>;
}

const HU = {
  air: -1000,
  fat: -95,
  mediFat: -80,
  muscle: 50,
  lung: -855,
  blood: 40,
  liver: 58,
  bowel: 30,
  bone: 420,
  cortex: 850,
  disc: 85,
  csf: 15,
  airwayWall: 35,
};

export interface Rendered {
  hu: Float32Array;
  lab: Uint8Array;
}

export function renderCase(an: Anatomy, g: Grid, findings: Finding[], opts: RenderOptions = {}): Rendered {
  const excluded = new Set(opts.exclude ?? []);
  const fs = findings.filter((f) => !excluded.has(f.label));
  const has = (l: number) => fs.find((f) => f.label === l);
  const cv = new Canvas(g, false);
  const [zBot, zTop] = scanZ(g);
  const all: Box = { x0: g.ox, x1: g.ox + g.nx * g.sx, y0: g.oy, y1: g.oy + g.ny * g.sy, z0: zBot - 1, z1: zTop + 1 };
  const { cx, cy } = an;

  // Body wall (z-invariant): fat, muscle, paraspinal muscles, thoracic cavity (mediastinal
  // fat). Drawn once on one plane and copied to every slice.
  const plane = new Canvas({ ...g, nz: 1, oz: 0 });
  const flat: Box = { ...all, z0: -1, z1: 1 };
  plane.paint(flat, (x, y) => ellipse2(x - cx, y - cy, an.bodyA, an.bodyB), HU.fat, T.FAT);
  const inner = (x: number, y: number) => ellipse2(x - cx, y - cy, an.bodyA - an.fat, an.bodyB - an.fat);
  plane.paint(flat, inner, HU.muscle, T.MUSCLE);
  for (const s of [1, -1]) {
    const px = cx + s * 38;
    const py = an.spine.y - 42;
    plane.paint({ x0: px - 34, x1: px + 34, y0: py - 32, y1: py + 32, z0: -1, z1: 1 }, (x, y) => Math.max(ellipse2(x - px, y - py, 32, 30), inner(x, y)), HU.muscle + 5, T.MUSCLE);
  }
  const cav = (x: number, y: number) => ellipse2(x - cx, y - cy, an.cavA, an.cavB);
  plane.paint({ x0: cx - an.cavA, x1: cx + an.cavA, y0: cy - an.cavB, y1: cy + an.cavB, z0: -1, z1: 1 }, cav, HU.mediFat, T.MEDIASTINUM);
  cv.fillFromPlane(plane);
  const zs: [number, number] = [all.z0, all.z1];
  const [lr, ll] = an.lungs;
  const under = (x: number, y: number, z: number) => {
    const lung = x > cx ? lr : ll;
    return Math.max(cav(x, y), z - domeZ(lung, x, y) - 2);
  };
  const domeTop = Math.max(lr.zBase + lr.domeH, ll.zBase + ll.domeH) + 4;
  cv.paint({ x0: cx - an.cavA, x1: cx + an.cavA, y0: cy - an.cavB, y1: cy + an.cavB, z0: all.z0, z1: domeTop }, under, (x) => (x > cx - 15 ? HU.liver : HU.bowel), T.ABDOMEN);
  // Stomach with a gas bubble under the left dome.
  const st = an.stomach;
  cv.paint(ellipsoidBox(st.c, st.r), ellipsoidSdf(st.c, st.r), (_x, _y, z) => (z > st.c[2] + st.r[2] * 0.45 ? HU.air : 25), T.ABDOMEN, bit(T.ABDOMEN));

  // Lungs (slightly denser posteriorly, the dependent part).
  for (const lung of an.lungs) {
    const box: Box = { x0: lung.cx - lung.a, x1: lung.cx + lung.a, y0: lung.cy - lung.b, y1: lung.cy + lung.b, z0: lung.zBase - 2, z1: an.zApex + 2 };
    cv.paint(box, (x, y, z) => lungSd(an, lung, x, y, z), (_x, y) => HU.lung + 35 * ((lung.cy - y) / lung.b), lung.side === 1 ? T.LUNG_R : T.LUNG_L);
  }
  // Pulmonary vessels and bronchi (bronchial walls, then lumen).
  for (const v of an.vessels) paintCapsule(cv, v, HU.blood, T.PVESSEL, MASK_LUNG);
  for (const b of an.bronchi) paintCapsule(cv, b, HU.airwayWall, T.BRONCHUS, MASK_LUNG, 1.3);
  for (const b of an.bronchi) paintCapsule(cv, b, HU.air, T.BRONCHUS, MASK_LUNG);

  // Mediastinum: heart (with epicardial fat / pericardial effusion), vessels, airways, oesophagus.
  const cm = has(L.CARDIOMEGALY);
  const scale = cm ? cm.params.scale! : 1;
  const hr: Vec3 = [an.heart.r[0] * scale, an.heart.r[1] * scale, an.heart.r[2] * Math.sqrt(scale)];
  const hc = an.heart.c;
  const pe = has(L.PERICARDIAL_EFFUSION);
  const rim = pe ? pe.params.rim! : 0;
  const notBone = ~bit(T.BONE);
  const grow = (r: Vec3, d: number): Vec3 => [r[0] + d, r[1] + d, r[2] + d];
  cv.paint(ellipsoidBox(hc, grow(hr, 5 + rim)), ellipsoidSdf(hc, grow(hr, 5 + rim)), HU.fat, T.MEDIASTINUM, notBone);
  if (rim > 0) cv.paint(ellipsoidBox(hc, grow(hr, rim)), ellipsoidSdf(hc, grow(hr, rim)), 12, T.FINDING, notBone);
  cv.paint(ellipsoidBox(hc, hr), ellipsoidSdf(hc, hr), HU.blood + 5, T.HEART, notBone);
  for (const s of an.aorta) paintCapsule(cv, s, HU.blood, T.VESSEL);
  for (const s of an.pulmonary) paintCapsule(cv, s, HU.blood, T.VESSEL);
  paintCapsule(cv, an.svc, HU.blood, T.VESSEL);
  for (const s of an.esophagus) paintCapsule(cv, s, HU.muscle - 5, T.MEDIASTINUM, bit(T.MEDIASTINUM, T.LUNG_L, T.LUNG_R, T.ABDOMEN, T.FAT, T.PVESSEL));
  paintCapsule(cv, { ...an.esophagus[0]!, r0: 2, r1: 2 }, HU.air, T.MEDIASTINUM, bit(T.MEDIASTINUM));
  // Trachea and main bronchi.
  const tr = an.trachea;
  const trachea: Segment = { p0: [tr.x, tr.y, an.zCarina], p1: [tr.x, tr.y, zTop + 20], r0: tr.r, r1: tr.r };
  for (const s of [trachea, ...an.mainBronchi]) paintCapsule(cv, s, HU.airwayWall, T.AIRWAY_WALL, ~0, 2);
  for (const s of [trachea, ...an.mainBronchi]) paintCapsule(cv, s, HU.air, T.AIRWAY);

  // Bones: vertebrae (cortex, cancellous bone, discs), spinal canal, posterior arch, ribs, sternum.
  const sp = an.spine;
  const spBox = { x0: cx - 40, x1: cx + 40, y0: sp.y - sp.ry - 45, y1: sp.y + sp.ry + 2 };
  const disc = (z: number) => {
    const u = (((z - zBot) / sp.vertH + sp.phase) % 1 + 1) % 1;
    return u < 0.22;
  };
  paintPrism(cv, spBox, ...zs, (x, y) => ellipse2(x - cx, y - sp.y, sp.rx, sp.ry), (_x, _y, z) => (disc(z) ? HU.disc : HU.cortex), T.BONE);
  paintPrism(cv, spBox, ...zs, (x, y) => ellipse2(x - cx, y - sp.y, sp.rx - 3, sp.ry - 3), (_x, _y, z) => (disc(z) ? HU.disc : HU.bone - 120), T.BONE);
  const canalY = sp.y - sp.ry - 9;
  paintPrism(cv, spBox, ...zs, (x, y) => ellipse2(x - cx, y - canalY, 15, 13), (_x, _y, z) => (disc(z) ? HU.muscle : HU.cortex - 250), T.BONE);
  paintPrism(cv, spBox, ...zs, (x, y) => ellipse2(x - cx, y - canalY, 9, 8), HU.csf, T.MEDIASTINUM);
  paintPrism(cv, spBox, ...zs, (x, y) => Math.max(Math.abs(x - cx) - 4, Math.abs(y - (canalY - 22)) - 12), (_x, _y, z) => (disc(z) ? HU.muscle : HU.cortex - 250), T.BONE);
  for (const r of an.ribs) paintCapsule(cv, r, HU.cortex - 300, T.BONE);
  const stn = an.sternum;
  const stBox = { x0: cx - stn.rx, x1: cx + stn.rx, y0: stn.y - stn.ry, y1: stn.y + stn.ry };
  paintPrism(cv, stBox, stn.z0, stn.z1, (x, y) => ellipse2(x - cx, y - stn.y, stn.rx, stn.ry), HU.bone, T.BONE);

  // Findings, in label order (later ones paint over earlier ones where they overlap).
  for (const f of fs) {
    if (f.label === L.CARDIOMEGALY || f.label === L.PERICARDIAL_EFFUSION) continue;
    for (const s of f.shapes) paintShape(cv, an, s);
  }

  // Noise, rounding to whole HU, clipping to the int16 range CT uses (less noise in air).
  const sd = opts.noise ?? 12;
  const rng = new Rng(mixSeed(opts.noiseSeed ?? 1, 0x5eed));
  const table = new Float32Array(1 << 16);
  for (let i = 0; i < table.length; i++) table[i] = rng.normal() * sd;
  const hu = cv.hu;
  let h = rng.u32() | 1;
  for (let i = 0; i < hu.length; i++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    const x = hu[i]!;
    let v = Math.floor(x + (x > -995 ? table[h & 0xffff]! : 0.25 * table[h & 0xffff]!) + 0.5);
    v = v < -1024 ? -1024 : v > 3071 ? 3071 : v;
    hu[i] = v;
  }
  return { hu, lab: cv.lab };
}

function paintCapsule(cv: Canvas, s: Segment, hu: number, label: number, mask = ~0, grow = 0): void {
  cv.paint(capsuleBox(s, grow), capsuleSdf(s, grow), hu, label, mask);
}

function paintShape(cv: Canvas, an: Anatomy, s: Shape): void {
  const g = cv.g;
  switch (s.kind) {
    case 'ellipsoid':
      cv.paint(ellipsoidBox(s.c, s.r), ellipsoidSdf(s.c, s.r), s.hu, T.FINDING, s.mask);
      return;
    case 'capsule':
      cv.paint(capsuleBox(s.s), capsuleSdf(s.s), s.hu, T.FINDING, s.mask);
      return;
    case 'hernia': {
      const mask = bit(T.MEDIASTINUM, T.LUNG_L, T.LUNG_R, T.PVESSEL, T.BRONCHUS, T.ABDOMEN, T.FAT, T.FINDING);
      cv.paint(ellipsoidBox(s.c, s.r), ellipsoidSdf(s.c, s.r), (_x, _y, z) => (z > s.airLevel ? -1000 : 28), T.FINDING, mask);
      return;
    }
    case 'effusion': {
      const lung = an.lungs[s.lung];
      const post = lung.cy - lung.b;
      const box: Box = { x0: lung.cx - lung.a, x1: lung.cx + lung.a, y0: post, y1: lung.cy + lung.b, z0: lung.zBase - 2, z1: lung.zBase + s.height };
      cv.paint(
        box,
        (x, y, z) => {
          const u = (z - lung.zBase) / s.height;
          if (u >= 1) return 10;
          const t = lungTaper(an, lung, z);
          const level = lung.cy - lung.b * t + s.depth * Math.pow(1 - Math.max(0, u), 0.7);
          return Math.max(y - level, lungSd(an, lung, x, y, z) - 3);
        },
        s.hu,
        T.FINDING,
        MASK_LUNG,
      );
      return;
    }
    case 'mosaic': {
      const k0 = Math.max(0, Math.ceil((s.z0 - g.oz) / g.sz));
      const k1 = Math.min(g.nz - 1, Math.floor((s.z1 - g.oz) / g.sz));
      for (let k = k0; k <= k1; k++) {
        const z = g.oz + k * g.sz;
        for (let j = 0; j < g.ny; j++) {
          const y = g.oy + j * g.sy;
          let idx = g.nx * (j + g.ny * k);
          for (let i = 0; i < g.nx; i++, idx++) {
            const l = cv.lab[idx]!;
            if (l !== T.LUNG_R && l !== T.LUNG_L) continue;
            // Lobular patches: cells of a warped lattice (so the borders are not straight).
            const x = g.ox + i * g.sx;
            const cxx = Math.floor((x + 6 * Math.sin(y / 9 + z / 13)) / s.cell);
            const cyy = Math.floor((y + 6 * Math.sin(x / 11 + z / 7)) / s.cell);
            const cz = Math.floor((z + 5 * Math.sin(x / 8 + y / 10)) / s.cell);
            const h = mixSeed(s.seed, cxx + 1000, cyy + 1000, cz + 1000) % 100;
            if (h < 40) cv.hu[idx] = cv.hu[idx]! + 150;
            else if (h < 75) cv.hu[idx] = Math.min(cv.hu[idx]!, -935);
          }
        }
      }
      return;
    }
    case 'septal': {
      const k0 = Math.max(0, Math.ceil((s.z0 - g.oz) / g.sz));
      const k1 = Math.min(g.nz - 1, Math.floor((s.z1 - g.oz) / g.sz));
      const sp = s.spacing;
      const w = 2.2;
      const dist = (c: number) => {
        const m = ((c % sp) + sp) % sp;
        return Math.min(m, sp - m);
      };
      for (let k = k0; k <= k1; k++) {
        const z = g.oz + k * g.sz;
        for (let j = 0; j < g.ny; j++) {
          const y = g.oy + j * g.sy;
          let idx = g.nx * (j + g.ny * k);
          for (let i = 0; i < g.nx; i++, idx++) {
            const l = cv.lab[idx]!;
            if (l === T.LUNG_R ? (s.sides & 1) === 0 : l === T.LUNG_L ? (s.sides & 2) === 0 : true) continue;
            const x = g.ox + i * g.sx;
            if (ellipse2(x - an.cx, y - an.cy, an.cavA, an.cavB) < -s.rim) continue;
            // Polygonal septa: distance to the planes of a warped lattice.
            const d = Math.min(dist(x + 3 * Math.sin(y / 6 + z / 9)), dist(y + 3 * Math.sin(z / 7 + x / 8)), dist(z + 3 * Math.sin(x / 5 + y / 7)));
            // Thickened septa plus a faint interstitial haze in the affected rim.
            const a = d < w ? 1 - d / (w * 1.5) : 0;
            const v = cv.hu[idx]! + 80;
            cv.hu[idx] = v + a * (-150 - v);
          }
        }
      }
      return;
    }
  }
}
