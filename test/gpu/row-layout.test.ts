// Autotuning of the row layouts (src/launch/row-layout.ts): both layouts of softmax, layerNorm
// and the last-axis sum are checked against float64 and timed on shapes off every power of two
// (one row, rows of one element, rows longer than the workgroup); 'auto' launches follow the
// recorded choice where autotuning is on and the fixed rule where it is off; the classes auto
// launches meet without a choice are what autotuneSeenKernels measures. The same for the
// transposing copies' layouts (runs of 64, one element per invocation, 32x32 tiles). Times are not
// asserted (the machine is shared).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { autotune, autotuneSeen, choice, forgetAutotune } from '../../src/gpu/autotune.ts';
import { autotuneSeenKernels, rowLayoutTuner, transposeTuner } from '../../src/launch/layout-tuners.ts';
import type { TransposeShape } from '../../src/launch/layout.ts';
import type { RowShape } from '../../src/launch/row-layout.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { tensor } from '../../src/ops/creation.ts';
import type { Tensor } from '../../src/tensor.ts';

const t = suite('row-layout');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-rowlayout-'));
t.after.each(async () => {
  forgetAutotune(await testGpu());
  await resetTuning();
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

/** The entry points of the dispatches `fn` encodes. */
async function kernelsOf(gpu: Gpu, fn: () => void): Promise<string[]> {
  gpu.startProfile();
  fn();
  return (await gpu.endProfile()).map((r) => r.kernel);
}

const run: Record<RowShape['op'], (x: Tensor) => Tensor> = {
  softmax: (x) => ops.softmax(x),
  layerNorm: (x) => {
    const n = x.shape[x.rank - 1];
    return ops.layerNorm(x, tensor(x.gpu, new Float32Array(n).fill(1), [n]), tensor(x.gpu, new Float32Array(n), [n]));
  },
  sum: (x) => ops.sum(x, -1),
};
const entry = (op: RowShape['op'], layout: string) =>
  `${op === 'softmax' ? 'softmax.wgsl:softmax' : op === 'layerNorm' ? 'layernorm.wgsl:layernorm' : 'reduce.wgsl:reduce'}${layout === 'workgroup' ? '_wg' : ''}`;

t('both layouts of each op checked against float64 and timed; auto launches follow the choice only where autotuning is on', async () => {
  const gpu = await testGpu();
  const shapes: RowShape[] = [
    { op: 'softmax', rows: 37, n: 301 }, { op: 'softmax', rows: 1, n: 1 },
    { op: 'layerNorm', rows: 70, n: 96 }, { op: 'layerNorm', rows: 3, n: 1001 },
    { op: 'sum', rows: 65, n: 130 }, { op: 'sum', rows: 5, n: 1 },
    // Long rows: the check's bounds (about sqrt(n) ulps) must still pass both layouts (a sum
    // of 4095: longer ones split into two passes, whose first is another class).
    { op: 'softmax', rows: 2, n: 65536 }, { op: 'layerNorm', rows: 2, n: 40000 }, { op: 'sum', rows: 3, n: 4095 },
  ];
  const results = await autotune(gpu, rowLayoutTuner, shapes, { cacheDir: null });
  assert.equal(results.map((r) => r.key), shapes.map((s) => rowLayoutTuner.classOf(s)));
  for (const [i, r] of results.entries()) {
    const s = shapes[i];
    assert.ok(r.measured, `${r.key}: measured`);
    for (const v of ['row', 'workgroup']) assert.type(r.times[v], 'number', `${r.key}: ${v} correct and timed (${r.times[v]})`);
    assert.ok(r.choice === 'row' || r.choice === 'workgroup', `${r.key}: chose ${r.choice}`);
    assert.is(choice(gpu, rowLayoutTuner, r.key), r.choice);
    const x = tensor(gpu, new Float32Array(s.rows * s.n).map((_, j) => Math.sin(j)), [s.rows, s.n]);
    gpu.tuning.autotune = true;
    const followed = await kernelsOf(gpu, () => run[s.op](x).dispose());
    gpu.tuning.autotune = false;
    const fixed = await kernelsOf(gpu, () => run[s.op](x).dispose());
    assert.equal(followed, [entry(s.op, r.choice!)], `${r.key}: auto with autotuning follows ${r.choice}`);
    const rule = !gpu.isLavapipe && s.n >= 128 ? 'workgroup' : 'row';
    assert.equal(fixed, [entry(s.op, rule)], `${r.key}: auto without autotuning keeps the fixed rule (${rule})`);
    x.dispose();
  }
});

// The check is what keeps a wrong layout from being chosen: outputs that lose 1/64 of a long
// row's sum (one lane in 64 dropped), or one element off (by 1e-3 relative; layerNorm's by
// 0.01), are refused.
t('the trial refuses an output that lost a lane\'s share of a long row, or one wrong element', async () => {
  const gpu = await testGpu();
  for (const s of [{ op: 'sum', rows: 3, n: 131071 }, { op: 'softmax', rows: 2, n: 65536 }, { op: 'layerNorm', rows: 2, n: 40000 }] as RowShape[]) {
    const trial = rowLayoutTuner.trial(gpu, s);
    try {
      trial.run('row');
      assert.is(await trial.check('row'), null, `${s.op}: the row layout's own output passes`);
      const y = (trial as unknown as { out: Map<string, Tensor> }).out.get('row')!;
      const good = await y.floats();
      const scaled = good.map((v, i) => (i < (s.op === 'sum' ? 1 : s.n) ? (s.op === 'layerNorm' ? v + (good[i] >= 0 ? 1 : -1) / 64 : v * (63 / 64)) : v));
      gpu.upload(y.buffer, scaled);
      assert.match((await trial.check('row')) ?? 'passed', /^incorrect: /, `${s.op}: a row off by 1/64 is refused`);
      const one = good.slice();
      // Relative 1e-3 for the sum and softmax; layerNorm's outputs are O(1), its bound absolute: +0.01.
      if (s.op === 'layerNorm') one[s.n + 17] += 0.01;
      else one[s.op === 'sum' ? 1 : s.n + 17] *= 1.001;
      gpu.upload(y.buffer, one);
      assert.match((await trial.check('row')) ?? 'passed', /^incorrect: /, `${s.op}: one element off is refused`);
    } finally {
      trial.dispose();
    }
  }
});

t('transposes: the three layouts checked and timed; auto follows the choice only where autotuning is on', async () => {
  const gpu = await testGpu();
  const shapes: TransposeShape[] = [{ p: 67, q: 45, batches: 1 }, { p: 2, q: 3, batches: 101 }, { p: 33, q: 64, batches: 3 }];
  const results = await autotune(gpu, transposeTuner, shapes, { cacheDir: null });
  for (const [i, r] of results.entries()) {
    const s = shapes[i];
    for (const v of ['run', 'element', 'tiled']) assert.type(r.times[v], 'number', `${r.key}: ${v} correct and timed (${r.times[v]})`);
    const x = tensor(gpu, new Float32Array(s.batches * s.q * s.p).map((_, j) => j), [s.batches, s.q, s.p]);
    gpu.tuning.autotune = true;
    const followed = await kernelsOf(gpu, () => ops.permute(x, [0, 2, 1]).dispose());
    gpu.tuning.autotune = false;
    const fixed = await kernelsOf(gpu, () => ops.permute(x, [0, 2, 1]).dispose());
    assert.equal(followed, [`layout.wgsl:${r.choice === 'tiled' ? 'gather_tiled' : 'gather'}`], `${r.key}: auto with autotuning follows ${r.choice}`);
    const rule = gpu.isLavapipe || !(s.p >= 8 && s.q >= 8) ? 'gather' : 'gather_tiled'; // run and element share gather
    assert.equal(fixed, [`layout.wgsl:${rule}`], `${r.key}: auto without autotuning keeps the fixed rule`);
    x.dispose();
  }
  // A wrong element is refused.
  const trial = transposeTuner.trial(gpu, shapes[0]);
  trial.run('tiled');
  assert.is(await trial.check('tiled'), null);
  const y = (trial as unknown as { out: Map<string, Tensor> }).out.get('tiled')!;
  const v = await y.floats();
  v[0] += 1;
  gpu.upload(y.buffer, v);
  assert.match((await trial.check('tiled')) ?? 'passed', /^incorrect: element 0/);
  trial.dispose();
});

t('autotuneSeenKernels measures the row and transpose classes auto launches met, once, beside the matmul classes', async () => {
  const gpu = await testGpu();
  gpu.tuning.autotune = false;
  assert.is(await autotuneSeenKernels(gpu, { cacheDir: null }), null, 'off: nothing measured');
  gpu.tuning.autotune = true;
  const x = tensor(gpu, new Float32Array(6 * 50).fill(0.5), [6, 50]);
  run.softmax(x).dispose();
  run.sum(x).dispose();
  const w = tensor(gpu, new Float32Array(50 * 4).fill(1), [50, 4]);
  ops.matmul(x, w).dispose();
  ops.permute(x, [1, 0]).dispose();
  const line = await autotuneSeenKernels(gpu, { cacheDir: join(dir, 'seen') });
  assert.match(line ?? '', /1 matmul shape classes .*; 2 row-layout shape classes \(2 timed now, 0 from the cache\).*; 1 transpose shape classes \(1 timed now/);
  assert.ok(line?.includes(`each class's times and choice in ${join(dir, 'seen')}`), line ?? '');
  // Measured now: launches take the choice and note nothing more.
  run.softmax(x).dispose();
  run.sum(x).dispose();
  assert.equal(await autotuneSeen(gpu, rowLayoutTuner, { cacheDir: join(dir, 'seen') }), []);
  x.dispose();
  w.dispose();
});

t.run();
