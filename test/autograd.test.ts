// The tape: topological order, one backward per node, accumulation when a tensor feeds
// several ops, noGrad, detach, scopes, and the errors for misuse.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from './helpers/gpu.ts';
import { randomArray } from './helpers/random.ts';
import * as ops from '../src/ops/index.ts';
import { backward, noGrad, detach } from '../src/autograd.ts';
import { record } from '../src/autograd.ts';
import { scope, Tensor } from '../src/tensor.ts';
import { Gpu } from '../src/gpu/runtime.ts';
import type { RmsNormLayout } from '../src/launch/rmsnorm.ts';
import type { LayerNormLayout } from '../src/launch/layernorm.ts';

const t = suite('autograd');
t.after.each(resetTuning);

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
  z.node!.backward = (g, acc) => { calls++; return orig(g, acc); };
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


// A tensor that feeds several ops gathers its gradient in the next rule's own kernel (the
// matmul's residual epilogue, rmsNorm's and layerNorm's stores, the bias sum) instead of a
// separate add. The fused sum rounds as the add it replaces (prev + new, one f32 rounding),
// so every gradient must match the separate adds' (gpu.tuning.fuseEpilogues = false) bit for
// bit, under each kernel layout that has its own store: rmsNorm per row, per workgroup, per
// subgroup, with and without the fused weight-gradient pass and with one chunk of rows or
// several; layerNorm's parameter sums in one pass and in chunks; a bias over 4100 rows (the
// two-pass sum). Every input of the ops under test first gets a gradient from a `pre` branch,
// whose rules run first (the tape runs the later operand of the final add first), and the test
// checks that each rule took each input's gradient so far.
t('gradients gathered by a tensor that feeds several ops are added in the next rule\'s kernel: the separate adds\' bits, fewer dispatches', async () => {
  const gpu = await testGpu();
  const [R, C] = [4100, 8];
  const shapes: Record<string, number[]> = {
    x: [R, C], w: [C, C], b: [C], wn: [C], gamma: [C], beta: [C], x3: [41, 100, C], u: [C, 12], v: [C, 16],
  };
  const data = Object.fromEntries(Object.entries(shapes).map(([n, s], i) => [n, randomArray(s.reduce((p, d) => p * d, 1), 10 + i, 0.5, 1.5)]));
  const run = async (fuse: boolean) => {
    gpu.tuning.fuseEpilogues = fuse;
    const p = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, ops.parameter(gpu, data[n], s, n)]));
    const took: string[] = [];
    // Records which inputs a rule took a gathered gradient for (by the input's name).
    const watch = (y: Tensor) => {
      const node = y.node!;
      const rule = node.backward;
      node.backward = (g, acc) => rule(g, (j) => {
        const a = acc(j);
        if (a) took.push(`${node.op}:${node.inputs[j].name}`);
        return a;
      });
      return y;
    };
    gpu.startProfile();
    scope(() => {
      const weigh = (y: Tensor, seed: number) => ops.sum(ops.mul(y, ops.tensor(gpu, randomArray(y.size, seed), y.shape)));
      const under = [
        watch(ops.matmul(p.x, p.w, { transB: true, bias: p.b })),
        watch(ops.rmsNorm(p.x, p.wn)),
        watch(ops.layerNorm(p.x, p.gamma, p.beta)),
        watch(ops.matmul(p.x3, p.w, { transB: true, bias: p.b })), // w shared over a batch: the folded weight gradient
        watch(ops.matmul(p.u, p.v, { transA: true })),
      ].reduce((s, y, i) => ops.add(s, weigh(y, 40 + i)), ops.tensor(gpu, [0], [1]));
      const pre = Object.values(p).reduce((s, q, i) => ops.add(s, weigh(q, 60 + i)), ops.tensor(gpu, [0], [1]));
      backward(ops.add(under, pre));
    });
    const adds = (await gpu.endProfile()).filter((q) => q.label.startsWith('add [')).length;
    const grads: Record<string, Float32Array> = {};
    for (const [n, q] of Object.entries(p)) {
      grads[n] = await q.grad!.floats();
      q.dispose();
    }
    return { adds, grads, took };
  };
  const layouts: { rms: RmsNormLayout; fuseWeightGrad: boolean; chunks: number | null; ln: LayerNormLayout }[] = [
    { rms: 'row', fuseWeightGrad: true, chunks: null, ln: 'row' },
    { rms: 'row', fuseWeightGrad: false, chunks: 3, ln: 'row' },
    { rms: 'workgroup', fuseWeightGrad: true, chunks: 1, ln: 'workgroup' },
    ...(gpu.subgroupMinSize >= 4 ? [{ rms: 'subgroup' as const, fuseWeightGrad: true, chunks: 3, ln: 'workgroup' as const }] : []),
  ];
  const expected = [
    'matmul:x', 'matmul:w', 'matmul:b', 'rmsNorm:x', 'rmsNorm:wn', 'layerNorm:x', 'layerNorm:gamma', 'layerNorm:beta',
    'matmul:x3', 'matmul:u', 'matmul:v',
  ];
  for (const l of layouts) {
    const tune = () => {
      gpu.tuning.rmsNorm = { variant: l.rms, fuseWeightGrad: l.fuseWeightGrad };
      gpu.tuning.layerNorm.paramChunks = l.chunks;
      gpu.tuning.layerNorm.variant = l.ln;
    };
    tune();
    const fused = await run(true);
    tune();
    const plain = await run(false);
    const what = `rmsNorm ${l.rms} (fuseWeightGrad ${l.fuseWeightGrad}), layerNorm ${l.ln}, parameter chunks ${l.chunks ?? 'auto'}`;
    assert.equal(expected.filter((e) => !fused.took.includes(e)), [], `${what}: inputs whose gathered gradient no rule took`);
    assert.equal(plain.took, [], `${what}: nothing taken with fuseEpilogues = false`);
    for (const n of Object.keys(plain.grads)) {
      const [u, v] = [new Uint32Array(fused.grads[n].buffer), new Uint32Array(plain.grads[n].buffer)];
      const at = u.findIndex((q, i) => q !== v[i]);
      assert.is(at, -1, `${what}: d${n}[${at}] ${fused.grads[n][at]} fused against ${plain.grads[n][at]} with separate adds`);
    }
    assert.ok(plain.adds - fused.adds >= fused.took.length, `${what}: ${plain.adds} adds separate, ${fused.adds} fused, ${fused.took.length} taken`);
  }
});

