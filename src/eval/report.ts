// The run report: RUN/report.html, one self-contained file (inline SVG and CSS, no script,
// no external reference) that shows a run at a glance: the evaluation with its 95%
// intervals (test beside train), the training curves per objective, recall@k against
// chance, ROC curves per disease, predicted against true depth per snippet, and a few
// retrieval examples. Built from RUN/metrics.jsonl, RUN/eval-<split>.json,
// RUN/eval-train.json and RUN/train-config.json.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import { writeAtomic } from '../io/atomic.ts';
import { readEvaluations, casesText, pctCi, mmCi, evalFileName, TRAIN_SUBSET_FILE } from './run.ts';
import { hasPerCase, type EvalReport } from './summary.ts';
import { PALETTE, barChart, emptyChart, esc, forestChart, lineChart, rocChart, rocPoints, scatterChart, type BarGroup, type ForestRow } from './svg.ts';

export interface MetricRow {
  step: number;
  [key: string]: number | null;
}

export interface ReportInput {
  /** Heading: the run folder's name. */
  name: string;
  /** Folder shown under the heading. */
  runDir?: string;
  metrics: MetricRow[];
  main: EvalReport | null;
  train: EvalReport | null;
  /** train-config.json, when present. */
  config?: Record<string, unknown> | null;
  /** run.json's dataset, and the evaluated checkpoint's name (else the latest's). */
  data?: string;
  checkpoint?: string;
  generated?: Date;
}

/** metrics.jsonl rows (lines cut off by a kill are skipped). */
export function parseMetrics(text: string): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try {
      const r = JSON.parse(l) as MetricRow;
      if (typeof r.step === 'number') rows.push(r);
    } catch {
      // a partial last line
    }
  }
  return rows;
}

// ---- pieces ----

/** What each logged field is, in display order; other numeric fields are plotted after these under their own names. */
const CURVES: { key: string; title: string; yLabel: string }[] = [
  { key: 'loss', title: 'Total loss', yLabel: 'loss' },
  { key: 'siglip', title: 'SigLIP loss (report-volume contrast)', yLabel: 'loss' },
  { key: 'prompts', title: 'Disease-prompt loss (weighted BCE)', yLabel: 'loss' },
  { key: 'reportPrompts', title: 'Disease-prompt loss on the reports (weighted BCE)', yLabel: 'loss' },
  { key: 'localization', title: 'Localization loss (soft cross-entropy over depth)', yLabel: 'loss' },
  { key: 'gradNorm', title: 'Gradient norm (before clipping)', yLabel: 'global L2 norm' },
  { key: 'lr', title: 'Learning rate', yLabel: 'learning rate' },
];
const NOT_CURVES = new Set(['step', 'msPerStep', 'dataWaitMs', 'liveBytes']);

function trainingCharts(rows: MetricRow[]): string[] {
  const keys = [...CURVES.map((c) => c.key), ...Object.keys(rows[0] ?? {}).filter((k) => !NOT_CURVES.has(k) && !CURVES.some((c) => c.key === k))];
  const out: string[] = [];
  for (const key of keys) {
    const pts = rows.filter((r) => typeof r[key] === 'number' && Number.isFinite(r[key] as number)).map((r) => [r.step, r[key] as number] as [number, number]);
    if (pts.length === 0) continue;
    const c = CURVES.find((c) => c.key === key) ?? { key, title: key, yLabel: key };
    const ys = pts.map((p) => p[1]);
    const logY = key !== 'lr' && ys.every((y) => y > 0) && Math.max(...ys) / Math.min(...ys) > 30;
    out.push(lineChart([{ name: c.title, points: pts, color: key === 'lr' ? PALETTE.chance : PALETTE.test, smooth: key !== 'lr' }], {
      title: c.title + (logY ? ' (log scale)' : ''), xLabel: 'training step', yLabel: c.yLabel, width: 396, height: 260, logY, integerX: true,
    }));
  }
  return out;
}

const splitName = (r: EvalReport) => (r.subset ? `${r.split} (${casesText(r)})` : `${r.split} (${r.cases} cases)`);

