// The fixed layout of every WordPiece vocabulary here (BERT's): the special tokens as ids 0-4,
// the "##" continuation prefix, and the longest word WordPiece splits. The encoder, the
// tokenizer.json reader / writer and the trainer all build on it. Browser-safe.

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

/** Marks a piece that continues a word ("##ing"). */
export const PREFIX = '##';
/** Longer words become [UNK] (BERT's max_input_chars_per_word). */
export const MAX_WORD_CHARS = 100;
