// The 18 CT-RATE abnormalities as drawable findings: where each sits in the phantom's
// anatomy, the shapes that render it and the z-extent it covers. Sampled per case.
import { NUM_LABELS } from '../labels.ts';
import type { Rng } from '../../rng.ts';
import { type Anatomy, type LungShape, lungSd, lobeOf, scanZ, vec } from './anatomy.ts';
import { T, bit, MASK_LUNG, MASK_BODY, type Grid, type Segment, type Vec3 } from './paint.ts';

/** Label indices (order of LABELS). */
export const L = {
  MEDICAL_MATERIAL: 0,
  ARTERIAL_CALC: 1,
  CARDIOMEGALY: 2,
  PERICARDIAL_EFFUSION: 3,
  CORONARY_CALC: 4,
  HIATAL_HERNIA: 5,
  LYMPHADENOPATHY: 6,
  EMPHYSEMA: 7,
  ATELECTASIS: 8,
  NODULE: 9,
  OPACITY: 10,
  FIBROTIC: 11,
  PLEURAL_EFFUSION: 12,
  MOSAIC: 13,
  PERIBRONCHIAL: 14,
  CONSOLIDATION: 15,
  BRONCHIECTASIS: 16,
  SEPTAL: 17,
} as const;

export type Shape =
  | { kind: 'ellipsoid'; c: Vec3; r: Vec3; hu: number; mask: number }
  | { kind: 'capsule'; s: Segment; hu: number; mask: number }
  | { kind: 'effusion'; lung: 0 | 1; height: number; depth: number; hu: number }
  | { kind: 'hernia'; c: Vec3; r: Vec3; airLevel: number }
  | { kind: 'mosaic'; z0: number; z1: number; cell: number; seed: number }
  | { kind: 'septal'; z0: number; z1: number; spacing: number; rim: number; sides: number };

export interface Finding {
  /** Index into LABELS. */
  label: number;
  /** Where (a lobe key like 'RUL', 'upper', a lymph-node station, a device type, ...). */
  where: string;
  side: 'right' | 'left' | 'both' | null;
  /** The main measure in mm (nodule diameter, effusion depth, node short axis...), 0 if none. */
  size: number;
  /** Label-specific numbers (heart scale, rim thickness...). */
  params: Record<string, number>;
  shapes: Shape[];
  /** The world z the report's image reference should point at (inside zExtent). */
  refZ: number;
  /** World z range the finding covers (clipped to the scan). */
  zExtent: [number, number];
}

export interface FindingContext {
  an: Anatomy;
  g: Grid;
  /** The heart radii after cardiomegaly (if present). */
  heartR: Vec3;
}

export const DEFAULT_PREVALENCE: readonly number[] = [
  0.15, 0.35, 0.2, 0.14, 0.3, 0.14, 0.25, 0.25, 0.25, 0.4, 0.33, 0.25, 0.22, 0.14, 0.16, 0.2, 0.14, 0.14,
];


/** Draws the set of present labels. */
export function sampleLabelSet(rng: Rng, prevalence: number | readonly number[], normalRate = 0.1): boolean[] {
  // Some cases are normal (no finding at all), as in a real chest-CT cohort.
  if (rng.chance(normalRate)) return new Array<boolean>(NUM_LABELS).fill(false);
  const present: boolean[] = [];
  for (let l = 0; l < NUM_LABELS; l++) {
    const p = typeof prevalence === 'number' ? prevalence : (prevalence[l] ?? 0.2);
    present.push(rng.chance(p));
  }
  return present;
}

/** Samples the findings of the present labels (order: by label). */
export function sampleFindings(rng: Rng, an: Anatomy, g: Grid, present: boolean[]): Finding[] {
  const heartScale = present[L.CARDIOMEGALY] ? rng.uniform(1.28, 1.4) : 1;
  const heartR: Vec3 = [an.heart.r[0] * heartScale, an.heart.r[1] * heartScale, an.heart.r[2] * Math.sqrt(heartScale)];
  const ctx: FindingContext = { an, g, heartR };
  const out: Finding[] = [];
  for (let l = 0; l < NUM_LABELS; l++) {
    if (!present[l]) continue;
    const r = rng.fork(l);
    out.push(...sampleOne(r, ctx, l, heartScale));
  }
  return out;
}