function summaryTable(main: EvalReport, train: EvalReport | null): string {
  const rs = train ? [main, train] : [main];
  const head = `<tr><th>metric</th>${rs.map((r) => `<th>${esc(splitName(r))}</th>`).join('')}<th>reference</th></tr>`;
  const rows: string[] = [];
  const row = (name: string, cells: string[], ref: string, cls = '') => rows.push(`<tr${cls ? ` class="${cls}"` : ''}><td>${name}</td>${cells.map((c) => `<td class="num">${c}</td>`).join('')}<td class="ref">${ref}</td></tr>`);
  for (const k of Object.keys(main.retrieval))
    row(`retrieval report &rarr; volume, ${k} (%)`, rs.map((r) => esc(pctCi(r.retrieval[k] ?? NaN, r.retrievalCi?.[k]))), `chance ${[...new Set(rs.map((r) => esc(pctCi(r.retrievalChance[k] ?? NaN))))].join(' / ')}`);
  row('zero-shot disease classification, macro AUROC (%)', rs.map((r) => esc(pctCi(r.zeroShot.macroAuroc, r.zeroShot.macroAurocCi))), 'chance 50.0', 'key');
  const l = (r: EvalReport) => r.localization;
  row(`localization MAE, argmax bin`, rs.map((r) => esc(mmCi(l(r).maeArgmaxMm, l(r).ci?.maeArgmaxMm))), 'paper 36.3 mm (CT-RATE)', 'key');
  row(`localization MAE, expected depth`, rs.map((r) => esc(mmCi(l(r).maeExpectedMm, l(r).ci?.maeExpectedMm))), '');
  row(`baseline: random valid bin`, rs.map((r) => esc(mmCi(l(r).maeRandomMm, l(r).ci?.maeRandomMm))), 'must be beaten', 'base');
  row(`baseline: middle valid bin`, rs.map((r) => esc(mmCi(l(r).maeMiddleMm, l(r).ci?.maeMiddleMm))), 'must be beaten', 'base');
  row('located snippets', rs.map((r) => String(l(r).n)), '');
  return `<table class="summary">${head}${rows.join('')}</table>`;
}

function retrievalChart(main: EvalReport, train: EvalReport | null): string {
  const ks = Object.keys(main.retrieval);
  if (ks.length === 0) return emptyChart('Recall@k', 'the pool is too small for recall@k', 560, 300);
  const groups: BarGroup[] = ks.map((k) => ({
    label: k,
    bars: [main, ...(train ? [train] : [])].map((r) => ({
      name: r.split, value: 100 * (r.retrieval[k] ?? NaN), ci: r.retrievalCi?.[k] ? ([100 * r.retrievalCi[k][0], 100 * r.retrievalCi[k][1]] as [number, number]) : undefined,
      color: r === main ? PALETTE.test : PALETTE.train,
    })),
    reference: 100 * (main.retrievalChance[k] ?? NaN),
  }));
  return barChart(groups, { title: `Report-to-volume recall@k (pool of ${main.cases}${train && train.cases !== main.cases ? ` / ${train.cases}` : ''} volumes)`, xLabel: 'k (own volume among the top k)', yLabel: 'recall (%)', width: 620, height: 320, referenceName: 'chance (k / pool)' });
}

function aurocForest(main: EvalReport, train: EvalReport | null): string {
  const rs = train ? [main, train] : [main];
  const byLabel = (r: EvalReport, label: string) => r.zeroShot.perClass.find((c) => c.label === label);
  const order = [...main.zeroShot.perClass].sort((a, b) => (Number.isFinite(b.auroc) ? b.auroc : -1) - (Number.isFinite(a.auroc) ? a.auroc : -1));
  const pt = (r: EvalReport, v: number, ci?: [number, number]) => ({ name: r.split, value: 100 * v, ci: ci ? ([100 * ci[0], 100 * ci[1]] as [number, number]) : undefined, color: r === main ? PALETTE.test : PALETTE.train });
  const rows: ForestRow[] = [
    { label: 'macro mean', bold: true, points: rs.map((r) => pt(r, r.zeroShot.macroAuroc, r.zeroShot.macroAurocCi)) },
    ...order.map((c) => ({
      label: c.label,
      note: `${c.positives}+ / ${c.negatives}-`,
      points: rs.map((r) => {
        const x = byLabel(r, c.label);
        return pt(r, x?.auroc ?? NaN, x?.aurocCi);
      }),
    })),
  ];
  return forestChart(rows, { title: 'Zero-shot AUROC per disease, with 95% intervals', xLabel: 'AUROC (%)', x: [0, 100], reference: 50, referenceName: 'chance (50)', width: 720, labelWidth: 300 });
}