t('a rule that passes the seed through to an input that also has another gradient leaves the caller\'s seed alive', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, randomArray(8, 3), [2, 4], 'x');
  const w = ops.parameter(gpu, randomArray(16, 4), [4, 4], 'w');
  const seed = ops.tensor(gpu, randomArray(8, 5), [2, 4], 'seed');
  try {
    // Its rule returns the seed itself as the residual's gradient, and x already has one.
    backward(ops.linearResidual(x, { weight: w }, { residual: x }), seed);
    assert.ok(!seed.disposed, 'the seed was freed by backward');
    assert.is((await seed.floats()).length, 8);
  } finally {
    for (const q of [x, w, seed]) q.dispose();
  }
});

t('a rule that takes an input\'s gathered gradient must return it summed: a buggy rule is named', async () => {
  const gpu = await testGpu();
  const x = ops.parameter(gpu, [1, 2], [2], 'x');
  const y = ops.mulScalar(x, 2);
  // add(z, y) runs y's rule before z's, so that x has a gradient pending when z's rule runs.
  const z = record(ops.mulScalar(x, 3).view([2]), 'takesAndDrops', [x], (_g, acc) => {
    acc(0);
    return [null];
  });
  try {
    assert.throws(() => backward(ops.sum(ops.add(z, y))), (e: Error) => /backward of takesAndDrops: the rule took input 0's accumulated gradient and returned none/.test(e.message));
  } finally {
    x.dispose();
  }
});

t.run();
