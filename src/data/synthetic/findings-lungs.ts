// Samplers of the synthetic findings in the lungs, airways and pleura: emphysema, atelectasis,
// nodules, opacity and consolidation, fibrotic sequelae, pleural effusion, mosaic attenuation,
// peribronchial thickening, bronchiectasis, interlobular septal thickening. Each draws from the
// finding's Rng (findings.ts forks one per label). Browser-safe.
import { lobeOf, vec } from './anatomy.ts';
import { lungPoint } from './finding-geometry.ts';
import { L, type Finding, type FindingEnv, type Shape } from './finding-types.ts';
import { T, bit, MASK_LUNG, type Segment, type Vec3 } from './paint.ts';

/** The findings of a lung, airway or pleural label (labels 7-17); [] for others. */
export function sampleLungFinding(e: FindingEnv): Finding[] {
  const { rng, ctx, label, minR, make } = e;
  const { an, g } = ctx;

  switch (label) {
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