function rocGrid(main: EvalReport, train: EvalReport | null): string {
  if (!hasPerCase(main)) return '<p class="note">This evaluation file has no per-case scores (written before they were kept): run <code>ctvlm eval</code> again for ROC curves.</p>';
  const panels = main.zeroShot.perClass.map((c) => {
    const t = train?.zeroShot.perClass.find((x) => x.label === c.label);
    const curves = [{ name: main.split, points: rocPoints(c.scores, c.labels), color: PALETTE.test }];
    const lines = [{ text: `${main.split}: ${pctCi(c.auroc, c.aurocCi)}  (${c.positives}+ ${c.negatives}-)`, color: PALETTE.test }];
    if (t && train && hasPerCase(train)) {
      curves.push({ name: train.split, points: rocPoints(t.scores, t.labels), color: PALETTE.train });
      lines.push({ text: `${train.split}: ${pctCi(t.auroc, t.aurocCi)}  (${t.positives}+ ${t.negatives}-)`, color: PALETTE.train });
    }
    return rocChart(curves.reverse(), { title: c.label, lines });
  });
  return `<div class="grid roc">${panels.join('\n')}</div>`;
}

function maeChart(main: EvalReport, train: EvalReport | null): string {
  const rs = train ? [main, train] : [main];
  const defs: [string, 'maeArgmaxMm' | 'maeExpectedMm' | 'maeRandomMm' | 'maeMiddleMm'][] = [
    ['model: argmax', 'maeArgmaxMm'], ['model: expected', 'maeExpectedMm'], ['random bin', 'maeRandomMm'], ['middle bin', 'maeMiddleMm'],
  ];
  const groups: BarGroup[] = defs.map(([label, key]) => ({
    label,
    bars: rs.map((r) => ({ name: r.split, value: r.localization[key], ci: r.localization.ci?.[key], color: r === main ? PALETTE.test : PALETTE.train })),
  }));
  return barChart(groups, { title: 'Localization error per snippet (lower is better)', xLabel: '', yLabel: 'mean absolute error (mm)', width: 620, height: 320 });
}

function depthScatters(main: EvalReport, train: EvalReport | null): string {
  const out: string[] = [];
  for (const r of train ? [main, train] : [main]) {
    const s = r.localization.snippets;
    const bin = r.localization.binMm;
    if (!s || s.case.length === 0) {
      out.push(emptyChart(`${r.split}: predicted vs true depth`, r.localization.n ? 'no per-snippet data in this file' : 'no located snippets', 298, 330));
      continue;
    }
    const color = r === main ? PALETTE.test : PALETTE.train;
    const common = { xLabel: 'true depth, target bin centre (mm)', yLabel: 'predicted depth (mm)', width: 298, height: 320 };
    out.push(scatterChart([{ name: 'snippet', points: s.targetMm.map((t, k) => [t, (s.predicted[k] + 0.5) * bin]), color }], { ...common, title: `${r.split}: argmax bin, MAE ${mmCi(r.localization.maeArgmaxMm)}` }));
    out.push(scatterChart([{ name: 'snippet', points: s.targetMm.map((t, k) => [t, s.expectedMm[k]]), color }], { ...common, title: `${r.split}: expected depth, MAE ${mmCi(r.localization.maeExpectedMm)}` }));
  }
  return `<div class="grid scatter">${out.join('\n')}</div>`;
}

function chips(labels: string[], shared?: Set<string>): string {
  if (labels.length === 0) return '<span class="chip none">no finding</span>';
  return labels.map((l) => `<span class="chip${shared ? (shared.has(l) ? ' shared' : ' other') : ''}">${esc(l)}</span>`).join(' ');
}

function examplesHtml(r: EvalReport): string {
  if (r.examples.length === 0) return '<p class="note">No retrieval examples in this evaluation file.</p>';
  return r.examples
    .map((e) => {
      const own = new Set(e.labels);
      const top = e.top
        .map((t, k) => `<tr${t.case === e.case ? ' class="own"' : ''}><td class="num">${k + 1}</td><td class="id">${esc(t.id)}${t.case === e.case ? ' <b>(own)</b>' : ''}</td><td class="num">${t.similarity.toFixed(3)}</td><td>${chips(t.labels, own)}</td></tr>`)
        .join('');
      const verdict = e.rank === 1 ? 'found first' : e.rank <= 5 ? `own volume ranked ${e.rank}` : `own volume ranked ${e.rank} of ${r.cases}`;
      return `<div class="example"><div class="ex-head"><b>${esc(e.id)}</b> <span class="${e.rank <= 5 ? 'good' : 'bad'}">${esc(verdict)}</span></div>
<blockquote>${esc(e.report)}</blockquote>
<div>its labels: ${chips(e.labels)}</div>
<table class="top"><tr><th>#</th><th>retrieved volume</th><th>cosine</th><th>its labels (green: shared with the report's case)</th></tr>${top}</table></div>`;
    })
    .join('\n');
}

