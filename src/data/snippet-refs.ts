// The image-reference patterns of the report miner (snippets.ts): "series 3, image 45" and its
// abbreviations, "se/im 3/45", "image 45 of series 3" or "image 45" alone, and US hospitals'
// series:image notation "(7:200)". Each pattern is a hand-written match on the token stream
// (snippet-tokens.ts), so matching is linear in the report length. Browser-safe.
import type { RefKind } from './manifest.ts';
import {
  COLON_LEAD,
  IMAGE_ABBREV,
  IMAGE_NEEDS_SERIES,
  IMAGE_SERIES_LINK,
  IMAGE_WORDS,
  LIST_WORDS,
  PLANE_WORDS,
  RANGE_WORDS,
  RATIO_WORDS,
  SERIES_IMAGE_FILLER,
  SERIES_WORDS,
  SHORT_IMAGE_WORDS,
  TIME_AFTER,
  TIME_BEFORE,
  TokenReader,
  UNITS,
  isDash,
  type Tok,
} from './snippet-tokens.ts';

/** One reference found: its token range, series (null when it names none), images and kind. */
export interface Ref {
  ts: number;
  te: number; // token range [ts, te)
  series: number | null;
  images: number[];
  kind: RefKind;
}

/** The reference patterns, tried at each token by findRefs. */
export class Matcher extends TokenReader {
  /** Tries every pattern at word token i; several references when one colon group names several series. */
  match(i: number): Ref[] | null {
    const r = this.seriesFirst(i) ?? this.slashForm(i) ?? this.imageFirst(i);
    return r ? [r] : this.colonForm(i);
  }

  /** The patterns that start with a number ("7:200"). */
  matchNumber(i: number): Ref[] | null {
    return this.colonForm(i);
  }

  /**
   * "series 4" not followed by an image: a series named elsewhere in the sentence ("On series 4,
   * the nodule on image 52 ..."). Returns the number and the token after it, or null; a series of
   * another study ("series 4 of the prior study") is none.
   */
  bareSeries(i: number): { series: number; end: number } | null {
    const a = this.kw(i, SERIES_WORDS);
    if (a < 0) return null;
    const sn = this.numberAfter(a);
    if (sn < 0 || !this.refEnd(sn + 1) || this.priorStudy(sn + 1)) return null;
    return { series: Number(this.toks[sn]!.t), end: sn + 1 };
  }

  /** "series 3, image 45", "se 3 im 45", "Se. 3/Bild 45", "series 3 (image 45)", "Serie 3: Bilder 12 und 14", "S3/I45", "Se 4, #52". */
  private seriesFirst(i: number): Ref | null {
    const a = this.seriesWord(i, true);
    if (a < 0) return null;
    // "S" alone is a lung segment as often as a series ("Herd im S6 (Bild 45)"): it counts only
    // beside an abbreviated image word ("S 3, I 45", "S4/B55", "S5 Sl 210").
    const oneLetter = this.kw(i, SERIES_WORDS) < 0;
    const sn = this.numberAfter(a);
    if (sn < 0) return null;
    // "7:200" after a series word is the colon notation.
    if (this.at(sn + 1)?.t === ':' && this.at(sn + 2)?.k === 'n') return null;
    let j = sn + 1;
    let paren = false;
    for (let steps = 0; steps < 3; steps++) {
      const t = this.at(j);
      if (!t) return null;
      if (t.k === 'p' && (t.t === ',' || t.t === '/' || t.t === ';' || t.t === ':' || isDash(t.t))) j++;
      else if (t.k === 'p' && (t.t === '(' || t.t === '[')) {
        paren = true;
        j++;
      } else if (t.k === 'w' && SERIES_IMAGE_FILLER.has(t.lc)) j++;
      else if (t.k === 'w' && t.lc === 'im' && this.at(j + 1)?.k === 'w' && IMAGE_WORDS.has(this.at(j + 1)!.lc)) j++; // "Serie 3 im Bild 45"
      else break;
    }
    let b = oneLetter ? this.kw(j, SHORT_IMAGE_WORDS) : this.kw(j, IMAGE_WORDS);
    if (b < 0) b = this.kw(j, IMAGE_ABBREV);
    // A number sign alone stands for the image word: "Se 4, #52".
    if (b < 0 && this.at(j)?.t === '#' && this.at(j + 1)?.k === 'n') b = j;
    if (b < 0) return null;
    const n = this.numberAfter(b);
    if (n < 0) return null;
    const list = this.numList(n);
    if (!list) return null;
    let end = list.kind === 'single' ? this.totalCount(list.end, list.images[0]!) : list.end;
    if (list.kind === 'single' && end === list.end && !this.refEnd(end)) return null;
    if (paren && (this.at(end)?.t === ')' || this.at(end)?.t === ']')) end++;
    return { ts: i, te: end, series: Number(this.toks[sn]!.t), images: list.images, kind: list.kind };
  }

