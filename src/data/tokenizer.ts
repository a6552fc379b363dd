// A WordPiece tokenizer trained on the report corpus, saved and loaded in the Hugging Face
// tokenizer.json layout (so Python `tokenizers` / tokenizers.js can load it too).
//
// Pipeline (as BERT's, with accents kept so German umlauts stay distinct):
//   normalizer     NFC, then BertNormalizer { clean_text, handle_chinese_chars, lowercase,
//                  strip_accents: false } for the tokenizers trained here; a loaded
//                  tokenizer.json keeps its own (BertNormalizer with any of its options,
//                  NFC / NFD / NFKC / NFKD, Lowercase, StripAccents, or a Sequence of these;
//                  anything else is refused, never silently replaced)
//   pre_tokenizer  BertPreTokenizer: split on whitespace, every punctuation char alone
//   model          WordPiece, greedy longest match first, "##" continuation prefix,
//                  words over 100 chars or without a full match -> [UNK]
//   post_processor BertProcessing: [CLS] tokens [SEP]
//   decoder        WordPiece ("##" joins, cleanup of spaces before punctuation)
// Training is Hugging Face's WordPieceTrainer algorithm: BPE merges over the word counts with
// the "##" prefix on non-initial symbols, deterministic tie-breaking (by token ids).
// Browser-safe (no Node built-ins). Its parts, by job:
//   tokenizer-vocab.ts      special tokens and their ids, the "##" prefix
//   tokenizer-normalize.ts  normalizer steps and the pre-tokenizer
//   tokenizer-json.ts       reading and writing tokenizer.json
//   tokenizer-train.ts      training a vocabulary (WordPieceTrainer)
import { DataError } from '../errors.ts';
import { parseTokenizerJson, tokenizerJson, type HfTokenizerJson } from './tokenizer-json.ts';
import { DEFAULT_NORMALIZER, normalize, preTokenize, type NormalizerStep } from './tokenizer-normalize.ts';
import { trainWordPiece, type TrainOptions } from './tokenizer-train.ts';
import { CLS_ID, MAX_WORD_CHARS, PREFIX, SEP_ID, SPECIAL_TOKENS, UNK_ID } from './tokenizer-vocab.ts';

export interface EncodeOptions {
  /** Add [CLS] ... [SEP] (default true). */
  addSpecialTokens?: boolean;
  /** Truncate to this many tokens, special tokens included (keeps [SEP] at the end). */
  maxLength?: number;
}

export interface Encoding {
  ids: number[];
  tokens: string[];
}

export interface BatchOptions {
  /** Truncation length, special tokens included (default 512). */
  maxLength?: number;
  /** 'longest' (default): pad to the longest in the batch; 'max': pad to maxLength. */
  padding?: 'longest' | 'max';
  /** Round the padded length up to a multiple of this (default 1). */
  padToMultipleOf?: number;
  addSpecialTokens?: boolean;
}

export interface BatchEncoding {
  /** Token ids [batch, length], row-major, padded with [PAD] (0). */
  ids: Int32Array;
  /** 1 for tokens, 0 for padding, [batch, length]. */
  attentionMask: Int32Array;
  /** Tokens per row (before padding). */
  lengths: Int32Array;
  batch: number;
  length: number;
}

// ---------------------------------------------------------------------------------------
// The tokenizer

export class WordPieceTokenizer {
  readonly vocab: Map<string, number>;
  readonly idToToken: string[];
  /** The normalizer steps applied before pre-tokenisation (see NormalizerStep). */
  readonly normalizer: readonly NormalizerStep[];
  /** Longer words become [UNK]. */
  readonly maxInputCharsPerWord: number;
  private cache = new Map<string, number[]>();

