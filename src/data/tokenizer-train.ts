// Training a WordPiece vocabulary on the report corpus: Hugging Face's WordPieceTrainer
// algorithm, BPE merges over the word counts with the "##" prefix on non-initial symbols and
// deterministic tie-breaking (by token ids), so the same corpus and options always give the
// same vocabulary. Browser-safe.
import { DataError } from '../errors.ts';
import { normalize, preTokenize } from './tokenizer-normalize.ts';
import { PREFIX, SPECIAL_TOKENS } from './tokenizer-vocab.ts';

export interface TrainOptions {
  /** Target vocabulary size, special tokens included (default 8000). */
  vocabSize?: number;
  /** Pairs seen fewer times are not merged (default 2). */
  minFrequency?: number;
  /** Keep at most this many distinct characters (the most frequent; default 1000). */
  limitAlphabet?: number;
}

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

export function trainWordPiece(texts: Iterable<string>, opts: TrainOptions): string[] {
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
