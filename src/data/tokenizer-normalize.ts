// The text side of the WordPiece tokenizer (tokenizer.ts): Hugging Face normalizer steps
// (BertNormalizer with any of its options, NFC / NFD / NFKC / NFKD, Lowercase, StripAccents)
// and BERT's pre-tokenizer (whitespace split, every punctuation character alone). The project's
// own pipeline is NFC, then BertNormalizer lower-casing with accents kept, so German umlauts stay
// distinct. Browser-safe.

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
