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
// Browser-safe (no Node built-ins).
import { DataError } from '../errors.ts';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

const PREFIX = '##';
const MAX_WORD_CHARS = 100;

export interface TrainOptions {
  /** Target vocabulary size, special tokens included (default 8000). */
  vocabSize?: number;
  /** Pairs seen fewer times are not merged (default 2). */
  minFrequency?: number;
  /** Keep at most this many distinct characters (the most frequent; default 1000). */
  limitAlphabet?: number;
}

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
// Normalisation and pre-tokenisation

const PUNCT = /[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]/u;
const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const WS = /\s/u;

function isChinese(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * One step of a Hugging Face normalizer. BertNormalizer's options as in tokenizers:
 * clean_text drops control characters and maps whitespace to ' ', handle_chinese_chars puts
 * spaces around CJK ideographs, lowercase lower-cases, strip_accents removes combining marks
 * after NFD; strip_accents null (unset) means "strip when lowercasing" (huggingface/tokenizers #330).
 */
export type NormalizerStep =
  | { type: 'NFC' | 'NFD' | 'NFKC' | 'NFKD' | 'Lowercase' | 'StripAccents' }
  | { type: 'BertNormalizer'; cleanText: boolean; handleChineseChars: boolean; lowercase: boolean; stripAccents: boolean | null };

/** The pipeline of the tokenizers trained here: NFC, then BertNormalizer without accent stripping. */
export const DEFAULT_NORMALIZER: readonly NormalizerStep[] = [
  { type: 'NFC' },
  { type: 'BertNormalizer', cleanText: true, handleChineseChars: true, lowercase: true, stripAccents: false },
];

const stripAccents = (t: string): string => t.normalize('NFD').replace(/\p{Mn}/gu, '');

function bertNormalize(text: string, o: Extract<NormalizerStep, { type: 'BertNormalizer' }>): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (o.cleanText) {
      if (cp === 0 || cp === 0xfffd) continue;
      if (ch === '\t' || ch === '\n' || ch === '\r' || WS.test(ch)) {
        out += ' ';
        continue;
      }
      if (CONTROL.test(ch)) continue;
    }
    out += o.handleChineseChars && isChinese(cp) ? ` ${ch} ` : ch;
  }
  if (o.lowercase) {
    out = out.toLowerCase();
    if (o.stripAccents !== false) out = stripAccents(out);
  } else if (o.stripAccents) out = stripAccents(out);
  return out;
}

/** Applies normalizer steps (default: this project's pipeline, NFC + BertNormalizer lower-casing, accents kept). */
export function normalize(text: string, steps: readonly NormalizerStep[] = DEFAULT_NORMALIZER): string {
  let t = text;
  for (const st of steps) {
    switch (st.type) {
      case 'NFC':
      case 'NFD':
      case 'NFKC':
      case 'NFKD':
        t = t.normalize(st.type);
        break;
      case 'Lowercase':
        t = t.toLowerCase();
        break;
      case 'StripAccents':
        // As tokenizers' StripAccents: combining marks removed (it expects NFD input before it).
        t = t.replace(/\p{Mn}/gu, '');
        break;
      case 'BertNormalizer':
        t = bertNormalize(t, st);
        break;
    }
  }
  return t;
}

/** The tokenizer.json "normalizer" object of these steps. */
function normalizerJson(steps: readonly NormalizerStep[]): unknown {
  const one = (st: NormalizerStep) =>
    st.type === 'BertNormalizer'
      ? { type: 'BertNormalizer', clean_text: st.cleanText, handle_chinese_chars: st.handleChineseChars, strip_accents: st.stripAccents, lowercase: st.lowercase }
      : { type: st.type };
  if (steps.length === 0) return null;
  return steps.length === 1 ? one(steps[0]!) : { type: 'Sequence', normalizers: steps.map(one) };
}

const NORMALIZER_TYPES = 'BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Sequence';

