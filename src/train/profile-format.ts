// The step profile (profile.ts) as text: the step's timings and counts, then tables by op
// family (with the forward / backward / optimizer split), by kernel entry and op, and by
// label (op and shapes).
import { PHASES, median, type Phase, type StepProfile } from './profile.ts';

const f1 = (x: number) => x.toFixed(x >= 100 ? 0 : 1);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const cnt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

function table(head: string[], rows: string[][], right: boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((s, i) => (right[i] ? s.padStart(w[i]) : s.padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** The profile as text: the timings, then tables by family, by op and by shape (`top` rows each). */
export function formatProfile(p: StepProfile, title: string, top = 15): string {
  const out: string[] = [];
  const pl = p.plain;
  const pr = p.profiled;
  out.push(`step profile: ${title}`);
  out.push(`  model: ${(p.parameters / 1e6).toFixed(2)} M parameters; ${p.model}; batch ${p.batch}`);
  out.push(`  device: ${p.device}`);
  const each = (xs: number[]) => xs.map((x) => f1(x)).join(', ');
  out.push(`  ${p.steps} round(s) of the same step without and with profiling, after ${p.warmup} warm-up step(s); medians, each step in brackets`);
  out.push(
    `  without profiling: ${f1(pl.wallMs)} ms/step wall [${each(pl.wallSamples)}] = host ${f1(pl.encodeMs)} ms encoding + ${f1(pl.submitMs)} ms in submits + ` +
      `${f1(Math.max(0, pl.wallMs - pl.encodeMs - pl.submitMs))} ms waiting for the device`,
  );
  out.push(`  per step: ${cnt(pl.dispatches)} dispatches, ${cnt(pl.submits)} submit(s), ${cnt(pl.copies)} buffer copies, ${cnt(pl.clears)} clears, ${cnt(pl.bindGroupsCreated)} bind groups created (the rest reused)`);
  out.push(
    `  with profiling: ${f1(pr.wallMs)} ms/step wall [${each(pr.wallSamples)}] (host ${f1(pr.encodeMs)} ms encoding, ${f1(pr.submitMs)} ms in submits, ${cnt(pr.submits)} submit(s)); ` +
      `${f1(median(p.timedSamples))} ms/step inside timed dispatches [${each(p.timedSamples)}]`,
  );
  out.push(
    '  (profiling opens one compute pass with two timestamp writes per dispatch, which costs host and device time: quote the step time ' +
      'without profiling; copies, clears and the gaps between passes are in the wall times but in no row below; the rows are means over the profiled steps)',
  );
  const ph = PHASES.map((k) => `${k} ${f1(p.phaseMs[k])} ms (${pct(p.gpuMs ? p.phaseMs[k] / p.gpuMs : 0)}, ${cnt(p.phaseDispatches[k])} dispatches)`);
  out.push(`  by phase: ${ph.join('; ')}`);
  out.push('');
  out.push(`by op family (ms per step: the mean of the timestamps over the profiled steps; % of their ${f1(p.gpuMs)} ms):`);
  const split = (r: Record<Phase, number>, f: (x: number) => string) => PHASES.map((k) => f(r[k])).join(' / ');
  out.push(
    table(
      ['family', 'ms/step', '%', 'dispatches', 'ms/dispatch', 'ms fwd / bwd / opt', 'dispatches fwd / bwd / opt'],
      p.families.map((f) => [
        f.family, f1(f.ms), pct(f.share), cnt(f.dispatches), (f.ms / f.dispatches).toFixed(f.ms / f.dispatches >= 0.1 ? 2 : 3),
        split(f.phaseMs, f1), split(f.phaseDispatches, cnt),
      ]),
      [false, true, true, true, true, true, true],
    ),
  );
  const mm = p.matmul;
  if (mm.ms > 0)
    out.push(
      `matmul: ${mm.gflop.toFixed(2)} GFLOP per step in ${f1(mm.ms)} ms: ${(mm.gflop / mm.ms * 1e3).toFixed(2)} GFLOP/s over the model's own shapes` +
        (mm.unparsed ? ` (${cnt(mm.unparsed)} dispatches per step with labels of another form left out)` : ''),
    );
  for (const [what, rows] of [['kernel entry and op', p.ops], ['label (op and shapes)', p.shapes]] as const) {
    out.push('');
    out.push(`top ${Math.min(top, rows.length)} of ${rows.length} by ${what}:`);
    out.push(
      table(
        ['', 'ms/step', '%', 'dispatches', 'family'],
        rows.slice(0, top).map((r) => [r.key, f1(r.ms), pct(r.share), cnt(r.dispatches), r.family]),
        [false, true, true, true, false],
      ),
    );
  }
  return out.join('\n');
}
