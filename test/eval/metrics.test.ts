// Metrics against hand-computed values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { auroc, localizationMetrics, macroMean, recallAtK, retrievalRanks, snippetErrors } from '../../src/eval/metrics.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.ts';

test('recall@k: ranks of the matching candidate', () => {
  // Query 0: own 0.9 is first; query 1: own 0.2 is third; query 2: own 0.5 second.
  const sim = Float32Array.from([0.9, 0.1, 0.3, 0.8, 0.2, 0.5, 0.1, 0.7, 0.5]);
  assert.equal(recallAtK(sim, 3, [1, 2, 3]), { 'R@1': 1 / 3, 'R@2': 2 / 3, 'R@3': 1 });
  // Ties and non-finite scores count against the query; listed queries only.
  assert.equal(recallAtK(new Float32Array(9).fill(0.5), 3, [1]), { 'R@1': 0 });
  assert.equal(recallAtK(Float32Array.from([NaN, 0, 0, 0, 1, 0, 0, 0, 1]), 3, [1]), { 'R@1': 2 / 3 });
  assert.equal(recallAtK(sim, 3, [1], [0, 2]), { 'R@1': 0.5 });
  // Ranks, 1 = first; ties count against; a non-finite own score is never found (n + 1).
  assert.equal(retrievalRanks(sim, 3), [1, 3, 2]);
  assert.equal(retrievalRanks(new Float32Array(9).fill(0.5), 3), [3, 3, 3]);
  assert.equal(retrievalRanks(Float32Array.from([NaN, 0, 0, 0, 1, 0, 0, 0, 1]), 3, [0, 2]), [4, 1]);
});

test('AUROC: perfect, inverted, ties, undefined', () => {
  assert.is(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.is(auroc([1, 2, 3], [1, 0, 0]), 0);
  assert.is(auroc([1, 1, 1, 1], [1, 0, 1, 0]), 0.5);
  assert.is(auroc([0.3, 0.9, 0.5], [0, -1, 1]), 1, 'unknown labels (-1) are left out');
  assert.ok(Number.isNaN(auroc([1, 2], [1, 1])));
  assert.ok(Number.isNaN(auroc([NaN, 0.2, 0.3], [1, 0, 1])), 'NaN scores: NaN, and no endless loop');
  assert.is(macroMean([0.5, NaN, 1]), 0.75);
});

test('localization MAE and its baselines', () => {
  const m = localizationMetrics([
    { target: 2, predicted: 3, expectedMm: 36, targetMm: 30, validBins: [0, 1, 2, 3, 4] },
    { target: 0, predicted: 0, expectedMm: 10, targetMm: 6, validBins: [0, 1, 2] },
  ], 12);
  assert.is(m.maeArgmaxMm, (12 + 0) / 2);
  assert.is(m.maeExpectedMm, (6 + 4) / 2);
  assert.is(m.maeRandomMm, ((6 / 5) * 12 + (3 / 3) * 12) / 2);
  assert.is(m.maeMiddleMm, (0 + 12) / 2);
  assert.equal(snippetErrors({ target: 2, predicted: 3, expectedMm: 36, targetMm: 30, validBins: [0, 1, 2, 3, 4] }, 12), { argmaxMm: 12, expectedMm: 6, randomMm: (6 / 5) * 12, middleMm: 0 });
});

test('safetensors round trip and damaged files', () => {
  const bytes = encodeSafetensors({ w: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, step: { shape: [1], data: Int32Array.from([7]) } }, { format: 'pt' });
  const back = decodeSafetensors(bytes, 'x.safetensors');
  assert.equal([...back.tensors.w.data], [1, 2, 3, 4, 5, 6]);
  assert.equal(back.tensors.w.shape, [2, 3]);
  assert.ok(back.tensors.step.data instanceof Int32Array);
  assert.equal(back.metadata, { format: 'pt' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is((8 + headerLen) % 8, 0, 'data aligned to 8 bytes');
  assert.throws(() => decodeSafetensors(bytes.slice(0, bytes.length - 4), 'cut.safetensors'), /cut\.safetensors: step|cut\.safetensors: w/);
  assert.throws(() => decodeSafetensors(bytes.slice(0, 5), 'tiny.safetensors'), /tiny\.safetensors: header: file of 5 bytes/);
});

test.run();