  /** "se/im 3/45", "series/image 3/45", "Serie/Bild: 3/45", "Se:Im 3:45", "S/I 3/45". */
  private slashForm(i: number): Ref | null {
    const a = this.seriesWord(i, true);
    if (a < 0) return null;
    const sl = this.at(a);
    if (!sl || !(sl.t === '/' || sl.t === ':' || isDash(sl.t))) return null;
    let b = this.kw(a + 1, IMAGE_WORDS);
    if (b < 0) b = this.kw(a + 1, IMAGE_ABBREV);
    if (b < 0) return null;
    const sn = this.numberAfter(b);
    if (sn < 0) return null;
    const sep = this.at(sn + 1);
    if (!sep || !(sep.t === '/' || sep.t === ':' || sep.t === ',')) return null;
    const list = this.numList(sn + 2);
    if (!list) return null;
    return { ts: i, te: list.end, series: Number(this.toks[sn]!.t), images: list.images, kind: list.kind };
  }

  /** "image 45 of series 3", "Bild 45 der Serie 3", "images 40-45 (series 3)", or "image 45" alone. */
  private imageFirst(i: number): Ref | null {
    const a = this.kw(i, IMAGE_WORDS);
    if (a < 0) return null;
    const n = this.numberAfter(a);
    if (n < 0) return null;
    const list = this.numList(n);
    if (!list) return null;
    // "axial image 45": the plane word belongs to the reference.
    const prev = this.at(i - 1);
    const ts = prev && prev.k === 'w' && PLANE_WORDS.has(prev.lc) ? i - 1 : i;
    // "image 56 of 240": the image count belongs to the reference.
    const afterList = list.kind === 'single' ? this.totalCount(list.end, list.images[0]!) : list.end;
    // Optional link to a series.
    let j = afterList;
    let paren = false;
    for (let steps = 0; steps < 3; steps++) {
      const t = this.at(j);
      if (!t) break;
      if (t.k === 'w' && IMAGE_SERIES_LINK.has(t.lc)) j++;
      else if (t.k === 'p' && (t.t === ',' || t.t === ';' || t.t === '/')) j++;
      else if (t.k === 'p' && (t.t === '(' || t.t === '[')) {
        paren = true;
        j++;
      } else break;
    }
    const b = this.kw(j, SERIES_WORDS);
    if (b >= 0) {
      const sn = this.numberAfter(b);
      // The series number may be followed by any word ("of series 4 is new"), not by a unit,
      // a decimal or another number.
      if (sn >= 0 && this.refEnd(sn + 1)) {
        let end = sn + 1;
        if (paren && (this.at(end)?.t === ')' || this.at(end)?.t === ']')) end++;
        return { ts, te: end, series: Number(this.toks[sn]!.t), images: list.images, kind: list.kind };
      }
      // A series is named but cannot be read: never fall back to "no series" (the image would
      // then be placed on whatever series the case has).
      return null;
    }
    // No series: only with an unambiguous image word, a cleanly ending number, and not an
    // image of another study ("image 45 of the prior study", "Bild 12 der Voruntersuchung").
    if (IMAGE_NEEDS_SERIES.has(this.toks[i]!.lc) && this.at(i - 1)?.t !== '(') return null;
    if (this.priorStudy(list.end)) return null;
    const end = afterList;
    if (!this.refEnd(end)) return null;
    return { ts, te: end, series: null, images: list.images, kind: list.kind };
  }

  // -------------------------------------------------------------------------------------
  // US notation: "(7:200)" = series 7, image 200

  /** "A:B" at token j: the two numbers (series, image) and the index after them, or null. */
  private colonPair(j: number): { series: number; image: number; end: number } | null {
    const a = this.at(j), c = this.at(j + 1), b = this.at(j + 2);
    if (!a || !c || !b || a.k !== 'n' || c.t !== ':' || b.k !== 'n' || c.s !== a.e || b.s - c.e > 1) return null;
    // "07:30" is a clock time; series and images are not written with leading zeros.
    if ((a.t.length > 1 && a.t[0] === '0') || (b.t.length > 1 && b.t[0] === '0') || a.t.length > 4 || b.t.length > 5) return null;
    const after = this.at(j + 3);
    // "10:30:15", "7:200.5", "10:30h": not a reference.
    if (after && after.s === b.e && (after.k !== 'p' || ((after.t === ':' || after.t === '.' || after.t === ',') && this.at(j + 4)?.k === 'n' && this.at(j + 4)!.s === after.e))) return null;
    if (Number(b.t) === 0) return null;
    return { series: Number(a.t), image: Number(b.t), end: j + 3 };
  }

