// The bootstrap over cases: exact enumeration against brute force, drawn resamples against
// the exact distribution, weighted metrics against the plain metric on the materialised
// resample, determinism, and intervals that contain their point estimates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../src/rng.ts';
import {
  WeightedAuroc, bootstrapInterval, bootstrapValues, drawnPlan, exactPlan, multisetCount, percentileInterval, quantile, resamplePlan,
  weightedRecall, weightedSnippetMean,
} from '../../src/eval/bootstrap.ts';
import { auroc } from '../../src/eval/metrics.ts';
import { LOC_KEYS, hasPerCase, metricFunctions, reviveEvalReport, summarize, toCompactJson } from '../../src/eval/summary.ts';
import { deterministicSubset, formatEvalSplits } from '../../src/eval/run.ts';
import { fakeRaw, fakeReport } from './fake-run.ts';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

test('exact plan: every multiset once, with its multinomial probability (brute force over n^n draws)', () => {
  for (const n of [1, 2, 3, 4]) {
    const plan = exactPlan(n);
    assert.is(plan.count, multisetCount(n));
    // Brute force: all n^n ordered draws, counted per multiset.
    const freq = new Map<string, number>();
    for (let code = 0; code < n ** n; code++) {
      const w = new Array(n).fill(0);
      for (let k = 0, c = code; k < n; k++, c = Math.floor(c / n)) w[c % n]++;
      freq.set(w.join(','), (freq.get(w.join(',')) ?? 0) + 1 / n ** n);
    }
    assert.is(freq.size, plan.count);
    let total = 0;
    for (let r = 0; r < plan.count; r++) {
      const key = Array.from(plan.weights.subarray(r * n, (r + 1) * n)).join(',');
      close(plan.prob[r], freq.get(key)!, 1e-12, key);
      total += plan.prob[r];
    }
    close(total, 1, 1e-12, 'sum');
  }
  assert.is(multisetCount(6), 462);
  assert.is(multisetCount(100), Infinity);
});

test('percentile interval of recall on 6 cases: the exact binomial bootstrap distribution', () => {
  // 4 of 6 reports find their volume first: the resampled R@1 is Binomial(6, 2/3) / 6.
  const ranks = [1, 1, 3, 1, 2, 1];
  const plan = resamplePlan(6); // 462 multisets <= 1000 resamples: enumerated
  assert.ok(plan.exact);
  const values = bootstrapValues(plan, (w) => weightedRecall(ranks, 1, w));
  const binom = [0, 1, 2, 3, 4, 5, 6].map((k) => {
    let c = 1;
    for (let i = 0; i < k; i++) c = (c * (6 - i)) / (i + 1);
    return c * (2 / 3) ** k * (1 / 3) ** (6 - k);
  });
  for (let k = 0; k <= 6; k++) {
    let p = 0;
    values.forEach((v, r) => (p += Math.abs(v - k / 6) < 1e-12 ? plan.prob[r] : 0));
    close(p, binom[k], 1e-12, `P(R@1 = ${k}/6)`);
  }
  // CDF: P(<= 1/6) = 0.0178 < 0.025 <= P(<= 2/6) = 0.100; P(<= 5/6) = 0.912 < 0.975.
  assert.equal(bootstrapInterval(plan, (w) => weightedRecall(ranks, 1, w)), [2 / 6, 1]);
  // Drawn resamples (seeded) reproduce the exact distribution and interval.
  const drawn = drawnPlan(6, 20000, 7);
  const dv = bootstrapValues(drawn, (w) => weightedRecall(ranks, 1, w));
  for (let k = 0; k <= 6; k++) close(dv.filter((v) => Math.abs(v - k / 6) < 1e-12).length / 20000, binom[k], 0.01, `drawn P(${k}/6)`);
  assert.equal(percentileInterval(dv, drawn.prob), [2 / 6, 1]);
});

test('quantile: inverse CDF, NaN left out', () => {
  assert.is(quantile([3, 1, 2, 4], [0.25, 0.25, 0.25, 0.25], 0.5), 2);
  assert.is(quantile([3, 1, 2, 4], [0.25, 0.25, 0.25, 0.25], 0.51), 3);
  assert.is(quantile([NaN, 1, 2], [0.5, 0.25, 0.25], 0.5), 1);
  assert.ok(Number.isNaN(quantile([NaN], [1], 0.5)));
});

test('drawn resamples: deterministic with a seed, each of n draws', () => {
  const a = drawnPlan(50, 200, 3), b = drawnPlan(50, 200, 3), c = drawnPlan(50, 200, 4);
  assert.equal(Array.from(a.weights), Array.from(b.weights));
  assert.not.equal(Array.from(a.weights), Array.from(c.weights));
  for (let r = 0; r < 200; r++) assert.is(a.weights.subarray(r * 50, (r + 1) * 50).reduce((s, x) => s + x, 0), 50);
});