  /**
   * A tokenizer over `tokens` (id = index; [PAD] [UNK] [CLS] [SEP] [MASK] must be ids 0-4).
   * opts.normalizer defaults to DEFAULT_NORMALIZER; opts.maxInputCharsPerWord to 100.
   */
  constructor(tokens: string[], opts: { normalizer?: readonly NormalizerStep[]; maxInputCharsPerWord?: number } = {}) {
    this.normalizer = opts.normalizer ?? DEFAULT_NORMALIZER;
    this.maxInputCharsPerWord = opts.maxInputCharsPerWord ?? MAX_WORD_CHARS;
    this.idToToken = tokens.slice();
    this.vocab = new Map();
    tokens.forEach((t, i) => {
      if (this.vocab.has(t)) throw new DataError('tokenizer', 'vocab', `duplicate token '${t}'`);
      this.vocab.set(t, i);
    });
    SPECIAL_TOKENS.forEach((t, i) => {
      if (this.vocab.get(t) !== i) throw new DataError('tokenizer', 'vocab', `special token ${t} must have id ${i}`);
    });
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  /** Trains on a corpus (an iterable of texts). Deterministic for the same corpus and options. */
  static train(texts: Iterable<string>, opts: TrainOptions = {}): WordPieceTokenizer {
    return new WordPieceTokenizer(trainWordPiece(texts, opts));
  }

  /** WordPiece tokens of one pre-tokenized word. */
  private wordPieces(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const chars = Array.from(word);
    let out: number[];
    if (chars.length > this.maxInputCharsPerWord) out = [UNK_ID];
    else {
      out = [];
      let start = 0;
      while (start < chars.length) {
        let end = chars.length;
        let id = -1;
        while (start < end) {
          const piece = (start > 0 ? PREFIX : '') + chars.slice(start, end).join('');
          const v = this.vocab.get(piece);
          if (v !== undefined) {
            id = v;
            break;
          }
          end--;
        }
        if (id < 0) {
          out = [UNK_ID];
          break;
        }
        out.push(id);
        start = end;
      }
    }
    if (this.cache.size < 100000) this.cache.set(word, out);
    return out;
  }

  /** Token ids without special tokens. */
  tokenizeIds(text: string): number[] {
    const ids: number[] = [];
    for (const w of preTokenize(normalize(text, this.normalizer))) for (const id of this.wordPieces(w)) ids.push(id);
    return ids;
  }

  tokenize(text: string): string[] {
    return this.tokenizeIds(text).map((i) => this.idToToken[i]!);
  }

  encode(text: string, opts: EncodeOptions = {}): Encoding {
    const special = opts.addSpecialTokens ?? true;
    let body = this.tokenizeIds(text);
    if (opts.maxLength !== undefined) {
      const room = Math.max(0, opts.maxLength - (special ? 2 : 0));
      if (body.length > room) body = body.slice(0, room);
    }
    const ids = special ? [CLS_ID, ...body, SEP_ID] : body;
    return { ids, tokens: ids.map((i) => this.idToToken[i]!) };
  }

  /** Text from ids: "##" pieces joined, specials skipped (default), spaces before punctuation removed. */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const skip = opts.skipSpecialTokens ?? true;
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const t = this.idToToken[id];
      if (t === undefined) throw new DataError('tokenizer', 'decode', `id ${id} is outside the vocabulary (${this.vocabSize})`);
      if (skip && id < SPECIAL_TOKENS.length) continue;
      if (t.startsWith(PREFIX)) out += t.slice(PREFIX.length);
      else out += out ? ` ${t}` : t;
    }
    return cleanup(out);
  }

  /** A padded batch: ids and attention mask [B, L] (Int32Array), lengths [B]. */
  encodeBatch(texts: string[], opts: BatchOptions = {}): BatchEncoding {
    const maxLength = opts.maxLength ?? 512;
    const rows = texts.map((t) => this.encode(t, { maxLength, addSpecialTokens: opts.addSpecialTokens }).ids);
    let length = opts.padding === 'max' ? maxLength : Math.max(1, ...rows.map((r) => r.length));
    const m = opts.padToMultipleOf ?? 1;
    if (m > 1) length = Math.ceil(length / m) * m;
    const B = texts.length;
    const ids = new Int32Array(B * length); // PAD_ID = 0
    const attentionMask = new Int32Array(B * length);
    const lengths = new Int32Array(B);
    rows.forEach((r, b) => {
      ids.set(r, b * length);
      attentionMask.fill(1, b * length, b * length + r.length);
      lengths[b] = r.length;
    });
    return { ids, attentionMask, lengths, batch: B, length };
  }

  /** The Hugging Face tokenizer.json object. */
  toJSON(): HfTokenizerJson {
    return tokenizerJson(this.idToToken, this.normalizer, this.maxInputCharsPerWord);
  }

  /** JSON text of tokenizer.json. */
  serialize(): string {
    return JSON.stringify(this.toJSON());
  }

  /**
   * Loads a tokenizer.json (object or text), as Hugging Face tokenizers would run it: a
   * WordPiece model with "##", [UNK] as unk_token and [PAD] [UNK] [CLS] [SEP] [MASK] as ids 0-4
   * (no other added tokens); the file's normalizer (see NormalizerStep: BertNormalizer with any
   * of its options, NFC / NFD / NFKC / NFKD, Lowercase, StripAccents, Sequence) and its
   * max_input_chars_per_word; BertPreTokenizer; BertProcessing (or the equivalent
   * TemplateProcessing) with [CLS] and [SEP]. Anything else is a DataError naming the field,
   * never a silent difference in token ids.
   */
  static fromJSON(json: unknown, source = 'tokenizer.json'): WordPieceTokenizer {
    const { tokens, normalizer, maxInputCharsPerWord: maxChars } = parseTokenizerJson(json, source);
    try {
      return new WordPieceTokenizer(tokens, { normalizer, maxInputCharsPerWord: maxChars });
    } catch (e) {
      if (e instanceof DataError) throw new DataError(source, e.field, e.message.split(': ').slice(2).join(': '));
      throw e;
    }
  }
}

function cleanup(s: string): string {
  return s
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}
