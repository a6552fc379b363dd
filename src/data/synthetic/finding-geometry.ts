// Where a synthetic finding can sit in the phantom: points inside a lung clear of the heart and
// the great vessels, distances to vessel segments, directions around a vessel, and the z-range
// a finding's shapes cover. Browser-safe.
import type { Rng } from '../../rng.ts';
import { type LungShape, lungSd, vec } from './anatomy.ts';
import type { FindingContext, Shape } from './finding-types.ts';
import type { Segment, Vec3 } from './paint.ts';

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

export function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}
export function lerp3(a: Vec3, b: Vec3, t: number): Vec3 {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}
/** A unit vector perpendicular to `d`, at angle `ang` around it. */
export function perpendicular(d: Vec3, ang: number): Vec3 {
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
