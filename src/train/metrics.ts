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
  /** Of msPerStep, the time the loop waited for the step's volumes to be read (absent in older runs). */
  dataWaitMs?: number;
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

/**
 * Seconds left in this invocation. Until every training case has been read once (`readingSteps`
 * more steps: the first epoch of a process, whose steps wait for volumes to be read), those
 * steps take `msPerStep`, the last logged interval's time a step, and the later ones `warmMs`, a
 * step's time measured once with nothing being read (encoding and device; capped at msPerStep),
 * what a step costs once its volumes are in memory. Without warmMs, or after the first epoch,
 * msPerStep stands for every step (a dataset larger than its cache keeps reading). Null when
 * the interval holds only the process's first step, whose pipeline compilation says nothing of
 * the rest.
 */
export function etaSeconds(msPerStep: number, remaining: number, readingSteps: number, warmMs: number | null, firstStepOnly: boolean): number | null {
  if (firstStepOnly && remaining > 0) return null;
  const reading = Math.min(Math.max(readingSteps, 0), remaining);
  const warm = reading > 0 && warmMs !== null ? Math.min(warmMs, msPerStep) : msPerStep;
  return (reading * msPerStep + (remaining - reading) * warm) / 1000;
}

/** The progress line of a logged step; `eta` in seconds (etaSeconds), null prints "-". */
export function formatMetricLine(line: MetricLine, totalSteps: number, eta: number | null, skipped: number): string {
  const { loss, siglip, prompts, reportPrompts, localization: loc, gradNorm } = line;
  const wait = line.dataWaitMs ? ` (${line.dataWaitMs.toFixed(0)} reading data)` : '';
  return (
    `step ${String(line.step).padStart(5)}/${totalSteps}  loss ${loss.toFixed(4)} (siglip ${siglip.toFixed(3)}, prompts ${prompts.toFixed(3)}${reportPrompts == null ? '' : `, report prompts ${reportPrompts.toFixed(3)}`}` +
    `${loc === null ? '' : `, loc ${loc.toFixed(3)}`})  |g| ${gradNorm === null ? '-' : gradNorm.toPrecision(3)}  lr ${line.lr.toExponential(2)}  ${line.msPerStep.toFixed(0)} ms/step${wait}  ETA ${eta === null ? '-' : `${eta.toFixed(0)} s`}  GPU ${fmtBytes(line.liveBytes)}` +
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
