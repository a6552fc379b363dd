// The printed table and the targets checked against the rows.
import type { Clock } from './measure.ts';
import { fmtMs, fmtRate, fmtRatio, table } from './format.ts';
import { ROOF_OPS, type RoofKind, type Row } from './row.ts';

const clockShort = (c: Clock | undefined) => (c === 'timestamp' ? 'ts' : c === 'wall' ? 'wall' : '-');

const fmtPct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`);

/** The best row of one roof: the highest rate among the roofline section's rows of that kind. */
export function bestRoof(rows: readonly Row[], kind: RoofKind): Row | null {
  const rs = rows.filter((r) => r.section === 'roofline' && r.op === ROOF_OPS[kind] && r.ours && !r.error && r.rate !== null);
  return rs.length ? rs.reduce((p, r) => (r.rate! > p.rate! ? r : p)) : null;
}

/** Which roof a row is judged against: host code (the data section) and copy commands run
 * no kernel, so no device roof applies to them; nor to the embedding gradient, most of whose
 * bytes (the clear of dW) a clear command writes. */
function roofKind(r: Row): RoofKind | null {
  if (r.section === 'data' || r.variant === 'command' || r.section === 'embedding') return null;
  if (r.section === 'roofline') for (const k of ['load', 'uniformLoad'] as const) if (r.op === ROOF_OPS[k]) return k;
  return r.metric === 'GFLOP/s' ? 'fma' : r.metric === 'GB/s' ? 'copy' : null;
}

/** Fills every row's roof and roofFraction from the roofline rows among them (render calls
 * it, so the JSON report written after the table carries the fields). Both rates are on
 * their rows' clocks, which are the same clock on one device. */
export function applyRoofs(rows: Row[]): void {
  const roofs = { fma: bestRoof(rows, 'fma'), copy: bestRoof(rows, 'copy'), load: bestRoof(rows, 'load'), uniformLoad: bestRoof(rows, 'uniformLoad') };
  for (const r of rows) {
    r.roof = roofKind(r);
    const top = r.roof ? roofs[r.roof] : null;
    r.roofFraction = top && r.rate !== null && !r.error ? r.rate / top.rate! : null;
  }
}

/** The roofline line printed above the table (empty when the section did not run). */
function roofLine(rows: readonly Row[]): string {
  const fma = bestRoof(rows, 'fma');
  const copy = bestRoof(rows, 'copy');
  const load = bestRoof(rows, 'load');
  if (!fma && !copy) return '';
  const part = (r: Row | null, what: string) => (r ? `${what} ${fmtRate(r.rate)} ${r.metric} (${r.variant}, ${clockShort(r.ours?.clock)})` : `${what} not measured`);
  const adapter = (fma ?? copy)!.peerNote;
  const ub = bestRoof(rows, 'uniformLoad');
  const uniform = ub ? ` (from a uniform buffer ${fmtRate(ub.rate)} GB/s)` : '';
  return `roofline (${adapter}): ${part(fma, 'f32 FMA peak')}, ${part(copy, 'copy bandwidth')}, ${part(load, 'per-lane load rate')}${uniform}; "of roof" = rate / the roof of the row's metric (GFLOP/s: FMA peak, GB/s: copy; the load-rate rows: the best of their kind, storage or uniform)\n\n`;
}

/** The rows as a plain-text table (the ratio columns compare equal clocks), with the
 * roofline line above it. Fills the rows' roof fields (applyRoofs). */
export function render(rows: Row[]): string {
  applyRoofs(rows);
  const headers = ['op', 'shape', 'variant', 'clock', 'ms', 'rate', 'of roof', 'wall ms', 'tfjs ms', 'tfjs wall', 'ours/tfjs', 'wall ratio', 'check / note'];
  const body = rows.map((r) => {
    if (r.error || !r.ours) return [r.op, r.shape, r.variant, '-', 'ERROR', '', '', '', '', '', '', '', r.error ?? ''];
    const peerOnClock = r.peer ? (r.ours.clock === 'timestamp' ? r.peer.tsMs : r.peer.wallMs) : null;
    const ratio = r.ours.clock === 'timestamp' ? r.ratioTs : r.ratioWall;
    const vs1024 = r.ratioTo1024 !== null ? `${fmtPct(r.ratioTo1024)} of the 1024^3 rate` : '';
    // A roofline row's peer note is the adapter, which the roofline line above the table names.
    const peerNote = r.peer || r.section === 'roofline' ? '' : r.peerNote;
    const note = [r.wrong ? `WRONG: ${r.wrong}` : '', vs1024, r.wrong ? '' : r.check, peerNote].filter(Boolean).join('; ');
    return [
      r.op,
      r.shape,
      r.variant,
      clockShort(r.ours.clock),
      fmtMs(r.ours.ms),
      `${fmtRate(r.rate)} ${r.metric}`,
      fmtPct(r.roofFraction),
      fmtMs(r.ours.wallMs),
      fmtMs(peerOnClock),
      fmtMs(r.peer?.wallMs),
      fmtRatio(ratio),
      fmtRatio(r.ratioWall),
      note,
    ];
  });
  return roofLine(rows) + table(headers, body, new Set([4, 5, 6, 7, 8, 9, 10, 11]));
}

