// The token stream the report miner (snippets.ts) works on, the words of image references it
// knows (English and German), and TokenReader: the readers of one keyword, number, range or
// list on the stream that the reference patterns (snippet-refs.ts) are built from. Hand-written
// (no backtracking regexes), so reading stays linear in the report length. Browser-safe.
import type { RefKind } from './manifest.ts';

// ---------------------------------------------------------------------------------------
// Tokens

export interface Tok {
  /** w word, n number, p punctuation / symbol. */
  k: 'w' | 'n' | 'p';
  t: string;
  lc: string;
  s: number;
  e: number;
}

const LETTER = /[\p{L}\p{M}]/u;

export function tokenize(text: string): Tok[] {
  const toks: Tok[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 0xa0) {
      i++;
      continue;
    }
    if (c >= 48 && c <= 57) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const t = text.slice(i, j);
      toks.push({ k: 'n', t, lc: t, s: i, e: j });
      i = j;
      continue;
    }
    const ch = text[i]!;
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c > 127 && LETTER.test(ch))) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if ((d >= 65 && d <= 90) || (d >= 97 && d <= 122) || (d > 127 && LETTER.test(text[j]!))) j++;
        else break;
      }
      const t = text.slice(i, j);
      toks.push({ k: 'w', t, lc: t.toLowerCase(), s: i, e: j });
      i = j;
      continue;
    }
    // Surrogate pairs and other symbols: one token per code point.
    const cp = text.codePointAt(i)!;
    const len = cp > 0xffff ? 2 : 1;
    toks.push({ k: 'p', t: text.slice(i, i + len), lc: text.slice(i, i + len), s: i, e: i + len });
    i += len;
  }
  return toks;
}

// ---------------------------------------------------------------------------------------
// Vocabulary

export const SERIES_WORDS = new Set(['series', 'serie', 'serien', 'ser', 'se', 'sr', 'srs']);
export const IMAGE_WORDS = new Set([
  'image', 'images', 'img', 'imgs', 'im', 'ims', 'ima', 'slice', 'slices',
  'bild', 'bilder', 'bildern', 'bildnummer', 'schicht', 'schichten',
]);
/** Image words too ambiguous to stand alone without a series (German "im" = "in the"). */
export const IMAGE_NEEDS_SERIES = new Set(['im', 'ims', 'ima']);
/**
 * One- and two-letter abbreviations, read only as part of "series X, image Y" (where the other
 * half makes them unambiguous): "S 3, I 45", "S3/I45", "Se. 3, B. 45", "Sr 3 Sl 45". Alone they
 * are lung segments ("S6"), pronouns ("I") or German words.
 */
export const SERIES_ABBREV = new Set(['s']);
export const IMAGE_ABBREV = new Set(['i', 'b', 'bi', 'sl']);
/** The abbreviated image words that may follow a one-letter series word. */
export const SHORT_IMAGE_WORDS = new Set(['im', 'img', 'ima', 'ims', 'imgs']);
/** Words that may sit between a keyword and its number: "image no. 45", "Bild Nr. 45". */
export const NUMBER_WORDS = new Set(['no', 'nr', 'number', 'num', 'nummer']);
/** Allowed between "series 3" and "image 45" (besides , / ; : - and parentheses). */
export const SERIES_IMAGE_FILLER = new Set([
  'and', 'und', 'on', 'at', 'in', 'auf', 'axial', 'axiale', 'axialen', 'axiales', 'coronal', 'sagittal', 'koronar', 'koronare', 'sagittale',
]);
/** Plane words written just before an image word ("axial image 45"): part of the reference. */
export const PLANE_WORDS = new Set(['axial', 'axiale', 'axialen', 'axialem', 'axiales', 'coronal', 'sagittal', 'koronar', 'koronaren', 'koronare', 'sagittale', 'sagittalen']);
/** Connectors of "image 45 <of> series 3". */
export const IMAGE_SERIES_LINK = new Set(['of', 'in', 'on', 'from', 'der', 'aus', 'von', 'the', 'in der', 'auf']);
export const ARTICLES = new Set(['the', 'a', 'an', 'die', 'das', 'dem', 'den', 'des', 'einer', 'eines']);
export const PRIOR_WORDS = new Set([
  'prior', 'previous', 'comparison', 'old', 'outside', 'earlier', 'baseline', 'former', 'preceding',
  'voruntersuchung', 'vorbefund', 'voraufnahme', 'vorherigen', 'letzten', 'vorigen', 'alten', 'externen',
]);
export const RANGE_WORDS = new Set(['to', 'bis', 'through', 'thru']);
export const LIST_WORDS = new Set(['and', 'und', 'or', 'oder', 'sowie']);
export const UNITS = new Set([
  'mm', 'cm', 'm', 'ml', 'cc', 'hu', 'x', 'mal', 'kg', 'year', 'years', 'jahre', 'jahren', 'days', 'tage', 'tagen', 'weeks', 'wochen',
  'months', 'monate', 'monaten', 'hours', 'stunden', 'min', 'sec', 's', 'times', '%',
]);
/** Words after which a number is still followed cleanly (list continuation check). */
export const AFTER_NUMBER_OK = new Set([
  'and', 'und', 'of', 'in', 'der', 'aus', 'von', 'on', 'auf', 'from', 'or', 'oder', 'bzw', 'sowie',
  'series', 'serie', 'se', 'ser', 'sr', 'im', 'image', 'images', 'bild', 'bilder',
]);
/** Around "10:30": a time of day, not series:image. */
export const TIME_BEFORE = new Set(['at', 'um', 'time', 'times', 'zeit', 'uhrzeit', 'clock', 'gegen', 'ab', 'until', 'till', 'bis', 'since', 'seit', 'started', 'began', 'performed', 'scanned', 'acquired', 'injected', 'date', 'datum', 'am', 'pm']);
export const TIME_AFTER = new Set(['am', 'pm', 'a', 'p', 'h', 'hr', 'hrs', 'hour', 'hours', 'uhr', 'min', 'mins', 'minutes', 'minuten', 'sec', 'utc', 'cet', 'cest', 'est', 'edt', 'pst', 'oclock', 'o']);
/** Around "1:1": a ratio, not series:image. */
export const RATIO_WORDS = new Set([
  'ratio', 'ratios', 'dilution', 'diluted', 'dilute', 'verhältnis', 'verdünnung', 'verdünnt', 'scale', 'maßstab', 'massstab', 'mixture',
  'mixed', 'mix', 'odds', 'zoom', 'magnification', 'concentration', 'proportion', 'split', 'rate', 'score',
]);
/** Words that may introduce an inline "series:image" reference ("nodule on 4:573", "see 7:200"). */
export const COLON_LEAD = new Set(['on', 'see', 'siehe', 'auf', 'vgl', 'cf']);

