// Autotuning of the row layouts (src/launch/row-layout.ts): both layouts of softmax, layerNorm
// and the last-axis sum are checked against float64 and timed on shapes off every power of two
// (one row, rows of one element, rows longer than the workgroup); 'auto' launches follow the
// recorded choice where autotuning is on and the fixed rule where it is off; the classes auto
// launches meet without a choice are what autotuneSeenKernels measures. Times are not
// asserted (the machine is shared).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { autotune, autotuneSeen, choice, forgetAutotune } from '../../src/gpu/autotune.ts';
import { autotuneSeenKernels, rowLayoutTuner } from '../../src/launch/row-layout-tuner.ts';
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
    assert.equal(fixed, [entry(s.op, 'row')], `${r.key}: auto without autotuning keeps the CPU adapter's rule`);
    x.dispose();
  }
});

t('autotuneSeenKernels measures the row classes auto launches met, once, beside the matmul classes', async () => {
  const gpu = await testGpu();
  gpu.tuning.autotune = false;
  assert.is(await autotuneSeenKernels(gpu, { cacheDir: null }), null, 'off: nothing measured');
  gpu.tuning.autotune = true;
  const x = tensor(gpu, new Float32Array(6 * 50).fill(0.5), [6, 50]);
  run.softmax(x).dispose();
  run.sum(x).dispose();
  const w = tensor(gpu, new Float32Array(50 * 4).fill(1), [50, 4]);
  ops.matmul(x, w).dispose();
  const line = await autotuneSeenKernels(gpu, { cacheDir: join(dir, 'seen') });
  assert.match(line ?? '', /1 matmul shape classes .*; 2 row-layout shape classes \(2 timed now, 0 from the cache\)/);
  assert.ok(line?.includes(`each class's times and choice in ${join(dir, 'seen')}`), line ?? '');
  // Measured now: launches take the choice and note nothing more.
  run.softmax(x).dispose();
  run.sum(x).dispose();
  assert.equal(await autotuneSeen(gpu, rowLayoutTuner, { cacheDir: join(dir, 'seen') }), []);
  x.dispose();
  w.dispose();
});

t.run();
