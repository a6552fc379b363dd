// What the dataset (dataset.ts) knows of each case before any volume is read: its labels, and
// its report's image references mined and resolved to a slice (world z) once, at open, so that
// each crop only has to place them in its depth bins; and the split's statistics drawn from it
// (label counts, the disease-prompt loss's pos_weight, snippets dropped by reason).
// Browser-safe.
import { NUM_LABELS } from './labels.ts';
import { resolveVolumePath, type ManifestEntry } from './manifest.ts';
import { resolveSnippet, type DropReason } from './snippet-locate.ts';
import { mineSnippets } from './snippets.ts';

export interface DatasetStats {
  cases: number;
  /** Image references mined from the split's reports. */
  snippets: number;
  /** Of those, resolved to a slice of their case's series (candidates for every crop). */
  resolved: number;
  /**
   * Dropped snippets by reason: resolution failures ('no-series-metadata', 'other-series',
   * 'unknown-series', 'ambiguous-series', 'image-not-in-series', 'empty-sentence': counted once, at open) and
   * 'outside-crop' (cumulative over every prepare() call so far: a crop-dependent count).
   */
  snippetsDropped: Record<string, number>;
  /** Per label: cases with a known label (1 or 0). */
  labelCounts: number[];
  /** Per label: cases with the label present (1). */
  positives: number[];
  /** Per label: cases with the label absent (0). */
  negatives: number[];
  /** Per label: min(n_neg / n_pos, 20) (1 when a label has no positives), the disease-prompt loss's pos_weight. */
  posWeight: number[];
  /** Cumulative over prepare() calls: crops made, snippets located, snippets outside their crop. */
  prepared: { crops: number; located: number; outsideCrop: number };
}

/** A mined reference resolved to its slice: what every crop places in a depth bin. */
export interface ResolvedSnippet {
  text: string;
  z: number;
  thickness: number;
}

export interface CaseInfo {
  entry: ManifestEntry;
  path: string;
  labels: Int8Array;
  snippets: ResolvedSnippet[];
  /** Mined snippets that could not be resolved, by reason. */
  dropped: Record<string, number>;
  minedCount: number;
}

/** The crops made so far, and what they did with the snippets (cumulative over prepare() calls). */
export interface CropCounters {
  crops: number;
  located: number;
  outsideCrop: number;
}

const STATIC_REASONS = ['no-series-metadata', 'other-series', 'unknown-series', 'ambiguous-series', 'image-not-in-series', 'empty-sentence'] as const;
export type SnippetDropReason = DropReason | 'empty-sentence';

/** min(n_neg / n_pos, cap) per label; 1 for a label without positives or negatives. */
export function posWeights(positives: readonly number[], negatives: readonly number[], cap = 20): number[] {
  return positives.map((p, i) => (p > 0 && negatives[i]! > 0 ? Math.min(negatives[i]! / p, cap) : 1));
}

/** Zero for every drop reason, the crop-dependent 'outside-crop' included. */
export function emptyDropCounts(): Record<string, number> {
  const r: Record<string, number> = {};
  for (const k of STATIC_REASONS) r[k] = 0;
  r['outside-crop'] = 0;
  return r;
}

/**
 * A manifest entry as the dataset keeps it: its volume path, labels, and its report's image
 * references mined and resolved through the entry's series metadata (those that cannot be
 * resolved, or whose sentence is empty once the reference is removed, counted by reason).
 */
export function caseInfo(manifestPath: string, e: ManifestEntry, unknownSeries?: 'drop' | 'accept'): CaseInfo {
  const dropped = emptyDropCounts();
  const snippets: ResolvedSnippet[] = [];
  const mined = mineSnippets(e.report);
  for (const sn of mined) {
    const text = sn.sentence.trim();
    if (text === '' || !/[\p{L}]/u.test(text)) {
      dropped['empty-sentence']!++;
      continue;
    }
    const loc = resolveSnippet(sn, e.series, { unknownSeries });
    if ('reason' in loc) {
      dropped[loc.reason] = (dropped[loc.reason] ?? 0) + 1;
      continue;
    }
    snippets.push({ text, z: loc.z, thickness: loc.thickness });
  }
  return { entry: e, path: resolveVolumePath(manifestPath, e), labels: Int8Array.from(e.labels), snippets, dropped, minedCount: mined.length };
}

/** The statistics of a split's cases, with the crop-dependent counts from `counters`. */
export function caseStats(cases: readonly CaseInfo[], counters: CropCounters): DatasetStats {
  const dropped = emptyDropCounts();
  let snippets = 0, resolved = 0;
  const labelCounts = new Array<number>(NUM_LABELS).fill(0);
  const positives = new Array<number>(NUM_LABELS).fill(0);
  const negatives = new Array<number>(NUM_LABELS).fill(0);
  for (const c of cases) {
    snippets += c.minedCount;
    resolved += c.snippets.length;
    for (const [k, v] of Object.entries(c.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
    for (let l = 0; l < NUM_LABELS; l++) {
      const v = c.labels[l];
      if (v === 1) positives[l]!++;
      else if (v === 0) negatives[l]!++;
      if (v === 1 || v === 0) labelCounts[l]!++;
    }
  }
  dropped['outside-crop'] = counters.outsideCrop;
  return { cases: cases.length, snippets, resolved, snippetsDropped: dropped, labelCounts, positives, negatives, posWeight: posWeights(positives, negatives), prepared: { ...counters } };
}