export interface Target {
  what: string;
  measured: string;
  pass: boolean | null;
  /** A line that explains the targets around it and is not itself a target. */
  info?: boolean;
}

/** What the rate and check columns mean (printed under the table by the bench and the playground). */
export const RATE_AND_CHECK_NOTES = [
  'rate: GFLOP/s = 2MNK/time for matmul, 4 x heads x L^2 x D / time for attention (its two products), 2 x patches x K x E for the patch embedding;',
  '  GB/s = minimum bytes moved (inputs read once, outputs written once) / time, 1 GB = 1e9 B.',
  'check: max |ours - tfjs| over all outputs, and against float64 or the host where the row says (matmul and the patch embedding: 64 sampled',
  '  outputs; attention: 16 query rows); a difference over 1e-4 x the expected output\'s largest magnitude (f16 variants 1e-2),',
  '  or a non-finite value in ours, marks the row WRONG.',
];

/** One target as the bench and the playground print it. */
export function targetLine(t: Target): string {
  return `  [${t.info ? 'info ' : t.pass === null ? '  ?  ' : t.pass ? 'PASS ' : 'FAIL '}] ${t.what}: ${t.measured}`;
}

/** The best 1024^3 matmul row (A @ B, any variant) of the run: what the targets judge. */
export function bestMatmul1024(rows: readonly Row[]): Row | null {
  const mm = rows.filter((r) => r.op === 'matmul' && r.shape === '1024x1024@1024x1024' && r.ours && !r.error);
  return mm.length ? mm.reduce((p, r) => ((r.rate ?? 0) > (p.rate ?? 0) ? r : p)) : null;
}

/** ours vs tfjs on a row: every same-clock speedup we have must clear the bar. */
function speedupTarget(best: Row, factor: number): Target {
  const what = `f32 matmul 1024^3 >= ${factor}x tfjs-backend-webgpu (same run, same device)`;
  if (!best.peer) return { what, measured: `no peer: ${best.peerNote}`, pass: null };
  const sTs = best.ratioTs ? 1 / best.ratioTs : null;
  const sWall = best.ratioWall ? 1 / best.ratioWall : null;
  const speedups = [sTs, sWall].filter((x): x is number => x !== null);
  return {
    what,
    measured: `${fmtRatio(sTs)}x on timestamps, ${fmtRatio(sWall)}x on wall clocks (tfjs/ours time)`,
    pass: speedups.length ? speedups.every((x) => x >= factor) : null,
  };
}

/** Issue 11's model-shape target: every model-shape row at >= 70% of the 1024^3 rate measured
 * beside it; the measured text gives each width's count, lowest and highest. */
function modelShapeTarget(rows: readonly Row[]): Target | null {
  const ms = rows.filter((r) => r.ratioTo1024 !== null && r.ours && !r.error);
  if (!ms.length) return null;
  const widths = [...new Set(ms.map((r) => r.op.split(' ')[1]))];
  const parts = widths.map((w) => {
    const rs = ms.filter((r) => r.op.split(' ')[1] === w);
    const lo = rs.reduce((p, r) => (r.ratioTo1024! < p.ratioTo1024! ? r : p));
    const hi = rs.reduce((p, r) => (r.ratioTo1024! > p.ratioTo1024! ? r : p));
    const ok = rs.filter((r) => r.ratioTo1024! >= 0.7).length;
    return `${w}: ${ok}/${rs.length} rows, lowest ${fmtPct(lo.ratioTo1024)} (${lo.op.split(' ').slice(2).join(' ')} ${lo.shape}, ${fmtRate(lo.rate)} GFLOP/s), highest ${fmtPct(hi.ratioTo1024)}`;
  });
  return {
    what: "matmul on the model's linear-layer shapes (forward and both backward products) >= 70% of the 1024^3 rate",
    measured: parts.join('; '),
    pass: ms.every((r) => r.ratioTo1024! >= 0.7),
  };
}