/** Parses a tokenizer.json "normalizer" (null: none); DataError naming the field for anything not implemented here. */
function parseNormalizer(n: unknown, source: string, field = 'normalizer'): NormalizerStep[] {
  if (n === null || n === undefined) return [];
  if (typeof n !== 'object' || Array.isArray(n)) throw new DataError(source, field, 'expected an object or null');
  const o = n as Record<string, unknown>;
  switch (o.type) {
    case 'Sequence': {
      if (!Array.isArray(o.normalizers)) throw new DataError(source, `${field}.normalizers`, 'expected an array');
      return o.normalizers.flatMap((x, i) => parseNormalizer(x, source, `${field}.normalizers[${i}]`));
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
    case 'Lowercase':
    case 'StripAccents':
      return [{ type: o.type }];
    case 'BertNormalizer': {
      const flag = (key: string, dflt: boolean): boolean => {
        const v = o[key];
        if (v === undefined || v === null) return dflt;
        if (typeof v !== 'boolean') throw new DataError(source, `${field}.${key}`, `expected true or false, got ${JSON.stringify(v)}`);
        return v;
      };
      const sa = o.strip_accents;
      if (sa !== undefined && sa !== null && typeof sa !== 'boolean') throw new DataError(source, `${field}.strip_accents`, `expected true, false or null, got ${JSON.stringify(sa)}`);
      return [{ type: 'BertNormalizer', cleanText: flag('clean_text', true), handleChineseChars: flag('handle_chinese_chars', true), lowercase: flag('lowercase', true), stripAccents: (sa ?? null) as boolean | null }];
    }
    default:
      throw new DataError(source, `${field}.type`, `${JSON.stringify(o.type)} is not supported (supported: ${NORMALIZER_TYPES})`);
  }
}

/** BertPreTokenizer: whitespace split, then each punctuation character on its own. */
export function preTokenize(normalized: string): string[] {
  const words: string[] = [];
  let cur = '';
  for (const ch of normalized) {
    if (ch === ' ' || WS.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else if (PUNCT.test(ch)) {
      if (cur) words.push(cur);
      words.push(ch);
      cur = '';
    } else cur += ch;
  }
  if (cur) words.push(cur);
  return words;
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
    const vocab: Record<string, number> = {};
    this.idToToken.forEach((t, i) => (vocab[t] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: normalizerJson(this.normalizer),
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', SEP_ID], cls: ['[CLS]', CLS_ID] },
      decoder: { type: 'WordPiece', prefix: PREFIX, cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: PREFIX, max_input_chars_per_word: this.maxInputCharsPerWord, vocab },
    };
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
    let o: unknown = json;
    if (typeof json === 'string') {
      try {
        o = JSON.parse(json);
      } catch (e) {
        throw new DataError(source, 'json', `not valid JSON (${(e as Error).message})`);
      }
    }
    if (typeof o !== 'object' || o === null) throw new DataError(source, 'json', 'expected an object');
    const model = (o as { model?: unknown }).model as Record<string, unknown> | undefined;
    if (!model || model.type !== 'WordPiece') throw new DataError(source, 'model.type', `expected "WordPiece", got ${JSON.stringify(model?.type)}`);
    if ((model.continuing_subword_prefix ?? PREFIX) !== PREFIX) throw new DataError(source, 'model.continuing_subword_prefix', 'only "##" is supported');
    const vocab = model.vocab;
    if (typeof vocab !== 'object' || vocab === null) throw new DataError(source, 'model.vocab', 'expected an object token -> id');
    const entries = Object.entries(vocab as Record<string, unknown>);
    const tokens: string[] = new Array(entries.length);
    for (const [t, id] of entries) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length || tokens[id] !== undefined)
        throw new DataError(source, `model.vocab["${t}"]`, `bad or duplicate id ${JSON.stringify(id)}`);
      tokens[id] = t;
    }
    if ((model.unk_token ?? '[UNK]') !== '[UNK]') throw new DataError(source, 'model.unk_token', `only "[UNK]" is supported, got ${JSON.stringify(model.unk_token)}`);
    const maxChars = model.max_input_chars_per_word ?? MAX_WORD_CHARS;
    if (typeof maxChars !== 'number' || !Number.isInteger(maxChars) || maxChars < 1)
      throw new DataError(source, 'model.max_input_chars_per_word', `expected a positive integer, got ${JSON.stringify(maxChars)}`);
    const root = o as Record<string, unknown>;
    const normalizer = parseNormalizer(root.normalizer, source);
    checkPipeline(root, source);
    try {
      return new WordPieceTokenizer(tokens, { normalizer, maxInputCharsPerWord: maxChars });
    } catch (e) {
      if (e instanceof DataError) throw new DataError(source, e.field, e.message.split(': ').slice(2).join(': '));
      throw e;
    }
  }
}

