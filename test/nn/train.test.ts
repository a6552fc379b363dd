// End-to-end training on the GPU: a small MLP fits a synthetic regression (loss must fall
// at least 10x), and 200 training steps leave the buffer pool's live bytes flat.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { rng } from '../helpers/random.ts';
import * as ops from '../../src/ops/index.ts';
import { AdamW } from '../../src/optim/index.ts';
import { MLP } from '../../src/nn/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

const t = suite('train');

function regressionData(n: number, seed: number): { x: Float32Array; y: Float32Array } {
  const r = rng(seed);
  const x = new Float32Array(n * 3), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = r() * 2 - 1, b = r() * 2 - 1, c = r() * 2 - 1;
    x.set([a, b, c], i * 3);
    y[i] = Math.sin(3 * a) + b * c;
  }
  return { x, y };
}

function setup(gpu: Gpu) {
  const { x, y } = regressionData(256, 1);
  const X = ops.tensor(gpu, x, [256, 3], 'x').keep();
  const Y = ops.tensor(gpu, y, [256, 1], 'y').keep();
  const model = new MLP(gpu, [3, 32, 32, 1], 'gelu', 7);
  const opt = new AdamW(model.parameters(), { lr: 1e-2, clipNorm: 5 });
  const step = () =>
    scope(() => {
      const pred = model.forward(X);
      const loss = ops.mean(ops.square(ops.sub(pred, Y)));
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss;
    });
  return { X, Y, model, opt, step };
}

t('a 3-32-32-1 MLP fits sin(3a) + bc: loss falls at least 10x in 300 steps', async () => {
  const gpu = await testGpu();
  const { step, model, opt, X, Y } = setup(gpu);
  const first = step();
  const l0 = await first.item();
  first.dispose();
  let last = 0;
  for (let i = 1; i < 300; i++) {
    const loss = step();
    if (i === 299) last = await loss.item();
    loss.dispose();
  }
  console.log(`    mlp loss ${l0.toFixed(4)} -> ${last.toFixed(5)} (${(l0 / last).toFixed(0)}x)`);
  assert.ok(l0 / last >= 10, `loss fell only ${(l0 / last).toFixed(1)}x (${l0} -> ${last})`);
  model.dispose();
  opt.dispose();
  X.dispose();
  Y.dispose();
});

t('200 training steps: live GPU bytes stay flat, one submit per step, no readback inside', async () => {
  const gpu = await testGpu();
  const { step, model, opt, X, Y } = setup(gpu);
  for (let i = 0; i < 10; i++) step().dispose();
  await gpu.sync();
  const before = gpu.poolStats();
  const submits0 = gpu.submitCount;
  for (let i = 0; i < 200; i++) step().dispose();
  await gpu.sync();
  const after = gpu.poolStats();
  const submitsPerStep = (gpu.submitCount - submits0) / 200;
  console.log(`    live ${before.liveBytes} -> ${after.liveBytes} bytes; allocations ${before.allocations} -> ${after.allocations}; ${submitsPerStep.toFixed(2)} submits/step`);
  assert.is(after.liveBytes, before.liveBytes, 'live bytes grew');
  assert.is(after.allocations, before.allocations, 'the pool kept allocating new buffers');
  assert.ok(submitsPerStep <= 2, `${submitsPerStep} submits per step`);
  model.dispose();
  opt.dispose();
  X.dispose();
  Y.dispose();
});

t.run();
