// The SigLIP loss against float64 (batch sizes 1, 5 and 70, past one workgroup; a masked
// empty report); gradients of the image and text embeddings, t and b by finite differences.
import { suite } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import * as assert from 'uvu/assert';
import { backward } from '../../src/autograd.ts';

const t = suite('siglip');
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

t('loss against float64, with and without masked reports', async () => {
  const gpu = await testGpu();
  for (const [B, E, masked] of [[1, 4, false], [5, 8, true], [70, 16, false], [70, 16, true]] as [number, number, boolean][]) {
    const img = f32(randomValues(B * E, 1)), txt = f32(randomValues(B * E, 2));
    const valid = masked ? Array.from({ length: B }, (_, i) => (i % 4 === 2 ? 0 : 1)) : undefined;
    const tt = Math.fround(Math.log(10)), bb = -10;
    const loss = ops.siglipLoss(ops.tensor(gpu, Float32Array.from(img), [B, E]), ops.tensor(gpu, Float32Array.from(txt), [B, E]),
      ops.tensor(gpu, [tt], [1]), ops.tensor(gpu, [bb], [1]), valid ? ops.tensor(gpu, valid, [B]) : undefined);
    assertClose([await loss.item()], [ref.siglipLoss(img, txt, B, E, tt, bb, valid)], { rtol: 2e-5, atol: 0 }, `siglip B=${B}${masked ? ' masked' : ''}`);
  }
});

t('gradients of img, txt, t and b', async () => {
  const gpu = await testGpu();
  const B = 4, E = 3;
  for (const valid of [undefined, [1, 0, 1, 1]]) {
    await checkGradients({
      what: `siglip${valid ? ' masked' : ''}`, gpu,
      inputs: [{ data: randomValues(B * E, 3), shape: [B, E] }, { data: randomValues(B * E, 4), shape: [B, E] }, { data: Float64Array.from([0.7]), shape: [1] }, { data: Float64Array.from([-1.5]), shape: [1] }],
      op: (img, txt, tt, bb) => ops.siglipLoss(img, txt, tt, bb, valid ? ops.tensor(gpu, valid, [B]) : undefined),
      reference: (img, txt, tt, bb) => Float64Array.from([ref.siglipLoss(img, txt, B, E, tt[0], bb[0], valid)]),
    });
  }
});

t('a batch whose reports are all empty gives loss 0 and zero gradients, not NaN', async () => {
  const gpu = await testGpu();
  const img = ops.parameter(gpu, Float32Array.from(randomValues(6, 7)), [2, 3], 'img');
  const loss = ops.siglipLoss(img, ops.tensor(gpu, Float32Array.from(randomValues(6, 8)), [2, 3]), ops.tensor(gpu, [1], [1]), ops.tensor(gpu, [-1], [1]), ops.tensor(gpu, [0, 0], [2]));
  assert.is(await loss.item(), 0);
  backward(loss);
  assert.ok((await img.grad!.floats()).every((g) => g === 0));
  const bce = ops.bceWithLogits(ops.tensor(gpu, [1, 2], [1, 2]), ops.tensor(gpu, [-1, -1], [1, 2]));
  assert.is(await bce.item(), 0, 'no known label: 0');
});

t.run();