function sampleOne(rng: Rng, ctx: FindingContext, label: number, heartScale: number): Finding[] {
  const { an, g } = ctx;
  const hc = an.heart.c;
  const [zBot, zTop] = scanZ(g);
  const minR = Math.max(5, 0.6 * g.sz + 1);
  const make = (f: Omit<Finding, 'zExtent'> & { zExtent?: [number, number] }): Finding => {
    const ext = f.zExtent ?? shapesZ(f.shapes, ctx);
    const lo = Math.max(zBot, ext[0]);
    const hi = Math.min(zTop, ext[1]);
    const refZ = Math.min(hi, Math.max(lo, f.refZ));
    return { ...f, refZ, zExtent: [lo, hi] };
  };

  switch (label) {
    case L.MEDICAL_MATERIAL: {
      const type = rng.pick(['pacemaker', 'port', 'wires'] as const);
      const shapes: Shape[] = [];
      const metal = 3000;
      if (type === 'wires') {
        const st = an.sternum;
        const n = rng.int(4, 6);
        let refZ = 0;
        for (let w = 0; w < n; w++) {
          const z = st.z0 + 8 + ((st.z1 - st.z0 - 16) * (w + 0.5)) / n;
          if (w === Math.floor(n / 2)) refZ = z;
          const ax = st.rx + 3;
          const ay = st.ry + 3;
          const pts: Vec3[] = [
            [an.cx - ax, st.y - ay, z],
            [an.cx + ax, st.y - ay, z],
            [an.cx + ax, st.y + ay, z],
            [an.cx - ax, st.y + ay, z],
          ];
          for (let p = 0; p < 4; p++) shapes.push({ kind: 'capsule', s: { p0: pts[p]!, p1: pts[(p + 1) % 4]!, r0: 1.8, r1: 1.8 }, hu: metal, mask: MASK_BODY });
        }
        return [make({ label, where: 'wires', side: null, size: 0, params: {}, shapes, refZ })];
      }
      const left = type === 'pacemaker' ? true : rng.chance(0.3);
      const theta = ((left ? 125 : 55) * Math.PI) / 180;
      const dev: Vec3 = [
        an.cx + (an.bodyA - an.fat * 0.6) * Math.cos(theta),
        an.cy + (an.bodyB - an.fat * 0.6) * Math.sin(theta),
        an.zCarina + rng.uniform(35, 60),
      ];
      const vein: Vec3 = [an.cx + (left ? -1 : 1) * an.cavA * 0.45, an.cy + an.cavB * 0.55, dev[2] - 8];
      const svcTop: Vec3 = [an.svc.p0[0], an.svc.p1[1], an.zCarina + 25];
      const svcLow: Vec3 = [an.svc.p1[0], an.svc.p1[1], an.svc.p1[2] + 5];
      let path: Vec3[];
      if (type === 'pacemaker') {
        shapes.push({ kind: 'ellipsoid', c: dev, r: [22, 6, 17], hu: metal, mask: MASK_BODY });
        const rv: Vec3 = [hc[0] + ctx.heartR[0] * 0.1, hc[1] + ctx.heartR[1] * 0.55, hc[2] - ctx.heartR[2] * 0.45];
        path = [dev, vein, svcTop, svcLow, rv];
      } else {
        shapes.push({ kind: 'ellipsoid', c: dev, r: [12, 8, 12], hu: 2000, mask: MASK_BODY });
        path = [dev, vein, svcTop, svcLow];
      }
      for (let p = 0; p + 1 < path.length; p++) {
        shapes.push({ kind: 'capsule', s: { p0: path[p]!, p1: path[p + 1]!, r0: 1.8, r1: 1.8 }, hu: type === 'port' ? 1800 : metal, mask: MASK_BODY });
      }
      return [make({ label, where: type, side: left ? 'left' : 'right', size: 0, params: {}, shapes, refZ: dev[2] })];
    }

    case L.ARTERIAL_CALC: {
      const shapes: Shape[] = [];
      const n = rng.int(4, 9);
      let refZ = 0;
      for (let p = 0; p < n; p++) {
        // Arch and descending segments (skip the ascending one, index 0, most of the time).
        const seg = an.aorta[rng.int(1, an.aorta.length - 1)]!;
        const t = seg === an.aorta[an.aorta.length - 1] ? rng.uniform(0, 0.7) : rng.uniform(0, 1);
        const c = lerp3(seg.p0, seg.p1, t);
        const r = seg.r0 + (seg.r1 - seg.r0) * t;
        const ang = rng.uniform(0, 2 * Math.PI);
        const d = perpendicular(sub(seg.p1, seg.p0), ang);
        const pc = vec.add(c, vec.scale(d, r - 1));
        if (p === 0) refZ = pc[2];
        const s = rng.uniform(3, 4.5);
        shapes.push({ kind: 'ellipsoid', c: pc, r: [s, s, s * 1.3], hu: rng.uniform(900, 1200), mask: MASK_BODY });
      }
      return [make({ label, where: 'aorta', side: null, size: 0, params: {}, shapes, refZ })];
    }

    case L.CARDIOMEGALY:
      return [
        make({
          label,
          where: 'heart',
          side: null,
          size: Math.round(2 * ctx.heartR[0]),
          params: { scale: heartScale },
          shapes: [],
          refZ: hc[2],
          zExtent: [hc[2] - ctx.heartR[2], hc[2] + ctx.heartR[2]],
        }),
      ];

    case L.PERICARDIAL_EFFUSION: {
      const t = rng.uniform(9, 16);
      return [
        make({
          label,
          where: 'pericardium',
          side: null,
          size: Math.round(t),
          params: { rim: t },
          shapes: [],
          refZ: hc[2] - ctx.heartR[2] * 0.2,
          zExtent: [hc[2] - ctx.heartR[2] - t, hc[2] + ctx.heartR[2] + t],
        }),
      ];
    }

    case L.CORONARY_CALC: {
      const shapes: Shape[] = [];
      const n = rng.int(3, 7);
      let refZ = 0;
      const dirs: Vec3[] = [
        [-0.15, 0.95, 0.35], // LAD
        [0.85, 0.45, 0.35], // RCA
        [-0.85, 0.1, 0.45], // LCx
      ];
      for (let p = 0; p < n; p++) {
        const d0 = dirs[p % 3]!;
        const d = vec.norm([d0[0] + rng.uniform(-0.15, 0.15), d0[1] + rng.uniform(-0.15, 0.15), d0[2] + rng.uniform(-0.3, 0.2)]);
        const c: Vec3 = [hc[0] + d[0] * ctx.heartR[0], hc[1] + d[1] * ctx.heartR[1], hc[2] + d[2] * ctx.heartR[2]];
        if (p === 0) refZ = c[2];
        const s = rng.uniform(3, 4.5);
        shapes.push({ kind: 'ellipsoid', c, r: [s, s, s], hu: rng.uniform(1000, 1300), mask: MASK_BODY });
      }
      return [make({ label, where: 'coronary', side: null, size: 0, params: {}, shapes, refZ })];
    }

    case L.HIATAL_HERNIA: {
      const lungL = an.lungs[1];
      const r: Vec3 = [rng.uniform(26, 38), rng.uniform(22, 30), rng.uniform(24, 34)];
      const c: Vec3 = [an.cx - 10, an.spine.y + an.spine.ry + r[1] * 0.9 + 4, lungL.zBase + lungL.domeH * 0.8 + r[2] * 0.5];
      const airLevel = c[2] + r[2] * rng.uniform(0.1, 0.4);
      return [make({ label, where: 'hiatus', side: null, size: Math.round(2 * r[0]), params: {}, shapes: [{ kind: 'hernia', c, r, airLevel }], refZ: c[2] })];
    }

    case L.LYMPHADENOPATHY: {
      const stations = rng.shuffle(['right paratracheal', 'subcarinal', 'aortopulmonary', 'right hilar', 'left hilar', 'prevascular'] as const);
      const n = rng.int(1, 3);
      const shapes: Shape[] = [];
      const tr = an.trachea;
      const hilR = an.mainBronchi[0].p1;
      const hilL = an.mainBronchi[1].p1;
      let best = 0;
      let refZ = 0;
      let where = '';
      const aoArch = an.aorta[3]!.p0;
      for (let k = 0; k < n; k++) {
        const st = stations[k]!;
        const sa = rng.uniform(14, 26); // short axis (mm)
        const rr: Vec3 = [sa / 2 + rng.uniform(0, 3), sa / 2, sa / 2 + rng.uniform(2, 6)];
        let c: Vec3;
        switch (st) {
          case 'right paratracheal':
            c = [tr.x + tr.r + rr[0] + 2, tr.y + 4, an.zCarina + rng.uniform(20, 35)];
            break;
          case 'subcarinal':
            c = [tr.x - 4, tr.y - 4, an.zCarina - rr[2] - 8];
            break;
          case 'aortopulmonary':
            c = [an.cx - 22, tr.y + 14, (aoArch[2] + an.zCarina) / 2 - 4];
            break;
          case 'right hilar':
            c = [hilR[0] + 6, hilR[1] + 10, hilR[2] - 4];
            break;
          case 'left hilar':
            c = [hilL[0] - 6, hilL[1] + 10, hilL[2]];
            break;
          default:
            c = [an.cx + 4, an.heart.c[1] + an.heart.r[1] * 0.4, aoArch[2] + 6];
        }
        if (sa > best) {
          best = sa;
          refZ = c[2];
          where = st;
        }
        shapes.push({ kind: 'ellipsoid', c, r: rr, hu: rng.uniform(40, 55), mask: bit(T.MEDIASTINUM, T.LUNG_R, T.LUNG_L, T.PVESSEL, T.FINDING, T.FAT) });
      }
      return [make({ label, where, side: null, size: Math.round(best), params: {}, shapes, refZ })];
    }

    case L.EMPHYSEMA: {
      const both = rng.chance(0.65);
      const sides: (0 | 1)[] = both ? [0, 1] : [rng.pick([0, 1] as const)];
      const shapes: Shape[] = [];
      let refZ = 0;
      let big = 0;
      for (const s of sides) {
        const n = rng.int(3, 5);
        for (let k = 0; k < n; k++) {
          const r = rng.uniform(14, 26);
          const p = lungPoint(rng, ctx, s, r * 0.4, [0.5, 0.95]);
          if (!p) continue;
          if (r > big) {
            big = r;
            refZ = p[2];
          }
          shapes.push({ kind: 'ellipsoid', c: p, r: [r, r * 0.9, r * 0.8], hu: rng.uniform(-995, -975), mask: MASK_LUNG });
        }
      }
      const side = both ? 'both' : sides[0] === 0 ? 'right' : 'left';
      return [make({ label, where: 'upper', side, size: 0, params: {}, shapes, refZ })];
    }

    case L.ATELECTASIS: {
      const s = rng.pick([0, 1] as const);
      const p = lungPoint(rng, ctx, s, 10, [0.12, 0.4], 'posterior');
      if (!p) return [];
      const r: Vec3 = [rng.uniform(25, 40), rng.uniform(12, 20), Math.max(minR, rng.uniform(9, 14))];
      const where = lobeOf(an, an.lungs[s], p[1], p[2]);
      return [make({ label, where, side: s === 0 ? 'right' : 'left', size: 0, params: {}, shapes: [{ kind: 'ellipsoid', c: p, r, hu: rng.uniform(25, 45), mask: MASK_LUNG }], refZ: p[2] })];
    }

    case L.NODULE: {
      const n = rng.weighted([1, 2, 3], [0.6, 0.3, 0.1]);
      const out: Finding[] = [];
      for (let k = 0; k < n; k++) {
        const s = rng.pick([0, 1] as const);
        const d = Math.round(Math.max(2 * minR, rng.uniform(10, 24)));
        const p = lungPoint(rng, ctx, s, d / 2 + 4);
        if (!p) continue;
        const where = lobeOf(an, an.lungs[s], p[1], p[2]);
        const r = d / 2;
        out.push(
          make({ label, where, side: s === 0 ? 'right' : 'left', size: d, params: {}, shapes: [{ kind: 'ellipsoid', c: p, r: [r, r, r], hu: rng.uniform(30, 55), mask: MASK_LUNG }], refZ: p[2] }),
        );
      }
      return out;
    }

    case L.OPACITY:
    case L.CONSOLIDATION: {
      const consol = label === L.CONSOLIDATION;
      const s = rng.pick([0, 1] as const);
      const p = lungPoint(rng, ctx, s, consol ? 18 : 14);
      if (!p) return [];
      const shapes: Shape[] = [];
      const n = rng.int(2, 3);
      const hu = consol ? rng.uniform(25, 45) : rng.uniform(-480, -320);
      let zr = 0;
      for (let k = 0; k < n; k++) {
        const off: Vec3 = k === 0 ? [0, 0, 0] : [rng.uniform(-18, 18), rng.uniform(-18, 18), rng.uniform(-14, 14)];
        const r: Vec3 = consol ? [rng.uniform(20, 34), rng.uniform(18, 30), rng.uniform(16, 26)] : [rng.uniform(16, 28), rng.uniform(14, 24), rng.uniform(14, 22)];
        zr = Math.max(zr, r[2]);
        shapes.push({ kind: 'ellipsoid', c: vec.add(p, off), r, hu, mask: MASK_LUNG });
      }
      if (consol) {
        for (let k = 0; k < 2; k++) {
          const e = vec.norm([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-0.5, 0.5)]);
          shapes.push({ kind: 'capsule', s: { p0: vec.add(p, vec.scale(e, -14)), p1: vec.add(p, vec.scale(e, 14)), r0: 2.2, r1: 1.6 }, hu: -950, mask: bit(T.FINDING) });
        }
      }
      const where = lobeOf(an, an.lungs[s], p[1], p[2]);
      return [make({ label, where, side: s === 0 ? 'right' : 'left', size: Math.round(2 * zr), params: {}, shapes, refZ: p[2] })];
    }

    case L.FIBROTIC: {
      const s = rng.pick([0, 1] as const);
      const upper = rng.chance(0.6);
      const p = lungPoint(rng, ctx, s, 12, upper ? [0.6, 0.9] : [0.15, 0.45]);
      if (!p) return [];
      const shapes: Shape[] = [];
      const n = rng.int(4, 7);
      for (let k = 0; k < n; k++) {
        const e = vec.norm([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-0.6, 0.6)]);
        const c = vec.add(p, [rng.uniform(-12, 12), rng.uniform(-12, 12), rng.uniform(-8, 8)]);
        const len = rng.uniform(15, 28);
        shapes.push({ kind: 'capsule', s: { p0: vec.add(c, vec.scale(e, -len)), p1: vec.add(c, vec.scale(e, len)), r0: rng.uniform(2.5, 3.5), r1: rng.uniform(2, 3) }, hu: rng.uniform(-100, -20), mask: MASK_LUNG });
      }
      shapes.push({ kind: 'ellipsoid', c: p, r: [7, 7, Math.max(minR, 6)], hu: 10, mask: MASK_LUNG });
      const where = lobeOf(an, an.lungs[s], p[1], p[2]);
      return [make({ label, where, side: s === 0 ? 'right' : 'left', size: 0, params: {}, shapes, refZ: p[2] })];
    }

    case L.PLEURAL_EFFUSION: {
      const sides: (0 | 1)[] = rng.chance(0.35) ? [0, 1] : [rng.pick([0, 1] as const)];
      const out: Finding[] = [];
      for (const s of sides) {
        const lung = an.lungs[s];
        const depth = rng.uniform(22, 60);
        const height = Math.min(rng.uniform(60, 130), 0.6 * (an.zApex - lung.zBase));
        const refZ = lung.zBase + Math.max(0.25 * height, lung.domeH * 0.4);
        out.push(
          make({
            label,
            where: 'pleura',
            side: s === 0 ? 'right' : 'left',
            size: Math.round(depth),
            params: {},
            shapes: [{ kind: 'effusion', lung: s, height, depth, hu: rng.uniform(8, 20) }],
            refZ,
            zExtent: [lung.zBase - g.sz, lung.zBase + height],
          }),
        );
      }
      return out;
    }

    case L.MOSAIC: {
      const lo = Math.min(an.lungs[0].zBase, an.lungs[1].zBase);
      const h = an.zApex - lo;
      const u0 = rng.uniform(0.1, 0.35);
      const u1 = Math.min(0.95, u0 + rng.uniform(0.4, 0.6));
      const z0 = lo + u0 * h;
      const z1 = lo + u1 * h;
      const where = u1 < 0.7 ? 'lower' : u0 > 0.3 ? 'upper' : 'both';
      return [make({ label, where, side: 'both', size: 0, params: {}, shapes: [{ kind: 'mosaic', z0, z1, cell: rng.uniform(22, 32), seed: rng.u32() }], refZ: (z0 + z1) / 2, zExtent: [z0, z1] })];
    }

    case L.PERIBRONCHIAL: {
      // Thicken the walls of the bronchi of the lower lobes (or of one lung).
      const oneSide = rng.chance(0.4) ? rng.pick([0, 1] as const) : -1;
      const shapes: Shape[] = [];
      const cuffs: Shape[] = [];
      const lumens: Shape[] = [];
      const perSide = an.bronchi.length / 2;
      for (let b = 0; b < an.bronchi.length; b++) {
        const side = b < perSide ? 0 : 1;
        if (oneSide >= 0 && side !== oneSide) continue;
        const local = b % perSide;
        const lowerLobe = local >= 6; // lobar dirs: 0-2 upper, 3-5 middle, 6-8 lower
        if (oneSide < 0 && !lowerLobe) continue;
        const seg = an.bronchi[b]!;
        cuffs.push({ kind: 'capsule', s: { ...seg, r0: seg.r0 + 5, r1: seg.r1 + 4.5 }, hu: 45, mask: MASK_LUNG });
        lumens.push({ kind: 'capsule', s: seg, hu: -1000, mask: MASK_LUNG });
      }
      shapes.push(...cuffs, ...lumens);
      const c0 = cuffs[cuffs.length - 1]! as Extract<Shape, { kind: 'capsule' }>;
      const refZ = (c0.s.p0[2] + c0.s.p1[2]) / 2;
      const side = oneSide < 0 ? 'both' : oneSide === 0 ? 'right' : 'left';
      return [make({ label, where: oneSide < 0 ? 'lower' : side === 'right' ? 'RLL' : 'LLL', side, size: 0, params: {}, shapes, refZ })];
    }

    case L.BRONCHIECTASIS: {
      const s = rng.pick([0, 1] as const);
      const perSide = an.bronchi.length / 2;
      const base = an.bronchi[s * perSide + 6]!; // lower lobar bronchus
      const shapes: Shape[] = [];
      const lumens: Shape[] = [];
      const n = rng.int(3, 5);
      let refZ = 0;
      for (let k = 0; k < n; k++) {
        const d = vec.norm([an.lungs[s].side * rng.uniform(0.1, 0.8), rng.uniform(-0.9, 0.2), rng.uniform(-1, -0.2)]);
        const p1 = vec.add(base.p1, vec.scale(d, rng.uniform(35, 60)));
        const r = rng.uniform(5, 7);
        const seg: Segment = { p0: base.p1, p1, r0: r, r1: r * 0.85 };
        if (k === 0) refZ = (seg.p0[2] + p1[2]) / 2;
        shapes.push({ kind: 'capsule', s: { ...seg, r0: r + 2.5, r1: r * 0.85 + 2.5 }, hu: 40, mask: MASK_LUNG });
        lumens.push({ kind: 'capsule', s: seg, hu: -1000, mask: MASK_LUNG });
      }
      shapes.push(...lumens);
      return [make({ label, where: s === 0 ? 'RLL' : 'LLL', side: s === 0 ? 'right' : 'left', size: 0, params: {}, shapes, refZ })];
    }

    case L.SEPTAL: {
      const lo = Math.min(an.lungs[0].zBase, an.lungs[1].zBase);
      const h = an.zApex - lo;
      const z0 = lo;
      const z1 = lo + h * rng.uniform(0.4, 0.6);
      const sides = rng.chance(0.7) ? 3 : rng.pick([1, 2]);
      const side = sides === 3 ? 'both' : sides === 1 ? 'right' : 'left';
      return [
        make({
          label,
          where: sides === 3 ? 'lower' : sides === 1 ? 'RLL' : 'LLL',
          side,
          size: 0,
          params: {},
          shapes: [{ kind: 'septal', z0, z1, spacing: rng.uniform(11, 15), rim: rng.uniform(30, 45), sides }],
          refZ: z0 + (z1 - z0) * 0.4,
          zExtent: [z0, z1],
        }),
      ];
    }
  }
  return [];
}