function configHtml(i: ReportInput): string {
  const c = i.config as { steps?: number; batch?: number; lr?: number; seed?: number; textWarmupSteps?: number; negativeReports?: number; model?: { promptWeight?: number; reportPromptWeight?: number; localization?: { weight?: number; l1Weight?: number } } } | null | undefined;
  const items: [string, string][] = [];
  if (i.runDir) items.push(['folder', i.runDir]);
  if (i.data) items.push(['dataset', i.data]);
  if (i.checkpoint) items.push(['checkpoint', i.checkpoint]);
  const last = i.metrics[i.metrics.length - 1];
  if (c?.steps !== undefined) items.push(['steps', `${last ? `${last.step} of ` : ''}${c.steps}`]);
  if (c?.batch !== undefined) items.push(['batch', String(c.batch)]);
  if (c?.lr !== undefined) items.push(['peak learning rate', String(c.lr)]);
  if (c?.textWarmupSteps) items.push(['text warm-up', `${c.textWarmupSteps} steps (report -> labels)`]);
  if (c?.negativeReports) items.push(['negative reports', `${c.negativeReports} per step (SigLIP: ${(c.batch ?? 0) + c.negativeReports} texts per image)`]);
  if (c?.model) {
    const loc = c.model.localization ?? {};
    items.push(['objective', `SigLIP + ${c.model.promptWeight ?? '?'} x prompts${c.model.reportPromptWeight ? ` + ${c.model.reportPromptWeight} x report prompts` : ''} + ${loc.weight ?? '?'} x localization${loc.l1Weight ? ` (+ ${loc.l1Weight}/mm x depth L1)` : ''}`]);
  }
  if (c?.seed !== undefined) items.push(['seed', String(c.seed)]);
  if (last && typeof last.loss === 'number') items.push(['last logged loss', last.loss.toFixed(4)]);
  items.push(['written', (i.generated ?? new Date()).toISOString().replace('T', ' ').slice(0, 16) + ' UTC']);
  return `<dl class="meta">${items.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>`;
}

const CSS = `
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f3f4f6}
main{max-width:1280px;margin:0 auto;padding:20px 28px 40px}
h1{font-size:24px;margin:4px 0 6px}h2{font-size:19px;margin:30px 0 8px;border-bottom:2px solid #d9dce1;padding-bottom:4px}
p.lead{margin:4px 0 12px;color:#444;max-width:900px}p.note{color:#555;font-style:italic}
.card{background:white;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 16px;margin:10px 0}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 26px;margin:6px 0 0}dl.meta div{display:flex;gap:6px}dt{color:#666}dd{margin:0;font-weight:500}
table{border-collapse:collapse}table.summary{width:100%;font-size:14px}
table.summary th,table.summary td{padding:6px 10px;border-bottom:1px solid #e3e5e8;text-align:left}
table.summary th{background:#f0f2f5}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}td.ref{color:#555}
tr.key td{font-weight:600}tr.base td{color:#555}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid svg{background:white;border-radius:6px;box-shadow:0 1px 2px rgba(0,0,0,.07)}
.grid.roc{gap:8px}
.example{background:white;border-radius:8px;padding:10px 14px;margin:10px 0;box-shadow:0 1px 2px rgba(0,0,0,.07)}
.ex-head{margin-bottom:4px}.good{color:${PALETTE.ok};font-weight:600;margin-left:8px}.bad{color:${PALETTE.bad};font-weight:600;margin-left:8px}
blockquote{margin:6px 0;padding:6px 10px;background:#f6f7f9;border-left:3px solid #c5cad3;font-size:13.5px;color:#333}
table.top{font-size:13px;margin-top:6px}table.top th,table.top td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
tr.own td{background:#eef5ff}td.id{white-space:nowrap}
.chip{display:inline-block;padding:1px 7px;border-radius:10px;background:#e4e7ec;font-size:12px;margin:1px 0}
.chip.shared{background:#d3f0da;color:#17602a}.chip.other{background:#f1f1f1;color:#666}.chip.none{background:transparent;color:#888;font-style:italic}
details summary{cursor:pointer;color:#1f5fa8;margin:8px 0}
footer{color:#666;font-size:12.5px;margin-top:30px}
`;

