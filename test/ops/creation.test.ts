// tensor() refuses non-finite values with one line naming the tensor, the value and its index,
// wherever they sit (first, last, the tail after the last group of four, deep in a large
// array), and lets every finite value through (the extremes of f32, subnormals, -0).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { allFinite, tensor } from '../../src/ops/creation.ts';

const t = suite('creation');

t('allFinite: every finite f32, and each non-finite value at each kind of position', () => {
  const finite = Float32Array.from([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, -0, 0, 1, -7]);
  assert.ok(allFinite(finite), 'extremes, subnormals and -0 are finite');
  assert.ok(allFinite(new Float32Array(0)), 'no values');
  for (const n of [1, 5, 8, 1003])
    for (const at of [0, n - 1, Math.floor(n / 2)])
      for (const bad of [NaN, Infinity, -Infinity]) {
        const f = new Float32Array(n).fill(2.5);
        f[at] = bad;
        assert.not.ok(allFinite(f), `${bad} at ${at} of ${n}`);
      }
});

t('tensor: a non-finite value is named with its index', async () => {
  const gpu = await testGpu();
  const f = new Float32Array(4 * 1024 + 3).fill(1);
  f[4097] = -Infinity;
  assert.throws(() => tensor(gpu, f, [f.length], 'volume'), (e: Error) => e.message === "tensor 'volume': value -Infinity at index 4097 is not finite");
  assert.throws(() => tensor(gpu, [1, NaN], [2]), (e: Error) => e.message === 'tensor: value NaN at index 1 is not finite');
  f[4097] = 3;
  assert.equal((await tensor(gpu, f, [f.length]).floats())[4097], 3);
});

t.run();
