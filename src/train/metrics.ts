// A run's training metrics: one JSON line per logged step in RUN/metrics.jsonl (cut back to
// the checkpoint on resume), the progress line printed for it, and the SVG plots drawn from
// the file at the end.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fmtBytes } from '../gpu/runtime.ts';
import { writeAtomic } from '../io/atomic.ts';
import { lineChartSvg } from './plot.ts';

export interface MetricLine {
  step: number;
  lr: number;
  loss: number;
  siglip: number;
  prompts: number;
  /** The disease-prompt loss on the report embeddings (absent or null without it). */
  reportPrompts?: number | null;
  localization: number | null;
  /** Global gradient norm before clipping. */
  gradNorm: number | null;
  msPerStep: number;
  liveBytes: number;
}

/** RUN/metrics.jsonl. */
export class MetricsFile {
  readonly path: string;

  constructor(readonly runDir: string) {
    this.path = join(runDir, 'metrics.jsonl');
  }

  /** A run (re)starting from step 0 starts its metrics afresh. */
  async reset(): Promise<void> {
    if (existsSync(this.path)) await writeAtomic(this.path, '');
  }

  /** On resume: lines logged after the checkpoint belong to steps that will run again. */
  async keepUpTo(step: number): Promise<void> {
    if (!existsSync(this.path)) return;
    const kept = (await readFile(this.path, 'utf8')).split('\n').filter((l) => {
      try {
        return l && (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false; // a line cut off by the kill
      }
    });
    await writeAtomic(this.path, kept.length ? kept.join('\n') + '\n' : '');
  }

  async append(line: MetricLine): Promise<void> {
    await appendFile(this.path, JSON.stringify(line) + '\n');
  }
}

/** The progress line of a logged step; `remaining` steps to go in this invocation give the ETA. */
export function formatMetricLine(line: MetricLine, totalSteps: number, remaining: number, skipped: number): string {
  const { loss, siglip, prompts, reportPrompts, localization: loc, gradNorm } = line;
  const eta = (remaining * line.msPerStep) / 1000;
  return (
    `step ${String(line.step).padStart(5)}/${totalSteps}  loss ${loss.toFixed(4)} (siglip ${siglip.toFixed(3)}, prompts ${prompts.toFixed(3)}${reportPrompts == null ? '' : `, report prompts ${reportPrompts.toFixed(3)}`}` +
    `${loc === null ? '' : `, loc ${loc.toFixed(3)}`})  |g| ${gradNorm === null ? '-' : gradNorm.toPrecision(3)}  lr ${line.lr.toExponential(2)}  ${line.msPerStep.toFixed(0)} ms/step  ETA ${eta.toFixed(0)} s  GPU ${fmtBytes(line.liveBytes)}` +
    `${skipped ? `  (${skipped} steps skipped: gradient not finite)` : ''}`
  );
}

/** RUN/plots/loss.svg (each objective, log scale) and RUN/plots/lr.svg from the metrics file. */
export async function writePlots(out: string, metricsPath: string): Promise<void> {
  if (!existsSync(metricsPath)) return;
  const rows = (await readFile(metricsPath, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MetricLine);
  await mkdir(join(out, 'plots'), { recursive: true });
  const series = (key: keyof MetricLine, name: string) => ({ name, points: rows.filter((r) => r[key] !== null).map((r) => [r.step, r[key] as number] as [number, number]) });
  await writeFile(
    join(out, 'plots', 'loss.svg'),
    lineChartSvg([series('loss', 'total'), series('siglip', 'SigLIP'), series('prompts', 'disease prompts'), series('reportPrompts', 'report prompts'), series('localization', 'localization')], { title: 'training loss', xLabel: 'step', logY: true }),
  );
  await writeFile(join(out, 'plots', 'lr.svg'), lineChartSvg([series('lr', 'learning rate')], { title: 'learning rate', xLabel: 'step' }));
}
