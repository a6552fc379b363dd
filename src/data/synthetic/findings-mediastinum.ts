// Samplers of the synthetic findings in the heart, vessels and mediastinum, and of devices:
// medical material, arterial wall and coronary calcification, cardiomegaly, pericardial
// effusion, hiatal hernia, lymphadenopathy. Each draws from the finding's Rng (findings.ts
// forks one per label). Browser-safe.
import { vec } from './anatomy.ts';
import { lerp3, perpendicular, sub } from './finding-geometry.ts';
import { L, type Finding, type FindingEnv, type Shape } from './finding-types.ts';
import { T, bit, MASK_BODY, type Vec3 } from './paint.ts';

/** The findings of a mediastinal, cardiac, vascular or device label (labels 0-6); [] for others. */
export function sampleMediastinalFinding(e: FindingEnv): Finding[] {
  const { rng, ctx, label, heartScale, make } = e;
  const { an } = ctx;
  const hc = an.heart.c;

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
  }
  return [];
}