/**
 * A point inside lung `s` (0 right, 1 left) at least `margin` mm from its outline, away from
 * the heart and the aorta; u range: fraction of the lung height. Null after many misses.
 */
export function lungPoint(rng: Rng, ctx: FindingContext, s: 0 | 1, margin: number, u: [number, number] = [0.08, 0.95], pos?: 'posterior'): Vec3 | null {
  const { an } = ctx;
  const lung: LungShape = an.lungs[s];
  const h = an.zApex - lung.zBase;
  for (let tries = 0; tries < 400; tries++) {
    const relax = tries > 250 ? 0.5 : 1;
    const z = lung.zBase + h * rng.uniform(u[0], u[1]);
    const x = lung.cx + lung.a * rng.uniform(-1, 1);
    const yLo = pos === 'posterior' && tries < 300 ? -1 : -1;
    const yHi = pos === 'posterior' && tries < 300 ? -0.2 : 1;
    const y = lung.cy + lung.b * rng.uniform(yLo, yHi);
    if (lungSd(an, lung, x, y, z) > -margin * relax) continue;
    if (insideEllipsoid([x, y, z], an.heart.c, ctx.heartR, 1.12 + margin / 40)) continue;
    let nearVessel = false;
    for (const seg of an.aorta) if (segDist([x, y, z], seg) < seg.r0 + margin * relax + 4) nearVessel = true;
    for (const seg of an.pulmonary) if (segDist([x, y, z], seg) < seg.r0 + margin * relax) nearVessel = true;
    if (segDist([x, y, z], an.svc) < an.svc.r0 + margin * relax) nearVessel = true;
    if (nearVessel) continue;
    return [x, y, z];
  }
  return null;
}

