// Fused attention against a float64 softmax(q k^T / sqrt(D)) v: lengths that are not
// multiples of the 64-query workgroup, head dimensions 4 to 64, cross attention (Lq != Lk),
// key masks (including a row with every key masked); gradients of q, k and v by finite
// differences of the float64 reference.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { setAttentionVariant } from '../../src/ops/attention.ts';

async function variants(): Promise<('subgroup' | 'plain')[]> {
  return (await testGpu()).subgroupMinSize >= 4 ? ['subgroup', 'plain'] : ['plain'];
}

const t = suite('attention');
const TOL = { rtol: 1e-4, atol: 2e-5 };
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

t('forward: shapes, head dimensions, cross attention, masks (both kernels)', async () => {
  const gpu = await testGpu();
  for (const variant of await variants()) {
  setAttentionVariant(variant);
  const cases: [number, number, number, number, number, boolean][] = [
    [1, 1, 1, 1, 4, false], [2, 3, 5, 7, 8, false], [1, 2, 70, 70, 32, false], [2, 2, 65, 33, 16, true], [1, 1, 3, 130, 64, true],
  ];
  for (const [B, H, Lq, Lk, D, masked] of cases) {
    const q = f32(randomValues(B * H * Lq * D, 1, -2, 2)), k = f32(randomValues(B * H * Lk * D, 2, -2, 2)), v = f32(randomValues(B * H * Lk * D, 3));
    const mask = masked ? Array.from({ length: B * Lk }, (_, i) => (i % 3 === 1 ? 0 : 1)) : undefined;
    const out = ops.attention(
      ops.tensor(gpu, Float32Array.from(q), [B, H, Lq, D]), ops.tensor(gpu, Float32Array.from(k), [B, H, Lk, D]), ops.tensor(gpu, Float32Array.from(v), [B, H, Lk, D]),
      { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined },
    );
    assertClose(await out.floats(), ref.attention(q, k, v, B, H, Lq, Lk, D, mask), TOL, `${variant} attention B${B} H${H} ${Lq}x${Lk}x${D}${masked ? ' masked' : ''}`);
  }
  }
  setAttentionVariant('auto');
});

t('a query with every key masked gets zeros, not NaN', async () => {
  const gpu = await testGpu();
  const q = ops.tensor(gpu, Float32Array.from(randomValues(2 * 3 * 4, 1)), [2, 1, 3, 4]);
  const k = ops.tensor(gpu, Float32Array.from(randomValues(2 * 5 * 4, 2)), [2, 1, 5, 4]);
  const out = await ops.attention(q, k, k, { mask: ops.tensor(gpu, [0, 0, 0, 0, 0, 1, 1, 0, 1, 1], [2, 5]) }).floats();
  assert.ok(out.slice(0, 12).every((x) => x === 0), 'batch 0 (all masked) is zero');
  assert.ok(out.slice(12).every((x) => Number.isFinite(x) && x !== 0), 'batch 1 is finite');
});

t('backward: q, k and v by finite differences (masked and not, both kernels)', async () => {
  const gpu = await testGpu();
  for (const variant of await variants())
  for (const [B, H, Lq, Lk, D, masked] of [[1, 2, 3, 5, 4, false], [2, 1, 4, 3, 8, true], [1, 1, 3, 4, 40, false]] as [number, number, number, number, number, boolean][]) {
    setAttentionVariant(variant);
    const mask = masked ? [1, 0, 1, 1, 1, 0] : undefined;
    await checkGradients({
      what: `${variant} attention ${Lq}x${Lk}x${D}${masked ? ' masked' : ''}`, gpu,
      inputs: [{ data: randomValues(B * H * Lq * D, 4), shape: [B, H, Lq, D] }, { data: randomValues(B * H * Lk * D, 5), shape: [B, H, Lk, D] }, { data: randomValues(B * H * Lk * D, 6), shape: [B, H, Lk, D] }],
      op: (q, k, v) => ops.attention(q, k, v, { mask: mask ? ops.tensor(gpu, mask, [B, Lk]) : undefined }),
      reference: (q, k, v) => ref.attention(q, k, v, B, H, Lq, Lk, D, mask),
    });
  }
  setAttentionVariant('auto');
});

t('rope: forward against float64 on 1 and 3 axes; backward by finite differences', async () => {
  const gpu = await testGpu();
  const [B, L, H, D] = [2, 6, 3, 12];
  const positions3 = Array.from({ length: L }, (_, l) => [l % 2, Math.floor(l / 2) % 3, l]);
  for (const positions of [Array.from({ length: L }, (_, l) => [l]), positions3]) {
    const tables = ops.ropeTables(gpu, positions, D, 100);
    const axes = positions[0].length;
    const split = Array.from({ length: axes }, (_, a) => 2 * (Math.floor(D / 2 / axes) + (a < (D / 2) % axes ? 1 : 0)));
    const angle = (l: number, i: number) => {
      let a = 0, start = 0;
      while (i >= start + split[a] / 2) start += split[a++] / 2;
      return positions[l][a] * 100 ** ((-2 * (i - start)) / split[a]);
    };
    const x = randomValues(B * L * H * D, 7);
    const y = await ops.rope(ops.tensor(gpu, Float32Array.from(x), [B, L, H, D]), tables).floats();
    assertClose(y, ref.rope(f32(x), B, L, H, D, angle), { rtol: 1e-5, atol: 1e-6 }, `rope ${axes} axes`);
    await checkGradients({
      what: `rope ${axes} axes`, gpu, inputs: [{ data: x, shape: [B, L, H, D] }],
      op: (a) => ops.rope(a, tables), reference: (a) => ref.rope(a, B, L, H, D, angle),
    });
  }
  assert.throws(() => ops.ropeTables(gpu, [[1]], 5), /head dimension 5 must be even/);
  const tables = ops.ropeTables(gpu, [[0], [1]], 4);
  assert.throws(() => ops.rope(ops.zeros(gpu, [1, 3, 1, 4]), tables), /does not match tables for 2 tokens/);
});

t('bad shapes name the op', async () => {
  const gpu = await testGpu();
  const q = ops.zeros(gpu, [1, 2, 3, 6]);
  assert.throws(() => ops.attention(q, q, q), /head dimension 6 must be a multiple of 4/);
  const q4 = ops.zeros(gpu, [1, 2, 3, 4]);
  assert.throws(() => ops.attention(q4, ops.zeros(gpu, [1, 1, 3, 4]), ops.zeros(gpu, [1, 1, 3, 4])), /k and v must be \[1, 2, Lk, 4\]/);
  assert.throws(() => ops.attention(q4, q4, q4, { mask: ops.zeros(gpu, [1, 2]) }), /mask \[1x2\] must be \[1, 3\]/);
});

t.run();
