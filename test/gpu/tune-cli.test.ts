// `ctvlm tune` and the reader behind it (readAutotuneCache, clearAutotuneCache): what
// autotuning measured on this adapter, read back from its cache file (a temporary folder), with
// the choice 'auto' launches take per class, stale records (another build's kernels) marked,
// a malformed file named in one line, and --clear deleting the file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { runCli } from '../helpers/cli.ts';
import { autotune, cachePath, choice, forgetAutotune, readAutotuneCache } from '../../src/gpu/autotune.ts';
import { matmulTuner, type MatmulShape } from '../../src/launch/matmul.ts';
import { kernelTuners, rowLayoutTuner } from '../../src/launch/layout-tuners.ts';
import type { RowShape } from '../../src/launch/row-layout.ts';

const t = suite('tune-cli');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-tune-'));
const shape: MatmulShape = { M: 40, N: 24, K: 36, batch: 1, transA: false, transB: true };
const rows: RowShape = { op: 'sum', rows: 20, n: 130 };

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('the cache as measured: every class with its times and the choice auto launches take; the command prints them', async () => {
  const gpu = await testGpu();
  forgetAutotune(gpu);
  const [m] = await autotune(gpu, matmulTuner, [shape], { cacheDir: dir });
  const [r] = await autotune(gpu, rowLayoutTuner, [rows], { cacheDir: dir });
  assert.ok(m.choice && r.choice, 'each class has a correct variant');
  const cache = await readAutotuneCache(gpu, kernelTuners, dir);
  assert.is(cache.path, await cachePath(gpu, dir));
  assert.ok(cache.exists);
  assert.is(cache.problem, null);
  const mm = cache.families.find((f) => f.family === 'matmul')!;
  assert.is(mm.current, true);
  assert.equal(mm.classes.map((c) => c.key), [matmulTuner.classOf(shape)]);
  assert.is(mm.classes[0].choice, m.choice);
  assert.is(mm.classes[0].choice, choice(gpu, matmulTuner, m.key), 'the choice shown is the one launches take');
  assert.equal(mm.classes[0].times, m.times);
  const rl = cache.families.find((f) => f.family === 'rowLayout')!;
  assert.equal([rl.classes[0].key, rl.classes[0].choice], [r.key, r.choice]);

  const out = runCli('tune', '--cache-dir', dir);
  assert.is(out.status, 0, out.stderr);
  assert.match(out.stdout, `autotune cache: ${cache.path}`);
  assert.match(out.stdout, /matmul: 1 shape class, this build's kernels; chosen: /);
  const line = out.stdout.split('\n').find((l) => l.trim().startsWith(m.key))!;
  assert.ok(line, out.stdout);
  assert.match(line, new RegExp(`^  ${m.key}  ${m.choice} \\d+\\.\\d+ ms`));
  assert.match(out.stdout, `  ${r.key}  ${r.choice} `);

  const json = runCli('tune', '--cache-dir', dir, '--json', '--family', 'rowLayout');
  assert.is(json.status, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { families: { family: string; classes: { key: string; choice: string }[] }[] };
  assert.equal(parsed.families.map((f) => f.family), ['rowLayout']);
  assert.equal(parsed.families[0].classes.map((c) => [c.key, c.choice]), [[r.key, r.choice]]);
});

t('records of other kernels are stale (no choice); a malformed file is named in one line; --clear deletes the file', async () => {
  const gpu = await testGpu();
  const path = (await cachePath(gpu, dir))!;
  const text = readFileSync(path, 'utf8');
  const data = JSON.parse(text);
  data.families.matmul.version = 'another-build';
  writeFileSync(path, JSON.stringify(data));
  const cache = await readAutotuneCache(gpu, kernelTuners, dir);
  const mm = cache.families.find((f) => f.family === 'matmul')!;
  assert.is(mm.current, false);
  assert.is(mm.classes[0].choice, null);
  const stale = runCli('tune', '--cache-dir', dir, '--family', 'matmul');
  assert.is(stale.status, 0, stale.stderr);
  assert.match(stale.stdout, /matmul: 1 shape class, stale: made with other kernels/);
  assert.not.match(stale.stdout, /rowLayout/);

  writeFileSync(path, '{"format": 2, "families": {"matmul": ');
  const bad = runCli('tune', '--cache-dir', dir);
  assert.is(bad.status, 0, bad.stderr);
  assert.match(bad.stdout, `ignoring the cache file ${path}: not JSON`);

  const wrong = runCli('tune', '--cache-dir', dir, '--family', 'matmuls');
  assert.is(wrong.status, 2);
  assert.match(wrong.stderr, "ctvlm tune: --family: 'matmuls' is not a tuned family (matmul, rowLayout, transpose)");

  const clear = runCli('tune', '--cache-dir', dir, '--clear');
  assert.is(clear.status, 0, clear.stderr);
  assert.match(clear.stdout, `deleted ${path}`);
  assert.not.ok(existsSync(path));
  const none = runCli('tune', '--cache-dir', dir);
  assert.match(none.stdout, `no autotune cache for this adapter yet (${path})`);
  assert.match(runCli('tune', '--cache-dir', dir, '--clear').stdout, 'nothing to delete');
  forgetAutotune(gpu);
});

t.run();
