import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { CLS_ID, PAD_ID, SEP_ID, UNK_ID, WordPieceTokenizer, normalize, preTokenize } from '../../src/data/tokenizer.ts';
import { sampleCase } from '../../src/data/synthetic/index.ts';
import { writeReport } from '../../src/data/synthetic/report.ts';
import { DataError } from '../../src/errors.ts';

// A small report corpus (English and German synthetic reports, no voxels rendered).
const corpus: string[] = [];
for (const lang of ['en', 'de'] as const) {
  for (let i = 0; i < 60; i++) {
    const { spec, rng, labels } = sampleCase(5, i, { lang });
    const g = spec.grid;
    corpus.push(writeReport(spec.findings, labels, { seriesNumber: 3, instance: (k) => k + 1, zOf: (k) => g.oz + k * g.sz, nz: g.nz, sliceThickness: g.sz }, rng.fork('report'), { lang }).text);
  }
}
const tok = WordPieceTokenizer.train(corpus, { vocabSize: 900 });

test('normalisation and pre-tokenisation (lower case, punctuation split, umlauts kept)', () => {
  assert.is(normalize('Größe\tÜBER  5,2 mm'), 'größe über  5,2 mm');
  // Decomposed umlaut (u + combining diaeresis) is composed first.
  assert.is(normalize('Gr\u0075\u0308n'), 'grün');
  assert.equal(preTokenize(normalize('Nodule (series 3, image 45).')), ['nodule', '(', 'series', '3', ',', 'image', '45', ')', '.']);
});

test('training is deterministic and fills the vocabulary', () => {
  const again = WordPieceTokenizer.train(corpus, { vocabSize: 900 });
  assert.equal(again.idToToken, tok.idToToken);
  assert.ok(tok.vocabSize > 400 && tok.vocabSize <= 900, `vocab ${tok.vocabSize}`);
  assert.equal(tok.idToToken.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  // Frequent report words become single tokens; umlaut words are in the vocabulary.
  assert.equal(tok.tokenize('pleural effusion'), ['pleural', 'effusion']);
  assert.ok(tok.tokenize('Größe').every((t) => t !== '[UNK]'));
});

test('encode / decode round trip; unknown words', () => {
  const e = tok.encode('Small right pleural effusion (series 3, image 45).');
  assert.is(e.ids[0], CLS_ID);
  assert.is(e.ids[e.ids.length - 1], SEP_ID);
  assert.is(tok.decode(e.ids), 'small right pleural effusion ( series 3, image 45 ).');
  // Characters never seen in training -> [UNK] for the whole word.
  const u = tok.encode('Pneumothorax 気胸 ☃', { addSpecialTokens: false });
  assert.ok(u.ids.includes(UNK_ID));
  assert.ok(u.tokens.filter((t) => t === '[UNK]').length >= 2);
  // Words longer than 100 characters -> [UNK].
  assert.equal(tok.encode('a'.repeat(101), { addSpecialTokens: false }).ids, [UNK_ID]);
  assert.equal(tok.encode('', { addSpecialTokens: true }).ids, [CLS_ID, SEP_ID]);
});

test('truncation and padding to a batch', () => {
  const long = corpus[0]!;
  const e = tok.encode(long, { maxLength: 16 });
  assert.is(e.ids.length, 16);
  assert.is(e.ids[15], SEP_ID);
  const b = tok.encodeBatch(['No pleural effusion.', long, 'Kardiomegalie.'], { maxLength: 32 });
  assert.is(b.batch, 3);
  assert.is(b.length, 32);
  assert.is(b.ids.length, 3 * 32);
  assert.is(b.lengths[1], 32);
  const n0 = b.lengths[0]!;
  assert.ok(n0 < 10);
  assert.is(b.ids[n0 - 1], SEP_ID);
  assert.is(b.ids[n0], PAD_ID);
  assert.equal(Array.from(b.attentionMask.slice(0, 32)), Array.from({ length: 32 }, (_, i) => (i < n0 ? 1 : 0)));
  const m = tok.encodeBatch(['Kardiomegalie.'], { maxLength: 64, padding: 'max' });
  assert.is(m.length, 64);
  const p = tok.encodeBatch(['a', 'b c d'], { padToMultipleOf: 8 });
  assert.is(p.length, 8);
});

test('save / load (tokenizer.json) round trip', () => {
  const text = tok.serialize();
  const json = JSON.parse(text);
  assert.is(json.model.type, 'WordPiece');
  assert.is(json.pre_tokenizer.type, 'BertPreTokenizer');
  assert.ok(json.normalizer && json.post_processor && json.decoder);
  const back = WordPieceTokenizer.fromJSON(text);
  assert.equal(back.idToToken, tok.idToToken);
  for (const t of corpus.slice(0, 10)) assert.equal(back.encode(t).ids, tok.encode(t).ids);
  assert.throws(() => WordPieceTokenizer.fromJSON('{"model":{"type":"BPE"}}'), (e: unknown) => e instanceof DataError && /model\.type/.test((e as Error).message));
  assert.throws(() => WordPieceTokenizer.fromJSON('not json'), (e: unknown) => e instanceof DataError);
});

test('Hugging Face tokenizers.js loads the saved file and encodes identically', () => {
  const hf = new Tokenizer(tok.toJSON(), {});
  const texts = [...corpus.slice(0, 20), ...corpus.slice(60, 80), 'Größenkonstanter Rundherd (Se. 3/Bild 45); größe 5,2 mm!', 'Unknown ☃ word 気胸.'];
  for (const t of texts) {
    const mine = tok.encode(t).ids;
    const theirs = hf.encode(t).ids;
    assert.equal(theirs, mine, t.slice(0, 60));
  }
  assert.is(hf.decode(tok.encode('Small right pleural effusion.').ids, { skip_special_tokens: true }), tok.decode(tok.encode('Small right pleural effusion.').ids));
});

test.run();