test('weighted metrics equal the plain metric on the materialised resample', () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 30; trial++) {
    const n = 3 + (trial % 9);
    // Scores on a coarse grid (ties), some unknown labels.
    const scores = Array.from({ length: n }, () => Math.round(rng.next() * 4) / 4);
    const labels = Array.from({ length: n }, () => (rng.next() < 0.1 ? -1 : rng.next() < 0.4 ? 1 : 0));
    const ranks = Array.from({ length: n }, () => (rng.next() < 0.15 ? null : 1 + Math.floor(rng.next() * n)));
    const snCase = Array.from({ length: 2 * n }, () => Math.floor(rng.next() * n));
    const snErr = snCase.map(() => rng.next() * 50);
    const w = drawnPlan(n, 1, 100 + trial).weights;
    const idx = Array.from(w).flatMap((c, i) => new Array(c).fill(i) as number[]);
    const wa = new WeightedAuroc(scores, labels).auc(w);
    const plain = auroc(idx.map((i) => scores[i]), idx.map((i) => labels[i]));
    assert.ok(Number.isNaN(wa) ? Number.isNaN(plain) : Math.abs(wa - plain) < 1e-12, `AUROC ${wa} vs ${plain}`);
    const full = new WeightedAuroc(scores, labels).auc(), direct = auroc(scores, labels);
    assert.ok(Number.isNaN(full) ? Number.isNaN(direct) : full === direct, `${full} vs ${direct}`);
    const q = idx.filter((i) => ranks[i] !== null);
    const plainRecall = q.length ? q.filter((i) => ranks[i]! <= 2).length / q.length : NaN;
    const wr = weightedRecall(ranks, 2, w);
    assert.ok(Number.isNaN(plainRecall) ? Number.isNaN(wr) : Math.abs(wr - plainRecall) < 1e-12);
    const expanded = idx.flatMap((i) => snCase.flatMap((c, k) => (c === i ? [snErr[k]] : [])));
    const plainMae = expanded.length ? expanded.reduce((a, b) => a + b, 0) / expanded.length : NaN;
    const wm = weightedSnippetMean(snErr, snCase, w);
    assert.ok(Number.isNaN(plainMae) ? Number.isNaN(wm) : Math.abs(wm - plainMae) < 1e-9);
  }
  assert.ok(Number.isNaN(new WeightedAuroc([NaN, 1], [1, 0]).auc()), 'a non-finite score: NaN');
});

test('summarize: intervals contain the estimates, deterministic, per-case material reproduces every metric', () => {
  const raw = fakeRaw({ n: 60, seed: 2, quality: 1 });
  const r = summarize(raw, { resamples: 400, seed: 9 });
  assert.equal(r, summarize(raw, { resamples: 400, seed: 9 }), 'same seed, same report');
  assert.not.equal(r.zeroShot.macroAurocCi, summarize(raw, { resamples: 400, seed: 10 }).zeroShot.macroAurocCi);
  const inside = (v: number, ci: [number, number], what: string) => assert.ok(ci[0] <= v + 1e-12 && v <= ci[1] + 1e-12 && ci[0] <= ci[1], `${what}: ${v} outside [${ci}]`);
  for (const k of Object.keys(r.retrieval)) inside(r.retrieval[k], r.retrievalCi[k], k);
  assert.equal(Object.keys(r.retrieval), ['R@1', 'R@5', 'R@10', 'R@50']);
  assert.is(r.retrievalChance['R@10'], 10 / 60);
  inside(r.zeroShot.macroAuroc, r.zeroShot.macroAurocCi, 'macro AUROC');
  for (const c of r.zeroShot.perClass) if (c.positives > 1 && c.negatives > 1) inside(c.auroc, c.aurocCi, c.label);
  for (const k of LOC_KEYS) inside(r.localization[k], r.localization.ci[k], k);
  assert.ok(r.retrievalCi['R@1'][0] < r.retrievalCi['R@1'][1] && r.localization.ci.maeArgmaxMm[0] < r.localization.ci.maeArgmaxMm[1], 'intervals of width > 0');
  // From the file alone: the same numbers.
  const back = reviveEvalReport(JSON.parse(toCompactJson(r)));
  assert.ok(hasPerCase(back));
  const f = metricFunctions(back);
  for (const k of Object.keys(r.retrieval)) close(f[k](), r.retrieval[k], 1e-12, k);
  close(f.macroAuroc(), r.zeroShot.macroAuroc, 1e-12, 'macro AUROC');
  for (const k of LOC_KEYS) close(f[k](), r.localization[k], 1e-9, k);
  assert.is(back.perCase.rank.filter((x) => x === null).length, raw.rank.filter((x) => x === null).length, 'empty reports stay null');
});

test('the evaluation file of 100 cases stays small', () => {
  const json = toCompactJson(fakeReport({ n: 100, seed: 4, quality: 1 }));
  assert.ok(json.length < 400_000, `${json.length} bytes`);
  assert.ok(!json.includes('NaN'));
});

test('training subset: deterministic, independent of order, nested as it grows', () => {
  const ids = Array.from({ length: 300 }, (_, i) => `case-${i}`);
  const a = deterministicSubset(ids, 40);
  assert.is(a.length, 40);
  assert.equal(a, [...a].sort((x, y) => x - y));
  const reversed = [...ids].reverse();
  assert.equal(deterministicSubset(reversed, 40).map((i) => reversed[i]).sort(), a.map((i) => ids[i]).sort());
  const big = new Set(deterministicSubset(ids, 80));
  assert.ok(a.every((i) => big.has(i)));
  assert.is(deterministicSubset(ids.slice(0, 5), 40).length, 5);
});

test('formatEvalSplits: test and train side by side with intervals', () => {
  const test = fakeReport({ n: 30, seed: 1, quality: 1 });
  const train = fakeReport({ n: 30, seed: 2, quality: 3, split: 'train', subsetOf: 120 });
  const lines = formatEvalSplits(test, train);
  assert.match(lines[0], /test 30 cases \| train 30 of 120 cases/);
  assert.ok(lines.some((l) => /^ {2}zero-shot macro AUROC: test \d+\.\d \[\d+\.\d, \d+\.\d\] \(\d+ classes\) \| train \d+\.\d \[/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /R@10: test .* \(chance 33\.3\) \| train/.test(l)));
  assert.ok(lines.some((l) => /MAE argmax bin: test \d+\.\d mm \[/.test(l)));
  assert.ok(formatEvalSplits(test).every((l) => !l.includes('train')));
});

test.run();