/** The load bounds of a matmul row: its per-lane loads (row.loadBytesPerFlop) at the measured
 * load rate L and its multiply-adds at the FMA peak F. `overlapped`: min(F, L / bytes per FLOP),
 * what no schedule of the same loads beats; `serial`: 1 / (bytes per FLOP / L + 1 / F), the
 * two one after the other, as on a CPU driver where the same cores issue both (on lavapipe the
 * subgroup kernel with its loads replaced by register arithmetic ran at the FMA peak, and each
 * load added its own time). Reported beside the targets, not judged. */
export function loadBounds(rows: readonly Row[], r: Row): { overlapped: number; serial: number; fma: number; load: number } | null {
  const fma = bestRoof(rows, 'fma')?.rate;
  const load = bestRoof(rows, 'load')?.rate;
  if (!fma || !load || !r.loadBytesPerFlop) return null;
  const x = r.loadBytesPerFlop;
  return { overlapped: Math.min(fma, load / x), serial: 1 / (x / load + 1 / fma), fma, load };
}

function loadBound(rows: readonly Row[], best: Row): Target | null {
  const b = loadBounds(rows, best);
  if (!b) return null;
  const at = (v: number) => `${fmtRate(v)} GFLOP/s (${fmtPct(v / b.fma)} of the FMA roof)`;
  return {
    what: `the 1024^3 kernel's load bound (${best.variant}: ${best.loadBytesPerFlop!.toFixed(3)} B of per-lane loads per FLOP, at ${fmtRate(b.load)} GB/s of loads)`,
    measured: `at most ${at(b.overlapped)} with loads and FMAs overlapped, ${at(b.serial)} one after the other; measured ${fmtPct(best.rate! / b.overlapped)} and ${fmtPct(best.rate! / b.serial)} of these`,
    pass: null,
    info: true,
  };
}

/** The project's performance targets, judged on the rows measured (those of sections run). */
export function targets(rows: Row[]): Target[] {
  const out: Target[] = [];
  const best = bestMatmul1024(rows);
  if (best) {
    out.push({
      what: 'f32 matmul 1024^3 >= 40 GFLOP/s',
      measured: `${fmtRate(best.rate)} GFLOP/s (${best.variant}, ${best.ours!.clock}; wall ${fmtRate(best.rateWall)})`,
      pass: (best.rate ?? 0) >= 40,
    });
    out.push(speedupTarget(best, 5));
    // Issue 11: relative to the roof of the machine it runs on, and a higher bar against tfjs.
    const fma = bestRoof(rows, 'fma');
    const frac = fma ? best.rate! / fma.rate! : null;
    out.push({
      what: 'f32 matmul 1024^3 >= 75% of the measured FMA roof',
      measured: fma
        ? `${fmtRate(best.rate)} GFLOP/s (${best.variant}) = ${fmtPct(frac)} of ${fmtRate(fma.rate)} GFLOP/s (${fma.variant}), both ${clockShort(best.ours!.clock)}`
        : 'no roof: the roofline section did not run',
      pass: frac === null ? null : frac >= 0.75,
    });
    const bound = loadBound(rows, best);
    if (bound) out.push(bound);
    out.push(speedupTarget(best, 10));
  }
  const model = modelShapeTarget(rows);
  if (model) out.push(model);
  const rs = rows.find((r) => r.section === 'data' && r.ours && !r.error);
  if (rs) {
    const ms = rs.ours!.ms;
    out.push({ what: 'resample 512x512x300 to 0.75x0.75x3 mm < 5 s', measured: `${(ms / 1000).toFixed(2)} s (wall, median)`, pass: ms < 5000 });
  }
  const bw = rows.filter((r) => r.section === 'elementwise' && r.ours && !r.error);
  if (bw.length) {
    const worst = bw.reduce((p, r) => ((r.rate ?? 0) < (p.rate ?? 0) ? r : p));
    out.push({
      what: 'elementwise/copy kernels >= 4 GB/s effective',
      measured: `lowest ${fmtRate(worst.rate)} GB/s (${worst.op} ${worst.shape}); all: ${bw.map((r) => `${r.op} ${r.shape.split(' ')[0]} ${fmtRate(r.rate)}`).join(', ')}`,
      pass: bw.every((r) => (r.rate ?? 0) >= 4),
    });
  }
  return out;
}
