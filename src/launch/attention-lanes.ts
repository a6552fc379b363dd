// How the subgroup and plain attention kernels (kernels/attention.wgsl) place a head's rows on
// lanes: vec4s of a row per lane (and lanes per row), chunks, rows per lane, and the flags and
// template constants that follow; used by the launches in src/launch/attention.ts.
import { GpuError, ValueError } from '../errors.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { attentionLayoutProblem } from '../gpu/tuning.ts';

/**
 * How the kernels lay out a head of HD4 = ceil(D / 4) vec4s. A lane keeps its query's rows
 * in registers, fully unrolled: fastest, but the compile time grows faster than D (on
 * lavapipe a full unroll of D = 256 took minutes, D = 128 tens of seconds). So the subgroup
 * kernel spreads a query over P lanes (a power of two, at most G) once a lane would hold
 * more than MAX_FWD (forward) or MAX_BWD (backward kernels, which keep more rows) vec4s;
 * this costs some speed (each key row is loaded for fewer queries). The plain kernel (no
 * cross-lane sums without subgroups) instead loops over chunks of CHUNK vec4s for heads of
 * more than MAX_BWD vec4s (private arrays indexed at run time). Measured on lavapipe (first
 * forward + backward): D = 128 as one unrolled block compiles in 25 s (subgroup) or 80 s
 * (plain), as here in about 11 s and 5 s; chunk loops run 4x slower than a split in the
 * subgroup kernel, and chunks of 4 beat chunks of 8 in the plain one (only a fallback).
 *
 * gpu.tuning.attention.layout overrides it (benchmarks and tests compare layouts): `parts`
 * lanes per query (subgroup kernel; 1, 2, 4 or 8), chunks of at most `chunk` vec4s.
 * `{ parts: 1 }` trades compile time for speed: at D = 90, forward + backward take ~30% less
 * time unsplit, but the backward kernels compile in ~11 s instead of ~4 s on lavapipe (once
 * per machine: Mesa caches compiled shaders on disk).
 */
const MAX_FWD = 32;
const MAX_BWD = 16;
const CHUNK = 4;

export interface Layout {
  /** vec4s of the head (D padded to 4 * HD4). */
  HD4: number;
  /** Lanes per query, vec4s per lane (NCH chunks of CH). */
  P: number;
  HL: number;
  CH: number;
  NCH: number;
}

export function layout(gpu: Gpu, D: number, G: number, backward: boolean): Layout {
  const choice = gpu.tuning.attention.layout;
  const problem = attentionLayoutProblem(choice);
  if (problem) throw new ValueError(`attention: ${problem}`);
  const HD4 = Math.ceil(D / 4);
  const most = backward ? MAX_BWD : MAX_FWD;
  let P = 1;
  if (G) {
    P = choice?.parts ?? 1;
    if (choice?.parts === undefined) while (P < G && Math.ceil(HD4 / P) > most) P *= 2;
    if (P > G) throw new GpuError(`attention: ${P} lanes per query need subgroups of at least ${P}; this device has ${gpu.subgroupMinSize}`);
  }
  const per = Math.ceil(HD4 / P);
  // The subgroup kernel loops over chunks only when told to (4x slower than a split).
  const max = choice?.chunk ?? (G || per <= MAX_BWD ? per : CHUNK);
  const NCH = Math.ceil(per / max);
  const CH = Math.ceil(per / NCH);
  return { HD4, P, HL: NCH * CH, CH, NCH };
}

/**
 * How many rows (queries, or keys in the key/value backward) each lane of the subgroup kernel
 * holds, and where: lane i of the first `rs` rows holds rows i + u * rs, u < RPL. Each row the
 * inner loop walks is loaded once per subgroup and broadcast, whatever RPL is, so more rows
 * per lane divide that cost; but each row adds `arrays` private arrays of HL vec4s (2 in the
 * forward, 3 in the query backward, 4 in the key/value backward), all unrolled, which costs
 * compile time and, past some size, spills. So a lane holds several rows only when a row is at
 * most MAX_ROW_VEC4 (12) vec4s and all of them at most MAX_LIVE_VEC4 (108): with 144 and no
 * per-row bound RadFinder's D = 90 and 128 kernels took 98 s to compile instead of 19 (once
 * per machine; Mesa caches them), with these bounds about 60 s (its D = 128 heads keep one row:
 * no gain measured there), the small preset's kernels 18 s instead of 4. Measured on lavapipe
 * (family-26 EPYC, scripts/issue11/attention-rows.test.ts, forward + backward), a walk over
 * the keys with R rows per lane costs about 1, 1.3, 1.6 and 2.0 times one with a single row;
 * the choice minimises walks x that cost: the small preset's windows (129 queries, D = 24)
 * take 3 rows (44-47 -> 29-30 ms), its text (192, D = 16, causal) 4; at 4x the width (D = 96)
 * the backward takes 2 or 3 (175-204 -> 150-168 ms), RadFinder's vision heads (D = 90)
 * likewise (45-49 -> 33-35 ms).
 * The plain kernel (no subgroups) keeps one row per lane (not measured otherwise).
 * gpu.tuning.attention.layout.rows forces RPL. rs is a multiple of 8, so that no block of
 * lanes straddles it (wider subgroups do; the kernel guards those lanes).
 */
const WALK_COST = [1, 1.3, 1.6, 2.0];
const MAX_LIVE_VEC4 = 108;
const MAX_ROW_VEC4 = 12;

export function rowSpread(gpu: Gpu, L: Layout, G: number, n: number, arrays: number): { RPL: number; rs: number; wx: number } {
  const spread = (R: number) => (R === 1 ? n : Math.ceil(Math.ceil(n / R) / 8) * 8);
  let RPL = gpu.tuning.attention.layout?.rows ?? 1;
  if (G && gpu.tuning.attention.layout?.rows === undefined) {
    // Walks: blocks of G lanes (G / P rows) with a row in range.
    const walks = (R: number) => Math.ceil(Math.min(spread(R), n) / (G / L.P));
    let best = Infinity;
    for (let R = 1; R <= WALK_COST.length && (R === 1 || (L.HL <= MAX_ROW_VEC4 && arrays * L.HL * R <= MAX_LIVE_VEC4)); R++) {
      const cost = walks(R) * WALK_COST[R - 1];
      if (cost < best) [best, RPL] = [cost, R];
    }
  }
  const rs = spread(RPL);
  return { RPL, rs, wx: Math.ceil(rs / (64 / L.P)) };
}

/** The flags and template constants of a kernel variant. */
export function kernelVariant(gpu: Gpu, L: Layout, G: number, mask: boolean, causal: boolean, RPL: number): { flags: Record<string, boolean>; consts: Record<string, number> } {
  const sg = G > 0;
  const g = G || 8;
  const QPG = g / L.P;
  return {
    flags: { MASK: mask, CAUSAL: causal, PARTS: L.P > 1, DYN: L.NCH > 1, PADV: L.P * L.HL > L.HD4, SG: sg, SGEXACT: sg && gpu.subgroupMinSize === G && gpu.subgroupMaxSize === G },
    consts: { HD4: L.HD4, P: L.P, HL: L.HL, CH: L.CH, NCH: L.NCH, G: g, QPG, SPC: Math.ceil(L.CH / QPG), QW: 64 / L.P, RPL },
  };
}
