// The ablation: paired differences, the claims' verdicts and the Markdown table on fake
// evaluations; then `ctvlm ablate` end to end with one 2-step tiny variant (and its resume).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { runCli as cli } from '../helpers/cli.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import { ABLATION_VARIANTS, L1_WEIGHT_PER_MM, difference, formatAblationMarkdown, judgeClaims, objectiveText, type VariantResult } from '../../src/eval/ablation.ts';
import { fakeReport } from './fake-run.ts';

const variant = (name: string, test: VariantResult['test']): VariantResult => {
  const v = ABLATION_VARIANTS.find((x) => x.name === name)!;
  return { name, title: v.title, objective: objectiveText(v.apply(preset('small'))), test };
};

test('variants change only their own weights', () => {
  const cfg = (name: string) => ABLATION_VARIANTS.find((v) => v.name === name)!.apply(preset('small')).model;
  const base = preset('small').model;
  assert.is(cfg('full').promptWeight, base.promptWeight);
  assert.is(cfg('full').localization.weight, base.localization.weight);
  assert.is(cfg('full').localization.l1Weight, 0);
  assert.is(cfg('no-prompts').promptWeight, 0);
  assert.is(cfg('no-prompts').reportPromptWeight, 0);
  assert.is(cfg('full').reportPromptWeight, base.reportPromptWeight);
  assert.is(cfg('no-prompts').localization.weight, base.localization.weight);
  assert.is(cfg('no-localization').localization.weight, 0);
  assert.is(cfg('no-localization').promptWeight, base.promptWeight);
  assert.is(cfg('localization-l1').localization.l1Weight, L1_WEIGHT_PER_MM);
  assert.is(objectiveText(ABLATION_VARIANTS[3].apply(preset('small'))), `SigLIP + 0.5 x prompts + ${base.reportPromptWeight} x report prompts + ${base.localization.weight} x localization (with ${L1_WEIGHT_PER_MM}/mm depth L1)`);
});

test('paired difference: zero against itself, paired on shared cases, conservative otherwise', () => {
  const a = fakeReport({ n: 40, seed: 3, quality: 1 });
  const same = difference(a, 'macroAuroc', a, 'macroAuroc');
  assert.equal(same, { value: 0, ci: [0, 0], paired: true });
  const b = fakeReport({ n: 40, seed: 3, quality: 0.2 });
  const d = difference(a, 'macroAuroc', b, 'macroAuroc');
  assert.ok(d.paired && d.value > 0 && d.ci[0] <= d.value && d.value <= d.ci[1]);
  const loc = difference(a, 'maeArgmaxMm', a, 'maeRandomMm');
  assert.ok(loc.paired && loc.ci[1] < 0, 'beats the random bin');
  const other = fakeReport({ n: 40, seed: 3, quality: 0.2, split: 'train' }); // other case ids
  const u = difference(a, 'macroAuroc', other, 'macroAuroc');
  assert.not.ok(u.paired);
  const ci = (r: typeof a) => r.zeroShot.macroAurocCi;
  assert.equal(u.ci, [ci(a)[0] - ci(other)[1], ci(a)[1] - ci(other)[0]]);
});