function insideEllipsoid(p: Vec3, c: Vec3, r: Vec3, k: number): boolean {
  const a = (p[0] - c[0]) / (r[0] * k);
  const b = (p[1] - c[1]) / (r[1] * k);
  const d = (p[2] - c[2]) / (r[2] * k);
  return a * a + b * b + d * d < 1;
}

function segDist(p: Vec3, s: Segment): number {
  const b = sub(s.p1, s.p0);
  const q = sub(p, s.p0);
  const bb = b[0] * b[0] + b[1] * b[1] + b[2] * b[2] || 1e-9;
  let t = (q[0] * b[0] + q[1] * b[1] + q[2] * b[2]) / bb;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(q[0] - t * b[0], q[1] - t * b[1], q[2] - t * b[2]);
}

function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}
function lerp3(a: Vec3, b: Vec3, t: number): Vec3 {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}
/** A unit vector perpendicular to `d`, at angle `ang` around it. */
function perpendicular(d: Vec3, ang: number): Vec3 {
  const n = vec.norm(d);
  const ref: Vec3 = Math.abs(n[2]) < 0.9 ? [0, 0, 1] : [1, 0, 0];
  const u = vec.norm([n[1] * ref[2] - n[2] * ref[1], n[2] * ref[0] - n[0] * ref[2], n[0] * ref[1] - n[1] * ref[0]]);
  const v: Vec3 = [n[1] * u[2] - n[2] * u[1], n[2] * u[0] - n[0] * u[2], n[0] * u[1] - n[1] * u[0]];
  return [u[0] * Math.cos(ang) + v[0] * Math.sin(ang), u[1] * Math.cos(ang) + v[1] * Math.sin(ang), u[2] * Math.cos(ang) + v[2] * Math.sin(ang)];
}

/** World z range of a finding's shapes. */
export function shapesZ(shapes: Shape[], ctx: FindingContext): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of shapes) {
    let a: number;
    let b: number;
    switch (s.kind) {
      case 'ellipsoid':
      case 'hernia':
        a = s.c[2] - s.r[2];
        b = s.c[2] + s.r[2];
        break;
      case 'capsule': {
        const r = Math.max(s.s.r0, s.s.r1);
        a = Math.min(s.s.p0[2], s.s.p1[2]) - r;
        b = Math.max(s.s.p0[2], s.s.p1[2]) + r;
        break;
      }
      case 'effusion': {
        const lung = ctx.an.lungs[s.lung];
        a = lung.zBase;
        b = lung.zBase + s.height;
        break;
      }
      default:
        a = s.z0;
        b = s.z1;
    }
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
  }
  return [lo, hi];
}