/** The report as one HTML string (no script, no external reference). */
export function buildReportHtml(i: ReportInput): string {
  const { main, train } = i;
  const parts: string[] = [];
  parts.push(`<h1>Run report: ${esc(i.name)}</h1>`, `<div class="card">${configHtml(i)}</div>`);
  if (main) {
    const b = main.bootstrap;
    parts.push(
      '<h2>Evaluation</h2>',
      `<p class="lead">${esc(({ test: 'Test split', val: 'Validation split', train: 'Training split', all: 'All splits' } as Record<string, string>)[main.split] ?? `Split ${main.split}`)} beside ${train ? 'a same-size subset of the training split (memorisation vs generalisation)' : 'nothing (no training-split evaluation in this folder)'}. In brackets: 95% intervals, ${b ? `percentile bootstrap over cases (${b.exact ? 'exact enumeration' : `${b.resamples} resamples`}; a case's query and snippets resampled with it)` : 'not computed in this file'}.</p>`,
      `<div class="card">${summaryTable(main, train)}</div>`,
    );
  } else parts.push('<h2>Evaluation</h2><p class="note">No evaluation yet: run <code>ctvlm eval --run RUN</code>.</p>');

  parts.push('<h2>Training</h2>', '<p class="lead">Per logged step; faint: the logged values, solid: their moving average.</p>');
  const tc = trainingCharts(i.metrics);
  parts.push(tc.length ? `<div class="grid">${tc.join('\n')}</div>` : '<p class="note">metrics.jsonl has no logged steps yet.</p>');

  if (main) {
    parts.push('<h2>Retrieval</h2>', '<p class="lead">Each report ranks every volume of its split; recall@k is the share of reports whose own volume is among the top k. Dashed: chance.</p>');
    parts.push(`<div class="grid">${retrievalChart(main, train)}</div>`);
    parts.push(`<h3>Examples (${esc(main.split)})</h3>`, examplesHtml(main));
    if (train?.examples.length) parts.push(`<details><summary>Examples from the training split</summary>${examplesHtml(train)}</details>`);

    parts.push('<h2>Zero-shot disease classification</h2>', '<p class="lead">p(present) from the prompt embeddings per disease; AUROC against the labels. Dashed: chance (50).</p>');
    parts.push(`<div class="grid">${aurocForest(main, train)}</div>`, '<h3>ROC curves</h3>', rocGrid(main, train));

    parts.push('<h2>Localization</h2>', `<p class="lead">Each report sentence that cites an image is placed in a ${Number.isFinite(main.localization.binMm) ? `${main.localization.binMm} mm` : ''} depth bin of its scan; error of the most likely bin (argmax) and of the expected depth, against guessing a random or the middle valid bin.</p>`);
    parts.push(`<div class="grid">${maeChart(main, train)}</div>`, '<h3>Predicted against true depth, per snippet</h3>', depthScatters(main, train));
  }
  parts.push(`<footer>Written by <code>ctvlm report</code> from metrics.jsonl${main ? `, ${esc(evalFileName(main.split))}` : ''}${train ? `, ${TRAIN_SUBSET_FILE}` : ''}. Self-contained: no scripts, no external resources.</footer>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(i.name)}: run report</title><style>${CSS}</style></head>
<body><main>
${parts.join('\n')}
</main></body></html>
`;
}

/**
 * Writes RUN/report.html from the run folder's files and returns its path. Needs
 * RUN/metrics.jsonl and an evaluation (RUN/eval-<split>.json; by default eval-test.json, else eval-val / eval-all); throws
 * a DataError naming the missing file otherwise.
 */
export async function writeRunReport(runDir: string, o: { split?: string } = {}): Promise<string> {
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (!existsSync(runDir)) throw new DataError(runDir, 'folder', 'does not exist');
  if (!existsSync(metricsPath)) throw new DataError(metricsPath, 'file', 'missing: not a training run folder (`ctvlm train --out RUN` writes it)');
  const { main, train } = await readEvaluations(runDir, o.split);
  if (!main) throw new DataError(join(runDir, evalFileName(o.split ?? 'test')), 'file', `missing: evaluate the run first (\`ctvlm eval --run ${runDir}\`)`);
  const metrics = parseMetrics(await readFile(metricsPath, 'utf8'));
  const readJson = async (f: string) => {
    try {
      return existsSync(join(runDir, f)) ? (JSON.parse(await readFile(join(runDir, f), 'utf8')) as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  const config = await readJson('train-config.json');
  const run = await readJson('run.json');
  const latest = existsSync(join(runDir, 'latest')) ? (await readFile(join(runDir, 'latest'), 'utf8')).trim() : undefined;
  const html = buildReportHtml({
    name: basename(resolve(runDir)),
    runDir: resolve(runDir),
    metrics,
    main,
    train,
    config,
    data: typeof run?.data === 'string' ? run.data : undefined,
    // The checkpoint the evaluation was of (eval --checkpoint may have taken an earlier one).
    checkpoint: main.checkpoint ? `${main.checkpoint.name} (step ${main.checkpoint.step})` : latest ? basename(latest) : undefined,
  });
  const out = join(runDir, 'report.html');
  await writeAtomic(out, html);
  return out;
}