/** The parts of tokenizer.json besides the normalizer and model that change token ids: refused unless they are BERT's. */
function checkPipeline(o: Record<string, unknown>, source: string): void {
  const pre = o.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (!pre || pre.type !== 'BertPreTokenizer')
    throw new DataError(source, 'pre_tokenizer.type', `${JSON.stringify(pre?.type ?? pre ?? null)} is not supported (only "BertPreTokenizer")`);
  const post = o.post_processor as Record<string, unknown> | null | undefined;
  const pair = (v: unknown) => (Array.isArray(v) ? `${v[0]}:${v[1]}` : '');
  const isBert =
    post?.type === 'BertProcessing'
      ? pair(post.cls) === `[CLS]:${CLS_ID}` && pair(post.sep) === `[SEP]:${SEP_ID}`
      : post?.type === 'TemplateProcessing' &&
        JSON.stringify(post.single) === JSON.stringify([{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }]);
  if (!isBert) throw new DataError(source, 'post_processor', `${JSON.stringify(post ?? null).slice(0, 120)} is not supported (only [CLS] text [SEP], as BertProcessing with ids ${CLS_ID} and ${SEP_ID})`);
  const added = o.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new DataError(source, 'added_tokens', 'expected an array');
    added.forEach((t, i) => {
      const a = t as { id?: unknown; content?: unknown };
      if (SPECIAL_TOKENS[a.id as number] !== a.content)
        throw new DataError(source, `added_tokens[${i}]`, `${JSON.stringify(a.content)} (id ${JSON.stringify(a.id)}): added tokens other than ${SPECIAL_TOKENS.join(' ')} as ids 0-4 are not supported`);
    });
  }
}

export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: { id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean }[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type: 'WordPiece'; unk_token: string; continuing_subword_prefix: string; max_input_chars_per_word: number; vocab: Record<string, number> };
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

// ---------------------------------------------------------------------------------------
// Training (BPE merges with "##" continuation symbols, as Hugging Face's WordPieceTrainer)

/** A max-heap of (count, a, b) with lazy invalidation; ties: smaller a, then smaller b. */
class PairHeap {
  private c: number[] = [];
  private a: number[] = [];
  private b: number[] = [];

  get size(): number {
    return this.c.length;
  }

  private better(i: number, j: number): boolean {
    const c = this.c;
    if (c[i] !== c[j]) return c[i]! > c[j]!;
    if (this.a[i] !== this.a[j]) return this.a[i]! < this.a[j]!;
    return this.b[i]! < this.b[j]!;
  }

