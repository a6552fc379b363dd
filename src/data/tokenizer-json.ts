// Reading and writing the Hugging Face tokenizer.json layout of the WordPiece tokenizer
// (tokenizer.ts), so Python `tokenizers` / tokenizers.js load what we save and we load what
// they save. Loading refuses anything that would change token ids and is not implemented here
// (another model, pre-tokenizer, post-processor, normalizer or added tokens): a DataError naming
// the field, never a silent difference. Browser-safe.
import { DataError } from '../errors.ts';
import type { NormalizerStep } from './tokenizer-normalize.ts';
import { CLS_ID, MAX_WORD_CHARS, PREFIX, SEP_ID, SPECIAL_TOKENS } from './tokenizer-vocab.ts';

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

/** The tokenizer.json object of a vocabulary (id = index) run with these normalizer steps. */
export function tokenizerJson(idToToken: readonly string[], normalizer: readonly NormalizerStep[], maxInputCharsPerWord: number): HfTokenizerJson {
  const vocab: Record<string, number> = {};
  idToToken.forEach((t, i) => (vocab[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: normalizerJson(normalizer),
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', SEP_ID], cls: ['[CLS]', CLS_ID] },
    decoder: { type: 'WordPiece', prefix: PREFIX, cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: PREFIX, max_input_chars_per_word: maxInputCharsPerWord, vocab },
  };
}

/** What a tokenizer.json holds that the tokenizer runs with. */
export interface TokenizerJsonParts {
  /** Token of each id. */
  tokens: string[];
  normalizer: NormalizerStep[];
  maxInputCharsPerWord: number;
}

/**
 * Reads a tokenizer.json (object or text) that WordPieceTokenizer.fromJSON can run (see there):
 * its vocabulary, normalizer and max_input_chars_per_word, after checking every part that
 * changes token ids. Whether the vocabulary has the special tokens at ids 0-4 is the
 * tokenizer's own check.
 */
export function parseTokenizerJson(json: unknown, source: string): TokenizerJsonParts {
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
  return { tokens, normalizer, maxInputCharsPerWord: maxChars };
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
