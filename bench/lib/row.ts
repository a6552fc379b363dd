// One result row of the bench (a line of the table, an entry of the JSON report's rows),
// and the only place its fields are listed.
import type { Clock, Measurement } from './measure.ts';

/** The bench's sections, in the order they run (--only picks among them). */
export const SECTIONS = ['roofline', 'matmul', 'attention', 'patch', 'elementwise', 'layout', 'reduce', 'softmax', 'layernorm', 'embedding', 'data', 'step'] as const;
export type Section = (typeof SECTIONS)[number];

/** The roofline section's ops: the best row of each is the device's roof (report.ts). */
/** uniformLoad: the same per-lane loads from a uniform buffer (kernels/roofline.wgsl load4u),
 * the roof of kernels that read an operand that way (kernels/matmul.wgsl UB). */
export const ROOF_OPS = {
  fma: 'f32 FMA peak',
  copy: 'copy peak (vec4 kernel)',
  load: 'load rate (per-lane vec4)',
  uniformLoad: 'load rate (per-lane vec4, uniform buffer)',
} as const;
export type RoofKind = keyof typeof ROOF_OPS;

export interface Side {
  clock: Clock;
  /** Median ms on `clock` (timestamp when available, else wall). */
  ms: number;
  tsMs: number | null;
  wallMs: number;
  tsSamples: number[];
  wallSamples: number[];
  wallIters: number;
}

export interface Row {
  section: Section;
  op: string;
  shape: string;
  variant: string;
  metric: 'GFLOP/s' | 'GB/s';
  /** FLOPs (matmul) or bytes moved (the minimum: each input read once, each output written once). */
  work: number;
  ours: Side | null;
  /** On ours.clock. */
  rate: number | null;
  rateWall: number | null;
  kernels: string[];
  peer: Side | null;
  peerNote: string;
  /** tfjs programs of one call with their ms (tf.time's profile info). */
  peerPrograms: string;
  /** ours/peer time on the timestamp clock (both timed by it), and on wall clocks. */
  ratioTs: number | null;
  ratioWall: number | null;
  check: string;
  maxAbsDiffPeer: number | null;
  maxAbsDiffRef: number | null;
  error: string | null;
  /** The check our output failed (a difference over the row's tolerance, a NaN, a wrong
   * count), or null: the row is still timed, and the bench exits with status 1. */
  wrong: string | null;
  /** The roof the rate is judged against: GFLOP/s rows the FMA peak, GB/s rows the copy
   * bandwidth (the load-rate rows their own best); null for host code and copy commands (no
   * kernel). Set with the table. */
  roof: RoofKind | null;
  /** rate / the roof's rate (the best roofline row of that kind, same run); null without one. */
  roofFraction: number | null;
  /** Matmul rows on the model's shapes: rate / the rate of a 1024^3 matmul (same variant)
   * measured in alternating rounds with the row, on the same clock. */
  ratioTo1024: number | null;
  /** Matmul rows of a variant whose operand loads are known: bytes of per-lane storage loads
   * per FLOP (with the load-rate roof, the kernel's load-bound rate; report.ts). */
  loadBytesPerFlop?: number | null;
}

/** What a row measures; the rest of the row is filled as measurements come in. */
export type RowHead = Pick<Row, 'section' | 'op' | 'shape' | 'variant' | 'metric' | 'work'>;

/** The peer's part in a row: its side, the note when it has none, its programs, and the
 * output of one call (for the correctness check). Shared by the rows of variants. */
export interface PeerRun {
  side: Side | null;
  note: string;
  programs: string;
  out: Float32Array | null;
}

/** A row with nothing measured yet (fields in the JSON report's order). */
export function newRow(h: RowHead): Row {
  return {
    section: h.section,
    op: h.op,
    shape: h.shape,
    variant: h.variant,
    metric: h.metric,
    work: h.work,
    ours: null,
    rate: null,
    rateWall: null,
    kernels: [],
    peer: null,
    peerNote: '',
    peerPrograms: '',
    ratioTs: null,
    ratioWall: null,
    check: '',
    maxAbsDiffPeer: null,
    maxAbsDiffRef: null,
    error: null,
    wrong: null,
    roof: null,
    roofFraction: null,
    ratioTo1024: null,
  };
}

export function sideOf(m: Measurement): Side {
  return {
    clock: m.tsMs !== null ? 'timestamp' : 'wall',
    ms: m.tsMs ?? m.wallMs,
    tsMs: m.tsMs,
    wallMs: m.wallMs,
    tsSamples: m.tsSamples.map((x) => +x.toFixed(4)),
    wallSamples: m.wallSamples.map((x) => +x.toFixed(4)),
    wallIters: m.wallIters,
  };
}

/** GFLOP/s or GB/s of `work` done in `ms`. */
export function rateOf(work: number, ms: number | null): number | null {
  if (ms === null || !(ms > 0)) return null;
  return work / (ms * 1e-3) / 1e9;
}

/** Fills our side and rates from a measurement, or the row's error from its failure. */
export function setOurs(row: Row, m: Measurement | Error): void {
  if (m instanceof Error) {
    row.error = m.message;
    return;
  }
  row.ours = sideOf(m);
  row.rate = rateOf(row.work, row.ours.ms);
  row.rateWall = rateOf(row.work, row.ours.wallMs);
}

/** Fills the peer's side and the ours/peer ratios (call after setOurs). */
export function setPeer(row: Row, p: PeerRun): void {
  row.peer = p.side;
  row.peerNote = p.note;
  row.peerPrograms = p.programs;
  if (row.ours && row.peer) {
    row.ratioTs = row.ours.tsMs !== null && row.peer.tsMs !== null ? row.ours.tsMs / row.peer.tsMs : null;
    row.ratioWall = row.ours.wallMs / row.peer.wallMs;
  }
}