test('claims: held, not held, not tested', () => {
  const n = 60;
  const full = fakeReport({ n, seed: 5, quality: 1.5 });
  const results = [
    variant('full', full),
    variant('no-prompts', fakeReport({ n, seed: 5, quality: 0.1 })),
    variant('no-localization', fakeReport({ n, seed: 5, quality: 1.5, locNoise: 20 })),
    variant('localization-l1', fakeReport({ n, seed: 5, quality: 1.5, locNoise: 0.5 })),
  ];
  const v = Object.fromEntries(judgeClaims(results).map((c) => [c.claim, c.verdict]));
  assert.equal(v, {
    'Disease prompts raise zero-shot AUROC': 'held',
    'Adding localization leaves retrieval unchanged': 'held',
    'Adding localization leaves zero-shot classification unchanged': 'held',
    'Localization beats the random-bin baseline': 'held',
    'Localization beats the middle-bin baseline': 'held',
    'The depth L1 term lowers the expected-depth error': 'held',
  });
  // Prompts that change nothing: not held. A missing variant: not tested.
  const flat = [variant('full', full), variant('no-prompts', full)];
  const c = judgeClaims(flat);
  assert.is(c[0].verdict, 'not held');
  assert.is(c[1].verdict, 'not tested');
  assert.match(c[1].note!, /missing/);
  // A handful of test cases: nothing is judged.
  const tiny = fakeReport({ n: 5, seed: 1, quality: 1 });
  assert.ok(judgeClaims([variant('full', tiny), variant('no-prompts', tiny)]).every((x) => x.verdict === 'not tested' && /5 test cases/.test(x.note!)));

  const md = formatAblationMarkdown({ data: 'runs/data', preset: 'small', steps: 400, seed: 0, results });
  const rows = md.split('\n').filter((l) => l.startsWith('|'));
  assert.is(rows[0], '| variant | objective | R@10 (%) | zero-shot macro AUROC (%) | localization MAE, argmax (mm) | localization MAE, expected depth (mm) |');
  const cols = (l: string) => l.replace(/\\\|/g, '').split('|').length;
  for (const r of rows.slice(0, 7)) assert.is(cols(r), 8, r);
  assert.match(md, /\| full \| SigLIP \+ 0\.5 x prompts \+ 1 x report prompts \+ 0\.25 x localization \| \d+\.\d \[\d+\.\d, \d+\.\d\] \| \d+\.\d \[\d+\.\d, \d+\.\d\] \| \d+\.\d \[\d+\.\d, \d+\.\d\] \| \d+\.\d \[/);
  assert.match(md, /\| reference \| chance \/ baselines \(full's snippets\) \| chance 16\.7 \| chance 50\.0 \| random bin \d+\.\d \[/);
  assert.match(md, /\| Disease prompts raise zero-shot AUROC \| full − no-prompts, macro AUROC \| \+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\] points \| \*\*held\*\* \|/);
  assert.match(md, /\| Localization beats the random-bin baseline \| .* \| −\d+\.\d \[−\d+\.\d, −\d+\.\d\] mm \| \*\*held\*\* \|/);
  assert.match(md, /design card, not a paper claim/);
  assert.match(md, /0\.01 per mm/);
  const partial = formatAblationMarkdown({ data: 'd', preset: 'tiny', steps: 2, seed: 0, results: [variant('full', full), variant('no-prompts', null)] });
  assert.match(partial, /\| no-prompts \| .* \| not evaluated \| \| \| \|/);
  assert.match(partial, /not tested \(a variant is missing/);
});

test('ctvlm ablate end to end: one 2-step tiny variant, then its resume; bad use', async () => {
  if (!existsSync(join(repoRoot, 'dist/cli.js'))) return console.log('  skip: needs dist/ (node build.mjs)');
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-ablate-'));
  try {
    await writeSyntheticDataset({ out: join(dir, 'data'), n: 16, seed: 5, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
    const args = ['ablate', '--data', join(dir, 'data'), '--out', join(dir, 'abl'), '--preset', 'tiny', '--steps', '2', '--variants', 'full', '--train-cases', '4'];
    const r = cli(...args);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /\[full\] step +2\/2/);
    assert.match(r.stdout, /\[full\] {3}zero-shot macro AUROC: test .* \| train/);
    const md = readFileSync(join(dir, 'abl', 'ablation.md'), 'utf8');
    assert.ok(r.stdout.includes(md.trim().split('\n')[0]));
    assert.match(md, /^# Ablation: /);
    assert.match(md, /\| full \| SigLIP \+ 0\.5 x prompts \+ 0\.25 x localization \|/);
    for (const f of ['eval-test.json', 'eval-train.json', 'report.html', 'ablation-done.json']) assert.ok(existsSync(join(dir, 'abl', 'full', f)), f);
    const again = cli(...args);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stdout, /already trained and evaluated/);
    assert.not.match(again.stdout, /step +1\/2/);
    const bad = cli('ablate', '--data', join(dir, 'data'), '--out', join(dir, 'x'), '--variants', 'full,nope');
    assert.is(bad.status, 2);
    assert.match(bad.stderr, /unknown variant 'nope'/);
    const noData = cli('ablate', '--data', join(dir, 'none'), '--out', join(dir, 'x'));
    assert.is(noData.status, 1);
    assert.match(noData.stderr, /no manifest at/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
