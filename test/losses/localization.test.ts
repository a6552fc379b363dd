// The depth head against float64: masked bins (scans shorter than the bin grid), targets
// near the edges (the Gaussian cut by the mask), snippet counts past one workgroup;
// gradients of the scores through the soft cross-entropy and the expected depth; scores of
// 1e4 and rows of 4096 bins; exactly-zero gradients (a zero output gradient, masked bins, a
// snippet without a valid bin).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { GRAD, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { depthHead, localizationLoss } from '../../src/losses/index.ts';
import { backward } from '../../src/autograd.ts';

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
        const out = depthHead(ops.tensor(gpu, Float32Array.from(p.scores), [S, D]), ops.tensor(gpu, p.valid, [S, D]), ops.fromInts(gpu, p.target, [S]), { target, sigma });
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
      op: (sc) => ops.slice(depthHead(sc, ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S]), { target: mode }), 1, 0, 2),
      reference: (sc) => ref.depthHead(sc, valid, target, S, D, 2, 12, mode).filter((_, i) => i % 3 < 2),
    });
});

t('localizationLoss with the L1 readout term', async () => {
  const gpu = await testGpu();
  const S = 4, D = 8;
  const { scores, valid, target } = problem(S, D, 2);
  const targetMm = target.map((b) => (b + 0.5) * 12);
  const { loss } = localizationLoss(ops.tensor(gpu, Float32Array.from(scores), [S, D]), ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, target, [S]), { l1Weight: 0.01, targetMm: ops.tensor(gpu, targetMm, [S, 1]) });
  const h = ref.depthHead(scores, valid, target, S, D);
  let ce = 0, l1 = 0;
  for (let s = 0; s < S; s++) { ce += h[3 * s] / S; l1 += Math.abs(h[3 * s + 1] - targetMm[s]) / S; }
  assertClose([await loss.item()], [ce + 0.01 * l1], { rtol: 2e-5, atol: 0 }, 'localization loss');
  assert.throws(() => depthHead(ops.zeros(gpu, [2, 3]), ops.zeros(gpu, [2, 3]), ops.fromInts(gpu, [0, 3], [2])), /target bin 3 of snippet 1 is outside \[0, 3\)/);
});

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

t('scores of 1e4: the expected depth of two equal bins is 12 mm (was 11.997)', async () => {
  const gpu = await testGpu();
  for (const target of MODES) {
    const out = await depthHead(ops.tensor(gpu, [1e4, 1e4], [1, 2]), ops.tensor(gpu, [1, 1], [1, 2]), ops.fromInts(gpu, [0], [1]), { target }).floats();
    const expect = ref.depthHead(Float64Array.from([1e4, 1e4]), [1, 1], [0], 1, 2, 2, 12, target);
    assert.is(expect[1], 12, 'the reference gives 12 mm');
    // p = exp(-log 2) to a few ulps: 2e-6 relative. Rounding m + log(s) to f32's 1e-3 spacing
    // near 1e4 (the old kernel) was 2e-4 off.
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(out[i] - expect[i]) <= 2e-6 * Math.abs(expect[i]), `${target}: column ${i} is ${out[i]}, expected ${expect[i]}`);
  }
});

