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

const MODES = ['radfinder', 'renormalized'] as const;

t('forward: loss, expected depth and argmax (both target modes; sigma 2 and 0.3)', async () => {
  const gpu = await testGpu();
  for (const target of MODES)
    for (const sigma of [2, 0.3])
      for (const [S, D] of [[1, 3], [5, 10], [70, 16]]) {
        const p = problem(S, D, S);
        const out = ops.depthHead(ops.tensor(gpu, Float32Array.from(p.scores), [S, D]), ops.tensor(gpu, p.valid, [S, D]), ops.fromInts(gpu, p.target, [S]), { target, sigma });
        const expect = ref.depthHead(p.scores, p.valid, p.target, S, D, sigma, 12, target);
        const got = await out.floats();
        assertClose(got.filter((_, i) => i % 3 < 2), expect.filter((_, i) => i % 3 < 2), { rtol: 2e-5, atol: 2e-6 }, `depth head ${target} sigma ${sigma} ${S}x${D}`);
        assert.equal([...got].filter((_, i) => i % 3 === 2), [...expect].filter((_, i) => i % 3 === 2), 'argmax');
      }
});

t('the two target modes differ next to padded bins and agree away from them', async () => {
  // Target bin 9 of 10, last two bins invalid: RadFinder's target loses the mass on bins 8-9's
  // Gaussian tail... and on the invalid bins, so its loss differs from the renormalised one.
  const S = 1, D = 10;
  const scores = Float64Array.from({ length: D }, (_, d) => Math.sin(d));
  const valid = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
  const near = [7], far = [3];
  const lossOf = (t: number[], mode: 'radfinder' | 'renormalized') => ref.depthHead(scores, valid, t, S, D, 2, 12, mode)[0];
  assert.ok(Math.abs(lossOf(near, 'radfinder') - lossOf(near, 'renormalized')) > 1e-3, 'modes differ near padding');
  // Far from padding and edges only the radius rule could differ (equal at sigma 2) and the
  // normaliser (the same bins): equal.
  const valid2 = valid.map(() => 1);
  assert.ok(Math.abs(ref.depthHead(scores, valid2, far, S, D, 2, 12, 'radfinder')[0] - ref.depthHead(scores, valid2, far, S, D, 2, 12, 'renormalized')[0]) < 1e-12);
});

t('backward: soft cross-entropy and expected-depth gradients (both target modes)', async () => {
  const gpu = await testGpu();
  const S = 3, D = 7;
  const { scores, valid, target } = problem(S, D, 9);
  for (const mode of MODES)
    await checkGradients({
      what: `depthHead ${mode}`, gpu, inputs: [{ data: scores.map((x) => x / 4), shape: [S, D] }],
      // The argmax column carries no gradient: weight only loss and expected depth.
      op: (sc) => ops.slice(ops.depthHead(sc, ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S]), { target: mode }), 1, 0, 2),
      reference: (sc) => ref.depthHead(sc, valid, target, S, D, 2, 12, mode).filter((_, i) => i % 3 < 2),
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