export const isDash = (t: string) => t === '-' || t === '–' || t === '—' || t === '‐';

/**
 * Reading on the token stream: keywords, plain numbers, ranges and lists, and the checks of
 * what may follow a number. The reference patterns (snippet-refs.ts Matcher) extend it.
 */
export class TokenReader {
  constructor(
    readonly text: string,
    readonly toks: Tok[],
  ) {}

  protected at(i: number): Tok | undefined {
    return this.toks[i];
  }

  /** A keyword (optionally followed by "."), returns the index after it or -1. */
  protected kw(i: number, words: Set<string>): number {
    const t = this.at(i);
    if (!t || t.k !== 'w' || !words.has(t.lc)) return -1;
    const d = this.at(i + 1);
    if (d && d.t === '.' && d.s === t.e) return i + 2;
    return i + 1;
  }

  /** Skips ":" "#" "no." "Nr." before a number; returns the number token's index or -1. */
  protected numberAfter(i: number): number {
    let j = i;
    for (let steps = 0; steps < 3; steps++) {
      const t = this.at(j);
      if (!t) return -1;
      if (t.k === 'n') return this.plainNumber(j) ? j : -1;
      if (t.t === ':' || t.t === '#') {
        j++;
        continue;
      }
      if (t.k === 'w' && NUMBER_WORDS.has(t.lc)) {
        j++;
        if (this.at(j)?.t === '.') j++;
        continue;
      }
      return -1;
    }
    return -1;
  }

  /** An integer not part of a decimal ("5.2", "5,2" with no space) or date ("12.03.2021"). */
  protected plainNumber(j: number): boolean {
    const t = this.toks[j]!;
    if (t.t.length > 5) return false;
    const prev = this.at(j - 1);
    if (prev && prev.e === t.s && (prev.t === '.' || prev.t === ',') && this.at(j - 2)?.k === 'n' && this.at(j - 2)!.e === prev.s) return false;
    const next = this.at(j + 1);
    if (next && next.s === t.e && next.t === '.' && this.at(j + 2)?.k === 'n' && this.at(j + 2)!.s === next.e) return false;
    return true;
  }

  /** True when token j (after a number) ends it cleanly: not a unit, not a running word (strict: for list items). */
  protected cleanEnd(j: number): boolean {
    const t = this.at(j);
    if (!t) return true;
    if (t.k === 'p') {
      if (t.t === '%' || t.t === '×') return false;
      if (t.t === '.' && this.at(j + 1)?.k === 'n' && this.at(j + 1)!.s === t.e) return false;
      if ((t.t === ':' || t.t === '/') && t.s === this.toks[j - 1]?.e && this.at(j + 1)?.k === 'n' && this.at(j + 1)!.s === t.e) return false; // "10:30", "3/87"
      return true;
    }
    if (t.k === 'w') return AFTER_NUMBER_OK.has(t.lc);
    return false;
  }

