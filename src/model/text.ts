// Text into the model: tokenizers as the model sees them (every text ends with its EOS token,
// whose final-norm state is the text's embedding), and right-padded batches. Browser-safe.
//   - our WordPiece tokenizer (models trained here): [CLS] tokens [SEP], [SEP] is the EOS;
//   - a Hugging Face tokenizer.json of another kind (Qwen's byte-level BPE for RadFinder's
//     released weights) through tokenizers.js (@huggingface/tokenizers), whose post-processor
//     appends <|endoftext|>; it is appended here if a tokenizer's does not.
import { Tokenizer } from '@huggingface/tokenizers';
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import { WordPieceTokenizer } from '../data/tokenizer.ts';
import { MASK_ID, SEP_ID } from '../data/tokenizer-vocab.ts';
import { fromInts, tensor } from '../ops/creation.ts';
import type { TextBatch } from './model.ts';

export interface TextTokenizer {
  readonly kind: 'wordpiece' | 'huggingface';
  readonly eosId: number;
  /** Token ids of one text, ending with the EOS id (no length limit). */
  encode(text: string): number[];
  /** The tokenizer.json text (to save beside weights). */
  serialize(): string;
}

/**
 * Why a typed sentence cannot be a query, or null: empty, or without a letter or digit in any
 * script (only punctuation and symbols, which every tokenizer turns into tokens all the same,
 * so the model would answer a text that says nothing).
 */
export function unusableText(text: string): string | null {
  if (!text.trim()) return 'is empty: type a sentence';
  if (!/[\p{L}\p{N}]/u.test(text)) return 'has no word, only punctuation or symbols: type a sentence';
  return null;
}

/**
 * Whether a text's token ids hold no word the vocabulary knows: with our WordPiece vocabulary,
 * whose first ids are [PAD], [UNK], [CLS], [SEP], [MASK], nothing but those (the embedding is
 * [UNK]'s). Always false for a Hugging Face tokenizer (byte-level BPE knows every text).
 */
export function knowsNoWord(tok: TextTokenizer, ids: readonly number[]): boolean {
  return tok.kind === 'wordpiece' && ids.every((id) => id <= MASK_ID);
}

export function wordPieceForModel(tok: WordPieceTokenizer): TextTokenizer {
  return {
    kind: 'wordpiece',
    eosId: SEP_ID,
    encode: (text) => tok.encode(text).ids,
    serialize: () => tok.serialize(),
  };
}

/**
 * A tokenizer.json: our WordPiece format, or any model tokenizers.js reads (BPE, Unigram,
 * WordPiece of other normalizers). eosId: the model's EOS id (text_config.eos_token_id),
 * checked against the vocabulary. Throws a DataError naming the file for what cannot load.
 */
export function loadTokenizer(text: string, source: string, eosId: number, vocabSize: number): TextTokenizer {
  let json: { model?: { type?: string; vocab?: unknown }; added_tokens?: { id: number }[] };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(source, 'tokenizer', `not valid JSON (${(e as Error).message})`);
  }
  const type = json?.model?.type;
  if (type === 'WordPiece') {
    try {
      const tok = wordPieceForModel(WordPieceTokenizer.fromJSON(json, source));
      if (tok.eosId !== eosId) throw new DataError(source, 'eos', `the WordPiece tokenizer ends texts with [SEP] (id ${SEP_ID}), but the model's eos_token_id is ${eosId}`);
      return tok;
    } catch (e) {
      // Another WordPiece configuration than ours (e.g. a normalizer we do not implement): tokenizers.js reads it.
      if (!(e instanceof DataError) || /eos/.test(e.message)) throw e;
    }
  }
  if (!['BPE', 'WordPiece', 'Unigram', 'WordLevel'].includes(String(type)))
    throw new DataError(source, 'model.type', `'${type}' is not a tokenizer model this reads (BPE, WordPiece, Unigram, WordLevel)`);
  let hf: Tokenizer;
  try {
    hf = new Tokenizer(json, {});
  } catch (e) {
    throw new DataError(source, 'tokenizer', `tokenizers.js cannot load it (${(e as Error).message})`);
  }
  const probe = hf.encode('a').ids;
  if (probe.some((id) => id >= vocabSize)) throw new DataError(source, 'vocab', `token ids reach ${Math.max(...probe)}, past the model's vocabulary of ${vocabSize}`);
  if (eosId >= vocabSize) throw new DataError(source, 'eos', `eos_token_id ${eosId} is outside the model's vocabulary of ${vocabSize}`);
  return {
    kind: 'huggingface',
    eosId,
    encode: (t) => {
      const ids = hf.encode(t).ids;
      return ids[ids.length - 1] === eosId ? ids : [...ids, eosId];
    },
    serialize: () => text,
  };
}

export interface Truncation {
  /** Index of the text. */
  index: number;
  /** Tokens before truncation. */
  tokens: number;
}

/**
 * Token id rows into a right-padded TextBatch. Rows longer than maxLength keep their first
 * maxLength - 1 tokens and their EOS (as Hugging Face's truncation before the post-processor);
 * each is reported through onTruncate. Rows must be non-empty.
 */
export function textBatch(gpu: Gpu, rows: number[][], maxLength: number, name = 'text', onTruncate?: (t: Truncation) => void): TextBatch {
  if (rows.length === 0) throw new DataError(name, 'texts', 'no texts to encode');
  const kept = rows.map((r, index) => {
    if (r.length === 0) throw new DataError(name, `text ${index}`, 'has no tokens (not even the EOS)');
    if (r.length <= maxLength) return r;
    onTruncate?.({ index, tokens: r.length });
    return [...r.slice(0, maxLength - 1), r[r.length - 1]];
  });
  const L = Math.max(...kept.map((r) => r.length));
  const ids = new Int32Array(rows.length * L);
  const mask = new Float32Array(rows.length * L);
  kept.forEach((r, b) => {
    ids.set(r, b * L);
    mask.fill(1, b * L, b * L + r.length);
  });
  return {
    ids: fromInts(gpu, ids, [rows.length, L], `${name}.ids`),
    mask: tensor(gpu, mask, [rows.length, L], `${name}.mask`),
    lengths: kept.map((r) => r.length),
  };
}

/** Texts through a tokenizer into a TextBatch. */
export function encodeTexts(gpu: Gpu, tok: TextTokenizer, texts: string[], maxLength: number, name = 'text', onTruncate?: (t: Truncation) => void): TextBatch {
  return textBatch(gpu, texts.map((t) => tok.encode(t)), maxLength, name, onTruncate);
}
