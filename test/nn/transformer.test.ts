// The ViT block (timm / RadFinder: separate q and kv projections, LayerScale, exact GELU,
// LayerNorm eps 1e-6, rotate-half 3D RoPE on the tokens after CLS, a key mask) against the
// float64 reference of test/reference/radfinder.ts, and its gradients (input and a weight)
// by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as cpu from '../reference/cpu.ts';
import * as rf from '../reference/radfinder.ts';
import { rope3dAngles, rope3dPeriods } from '../../src/model/rope3d.ts';
import * as ops from '../../src/ops/index.ts';
import type { Tensor } from '../../src/tensor.ts';
import { backward } from '../../src/autograd.ts';
import { TransformerBlock } from '../../src/nn/index.ts';

const t = suite('transformer');

async function stateDict(block: TransformerBlock): Promise<rf.StateDict> {
  const sd: rf.StateDict = new Map();
  for (const [name, p] of block.namedParameters()) sd.set(`b.${name}`, { shape: [...p.shape], data: Float64Array.from(await p.floats()) });
  return sd;
}

/** x [B, L, dim] through the reference block, CLS (token 0) unrotated, the rest on `grid`. */
function refBlock(sd: rf.StateDict, x: Float64Array, B: number, L: number, dim: number, H: number, angles: Float64Array[] | null, mask?: number[]): Float64Array {
  const out = new Float64Array(B * L * dim);
  for (let b = 0; b < B; b++) {
    const rows = Array.from({ length: L }, (_, l) => x.slice((b * L + l) * dim, (b * L + l + 1) * dim));
    const a = angles ? [null, ...angles] : rows.map(() => null);
    const y = rf.vitBlock(sd, 'b', rows, H, 1e-6, a, mask ? mask.slice(b * L, (b + 1) * L).map((m) => m !== 0) : undefined);
    y.forEach((r, l) => out.set(r, (b * L + l) * dim));
  }
  return out;
}

async function randomize(block: TransformerBlock): Promise<void> {
  // Non-trivial norms, biases and LayerScale (they start at 1, 0 and 1).
  for (const [name, p] of block.namedParameters())
    if (/norm|bias|gamma/.test(name)) block.norm1.weight.gpu.upload(p.buffer, Float32Array.from(randomValues(p.size, p.size + name.length, 0.5, 1.5)));
}

t('forward against float64: CLS + 3D RoPE tokens, a padding mask, LayerScale', async () => {
  const gpu = await testGpu();
  const [B, dim, H] = [2, 24, 2];
  const grid: [number, number, number] = [2, 1, 3];
  const L = 1 + 6;
  const block = new TransformerBlock(gpu, dim, H, { mlpRatio: 2, seed: 3, name: 'b' });
  await randomize(block);
  const sd = await stateDict(block);
  const periods = rope3dPeriods(dim / H, 1000);
  const tables = ops.ropeTablesFromAngles(gpu, rope3dAngles(grid, periods), dim / H);
  const angles = rf.rope3dAnglesFromPeriods(grid, periods);
  const x = Float64Array.from(Float32Array.from(randomValues(B * L * dim, 1)));
  const mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1];
  const y = block.forward(ops.tensor(gpu, Float32Array.from(x), [B, L, dim]), { rope: tables, mask: ops.tensor(gpu, mask, [B, L]) });
  assertClose(await y.floats(), refBlock(sd, x, B, L, dim, H, angles, mask), { rtol: 2e-4, atol: 2e-5 }, 'ViT block');
  assert.is(block.parameters().length, 16);
  tables.cos.dispose();
  tables.sin.dispose();
});

t('gradients of the input and of the kv weights', async () => {
  const gpu = await testGpu();
  const [B, L, dim, H] = [1, 3, 12, 2];
  const block = new TransformerBlock(gpu, dim, H, { mlpRatio: 1, seed: 5, name: 'b' });
  await randomize(block);
  const sd = await stateDict(block);
  await checkGradients({
    what: 'ViT block (input)', gpu,
    inputs: [{ data: randomValues(B * L * dim, 2), shape: [B, L, dim] }],
    op: (x) => block.forward(x),
    reference: (x) => refBlock(sd, x, B, L, dim, H, null),
    tol: { rtol: 5e-4, atol: 5e-5 },
  });
  for (const p of block.parameters()) { p.grad?.dispose(); p.grad = null; }
  const x = Float64Array.from(Float32Array.from(randomValues(B * L * dim, 3)));
  const R = randomValues(B * L * dim, 4);
  const y: Tensor = block.forward(ops.tensor(gpu, Float32Array.from(x), [B, L, dim]));
  backward(y, ops.tensor(gpu, Float32Array.from(R), y.shape));
  const kv = sd.get('b.attn.kv.weight')!;
  const numeric = cpu.numericGrad((w) => cpu.dot(refBlock(new Map(sd).set('b.attn.kv.weight', { shape: kv.shape, data: w }), x, B, L, dim, H, null), Float32Array.from(R)), kv.data);
  assertClose(await block.attn.kv.weight.grad!.floats(), numeric, { rtol: 5e-4, atol: 5e-5 }, 'ViT block (kv weight)');
});

t.run();
