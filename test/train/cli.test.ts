// The train and eval commands through the built CLI (dist/cli.js): a tiny run, its
// evaluation, resume, and one-line errors for bad use.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { runCli as cli } from '../helpers/cli.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';

const t = suite('train cli');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-cli-'));

t.before(async () => {
  await writeSyntheticDataset({ out: join(dir, 'data'), n: 16, seed: 5, size: [64, 64], slices: [24, 32], gzipLevel: 0 });
  await writeSyntheticDataset({ out: join(dir, 'other'), n: 6, seed: 6, size: [64, 64], slices: [24, 32], gzipLevel: 0, splits: { val: 0, test: 1 } });
  await writeSyntheticDataset({ out: join(dir, 'sub', 'other'), n: 6, seed: 7, size: [64, 64], slices: [24, 32], gzipLevel: 0, splits: { val: 0, test: 1 } });
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

t('train --preset tiny, then eval, then resume of a finished run', () => {
  const run = join(dir, 'run');
  // A kernel choice set for the run (the matmul's uniform-B path, off by default on most CPUs)
  // and a weight decay, which the run's configuration keeps.
  const r = cli('train', '--data', join(dir, 'data'), '--out', run, '--preset', 'tiny', '--steps', '4', '--tuning', 'matmul.uniformB=true', '--weight-decay', '0.03');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^tuning: matmul\.uniformB=true$/m);
  assert.is(JSON.parse(readFileSync(join(run, 'train-config.json'), 'utf8')).weightDecay, 0.03);
  assert.match(r.stdout, /step +4\/4 +loss/);
  const bad = cli('train', '--data', join(dir, 'data'), '--out', join(dir, 'never'), '--tuning', 'matmul.rows=x');
  assert.is(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^ctvlm train: --tuning 'matmul\.rows=x': matmul\.rows takes number, got string$/m);
  assert.not.match(bad.stdout + bad.stderr, /device:|\n\s+at /, 'refused before a device starts, without a stack trace');
  assert.match(r.stdout, /localization \(test \d+, train \d+ snippets\): MAE/);
  assert.ok(existsSync(join(run, 'eval-test.json')));
  const e = cli('eval', '--run', run, '--split', 'val');
  assert.is(e.status, 0, e.stderr);
  assert.match(e.stdout, /checkpoint .*ckpt-0000004 \(step 4\)/);
  assert.ok(existsSync(join(run, 'eval-val.json')));
  // Another dataset's evaluation goes to RUN/eval-<name>/ and leaves the run's own as it was.
  const own = readFileSync(join(run, 'eval-test.json'), 'utf8');
  const ownReport = readFileSync(join(run, 'report.html'), 'utf8');
  const o = cli('eval', '--run', run, '--data', join(dir, 'other'), '--train-cases', '0');
  assert.is(o.status, 0, o.stderr);
  assert.match(o.stdout, /evaluation: .*eval-other/);
  assert.ok(existsSync(join(run, 'eval-other', 'eval-test.json')));
  assert.is(readFileSync(join(run, 'eval-test.json'), 'utf8'), own, "the run's own evaluation is kept");
  assert.is(readFileSync(join(run, 'report.html'), 'utf8'), ownReport, "the run's report is kept");
  assert.ok(existsSync(join(run, 'eval-train.json')), "the run's training-split evaluation is kept");
  // Another dataset whose folder has the same name gets a folder of its own.
  const o2 = cli('eval', '--run', run, '--data', join(dir, 'sub', 'other'), '--train-cases', '0');
  assert.is(o2.status, 0, o2.stderr);
  assert.match(o2.stdout, /evaluation: .*eval-other-2/);
  assert.not.equal(readFileSync(join(run, 'eval-other-2', 'eval-test.json'), 'utf8'), readFileSync(join(run, 'eval-other', 'eval-test.json'), 'utf8'));
  const again = cli('train', '--data', join(dir, 'data'), '--out', run, '--preset', 'tiny', '--steps', '4');
  assert.is(again.status, 1);
  assert.match(again.stderr, /already holds a run; continue it with --resume/);
});

t('the demo server answers only its own files, and 400 to a malformed address', async () => {
  const { startDemoServer } = await import('../../src/cli/web.ts');
  const run = join(dir, 'run');
  const { server, url } = await startDemoServer({ run, port: 0, webDir: join(repoRoot, 'dist/web') });
  try {
    const base = url.split('?')[0];
    assert.is((await fetch(`${base}%E0%A4%A`)).status, 400);
    assert.is((await fetch(`${base}weights/config.json`)).status, 200);
    assert.is((await fetch(`${base}weights/model.safetensors`)).status, 200);
    assert.is((await fetch(`${base}weights/../../etc/passwd`)).status, 404);
    assert.is((await fetch(`${base}index.html`)).status, 200);
  } finally {
    server.close();
  }
  await startDemoServer({ run: join(dir, 'data'), port: 0, webDir: join(repoRoot, 'dist/web') }).then(
    () => assert.unreachable('not a run folder'),
    (e) => assert.match((e as Error).message, /config\.json: missing/),
  );
});

t('bad use: one line naming what is wrong', () => {
  for (const [args, msg] of [
    [['train', '--out', join(dir, 'x')], /--data is required/],
    [['train', '--data', join(dir, 'nope'), '--out', join(dir, 'x')], /no manifest at .*nope/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'x'), '--preset', 'huge'], /unknown preset 'huge'/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'x'), '--steps=-3'], /--steps: expected a non-negative integer/],
    [['eval', '--run', join(dir, 'nope')], /nope: folder: does not exist/],
    [['eval', '--run', join(dir, 'data')], /train-config\.json: missing: not a run folder/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'y'), '--preset', 'tiny', '--batch', '40'], /training case\(s\); a batch of 40 needs at least 40/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'z')], /test case\(s\); the evaluation needs at least 10/],
    [['quickstart', '--dir', join(dir, 'q'), '--test-fraction', '0.96'], /--test-fraction must be above 0 and below 0.95/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'n'), '--negative-reports', '2.5'], /--negative-reports: expected a non-negative integer/],
    // A negative number after an option is its value (parseArgs alone calls it "ambiguous").
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'n'), '--negative-reports', '-1'], /--negative-reports: expected a non-negative integer, got '-1'/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'n'), '--weight-decay', 'lots'], /--weight-decay: expected a non-negative number, got 'lots'/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'n'), '--lr', ''], /--lr: expected a non-negative number, got ''/],
    // Checked before any data is written: the splits are a hash of the case ids.
    [['quickstart', '--dir', join(dir, 'q'), '--steps', '0'], /--steps must be at least 1/],
    [['data', 'synth', '--out', join(dir, 'q'), '--prevalence', '0.1,,0.2'], /--prevalence: expected one number 0-1 or 18/],
    [['train', '--data', join(dir, 'data'), '--out', join(dir, 'n'), '--steps', '0'], /--steps must be at least 1/],
    [['quickstart', '--dir', join(dir, 'q'), '--cases', '40', '--test-fraction', '0.9'], /--cases 40 --test-fraction 0.9 give \d+ training and \d+ test case\(s\); the small preset needs at least 8 training/],
  ] as [string[], RegExp][]) {
    const r = cli(...args);
    assert.ok(r.status === 1 || r.status === 2, `${args.join(' ')}: exit ${r.status}`);
    assert.match(r.stderr, msg);
    assert.not.match(r.stderr, /at .*(file:\/\/|\.js:\d)/, 'no JavaScript stack trace');
  }
  assert.not.ok(existsSync(join(dir, 'q')), 'a refused quickstart writes no data');
  // 'y' (batch 40) and 'z' (too few test cases) are refused inside train(), after the run
  // folder's configuration is resolved and before anything is written.
  for (const refused of ['y', 'z']) assert.not.ok(existsSync(join(dir, refused)), `a refused train leaves no run folder (${refused})`);
});

t.run();
