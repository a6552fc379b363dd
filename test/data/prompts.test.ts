// Disease prompts: the required pair per label, >= 3 phrasings, sampling, zero-shot templates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../../src/data/labels.ts';
import { allPrompts, promptPairs, samplePromptPair, samplePromptSet } from '../../src/data/prompts.ts';
import { Rng } from '../../src/rng.ts';

test('every label: the required "{X} is present." pair first, >= 3 distinct pairs, clean English', () => {
  for (const [l, label] of LABELS.entries()) {
    const pairs = promptPairs(l);
    assert.ok(pairs.length >= 3, `${label}: ${pairs.length} pairs`);
    assert.equal(pairs[0], { pos: `${label} is present.`, neg: `${label} is not present.` });
    assert.equal(promptPairs(label), pairs, 'by name = by index');
    const all = pairs.flatMap((p) => [p.pos, p.neg]);
    assert.is(new Set(all).size, all.length, `${label}: duplicate prompts`);
    for (const p of pairs) {
      for (const s of [p.pos, p.neg]) {
        assert.match(s, /^[A-Z][^{}]*\.$/, `${label}: '${s}'`);
        assert.not.match(s, /\s\s|\s[.,]|\ba [aeiou]|\ban [^aeiou]/i, `${label}: '${s}'`);
      }
      // The negative says so; the positive does not.
      assert.match(p.neg, /\b(no|not|normal|below)\b/i, `${label}: negative '${p.neg}'`);
      assert.not.match(p.pos, /\b(no|not)\b/i, `${label}: positive '${p.pos}'`);
    }
  }
  assert.equal(promptPairs('Lung nodule')[1], { pos: 'There is a lung nodule.', neg: 'There is no lung nodule.' });
  assert.equal(promptPairs('Pulmonary fibrotic sequela')[1], { pos: 'There are pulmonary fibrotic sequelae.', neg: 'There are no pulmonary fibrotic sequelae.' });
  assert.ok(promptPairs('Medical material').some((p) => /devices/.test(p.pos)));
  assert.throws(() => promptPairs('Pneumothorax'), /unknown label/);
  assert.throws(() => promptPairs(18), /unknown label/);
  // Returned arrays are copies.
  promptPairs(0)[0]!.pos = 'x';
  assert.is(promptPairs(0)[0]!.pos, 'Medical material is present.');
});

test('sampling: deterministic for a seed, covers every phrasing; one draw per call', () => {
  const a = new Rng(11), b = new Rng(11);
  const seen = new Set<string>();
  for (let i = 0; i < 400; i++) {
    const p = samplePromptPair('Cardiomegaly', a);
    assert.equal(p, samplePromptPair(2, b));
    seen.add(p.pos);
  }
  assert.is(seen.size, promptPairs('Cardiomegaly').length);
  assert.equal(samplePromptPair(5, () => 0), promptPairs(5)[0]);
  assert.equal(samplePromptPair(5, () => 0.999999), promptPairs(5).at(-1));
  const set = samplePromptSet(new Rng(4));
  assert.is(set.pos.length, 18);
  assert.is(set.neg.length, 18);
  set.pos.forEach((p, l) => assert.ok(promptPairs(l).some((q) => q.pos === p && q.neg === set.neg[l])));
  assert.equal(samplePromptSet(new Rng(4)), set);
});

test('allPrompts: 18 classes in LABELS order, aligned pos / neg templates', () => {
  const all = allPrompts();
  assert.is(all.length, LABELS.length);
  all.forEach((c, l) => {
    assert.is(c.index, l);
    assert.is(c.label, LABELS[l]);
    assert.equal(c.pos, promptPairs(l).map((p) => p.pos));
    assert.equal(c.neg, promptPairs(l).map((p) => p.neg));
  });
});

test.run();
