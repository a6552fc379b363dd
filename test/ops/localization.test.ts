// The depth head against float64: masked bins (scans shorter than the bin grid), targets
// near the edges (the Gaussian cut by the mask), snippet counts past one workgroup;
// gradients of the scores through the soft cross-entropy and the expected depth.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('localization');

function problem(S: number, D: number, seed: number) {
  const scores = Float64Array.from(Float32Array.from(randomValues(S * D, seed, -8, 8)));
  const valid = Array.from({ length: S * D }, (_, i) => (i % D < D - (Math.floor(i / D) % 4) ? 1 : 0)); // last 0-3 bins outside the scan
  const target = Array.from({ length: S }, (_, s) => [0, 1, Math.floor(D / 2), D - 4][s % 4]);
  return { scores, valid, target };
}

t('forward: loss, expected depth and argmax', async () => {
  const gpu = await testGpu();
  for (const [S, D] of [[1, 3], [5, 10], [70, 16]]) {
    const { scores, valid, target } = problem(S, D, S);
    const out = ops.depthHead(ops.tensor(gpu, Float32Array.from(scores), [S, D]), ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S]));
    const expect = ref.depthHead(scores, valid, target, S, D);
    const got = await out.floats();
    assertClose(got.filter((_, i) => i % 3 < 2), expect.filter((_, i) => i % 3 < 2), { rtol: 2e-5, atol: 2e-6 }, `depth head ${S}x${D}`);
    assert.equal([...got].filter((_, i) => i % 3 === 2), [...expect].filter((_, i) => i % 3 === 2), 'argmax');
  }
});

t('backward: soft cross-entropy and expected-depth gradients', async () => {
  const gpu = await testGpu();
  const S = 3, D = 7;
  const { scores, valid, target } = problem(S, D, 9);
  await checkGradients({
    what: 'depthHead', gpu, inputs: [{ data: scores.map((x) => x / 4), shape: [S, D] }],
    // The argmax column carries no gradient: weight only loss and expected depth.
    op: (sc) => ops.slice(ops.depthHead(sc, ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S])), 1, 0, 2),
    reference: (sc) => ref.depthHead(sc, valid, target, S, D).filter((_, i) => i % 3 < 2),
  });
});

t('localizationLoss with the L1 readout term', async () => {
  const gpu = await testGpu();
  const S = 4, D = 8;
  const { scores, valid, target } = problem(S, D, 2);
  const targetMm = target.map((b) => (b + 0.5) * 12);
  const { loss } = ops.localizationLoss(ops.tensor(gpu, Float32Array.from(scores), [S, D]), ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S]), { l1Weight: 0.01, targetMm: ops.tensor(gpu, targetMm, [S, 1]) });
  const h = ref.depthHead(scores, valid, target, S, D);
  let ce = 0, l1 = 0;
  for (let s = 0; s < S; s++) { ce += h[3 * s] / S; l1 += Math.abs(h[3 * s + 1] - targetMm[s]) / S; }
  assertClose([await loss.item()], [ce + 0.01 * l1], { rtol: 2e-5, atol: 0 }, 'localization loss');
  assert.throws(() => ops.depthHead(ops.zeros(gpu, [2, 3]), ops.zeros(gpu, [2, 3]), ops.fromInts(gpu, [0, 3], [2])), /target bin 3 of snippet 1 is outside \[0, 3\)/);
});

t.run();
