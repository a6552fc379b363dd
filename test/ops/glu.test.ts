// siluGate(gate, up) = silu(gate) * up against float64: sizes 1, odd (scalar path) and
// multiples of 4 (vec4 path), past one workgroup of 256; both gradients from the one
// backward kernel by finite differences; extreme gates. Tolerances: test/helpers/check.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';

const t = suite('glu');

t('siluGate forward against float64 (sizes 1, 7, 15, 32, 1031, 2x516)', async () => {
  const gpu = await testGpu();
  for (const shape of [[1], [7], [3, 5], [4, 8], [1031], [2, 516]]) {
    const n = ref.size(shape);
    const g = Float64Array.from(Float32Array.from(randomValues(n, n, -6, 6)));
    const u = Float64Array.from(Float32Array.from(randomValues(n, n + 1, -2, 2)));
    const out = ops.siluGate(ops.tensor(gpu, g, shape), ops.tensor(gpu, u, shape));
    assert.equal([...out.shape], shape);
    assertClose(await out.floats(), ref.siluGate(g, u), F32, `siluGate [${shape}]`);
  }
});

t('siluGate backward: gate and up by finite differences (scalar and vec4 paths), and one input alone', async () => {
  const gpu = await testGpu();
  for (const shape of [[37], [4, 8], [1]]) {
    const n = ref.size(shape);
    await checkGradients({
      what: `siluGate [${shape}]`, gpu,
      inputs: [{ data: randomValues(n, 3, -4, 4), shape }, { data: randomValues(n, 4, -2, 2), shape }],
      op: (g, u) => ops.siluGate(g, u),
      reference: (g, u) => ref.siluGate(g, u),
    });
  }
  for (const wrt of [[0], [1]]) {
    await checkGradients({
      what: `siluGate, gradient of input ${wrt[0]} only`, gpu, wrt,
      inputs: [{ data: randomValues(12, 5, -4, 4), shape: [3, 4] }, { data: randomValues(12, 6, -2, 2), shape: [3, 4] }],
      op: (g, u) => ops.siluGate(g, u),
      reference: (g, u) => ref.siluGate(g, u),
    });
  }
});

t('siluGate at extreme gates (+-1e4, +-1e30, +-3e38): silu limits, finite gradients', async () => {
  const gpu = await testGpu();
  const g = [1e4, -1e4, 1e30, -1e30, 3e38, -3e38, 30, -30];
  const u = [2, 2, 1e-8, 1e-8, 1, 1, -1, -1];
  for (const n of [8, 7]) {
    const gt = ops.tensor(gpu, g.slice(0, n), [n]);
    const ut = ops.tensor(gpu, u.slice(0, n), [n]);
    gt.requiresGrad = ut.requiresGrad = true;
    const y = ops.siluGate(gt, ut);
    backward(y, ops.ones(gpu, [n]));
    const [yv, gg, gu] = [await y.floats(), await gt.grad!.floats(), await ut.grad!.floats()];
    for (let i = 0; i < n; i++) {
      const want = Math.fround(ref.silu(g[i]) * u[i]);
      assert.ok(Number.isFinite(yv[i]) && Number.isFinite(gg[i]) && Number.isFinite(gu[i]), `siluGate(${g[i]}, ${u[i]}): ${yv[i]}, gradients ${gg[i]}, ${gu[i]}`);
      assert.ok(Math.abs(yv[i] - want) <= 1e-6 * Math.abs(want) + 1e-30, `siluGate(${g[i]}, ${u[i]}) = ${yv[i]}, expected ${want}`);
      const wantGu = Math.fround(ref.silu(g[i]));
      const wantGg = Math.fround(ref.siluGrad(g[i]) * u[i]);
      assert.ok(Math.abs(gu[i] - wantGu) <= 1e-6 * Math.abs(wantGu) + 1e-30, `d/dup at gate ${g[i]}: ${gu[i]}, expected ${wantGu}`);
      assert.ok(Math.abs(gg[i] - wantGg) <= 1e-6 * Math.abs(wantGg) + 1e-30, `d/dgate at gate ${g[i]}: ${gg[i]}, expected ${wantGg}`);
    }
  }
});

t('siluGate: shapes must match', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
  const b = ops.tensor(gpu, [1, 2, 3], [3]);
  assert.throws(() => ops.siluGate(a, b), /siluGate: gate \[2x3\] and up \[3\] must have the same shape/);
});

t.run();
