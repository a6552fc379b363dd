// The miner's precision and recall against ground-truth references (the synthetic benchmark's,
// or a hand-labelled set: ctvlm data mine --expected). Browser-safe.
import type { Snippet } from './snippets.ts';

/** Sentence comparison key: lower case, letters and digits only, single spaces. */
export function sentenceKey(s: string): string {
  return s
    .toLowerCase()
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export interface ExpectedRef {
  sentence: string;
  series: number | null;
  images: number[];
}

export interface MinerScore {
  tp: number;
  mined: number;
  expected: number;
  precision: number;
  recall: number;
  /** Mined references that matched nothing, and expected ones that were missed. */
  falsePositives: { sentence: string; series: number | null; images: number[] }[];
  misses: ExpectedRef[];
}

/**
 * Precision / recall of mined references: a mined reference is correct when an unmatched
 * expected one has the same series, the same images (as a set) and the same sentence
 * (compared by sentenceKey).
 */
export function scoreMiner(pairs: { mined: Snippet[]; expected: ExpectedRef[] }[]): MinerScore {
  let tp = 0;
  let mined = 0;
  let expected = 0;
  const falsePositives: MinerScore['falsePositives'] = [];
  const misses: ExpectedRef[] = [];
  const imgKey = (a: number[]) => a.slice().sort((x, y) => x - y).join(',');
  for (const p of pairs) {
    mined += p.mined.length;
    expected += p.expected.length;
    const used = new Array<boolean>(p.expected.length).fill(false);
    for (const m of p.mined) {
      const k = p.expected.findIndex((e, i) => !used[i] && e.series === m.series && imgKey(e.images) === imgKey(m.images) && sentenceKey(e.sentence) === sentenceKey(m.sentence));
      if (k >= 0) {
        used[k] = true;
        tp++;
      } else falsePositives.push({ sentence: m.sentence, series: m.series, images: m.images });
    }
    p.expected.forEach((e, i) => {
      if (!used[i]) misses.push(e);
    });
  }
  return {
    tp,
    mined,
    expected,
    precision: mined === 0 ? 1 : tp / mined,
    recall: expected === 0 ? 1 : tp / expected,
    falsePositives,
    misses,
  };
}