  /**
   * "(7:200)", "(301:290)", "(7:87 and 7:209)", "(203:587, 557)", "(4:86 through 4:120)",
   * "(S7: 311)", "(series 7:200)", "nodule on 4:573", "right upper lobe, 3:23, and ...": the
   * series:image notation of US reports. Read only where nothing else fits: first inside
   * parentheses, after "on" / "see" / a series or image word, or between commas after a word;
   * never next to time words ("at 10:30", "10:30 am") or ratio words ("1:10 dilution", "ratio 2:1").
   */
  private colonForm(i: number): Ref[] | null {
    const t0 = this.at(i);
    if (!t0) return null;
    let j = i;
    let lead = false; // a series or image word before the pair
    if (t0.k === 'w') {
      const a = this.seriesWord(i, true);
      const b = a >= 0 ? a : this.kw(i, IMAGE_WORDS);
      if (b < 0 || this.at(b)?.k !== 'n') return null;
      j = b;
      lead = true;
    }
    const first = this.colonPair(j);
    if (!first) return null;
    // Context before the reference.
    let p = i - 1;
    while (p >= 0 && this.toks[p]!.k === 'w' && (this.toks[p]!.lc === 'see' || this.toks[p]!.lc === 'siehe' || this.toks[p]!.lc === 'cf' || this.toks[p]!.lc === 'vgl')) p--;
    const before = this.at(p);
    // In brackets after what it locates ("nodule (7:200)"); at the start of a sentence there is nothing to locate.
    const located = this.at(p - 1);
    const paren = before !== undefined && before.k === 'p' && (before.t === '(' || before.t === '[') && located !== undefined && !['.', '!', '?', ':'].includes(located.t);
    const afterComma = before !== undefined && before.t === ',' && this.at(p - 1)?.k === 'w';
    const afterLead = this.at(i - 1)?.k === 'w' && COLON_LEAD.has(this.at(i - 1)!.lc);
    if (!(paren || lead || afterComma || afterLead)) return null;
    if (this.wordBefore(i, paren ? 2 : 3, TIME_BEFORE) || this.wordBefore(i, 4, RATIO_WORDS)) return null;

    // The group: pairs, and bare numbers continuing the last pair's series.
    const refs: { series: number; images: number[]; kind: RefKind; ts: number; te: number }[] = [
      { series: first.series, images: [first.image], kind: 'single', ts: i, te: first.end },
    ];
    let end = first.end;
    for (;;) {
      let k = end;
      const sep = this.at(k);
      if (!sep) break;
      const cur = refs[refs.length - 1]!;
      const range = (sep.k === 'p' && isDash(sep.t)) || (sep.k === 'w' && RANGE_WORDS.has(sep.lc));
      if (range) k++;
      else if (sep.t === ',' || sep.t === '&' || sep.t === ';') {
        k++;
        if (this.at(k)?.k === 'w' && LIST_WORDS.has(this.at(k)!.lc)) k++;
      } else if (sep.k === 'w' && LIST_WORDS.has(sep.lc)) k++;
      else break;
      const pair = this.colonPair(k);
      if (pair) {
        if (range) {
          if (pair.series !== cur.series || cur.kind !== 'single' || pair.image === cur.images[0]) break;
          cur.images.push(pair.image);
          cur.kind = 'range';
          cur.te = end = pair.end;
        } else if (pair.series === cur.series && cur.kind !== 'range') {
          cur.images.push(pair.image);
          cur.kind = 'list';
          cur.te = end = pair.end;
        } else {
          refs.push({ series: pair.series, images: [pair.image], kind: 'single', ts: k, te: pair.end });
          end = pair.end;
        }
        continue;
      }
      const nt = this.at(k);
      if (!nt || nt.k !== 'n' || !this.plainNumber(k) || !this.cleanEnd(k + 1) || !this.notUnit(k + 1)) break;
      if (range) {
        if (cur.kind !== 'single' || Number(nt.t) === cur.images[0]) break;
        cur.kind = 'range';
      } else {
        if (cur.kind === 'range') break;
        cur.kind = 'list';
      }
      cur.images.push(Number(nt.t));
      cur.te = end = k + 1;
      if (cur.images.length >= 20) break;
    }
    // Context after the reference.
    const next = this.at(end);
    if (next && next.k === 'w' && (TIME_AFTER.has(next.lc) || RATIO_WORDS.has(next.lc) || UNITS.has(next.lc))) return null;
    if (paren) {
      if (!next || !(next.t === ')' || next.t === ']' || next.t === ',' || next.t === ';')) return null;
    } else if (!this.refEnd(end)) return null;
    return refs.map((r) => ({ ts: r.ts, te: r.te, series: r.series, images: r.images, kind: r.kind }));
  }
}

/** Every reference of the token stream, left to right, non-overlapping. */
export function findRefs(text: string, toks: Tok[]): Ref[] {
  const m = new Matcher(text, toks);
  const refs: Ref[] = [];
  for (let i = 0; i < toks.length; ) {
    const t = toks[i]!;
    if (t.k === 'w' || t.k === 'n') {
      const r = t.k === 'w' ? m.match(i) : m.matchNumber(i);
      if (r) {
        refs.push(...r);
        i = r[r.length - 1]!.te;
        continue;
      }
    }
    i++;
  }
  return refs;
}
