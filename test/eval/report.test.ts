// The run report from a fake run folder (metrics.jsonl + eval-*.json written here): one
// self-contained HTML file with an <svg> per plot and no external reference; one-line errors
// naming the missing file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { buildReportHtml, parseMetrics, writeRunReport } from '../../src/eval/report.ts';
import { readEvaluations } from '../../src/eval/run.ts';
import { writeFakeRun, fakeMetrics } from './fake-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'ctvlm-report-'));
const svgCount = (html: string) => (html.match(/<svg[\s>]/g) ?? []).length;

test('report.html: every plot an inline <svg>, no external reference, no script', async () => {
  const run = join(dir, 'run');
  writeFakeRun(run, { n: 40 });
  const path = await writeRunReport(run);
  assert.is(path, join(run, 'report.html'));
  const html = readFileSync(path, 'utf8');
  assert.not.match(html, /https?:\/\//i, 'no http(s) URL');
  assert.not.match(html, /<script|<link|<img|@import|url\((?!#)/i, 'no script, stylesheet, image or external url()');
  // 6 training curves (total, SigLIP, prompts, localization, gradient norm, lr), recall@k,
  // the AUROC forest plot, 18 ROC panels, the MAE bars, 4 depth scatters (test and train).
  assert.is(svgCount(html), 6 + 1 + 1 + 18 + 1 + 4);
  for (const title of ['Total loss', 'SigLIP loss', 'Disease-prompt loss', 'Localization loss', 'Gradient norm', 'Learning rate', 'recall@k', 'Zero-shot AUROC per disease', 'Pleural effusion', 'Localization error per snippet', 'test: argmax bin', 'train: expected depth'])
    assert.ok(html.includes(title), title);
  for (const axis of ['training step', 'recall (%)', 'false-positive rate', 'true-positive rate', 'true depth, target bin centre (mm)', 'predicted depth (mm)', 'mean absolute error (mm)', 'AUROC (%)'])
    assert.ok(html.includes(axis), axis);
  assert.match(html, /zero-shot disease classification, macro AUROC \(%\)<\/td><td class="num">\d+\.\d \[\d+\.\d, \d+\.\d\]/);
  assert.match(html, /train \(40 of 160 cases\)/);
  assert.match(html, /own volume ranked|found first/);
  // The SVGs are well formed enough to nest: as many closing as opening tags.
  assert.is((html.match(/<\/svg>/g) ?? []).length, svgCount(html));
});

test('report without the training evaluation, without gradNorm, and from an old evaluation file', async () => {
  const run = join(dir, 'old');
  writeFakeRun(run, { n: 12, train: false });
  writeFileSync(join(run, 'metrics.jsonl'), fakeMetrics(100, 10, 1, false) + '{"step": 11'); // a line cut off by a kill
  const { main } = await readEvaluations(run);
  // An evaluation file written before intervals and per-case material existed.
  const old = { split: 'test', cases: 12, retrieval: { 'R@1': 0.25, 'R@5': 0.5, 'R@10': 0.75 }, retrievalChance: { 'R@1': 1 / 12, 'R@5': 5 / 12, 'R@10': 10 / 12 }, zeroShot: { perClass: main!.zeroShot.perClass.map((c) => ({ label: c.label, auroc: c.auroc, positives: c.positives })), macroAuroc: 0.6 }, localization: { n: 5, maeArgmaxMm: 20, maeExpectedMm: 18, maeRandomMm: 60, maeMiddleMm: 40 } };
  writeFileSync(join(run, 'eval-test.json'), JSON.stringify(old));
  const html = readFileSync(await writeRunReport(run), 'utf8');
  assert.not.match(html, /https?:\/\//i);
  assert.ok(html.includes('run <code>ctvlm eval</code> again for ROC curves'));
  assert.not.ok(html.includes('Gradient norm'));
  assert.ok(html.includes('Total loss'));
  assert.match(html, /60\.0/);
  assert.is(parseMetrics(readFileSync(join(run, 'metrics.jsonl'), 'utf8')).length, 10);
});

test('buildReportHtml escapes what it shows', () => {
  const html = buildReportHtml({ name: '<run & "x">', metrics: [], main: null, train: null });
  assert.ok(html.includes('&lt;run &amp; &quot;x&quot;&gt;'));
  assert.ok(html.includes('No evaluation yet'));
});

test('missing files: a DataError naming the file; `ctvlm report` prints one line', async () => {
  const noMetrics = join(dir, 'no-metrics');
  writeFakeRun(noMetrics, { metrics: false });
  await writeRunReport(noMetrics).then(() => assert.unreachable(), (e) => assert.match((e as Error).message, /no-metrics[/\\]metrics\.jsonl: file: missing/));
  const noEval = join(dir, 'no-eval');
  writeFakeRun(noEval, { evaluation: false });
  await writeRunReport(noEval).then(() => assert.unreachable(), (e) => assert.match((e as Error).message, /no-eval[/\\]eval-test\.json: file: missing: evaluate the run first/));
  if (!existsSync(join(repoRoot, 'dist/cli.js'))) return console.log('  skip: the CLI part needs dist/ (node build.mjs)');
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'dist/cli.js'), ...args], { encoding: 'utf8', timeout: 30_000 });
  for (const [d, file] of [[noMetrics, 'metrics.jsonl'], [noEval, 'eval-test.json'], [join(dir, 'nothing-here'), 'folder']] as const) {
    const r = cli('report', d);
    assert.is(r.status, 1, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
  }
  const ok = join(dir, 'cli-ok');
  writeFakeRun(ok, { n: 15 });
  const r = cli('report', ok);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), join(ok, 'report.html'));
  unlinkSync(join(ok, 'report.html'));
  assert.is(cli('report', '--run', ok).status, 0);
  assert.ok(existsSync(join(ok, 'report.html')));
  assert.is(cli('report').status, 2);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
