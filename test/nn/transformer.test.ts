// A transformer block against a float64 re-implementation built from the reference ops
// (layer norm, matmul, RoPE, attention, GELU), and its gradients (input and a weight) by
// finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import type { Tensor } from '../../src/tensor.ts';
import { backward } from '../../src/autograd.ts';
import { TransformerBlock } from '../../src/nn/index.ts';

const t = suite('transformer');

async function host(x: Tensor | null): Promise<Float64Array> {
  return Float64Array.from(await x!.floats());
}

function refBlock(x: Float64Array, B: number, L: number, dim: number, H: number, w: Record<string, Float64Array>, mask?: number[], angle?: (l: number, i: number) => number): Float64Array {
  const D = dim / H, N = B * L, hidden = w['fc1.weight'].length / dim;
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const h1 = ref.layerNorm(x, w['ln1.gamma'], w['ln1.beta'], dim, 1e-5);
  const qkv = ref.matmul(h1, w['qkv.weight'], N, dim, 3 * dim, false, false, w['qkv.bias']);
  const take = (i: number) => {
    let part: ref.F64 = new Float64Array(N * dim);
    for (let r = 0; r < N; r++) part.set(qkv.slice(r * 3 * dim + i * dim, r * 3 * dim + (i + 1) * dim), r * dim);
    if (angle && i < 2) part = ref.rope(part, B, L, H, D, angle);
    return ref.permute(part, [B, L, H, D], [0, 2, 1, 3]);
  };
  const o = ref.permute(ref.attention(take(0), take(1), take(2), B, H, L, L, D, mask), [B, H, L, D], [0, 2, 1, 3]);
  const a = ref.matmul(o, w['proj.weight'], N, dim, dim, false, false, w['proj.bias']);
  const h = x.map((v, i) => v + a[i]);
  const m1 = ref.matmul(ref.layerNorm(h, w['ln2.gamma'], w['ln2.beta'], dim, 1e-5), w['fc1.weight'], N, dim, hidden, false, false, w['fc1.bias']).map(gelu);
  const m2 = ref.matmul(m1, w['fc2.weight'], N, hidden, dim, false, false, w['fc2.bias']);
  return h.map((v, i) => v + m2[i]);
}

t('forward against float64, with RoPE and a padding mask', async () => {
  const gpu = await testGpu();
  const [B, L, dim, H] = [2, 5, 16, 2];
  const block = new TransformerBlock(gpu, dim, H, { mlpRatio: 2, seed: 3, name: 'b' });
  // Non-trivial norms and biases (they start at 1 and 0).
  for (const [name, p] of block.namedParameters()) if (/gamma|bias|beta/.test(name)) gpu.upload(p.buffer, Float32Array.from(randomValues(p.size, p.size, 0.5, 1.5)));
  const w: Record<string, Float64Array> = {};
  for (const [name, p] of block.namedParameters()) w[name] = await host(p);
  const x = Float64Array.from(Float32Array.from(randomValues(B * L * dim, 1)));
  const mask = [1, 1, 1, 1, 1, 1, 1, 0, 1, 0];
  const tables = ops.ropeTables(gpu, Array.from({ length: L }, (_, l) => [l]), dim / H, 100);
  const angle = (l: number, i: number) => l * 100 ** ((-2 * i) / (dim / H));
  const y = block.forward(ops.tensor(gpu, Float32Array.from(x), [B, L, dim]), { rope: tables, mask: ops.tensor(gpu, mask, [B, L]) });
  assertClose(await y.floats(), refBlock(x, B, L, dim, H, w, mask, angle), { rtol: 2e-4, atol: 2e-5 }, 'transformer block');
  assert.is(block.parameters().length, 12);
});

t('gradients of the input and of the qkv weights', async () => {
  const gpu = await testGpu();
  const [B, L, dim, H] = [1, 3, 8, 2];
  const block = new TransformerBlock(gpu, dim, H, { mlpRatio: 1, seed: 5, name: 'b' });
  const w: Record<string, Float64Array> = {};
  for (const [name, p] of block.namedParameters()) w[name] = await host(p);
  await checkGradients({
    what: 'transformer block (input)', gpu,
    inputs: [{ data: randomValues(B * L * dim, 2), shape: [B, L, dim] }],
    op: (x) => block.forward(x),
    reference: (x) => refBlock(x, B, L, dim, H, w),
    tol: { rtol: 5e-4, atol: 5e-5 },
  });
  // The weight's gradient: L = sum(y * R) against central differences of the float64 block.
  for (const p of block.parameters()) { p.grad?.dispose(); p.grad = null; }
  const x = Float64Array.from(Float32Array.from(randomValues(B * L * dim, 3)));
  const R = randomValues(B * L * dim, 4);
  const y = block.forward(ops.tensor(gpu, Float32Array.from(x), [B, L, dim]));
  backward(y, ops.tensor(gpu, Float32Array.from(R), y.shape));
  const numeric = ref.numericGrad((qkvW) => ref.dot(refBlock(x, B, L, dim, H, { ...w, 'qkv.weight': qkvW }), Float32Array.from(R)), w['qkv.weight']);
  assertClose(await block.qkv.weight.grad!.floats(), numeric, { rtol: 5e-4, atol: 5e-5 }, 'transformer block (qkv weight)');
});

t.run();
