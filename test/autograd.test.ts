// The tape: topological order, one backward per node, accumulation when a tensor feeds
// several ops, noGrad, detach, scopes, and the errors for misuse.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from './helpers/gpu.ts';
import * as ops from '../src/ops/index.ts';
import { backward, noGrad, detach } from '../src/autograd.ts';
import { scope, Tensor } from '../src/tensor.ts';
import { Gpu } from '../src/gpu/runtime.ts';

const t = suite('autograd');

t('a tensor used by several ops accumulates its gradient; a diamond runs each node once', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [2, -3], [2], 'x');
  // y = x*x + 3x + x  ->  dy/dx = 2x + 4
  const a = ops.mul(x, x);
  const b = ops.mulScalar(x, 3);
  const y = ops.sum(ops.add(ops.add(a, b), x));
  backward(y);
  assert.equal([...(await x.grad!.floats())], [8, -2]);
  // Diamond: z = (x + x) shared by two branches: d/dx sum(z * z + z) = (2z + 1) * 2
  x.grad!.dispose();
  x.grad = null;
  let calls = 0;
  const z = ops.add(x, x);
  const orig = z.node!.backward;
  z.node!.backward = (g) => { calls++; return orig(g); };
  backward(ops.sum(ops.add(ops.mul(z, z), z)));
  assert.is(calls, 1, 'the shared node ran its backward once');
  assert.equal([...(await x.grad!.floats())], [(2 * 4 + 1) * 2, (2 * -6 + 1) * 2]);
});

t('gradients accumulate across backward calls until cleared', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [1, 2], [2], 'x');
  backward(ops.sum(ops.mulScalar(x, 2)));
  backward(ops.sum(ops.mulScalar(x, 3)));
  assert.equal([...(await x.grad!.floats())], [5, 5]);
});

t('noGrad records nothing; detach cuts the graph', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [1, 2], [2], 'x');
  const y = noGrad(() => ops.mul(x, x));
  assert.not.ok(y.requiresGrad);
  assert.is(y.node, null);
  const d = detach(ops.mul(x, x));
  assert.not.ok(d.requiresGrad);
  assert.throws(() => backward(ops.sum(d)), /does not depend on any tensor that requires a gradient/);
});

t('backward from a non-scalar needs a seed of the same shape', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [1, 2, 3], [3], 'x');
  const y = ops.mul(x, x);
  assert.throws(() => backward(y), /'mul\(x,x\)' has shape \[3\]; a non-scalar needs a seed gradient/);
  assert.throws(() => backward(y, ops.tensor(gpu, [1, 1], [2])), /seed gradient \[2\] does not match/);
  backward(y, ops.tensor(gpu, [1, 0, 2], [3]));
  assert.equal([...(await x.grad!.floats())], [2, 0, 12]);
});

t('scope frees intermediates, keeps what is returned and kept tensors', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2, 3], [3]);
  let inner: Tensor | null = null;
  const live0 = gpu.poolStats().liveBytes;
  const out = scope(() => {
    inner = ops.exp(x);
    return { y: ops.add(inner, x) };
  });
  assert.ok(inner!.disposed, 'intermediate freed');
  assert.not.ok(out.y.disposed, 'returned tensor kept');
  assert.ok(gpu.poolStats().liveBytes - live0 <= 16 * 2, 'only the result remains live');
  assert.throws(() => ops.add(inner!, x), /was disposed and cannot be used again/);
});

t('a leaf gradient made inside scope() survives it and accumulates in the next one', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2], [2], 'x'); // not kept: scope() must still leave x.grad alone
  x.requiresGrad = true;
  scope(() => backward(ops.sum(ops.mulScalar(x, 2))));
  scope(() => backward(ops.sum(ops.mulScalar(x, 3))));
  assert.equal([...(await x.grad!.floats())], [5, 5]);
  x.dispose();
  assert.is(x.grad, null, 'disposed with its leaf');
});

t('disposing a tensor the graph still needs is an error at backward, not a silent wrong gradient', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [1, 2], [2], 'x');
  const h = ops.exp(x);
  const y = ops.sum(ops.mul(h, h));
  h.dispose();
  assert.throws(() => backward(y), /'exp\(x\)' \[2\], an input of mul, was disposed while the graph still needed it/);
});

t('scope() given an async function closes its level before refusing it', async () => {
  const gpu = await testGpu();
  const live = gpu.poolStats().liveBytes;
  scope(() => {
    ops.zeros(gpu, [256], 'a');
    assert.throws(() => scope(async () => ops.zeros(gpu, [256], 'b')), /use scopeAsync\(\)/);
    return null;
  });
  await gpu.sync();
  assert.is(gpu.poolStats().liveBytes, live, 'both levels freed their tensors');
  const x = ops.parameter(gpu, [1], [1], 'x');
  const y = ops.mulScalar(x, 2);
  y.dispose();
  assert.throws(() => backward(y), /was disposed/);
});

t('shapes: zero-sized dimensions and bad dims are refused', async () => {
  const gpu = await testGpu();
  assert.throws(() => ops.zeros(gpu, []), /shape \[\] has no dimensions/);
  assert.throws(() => ops.zeros(gpu, [3, 0]), /zero-sized dimension in shape \[3x0\]/);
  assert.throws(() => ops.zeros(gpu, [2.5]), /bad dimension 2.5/);
  assert.throws(() => ops.tensor(gpu, [1, 2, 3], [2]), /3 values do not fill shape \[2\]/);
});

t('tensors from two different devices are refused', async () => {
  const gpu = await testGpu();
  const other = await Gpu.create();
  try {
    const a = ops.tensor(gpu, [1, 2], [2], 'a');
    const b = ops.tensor(other, [1, 2], [2], 'b');
    assert.throws(() => ops.add(a, b), /add: inputs 'a' and 'b' live on two different GPU devices/);
  } finally {
    other.destroy();
  }
});

t.run();
