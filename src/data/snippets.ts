// Report snippet mining: finds image references ("(series 3, image 45)", "(se 3, im 45)",
// "image 45 of series 3", "(Serie 3, Bild 45)", "(Se. 3/Bild 45)", "(S3/I45)", "images 40-45",
// "(series 3, images 12 and 14)", "se/im 3/45", "image 45", and US hospitals' series:image
// notation "(7:200)", "(7:87 and 7:209)", ...) in English and German reports, and returns each
// with its sentence, the reference removed (the text the model embeds). An image without a
// series takes the one the sentence names elsewhere, if exactly one.
//
// The miner works on a token stream with a hand-written matcher (no backtracking regexes), so
// its run time is linear in the report length. Browser-safe. Its parts, by job:
//   snippet-tokens.ts     the token stream, the words of references, reading numbers and lists
//   snippet-refs.ts       the reference patterns ("series 3, image 45", "(7:200)", ...)
//   snippet-sentences.ts  sentence ends, and a sentence with its references removed
//   snippet-locate.ts     image number -> slice -> world z -> depth bin of the prepared volume
//   snippet-score.ts      precision / recall of the miner against ground truth
import type { RefKind } from './manifest.ts';
import { Matcher, findRefs, type Ref } from './snippet-refs.ts';
import { sentences, stripRefs, type Span } from './snippet-sentences.ts';
import { tokenize } from './snippet-tokens.ts';

export interface Snippet {
  /** The sentence the reference stands in, with every reference removed. */
  sentence: string;
  /** The series number, or null when the reference names none ("image 45"). */
  series: number | null;
  /** As written: one image, the two ends of a range, or the list. */
  images: number[];
  kind: RefKind;
  /** The image used for localisation: itself, the middle of a range, the median of a list. */
  image: number;
  /** The reference as written, and its offsets in the report. */
  ref: string;
  start: number;
  end: number;
}

/**
 * The image a reference localises to. Ranges use their middle image (rounded down:
 * "40-45" -> 42); lists use their median (the lower one for an even count: "12 and 14" -> 12).
 */
export function primaryImage(images: number[], kind: RefKind): number {
  if (kind === 'range') {
    const a = Math.min(images[0]!, images[1]!);
    const b = Math.max(images[0]!, images[1]!);
    return a + Math.floor((b - a) / 2);
  }
  if (kind === 'list') {
    const s = images.slice().sort((x, y) => x - y);
    return s[Math.floor((s.length - 1) / 2)]!;
  }
  return images[0]!;
}

/** Mines every image reference of a report. Zero references -> []. */
export function mineSnippets(report: string): Snippet[] {
  const toks = tokenize(report);
  const refs = findRefs(report, toks);
  if (refs.length === 0) return [];
  const spans = sentences(report, toks, refs);
  const matcher = new Matcher(report, toks);
  const inRef = new Uint8Array(toks.length);
  for (const r of refs) inRef.fill(1, r.ts, r.te);
  const out: Snippet[] = [];
  let si = 0;
  let ri = 0;
  let ti = 0; // token cursor for the series mentions
  while (ri < refs.length) {
    const r = refs[ri]!;
    const rs = toks[r.ts]!.s;
    while (si < spans.length - 1 && spans[si]!.e <= rs) si++;
    const span = spans[si]!;
    // All references in this sentence share the sentence (with all of them removed).
    let group: Ref[] = [];
    while (ri < refs.length && toks[refs[ri]!.ts]!.s < span.e) group.push(refs[ri++]!);
    const refSpans = group.map((g) => ({ s: toks[g.ts]!.s, e: toks[g.te - 1]!.e }));
    // An image without a series takes the series the sentence names elsewhere ("On series 4,
    // the nodule on image 52 is new"); with several different ones it cannot be told which, and
    // the reference is dropped rather than placed on a series it may not belong to.
    if (group.some((g) => g.series === null)) {
      const mentions: { series: number; s: number; e: number }[] = [];
      while (ti < toks.length && toks[ti]!.s < span.s) ti++;
      for (; ti < toks.length && toks[ti]!.e <= span.e; ti++) {
        const k = ti;
        if (inRef[k]) continue;
        const m = matcher.bareSeries(k);
        if (m) mentions.push({ series: m.series, s: toks[k]!.s, e: toks[m.end - 1]!.e });
      }
      const distinct = new Set(mentions.map((m) => m.series));
      if (distinct.size === 1) {
        const series = mentions[0]!.series;
        group = group.map((g) => (g.series === null ? { ...g, series } : g));
        const strip = [...refSpans, ...mentions.map((m) => ({ s: m.s, e: m.e }))].sort((a, b) => a.s - b.s);
        const sentence = stripRefs(report, span, strip);
        group.forEach((g, k) => pushSnippet(out, report, sentence, g, refSpans[k]!));
        continue;
      }
      if (distinct.size > 1) {
        const sentence = stripRefs(report, span, refSpans);
        group.forEach((g, k) => {
          if (g.series !== null) pushSnippet(out, report, sentence, g, refSpans[k]!);
        });
        continue;
      }
    }
    const sentence = stripRefs(report, span, refSpans);
    group.forEach((g, k) => pushSnippet(out, report, sentence, g, refSpans[k]!));
  }
  return out;
}

function pushSnippet(out: Snippet[], report: string, sentence: string, g: Ref, sp: Span): void {
  out.push({
    sentence,
    series: g.series,
    images: g.images,
    kind: g.kind,
    image: primaryImage(g.images, g.kind),
    ref: report.slice(sp.s, sp.e),
    start: sp.s,
    end: sp.e,
  });
}
