// Tokenizers as the model sees them: our WordPiece ([SEP] is the EOS), and a Hugging Face
// tokenizer.json of another model (a small byte-pair model here, as Qwen's is) through
// tokenizers.js, with the EOS appended when its post-processor does not; truncation keeps the
// EOS; unsupported files are refused naming the file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { testGpu } from '../helpers/gpu.ts';
import { loadTokenizer, textBatch, wordPieceForModel } from '../../src/model/text.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { SEP_ID } from '../../src/data/tokenizer-vocab.ts';
import { DataError } from '../../src/errors.ts';

const t = suite('model text');

// A byte-pair model over a few letters: merges "l o" -> "lo", "lo w" -> "low"; id 9 is <|endoftext|>.
const bpe = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [{ id: 9, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: { l: 0, o: 1, w: 2, e: 3, r: 4, lo: 5, low: 6, '<|endoftext|>': 9 }, merges: ['l o', 'lo w'] },
};

t('a BPE tokenizer.json through tokenizers.js: its tokens, then the EOS', () => {
  const text = JSON.stringify(bpe);
  const tok = loadTokenizer(text, 'bpe.json', 9, 10);
  assert.is(tok.kind, 'huggingface');
  const theirs = new Tokenizer(bpe, {}).encode('lower low').ids;
  assert.equal(tok.encode('lower low'), [...theirs, 9]);
  assert.equal(theirs, [6, 3, 4, 6]);
  assert.throws(() => loadTokenizer(text, 'bpe.json', 9, 6), (e: unknown) => e instanceof DataError && /bpe\.json: (vocab|eos)/.test((e as Error).message));
  assert.throws(() => loadTokenizer(JSON.stringify({ ...bpe, model: { type: 'SentencePieceX' } }), 'odd.json', 9, 10), (e: unknown) => e instanceof DataError && /odd\.json: model\.type: 'SentencePieceX' is not a tokenizer model/.test((e as Error).message));
  assert.throws(() => loadTokenizer('{not json', 'bad.json', 9, 10), /bad\.json: tokenizer: not valid JSON/);
});

t('our WordPiece: [CLS] ... [SEP], [SEP] is the EOS; batches truncate keeping the EOS', async () => {
  const gpu = await testGpu();
  const wp = WordPieceTokenizer.train(['small right pleural effusion', 'no nodule'], { vocabSize: 100 });
  const tok = wordPieceForModel(wp);
  const ids = tok.encode('small right pleural effusion');
  assert.is(ids.at(-1), SEP_ID);
  assert.is(tok.eosId, SEP_ID);
  const cut: number[] = [];
  const b = textBatch(gpu, [ids, [SEP_ID]], 3, 'text', (tr) => cut.push(tr.index));
  assert.equal(cut, [0]);
  assert.equal(b.lengths, [3, 1]);
  const got = Array.from(new Int32Array(await gpu.read(b.ids.buffer, 6 * 4)));
  assert.equal(got, [ids[0], ids[1], SEP_ID, SEP_ID, 0, 0]);
  assert.equal([...(await b.mask.floats())], [1, 1, 1, 1, 0, 0]);
});

t.run();
