// A fake run folder for the report and ablation tests (no training): metrics.jsonl,
// train-config.json, run.json and eval-test.json / eval-train.json from plausible per-case
// material, summarised by the real code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/rng.ts';
import { LABELS } from '../../src/data/labels.ts';
import { snippetErrors } from '../../src/eval/metrics.ts';
import { summarize, toCompactJson, type EvalRaw, type EvalReport } from '../../src/eval/summary.ts';

export interface FakeOptions {
  n: number;
  seed: number;
  /** 0: chance; larger: better retrieval, AUROC and localization. */
  quality: number;
  split?: string;
  /** Localization error scale in bins (default from quality). */
  locNoise?: number;
  subsetOf?: number;
}

export function fakeRaw(o: FakeOptions): EvalRaw {
  const rng = new Rng(o.seed);
  const n = o.n;
  const ids = Array.from({ length: n }, (_, i) => `synth-${String(i + (o.split === 'train' ? 1000 : 0)).padStart(5, '0')}`);
  const prevalence = LABELS.map((_, q) => 0.08 + 0.4 * ((q * 7) % 11) / 11);
  const labels = ids.map(() => LABELS.map((_, q) => (rng.next() < 0.03 ? -1 : rng.next() < prevalence[q] ? 1 : 0)));
  const reports = ids.map((_, i) => {
    const found = LABELS.filter((_, q) => labels[i][q] === 1);
    return found.length
      ? `Findings: ${found.map((l) => `${l.toLowerCase()} is seen (series 2, image ${10 + Math.floor(rng.next() * 60)})`).join('. ')}. Heart size normal. Trachea and main bronchi patent.`
      : 'No acute finding. Lungs are clear. Heart size normal.';
  });
  // Rank of the own volume: better models rank it nearer the top.
  const rank = ids.map((_, i) => (i % 17 === 16 ? null : Math.min(n, 1 + Math.floor((n - 1) * rng.next() ** (1 + 2 * o.quality)))));
  const top = ids.map((_, i) => {
    const others = rng.shuffle(Array.from({ length: n }, (_, j) => j).filter((j) => j !== i)).slice(0, 5);
    const r = rank[i];
    if (r !== null && r <= 5) others.splice(r - 1, 0, i);
    return others.slice(0, 5);
  });
  const topSim = top.map((t) => t.map((_, k) => 0.6 - 0.05 * k - 0.01 * rng.next()));
  const classes = LABELS.map((label, q) => ({
    label,
    labels: labels.map((l) => l[q]),
    scores: labels.map((l) => 1 / (1 + Math.exp(-(o.quality * (l[q] === 1 ? 1 : -1) + rng.normal() * 1.2)))),
  }));
  const bins = 32, binMm = 12;
  const validBins = Array.from({ length: 28 }, (_, b) => b + 2);
  const snip = { case: [] as number[], target: [] as number[], predicted: [] as number[], expectedMm: [] as number[], targetMm: [] as number[], randomMm: [] as number[], middleMm: [] as number[] };
  const noise = o.locNoise ?? 6 / (1 + o.quality);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < 1 + (i % 3); k++) {
      const target = 2 + Math.floor(rng.next() * 28);
      const predicted = Math.max(2, Math.min(bins - 3, Math.round(target + rng.normal() * noise)));
      const targetMm = (target + 0.5) * binMm;
      const expectedMm = targetMm + rng.normal() * noise * binMm * 0.8;
      const e = snippetErrors({ target, predicted, expectedMm, targetMm, validBins }, binMm);
      snip.case.push(i);
      snip.target.push(target);
      snip.predicted.push(predicted);
      snip.expectedMm.push(expectedMm);
      snip.targetMm.push(targetMm);
      snip.randomMm.push(e.randomMm);
      snip.middleMm.push(e.middleMm);
    }
  return {
    split: o.split ?? 'test', ids, reports, rank, top, topSim, classes, snippets: snip, binMm,
    ...(o.subsetOf ? { subset: { of: o.subsetOf, rule: 'fake subset' } } : {}),
  };
}

export function fakeReport(o: FakeOptions): EvalReport {
  return summarize(fakeRaw(o), { resamples: 300, seed: 1 });
}

/** metrics.jsonl lines of a 400-step run logged every 10 steps. */
export function fakeMetrics(steps = 400, every = 10, seed = 3, gradNorm = true): string {
  const rng = new Rng(seed);
  const lines: string[] = [];
  for (let s = every; s <= steps; s += every) {
    const t = s / steps;
    const lr = s < 40 ? (1e-3 * s) / 40 : 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + Math.cos(Math.PI * (s - 40) / (steps - 40)));
    const siglip = 0.7 * Math.exp(-2 * t) + 0.25 + 0.05 * rng.normal();
    const prompts = 0.69 * Math.exp(-1.2 * t) + 0.3 + 0.04 * rng.normal();
    const localization = 3.2 * Math.exp(-3 * t) + 1.1 + 0.1 * rng.normal();
    const row: Record<string, number> = { step: s, lr, loss: siglip + 0.5 * prompts + 0.25 * localization, siglip, prompts, localization, msPerStep: 900, liveBytes: 1e8 };
    if (gradNorm) row.gradNorm = 2 * Math.exp(-t) + 0.3 * Math.abs(rng.normal());
    lines.push(JSON.stringify(row));
  }
  return lines.join('\n') + '\n';
}

/** A whole fake run folder. */
export function writeFakeRun(dir: string, o: { n?: number; quality?: number; train?: boolean; evaluation?: boolean; metrics?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const n = o.n ?? 40;
  if (o.metrics !== false) writeFileSync(join(dir, 'metrics.jsonl'), fakeMetrics());
  writeFileSync(join(dir, 'train-config.json'), JSON.stringify({ steps: 400, batch: 8, lr: 1e-3, seed: 0, model: { promptWeight: 0.5, localization: { weight: 0.25, l1Weight: 0 } } }));
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ data: '/data/synthetic' }));
  if (o.evaluation !== false) {
    writeFileSync(join(dir, 'eval-test.json'), toCompactJson(fakeReport({ n, seed: 11, quality: o.quality ?? 1 })));
    if (o.train !== false) writeFileSync(join(dir, 'eval-train.json'), toCompactJson(fakeReport({ n, seed: 12, quality: (o.quality ?? 1) * 2.5, split: 'train', subsetOf: 4 * n })));
  }
}