t('rows of 4096 bins near 1e4 and across +-1e4: forward, and gradient by finite differences', async () => {
  const gpu = await testGpu();
  const D = 4096;
  // Row 0: every bin 1e4; row 1: 1e4 + [-8, 8) with its last 100 bins outside the scan;
  // row 2: scores across [-1e4, 1e4).
  const scores = f32([...new Array(D).fill(1e4), ...randomValues(D, 51, -8, 8).map((v) => 1e4 + v), ...randomValues(D, 52, -1e4, 1e4)]);
  const valid = Array.from({ length: 3 * D }, (_, i) => (Math.floor(i / D) === 1 && i % D >= D - 100 ? 0 : 1));
  const target = [5, 2000, 4000];
  for (const mode of MODES) {
    const sc = ops.parameter(gpu, Float32Array.from(scores), [3, D], 'scores');
    const out = depthHead(sc, ops.tensor(gpu, valid, [3, D]), ops.fromInts(gpu, target, [3]), { target: mode });
    const got = await out.floats();
    const expect = ref.depthHead(scores, valid, target, 3, D, 2, 12, mode);
    // A sum of 4096 exponentials carries ~sqrt(4096) 6e-8 = 4e-6 relative error (log turns it
    // into that much absolute error of log p); the expected depth (up to 49 m) sums 4096
    // products: 2e-5 relative, plus 2e-6 of the largest for the losses near 0.
    assertClose(got.filter((_, i) => i % 3 < 2), expect.filter((_, i) => i % 3 < 2), { rtol: 2e-5, atol: 2e-6 }, `depth head 3x${D} ${mode}`);
    assert.equal([...got].filter((_, i) => i % 3 === 2), [...expect].filter((_, i) => i % 3 === 2), 'argmax');
    // Gradient of sum(R * (loss, E)) for rows 0 and 1. The loss part by finite differences of
    // the float64 reference, which need scores of order 1: the head is unchanged by adding a
    // constant to a row's scores, so it is differenced at the scores minus 1e4 (exact for
    // these f32 values). The expected depth's part analytically, R_E p_d (z_d - E), p the
    // float64 softmax over the valid bins: differences of an E of 25 m summed over 4096 bins
    // lose ~1e-10 of it to float64 rounding, 1e-5 after dividing by h.
    const R = randomValues(6, 53);
    backward(ops.slice(out, 1, 0, 2), ops.tensor(gpu, Float32Array.from(R), [3, 2]));
    const grad = await sc.grad!.floats();
    for (const row of [0, 1]) {
      const x = scores.slice(row * D, (row + 1) * D).map((v) => v - 1e4);
      const v = valid.slice(row * D, (row + 1) * D);
      const nValid = v.filter((b) => b).length; // the valid bins come first
      const p = ref.softmax(x.subarray(0, nValid), nValid);
      const E = expect[3 * row + 1];
      // The bins around the target (where the Gaussian is), both ends, the masked ones, and
      // every 97th (central differences over all 4096 would take seconds).
      const bins = [...new Set([0, 1, D - 1, ...Array.from({ length: 17 }, (_, k) => target[row] - 8 + k), ...Array.from({ length: 43 }, (_, k) => 97 * k), nValid - 1, nValid])].filter((d) => d >= 0 && d < D);
      const loss = (xs: Float64Array) => R[2 * row] * ref.depthHead(xs, v, [target[row]], 1, D, 2, 12, mode)[0];
      const num = bins.map((d) => {
        const xp = Float64Array.from(x);
        xp[d] = x[d] + 1e-5;
        const fp = loss(xp);
        xp[d] = x[d] - 1e-5;
        return (fp - loss(xp)) / 2e-5 + (d < nValid ? R[2 * row + 1] * p[d] * ((d + 0.5) * 12 - E) : 0);
      });
      // GRAD's reasoning: f32 forward values (here E, to ~1e-6 relative) feed the analytic
      // gradient. (Its atol scales with the largest expected value, at the row's far bins.)
      assertClose(bins.map((d) => grad[row * D + d]), num, GRAD, `depth head gradient row ${row} of 4096 bins ${mode}`);
      for (let d = 0; d < D; d++) if (!v[d]) assert.is(grad[row * D + d], 0, `masked bin ${d}: exactly zero gradient`);
    }
    sc.dispose();
  }
});

t('exactly-zero gradients: a zero output gradient, and a snippet without a valid bin gives (0, 0, 0)', async () => {
  const gpu = await testGpu();
  const S = 3, D = 6;
  const scores = f32(randomValues(S * D, 61, -1e4, 1e4));
  const valid = [...new Array(D).fill(1), 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0];
  for (const mode of MODES) {
    const sc = ops.parameter(gpu, Float32Array.from(scores), [S, D], 'scores');
    const out = depthHead(sc, ops.tensor(gpu, valid, [S, D]), ops.fromInts(gpu, [1, 2, 3], [S]), { target: mode });
    backward(out, ops.zeros(gpu, [S, 3]));
    assert.ok((await sc.grad!.floats()).every((g) => g === 0), `${mode}: gy = 0 gives exactly 0`);
    sc.grad!.dispose();
    sc.grad = null;
    const got = await out.floats();
    assert.equal([...got.slice(3, 6)], [0, 0, 0], `${mode}: no valid bin: loss 0, depth 0, bin 0`);
    assert.equal([...ref.depthHead(scores, valid, [1, 2, 3], S, D, 2, 12, mode).slice(3, 5)], [0, 0], 'the reference agrees');
    backward(ops.slice(out, 1, 0, 2), ops.tensor(gpu, Float32Array.from(randomValues(S * 2, 62)), [S, 2]));
    const g = await sc.grad!.floats();
    assert.ok(g.slice(D, 2 * D).every((v) => v === 0), `${mode}: no valid bin: zero gradient`);
    for (let i = 0; i < S * D; i++) if (!valid[i]) assert.is(g[i], 0, `${mode}: masked bin ${i}: zero gradient`);
    sc.dispose();
  }
});

t.run();