  /**
   * True when token j (after the last number of a reference) ends the reference: punctuation
   * that does not continue the number, or a word that is not a unit and not glued to it
   * ("image 52 of series 4 is new", but not "image 3D", "slice 5 mm").
   */
  protected refEnd(j: number): boolean {
    const t = this.at(j);
    if (!t || t.k === 'p') return this.cleanEnd(j);
    if (t.k === 'n') return false;
    return t.s > this.toks[j - 1]!.e && !UNITS.has(t.lc);
  }

  protected notUnit(j: number): boolean {
    const t = this.at(j);
    return !(t && (t.k === 'w' || t.t === '%') && UNITS.has(t.lc));
  }

  /** Parses an image number, range or list at token j. */
  protected numList(j: number): { end: number; images: number[]; kind: RefKind } | null {
    const first = this.at(j);
    if (!first || first.k !== 'n' || !this.plainNumber(j) || !this.notUnit(j + 1)) return null;
    const a = Number(first.t);
    // Range: 40-45, 40 to 45, 40 bis 45.
    const sep = this.at(j + 1);
    if (sep && ((sep.k === 'p' && isDash(sep.t)) || (sep.k === 'w' && RANGE_WORDS.has(sep.lc)))) {
      const b = this.at(j + 2);
      if (b && b.k === 'n' && this.plainNumber(j + 2) && this.refEnd(j + 3) && this.notUnit(j + 3)) {
        const bv = Number(b.t);
        if (bv !== a && Math.abs(bv - a) <= 2000) return { end: j + 3, images: [a, bv], kind: 'range' };
      }
    }
    // List: 12 and 14, 12, 14, 12, 14 and 16, 12/14 is not a list (see slash forms).
    const images = [a];
    let end = j + 1;
    for (;;) {
      let k = end;
      const t = this.at(k);
      if (!t) break;
      if (t.t === ',' || t.t === '&') {
        k++;
        const u = this.at(k);
        if (u && u.k === 'w' && LIST_WORDS.has(u.lc)) k++;
      } else if (t.k === 'w' && LIST_WORDS.has(t.lc)) {
        k++;
      } else break;
      const nt = this.at(k);
      if (!nt || nt.k !== 'n' || !this.plainNumber(k) || !this.cleanEnd(k + 1)) break;
      images.push(Number(nt.t));
      end = k + 1;
      if (images.length >= 20) break;
    }
    return { end, images, kind: images.length > 1 ? 'list' : 'single' };
  }

  /** "of the prior study", "der Voruntersuchung", "on the previous CT" after an image number. */
  protected priorStudy(j: number): boolean {
    for (let steps = 0; steps < 4; steps++) {
      const t = this.at(j + steps);
      if (!t || t.k !== 'w') return false;
      if (PRIOR_WORDS.has(t.lc)) return true;
      if (!IMAGE_SERIES_LINK.has(t.lc) && !ARTICLES.has(t.lc)) return false;
    }
    return false;
  }

  /**
   * "image 56 of 240", "Bild 56 von 240", "image 56/240" after a single image: the series' image
   * count belongs to the reference. Returns the token index after it, or j when there is none.
   */
  protected totalCount(j: number, image: number): number {
    const sep = this.at(j);
    const tot = this.at(j + 1);
    if (!sep || !tot || tot.k !== 'n' || !this.plainNumber(j + 1) || !this.cleanEnd(j + 2) || !this.notUnit(j + 2)) return j;
    const n = Number(tot.t);
    if (((sep.lc === 'of' || sep.lc === 'von') && n >= image) || (sep.t === '/' && sep.s === this.toks[j - 1]!.e && n > image)) return j + 2;
    return j;
  }

  /** A series word at i, long ("series", "Se.") or, when `short`, one letter ("S"): the index after it, or -1. */
  protected seriesWord(i: number, short: boolean): number {
    const a = this.kw(i, SERIES_WORDS);
    return a >= 0 || !short ? a : this.kw(i, SERIES_ABBREV);
  }

  /** Whether a word of `words` is among the `n` word tokens before token i (stopping at a sentence end). */
  protected wordBefore(i: number, n: number, words: Set<string>): boolean {
    for (let k = i - 1, seen = 0; k >= 0 && seen < n; k--) {
      const t = this.toks[k]!;
      if (t.k === 'p' && (t.t === '.' || t.t === '!' || t.t === '?')) return false;
      if (t.k === 'w') {
        seen++;
        if (words.has(t.lc)) return true;
      }
    }
    return false;
  }
}
