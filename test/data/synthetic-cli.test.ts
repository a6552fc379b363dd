// The CLI pieces of the synthetic benchmark: progress bar, `data synth`, `data mine`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Progress, fmtTime } from '../../src/cli/progress.ts';
import { command as synth } from '../../src/cli/data-synth.ts';
import { command as mine } from '../../src/cli/data-mine.ts';
import { DataError } from '../../src/errors.ts';
import { UsageError } from '../../src/app-errors.ts';

function capture() {
  const out: string[] = [];
  return { out, stream: { write: (s: string) => out.push(s), isTTY: false } };
}

test('progress: plain mode prints few lines; TTY mode redraws one line', () => {
  let t = 0;
  const plain = capture();
  const p = new Progress(100, 'synth', { stream: plain.stream, now: () => t, logEverySeconds: 10 });
  for (let i = 0; i < 100; i++) {
    t += 250; // 25 s in all
    p.tick(1, `case ${i}`);
  }
  p.finish('done');
  assert.is(plain.out.length, 3); // at 10 s, 20 s, and the final line
  assert.match(plain.out[2]!, /^synth 100\/100 100% 25\.0s done\n$/);
  t = 0;
  const tty = capture();
  const q = new Progress(10, 'train', { stream: { ...tty.stream, isTTY: true, columns: 60 }, now: () => t });
  for (let i = 0; i < 10; i++) {
    t += 1000;
    q.tick();
  }
  q.finish();
  assert.ok(tty.out.every((s) => s.startsWith('\r')));
  assert.ok(tty.out.slice(0, -1).every((s) => !s.includes('\n')));
  assert.match(tty.out[3]!, /train \[#+\.+\] 4\/10/);
  assert.ok(tty.out.every((s) => s.replace(/\x1b\[K|\r|\n/g, '').length < 60));
  const quiet = capture();
  const r = new Progress(5, 'x', { stream: quiet.stream, quiet: true });
  r.tick();
  r.finish();
  assert.is(quiet.out.length, 0);
  assert.is(fmtTime(75), '1m15s');
});

test('ctvlm data synth: writes the dataset; bad options are usage errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-cli-'));
  const log = console.log;
  try {
    console.log = () => {};
    await synth.run(['--out', dir, '--n', '2', '--seed', '9', '--size', '48', '--slices', '30', '--thickness', '7', '--lang', 'de', '--quiet']);
    assert.ok(existsSync(join(dir, 'volumes/synth-00000.nii.gz')));
    assert.ok(existsSync(join(dir, 'volumes/synth-00001.nii.gz')));
    const lines = readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n');
    assert.is(lines.length, 2);
    assert.match(JSON.parse(lines[0]!).report, /Befund/i);
    const info = JSON.parse(readFileSync(join(dir, 'synth.json'), 'utf8'));
    assert.equal([info.seed, info.lang, info.size], [9, 'de', [48, 48]]);
    // --prevalence 0: no finding in any case, and the setting recorded.
    const none = join(dir, 'none');
    await synth.run(['--out', none, '--n', '3', '--size', '48', '--slices', '30', '--prevalence', '0', '--quiet']);
    for (const l of readFileSync(join(none, 'manifest.jsonl'), 'utf8').trim().split('\n')) assert.ok(JSON.parse(l).labels.every((v: number) => v === 0), l.slice(0, 80));
    assert.is(JSON.parse(readFileSync(join(none, 'synth.json'), 'utf8')).prevalence, 0);
    for (const bad of [[], ['--out', dir, '--n', '0'], ['--out', dir, '--lang', 'fr'], ['--out', dir, '--size', '9-3'], ['--out', dir, '--bogus'], ['--out', dir, '--lps-rate', '2'], ['--out', dir, '--workers', '0'], ['--out', dir, '--workers', '1.5'], ['--out', dir, '--prevalence', '1.5'], ['--out', dir, '--prevalence', '0.1,0.2']]) {
      let err: unknown;
      await synth.run(bad).catch((e) => (err = e));
      assert.instance(err, UsageError, JSON.stringify(bad));
    }
    // an output folder that cannot be created: a DataError naming it
    let werr: unknown;
    await synth.run(['--out', join(dir, 'manifest.jsonl', 'sub'), '--n', '1', '--size', '32', '--slices', '10', '--quiet']).catch((e) => (werr = e));
    assert.instance(werr, DataError);
    assert.match((werr as Error).message, /manifest\.jsonl\/sub: output folder: cannot create/);
    // data mine on a report file and on the manifest.
    const out: string[] = [];
    console.log = (s: string) => out.push(String(s));
    writeFileSync(join(dir, 'r.txt'), 'Findings: Nodule (se 3, im 45). No effusion.');
    await mine.run([join(dir, 'r.txt')]);
    assert.match(out.join('\n'), /series 3 {2}image 45 {2}"Nodule\."/);
    out.length = 0;
    await mine.run(['--manifest', join(dir, 'manifest.jsonl'), '--json']);
    assert.is(out.length, 2);
    assert.ok(Array.isArray(JSON.parse(out[0]!).references));
    let err: unknown;
    await mine.run([]).catch((e) => (err = e));
    assert.instance(err, UsageError);
    // A folder holding a dataset is refused, and replaced only when asked (no stale volumes).
    const twice = join(dir, 'twice');
    await synth.run(['--out', twice, '--n', '2', '--size', '48', '--slices', '30', '--quiet']);
    let again: unknown;
    await synth.run(['--out', twice, '--n', '1', '--size', '48', '--slices', '30', '--quiet']).catch((e) => (again = e));
    assert.instance(again, UsageError);
    assert.match((again as Error).message, `${twice} already holds a dataset (manifest.jsonl, 2 cases): give another --out, or --replace to write over it`);
    await synth.run(['--out', twice, '--n', '1', '--size', '48', '--slices', '30', '--quiet', '--replace']);
    assert.equal(readdirSync(join(twice, 'volumes')), ['synth-00000.nii.gz']);
    assert.is(readFileSync(join(twice, 'manifest.jsonl'), 'utf8').trim().split('\n').length, 1);
  } finally {
    console.log = log;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