  private swap(i: number, j: number): void {
    for (const arr of [this.c, this.a, this.b]) {
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
  }

  push(count: number, a: number, b: number): void {
    this.c.push(count);
    this.a.push(a);
    this.b.push(b);
    let i = this.c.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): [number, number, number] | null {
    if (this.c.length === 0) return null;
    const top: [number, number, number] = [this.c[0]!, this.a[0]!, this.b[0]!];
    const last = this.c.length - 1;
    this.swap(0, last);
    this.c.pop();
    this.a.pop();
    this.b.pop();
    let i = 0;
    const n = this.c.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.better(l, m)) m = l;
      if (r < n && this.better(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

function trainWordPiece(texts: Iterable<string>, opts: TrainOptions): string[] {
  const vocabSize = opts.vocabSize ?? 8000;
  const minFreq = Math.max(1, opts.minFrequency ?? 2);
  const limitAlphabet = opts.limitAlphabet ?? 1000;
  if (vocabSize < SPECIAL_TOKENS.length) throw new DataError('tokenizer', 'vocabSize', `must be at least ${SPECIAL_TOKENS.length}`);

  // Word counts.
  const wordCounts = new Map<string, number>();
  for (const text of texts) for (const w of preTokenize(normalize(text))) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const words = [...wordCounts.keys()].sort();
  const counts = words.map((w) => wordCounts.get(w)!);

  // Alphabet: the most frequent characters (ties by code point).
  const charCounts = new Map<string, number>();
  words.forEach((w, i) => {
    for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + counts[i]!);
  });
  const alphabet = [...charCounts.entries()]
    .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .slice(0, limitAlphabet)
    .map(([c]) => c)
    .sort();
  const inAlphabet = new Set(alphabet);

  const tokens: string[] = [...SPECIAL_TOKENS];
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => ids.set(t, i));
  const add = (t: string): number => {
    let id = ids.get(t);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(t);
      ids.set(t, id);
    }
    return id;
  };
  for (const c of alphabet) add(c);
  // Continuation forms of the characters, in alphabet order, then the words as symbol lists.
  const seenCont = new Set<string>();
  for (const w of words) {
    const cs = Array.from(w);
    for (let k = 1; k < cs.length; k++) if (inAlphabet.has(cs[k]!)) seenCont.add(cs[k]!);
  }
  for (const c of alphabet) if (seenCont.has(c)) add(PREFIX + c);
  const syms: number[][] = words.map((w) => {
    const out: number[] = [];
    Array.from(w).forEach((ch, k) => {
      if (!inAlphabet.has(ch)) return;
      out.push(ids.get(k === 0 ? ch : PREFIX + ch)!);
    });
    return out;
  });

  // Pair statistics.
  const KEY = 1 << 21;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const bump = (a: number, b: number, w: number, n: number) => {
    const key = a * KEY + b;
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    if (n > 0) {
      let s = pairWords.get(key);
      if (!s) pairWords.set(key, (s = new Set()));
      s.add(w);
    }
  };
  syms.forEach((s, w) => {
    for (let k = 0; k + 1 < s.length; k++) bump(s[k]!, s[k + 1]!, w, counts[w]!);
  });
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, Math.floor(key / KEY), key % KEY);

  while (tokens.length < vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const [c, a, b] = top;
    const key = a * KEY + b;
    const cur = pairCount.get(key) ?? 0;
    if (cur !== c) {
      if (cur > 0) heap.push(cur, a, b);
      continue;
    }
    if (c < minFreq) break;
    const ta = tokens[a]!;
    const tb = tokens[b]!;
    const merged = ta + (tb.startsWith(PREFIX) ? tb.slice(PREFIX.length) : tb);
    if (tokens.length >= KEY) break;
    const m = add(merged);
    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const s = syms[w]!;
      const n = counts[w]!;
      for (let k = 0; k + 1 < s.length; k++) {
        if (s[k] !== a || s[k + 1] !== b) continue;
        if (k > 0) {
          bump(s[k - 1]!, a, w, -n);
          bump(s[k - 1]!, m, w, n);
          touched.add(s[k - 1]! * KEY + m);
        }
        if (k + 2 < s.length) {
          bump(b, s[k + 2]!, w, -n);
          bump(m, s[k + 2]!, w, n);
          touched.add(m * KEY + s[k + 2]!);
        }
        s.splice(k, 2, m);
      }
    }
    pairCount.delete(key);
    pairWords.delete(key);
    for (const t of touched) {
      const v = pairCount.get(t) ?? 0;
      if (v > 0) heap.push(v, Math.floor(t / KEY), t % KEY);
    }
  }
  return tokens;
}
