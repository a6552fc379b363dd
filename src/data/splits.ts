// Which split (train / val / test) a manifest case belongs to: its own `split` field, else a
// deterministic hash split of its id, so a case keeps its split whatever the order or number
// of cases. Browser-safe.
import { hashString } from '../rng.ts';
import type { ManifestEntry, Split } from './manifest.ts';

export interface SplitFractions {
  val: number;
  test: number;
}

/**
 * A deterministic split from a key's hash: the same key always lands in the same
 * split, whatever the order or number of cases. Default 80 / 10 / 10.
 */
export function splitFor(key: string, f: SplitFractions = { val: 0.1, test: 0.1 }): Split {
  // FNV-1a, then a murmur3 finaliser: FNV's high bits barely change with the last characters
  // ("case-17" vs "case-18"), the finaliser spreads them.
  let h = hashString(`split:${key}`);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  const u = h / 4294967296;
  if (u < f.test) return 'test';
  if (u < f.test + f.val) return 'val';
  return 'train';
}

/** The entry's split, or the hash split of its id when none is given. */
export function entrySplit(e: ManifestEntry, f?: SplitFractions): Split {
  return e.split ?? splitFor(e.id, f);
}
