import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { normalize, preTokenize, type NormalizerStep } from '../../src/data/tokenizer-normalize.ts';
import { CLS_ID, PAD_ID, SEP_ID, UNK_ID } from '../../src/data/tokenizer-vocab.ts';
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

/** A tokenizer.json in the layout Hugging Face's BertWordPieceTokenizer writes, with this normalizer and vocabulary. */
function hfJson(normalizer: unknown, words: string[], extra: Record<string, unknown> = {}) {
  const vocab: Record<string, number> = {};
  ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words].forEach((t, i) => (vocab[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    ...extra,
  };
}

// Words in every casing and accent form the texts below produce, so that a wrong normalizer
// shows as a different token, not only as [UNK].
const WORDS = [
  'Größe', 'größe', 'grosse', 'große', 'GROSSE', 'Pleuraerguss', 'pleuraerguss', 'rechts', 'Rechts', '.', ',', 'Herd', 'herd', 'lässt', 'lasst', 'sich', 'abgrenzen',
  'Small', 'small', 'CT', 'ct', 'nodule', 'in', 'the', 'RUL', 'rul', 'Café', 'café', 'cafe', 'Cafe', 'Über', 'über', 'uber', 'naïve', 'naive', 'Ödem', 'ödem', 'odem',
  '##e', '##s', '##n', 'ö', 'o', 'e', 'é', 'É', 'E', 'n', 'ñ', '気', '胸', '(', ')', '3', '45', 'série', 'serie',
];
const TEXTS = [
  'Größe Pleuraerguss rechts. Herd lässt sich abgrenzen.',
  'Small CT nodule in the RUL.',
  'Café über naïve Ödem (3, 45).',
  'GROSSE Größe grosse große',
  'Cafe\u0301 U\u0308ber', // decomposed accents
  'série 気胸 Ñ',
];

test('tokenizer.json normalizers: every BertNormalizer option and the unicode / lowercase / accent steps tokenize as tokenizers.js does', () => {
  const bert = (o: Record<string, unknown>) => ({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, ...o });
  const normalizers: unknown[] = [
    bert({ lowercase: true, strip_accents: null }), // unset: strips when lowercasing (HF PR 330)
    bert({ lowercase: true, strip_accents: false }),
    bert({ lowercase: true, strip_accents: true }),
    bert({ lowercase: false, strip_accents: null }),
    bert({ lowercase: false, strip_accents: false }),
    bert({ lowercase: false, strip_accents: true }),
    bert({ lowercase: false, handle_chinese_chars: false, clean_text: false }),
    { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }] },
    { type: 'Sequence', normalizers: [{ type: 'NFKC' }, bert({ lowercase: true, strip_accents: false })] },
    { type: 'Lowercase' },
    null,
  ];
  for (const n of normalizers) {
    const json = hfJson(n, WORDS);
    const mine = WordPieceTokenizer.fromJSON(json);
    const hf = new Tokenizer(json, {});
    for (const t of TEXTS) assert.equal(mine.encode(t).ids, hf.encode(t).ids, `${JSON.stringify(n)}: ${t}`);
    // Saved again, the normalizer survives.
    const again = WordPieceTokenizer.fromJSON(mine.serialize());
    for (const t of TEXTS) assert.equal(again.encode(t).ids, mine.encode(t).ids);
  }
  // The two files of the report (huggingface/tokenizers #330 layout): the tokens tokenizers.js gives.
  const uncased = WordPieceTokenizer.fromJSON(hfJson(bert({ lowercase: true, strip_accents: null }), ['kleiner', 'pleuraerguss', 'große', 'rechts', '.', 'herd', 'lasst', 'sich', 'abgrenzen']));
  assert.equal(uncased.tokenize('Größe Pleuraerguss rechts. Herd lässt sich abgrenzen.'), ['große', 'pleuraerguss', 'rechts', '.', 'herd', 'lasst', 'sich', 'abgrenzen', '.']);
  const cased = WordPieceTokenizer.fromJSON(hfJson(bert({ lowercase: false, strip_accents: false }), ['Small', 'CT', 'nodule', 'in', 'the', 'RUL', '.']));
  assert.equal(cased.tokenize('Small CT nodule in the RUL.'), ['Small', 'CT', 'nodule', 'in', 'the', 'RUL', '.']);
  // normalize() without steps is this project's pipeline; with steps, theirs.
  const steps: NormalizerStep[] = [{ type: 'BertNormalizer', cleanText: true, handleChineseChars: true, lowercase: true, stripAccents: null }];
  assert.is(normalize('Größe Ödem'), 'größe ödem');
  assert.is(normalize('Größe Ödem', steps), 'große odem');
});

test('tokenizer.json parts that would change token ids and are not implemented: a DataError naming the field', () => {
  const bad: [unknown, RegExp, RegExp][] = [
    [hfJson({ type: 'Replace', pattern: { String: 'a' }, content: 'b' }, WORDS), /normalizer\.type/, /"Replace" is not supported/],
    [hfJson({ type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Precompiled', precompiled_charsmap: '' }] }, WORDS), /normalizer\.normalizers\[1\]\.type/, /"Precompiled"/],
    [hfJson({ type: 'BertNormalizer', lowercase: 'yes' }, WORDS), /normalizer\.lowercase/, /expected true or false/],
    [hfJson({ type: 'BertNormalizer', strip_accents: 1 }, WORDS), /normalizer\.strip_accents/, /true, false or null/],
    [hfJson(null, WORDS, { pre_tokenizer: { type: 'Whitespace' } }), /pre_tokenizer\.type/, /"Whitespace" is not supported/],
    [hfJson(null, WORDS, { pre_tokenizer: null }), /pre_tokenizer\.type/, /null is not supported/],
    [hfJson(null, WORDS, { post_processor: { type: 'RobertaProcessing' } }), /post_processor/, /not supported/],
    [hfJson(null, WORDS, { post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] } }), /post_processor/, /not supported/],
    [hfJson(null, WORDS, { added_tokens: [{ id: 0, content: '[PAD]' }, { id: 60, content: '<extra>' }] }), /added_tokens\[1\]/, /"<extra>"/],
    [{ ...hfJson(null, WORDS), model: { ...hfJson(null, WORDS).model, unk_token: '<unk>' } }, /model\.unk_token/, /"\[UNK\]"/],
  ];
  for (const [json, field, detail] of bad) {
    try {
      WordPieceTokenizer.fromJSON(json, 'tok.json');
      assert.unreachable(String(field));
    } catch (e) {
      assert.instance(e, DataError);
      assert.is((e as DataError).source, 'tok.json');
      assert.match((e as DataError).field, field);
      assert.match((e as Error).message, detail);
    }
  }
  // The TemplateProcessing that Hugging Face writes for BERT is the same pipeline: accepted.
  const template = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [],
    special_tokens: {},
  };
  assert.is(WordPieceTokenizer.fromJSON(hfJson(null, WORDS, { post_processor: template })).encode('small').ids.length, 3);
  // max_input_chars_per_word is the file's.
  const short = hfJson(null, WORDS);
  short.model.max_input_chars_per_word = 5;
  assert.equal(WordPieceTokenizer.fromJSON(short).tokenize('nodule'), ['[UNK]']);
  assert.equal(new Tokenizer(short, {}).encode('nodule', { add_special_tokens: false }).tokens, ['[UNK]']);
});

test.run();
