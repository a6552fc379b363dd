// The printed table and the targets checked against the rows.
import type { Clock } from './measure.ts';
import { fmtMs, fmtRate, fmtRatio, table } from './format.ts';
import type { Row } from './row.ts';

const clockShort = (c: Clock | undefined) => (c === 'timestamp' ? 'ts' : c === 'wall' ? 'wall' : '-');

/** The rows as a plain-text table (the ratio columns compare equal clocks). */
export function render(rows: Row[]): string {
  const headers = ['op', 'shape', 'variant', 'clock', 'ms', 'rate', 'wall ms', 'tfjs ms', 'tfjs wall', 'ours/tfjs', 'wall ratio', 'check / note'];
  const body = rows.map((r) => {
    if (r.error || !r.ours) return [r.op, r.shape, r.variant, '-', 'ERROR', '', '', '', '', '', '', r.error ?? ''];
    const peerOnClock = r.peer ? (r.ours.clock === 'timestamp' ? r.peer.tsMs : r.peer.wallMs) : null;
    const ratio = r.ours.clock === 'timestamp' ? r.ratioTs : r.ratioWall;
    const note = [r.check, r.peer ? '' : r.peerNote].filter(Boolean).join('; ');
    return [
      r.op,
      r.shape,
      r.variant,
      clockShort(r.ours.clock),
      fmtMs(r.ours.ms),
      `${fmtRate(r.rate)} ${r.metric}`,
      fmtMs(r.ours.wallMs),
      fmtMs(peerOnClock),
      fmtMs(r.peer?.wallMs),
      fmtRatio(ratio),
      fmtRatio(r.ratioWall),
      note,
    ];
  });
  return table(headers, body, new Set([4, 5, 6, 7, 8, 9, 10]));
}

export interface Target {
  what: string;
  measured: string;
  pass: boolean | null;
}

/** The project's performance targets, judged on the rows measured (those of sections run). */
export function targets(rows: Row[]): Target[] {
  const out: Target[] = [];
  const mm = rows.filter((r) => r.op === 'matmul' && r.shape === '1024x1024@1024x1024' && r.ours && !r.error);
  if (mm.length) {
    const best = mm.reduce((p, r) => ((r.rate ?? 0) > (p.rate ?? 0) ? r : p));
    out.push({
      what: 'f32 matmul 1024^3 >= 40 GFLOP/s',
      measured: `${fmtRate(best.rate)} GFLOP/s (${best.variant}, ${best.ours!.clock}; wall ${fmtRate(best.rateWall)})`,
      pass: (best.rate ?? 0) >= 40,
    });
    if (best.peer) {
      const sTs = best.ratioTs ? 1 / best.ratioTs : null;
      const sWall = best.ratioWall ? 1 / best.ratioWall : null;
      // Every same-clock speedup we have must clear the bar.
      const speedups = [sTs, sWall].filter((x): x is number => x !== null);
      out.push({
        what: 'f32 matmul 1024^3 >= 5x tfjs-backend-webgpu (same run, same device)',
        measured: `${fmtRatio(sTs)}x on timestamps, ${fmtRatio(sWall)}x on wall clocks (tfjs/ours time)`,
        pass: speedups.length ? speedups.every((x) => x >= 5) : null,
      });
    } else out.push({ what: 'f32 matmul 1024^3 >= 5x tfjs-backend-webgpu', measured: `no peer: ${best.peerNote}`, pass: null });
  }
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
