// Report snippet mining: finds image references ("(series 3, image 45)", "(se 3, im 45)",
// "image 45 of series 3", "(Serie 3, Bild 45)", "(Se. 3/Bild 45)", "(S3/I45)", "images 40-45",
// "(series 3, images 12 and 14)", "se/im 3/45", "image 45", and US hospitals' series:image
// notation "(7:200)", "(7:87 and 7:209)", ...) in English and German reports, and returns each
// with its sentence, the reference removed (the text the model embeds). An image without a
// series takes the one the sentence names elsewhere, if exactly one.
// Then maps an image number to a depth bin of the prepared volume:
//   image (InstanceNumber) -> slice (series metadata) -> world z -> bin of `binDepth` voxels
//   along k of the prepared grid with the largest overlap with the slice's extent.
//
// The miner works on a token stream with a hand-written matcher (no backtracking regexes), so
// its run time is linear in the report length. Browser-safe.
import type { mat4 } from 'gl-matrix';
import { DataError } from '../errors.ts';
import type { RefKind, SeriesMeta } from './manifest.ts';

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

// ---------------------------------------------------------------------------------------
// Tokens

interface Tok {
  /** w word, n number, p punctuation / symbol. */
  k: 'w' | 'n' | 'p';
  t: string;
  lc: string;
  s: number;
  e: number;
}

const LETTER = /[\p{L}\p{M}]/u;

function tokenize(text: string): Tok[] {
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

const SERIES_WORDS = new Set(['series', 'serie', 'serien', 'ser', 'se', 'sr', 'srs']);
const IMAGE_WORDS = new Set([
  'image', 'images', 'img', 'imgs', 'im', 'ims', 'ima', 'slice', 'slices',
  'bild', 'bilder', 'bildern', 'bildnummer', 'schicht', 'schichten',
]);
/** Image words too ambiguous to stand alone without a series (German "im" = "in the"). */
const IMAGE_NEEDS_SERIES = new Set(['im', 'ims', 'ima']);
/**
 * One- and two-letter abbreviations, read only as part of "series X, image Y" (where the other
 * half makes them unambiguous): "S 3, I 45", "S3/I45", "Se. 3, B. 45", "Sr 3 Sl 45". Alone they
 * are lung segments ("S6"), pronouns ("I") or German words.
 */
const SERIES_ABBREV = new Set(['s']);
const IMAGE_ABBREV = new Set(['i', 'b', 'bi', 'sl']);
/** The abbreviated image words that may follow a one-letter series word. */
const SHORT_IMAGE_WORDS = new Set(['im', 'img', 'ima', 'ims', 'imgs']);
/** Words that may sit between a keyword and its number: "image no. 45", "Bild Nr. 45". */
const NUMBER_WORDS = new Set(['no', 'nr', 'number', 'num', 'nummer']);
/** Allowed between "series 3" and "image 45" (besides , / ; : - and parentheses). */
const SERIES_IMAGE_FILLER = new Set([
  'and', 'und', 'on', 'at', 'in', 'auf', 'axial', 'axiale', 'axialen', 'axiales', 'coronal', 'sagittal', 'koronar', 'koronare', 'sagittale',
]);
/** Plane words written just before an image word ("axial image 45"): part of the reference. */
const PLANE_WORDS = new Set(['axial', 'axiale', 'axialen', 'axialem', 'axiales', 'coronal', 'sagittal', 'koronar', 'koronaren', 'koronare', 'sagittale', 'sagittalen']);
/** Connectors of "image 45 <of> series 3". */
const IMAGE_SERIES_LINK = new Set(['of', 'in', 'on', 'from', 'der', 'aus', 'von', 'the', 'in der', 'auf']);
const ARTICLES = new Set(['the', 'a', 'an', 'die', 'das', 'dem', 'den', 'des', 'einer', 'eines']);
const PRIOR_WORDS = new Set([
  'prior', 'previous', 'comparison', 'old', 'outside', 'earlier', 'baseline', 'former', 'preceding',
  'voruntersuchung', 'vorbefund', 'voraufnahme', 'vorherigen', 'letzten', 'vorigen', 'alten', 'externen',
]);
const RANGE_WORDS = new Set(['to', 'bis', 'through', 'thru']);
const LIST_WORDS = new Set(['and', 'und', 'or', 'oder', 'sowie']);
const UNITS = new Set([
  'mm', 'cm', 'm', 'ml', 'cc', 'hu', 'x', 'mal', 'kg', 'year', 'years', 'jahre', 'jahren', 'days', 'tage', 'tagen', 'weeks', 'wochen',
  'months', 'monate', 'monaten', 'hours', 'stunden', 'min', 'sec', 's', 'times', '%',
]);
/** Words after which a number is still followed cleanly (list continuation check). */
const AFTER_NUMBER_OK = new Set([
  'and', 'und', 'of', 'in', 'der', 'aus', 'von', 'on', 'auf', 'from', 'or', 'oder', 'bzw', 'sowie',
  'series', 'serie', 'se', 'ser', 'sr', 'im', 'image', 'images', 'bild', 'bilder',
]);
/** Around "10:30": a time of day, not series:image. */
const TIME_BEFORE = new Set(['at', 'um', 'time', 'times', 'zeit', 'uhrzeit', 'clock', 'gegen', 'ab', 'until', 'till', 'bis', 'since', 'seit', 'started', 'began', 'performed', 'scanned', 'acquired', 'injected', 'date', 'datum', 'am', 'pm']);
const TIME_AFTER = new Set(['am', 'pm', 'a', 'p', 'h', 'hr', 'hrs', 'hour', 'hours', 'uhr', 'min', 'mins', 'minutes', 'minuten', 'sec', 'utc', 'cet', 'cest', 'est', 'edt', 'pst', 'oclock', 'o']);
/** Around "1:1": a ratio, not series:image. */
const RATIO_WORDS = new Set([
  'ratio', 'ratios', 'dilution', 'diluted', 'dilute', 'verhältnis', 'verdünnung', 'verdünnt', 'scale', 'maßstab', 'massstab', 'mixture',
  'mixed', 'mix', 'odds', 'zoom', 'magnification', 'concentration', 'proportion', 'split', 'rate', 'score',
]);
/** Words that may introduce an inline "series:image" reference ("nodule on 4:573", "see 7:200"). */
const COLON_LEAD = new Set(['on', 'see', 'siehe', 'auf', 'vgl', 'cf']);

const isDash = (t: string) => t === '-' || t === '–' || t === '—' || t === '‐';

interface Ref {
  ts: number;
  te: number; // token range [ts, te)
  series: number | null;
  images: number[];
  kind: RefKind;
}

class Matcher {
  constructor(
    readonly text: string,
    readonly toks: Tok[],
  ) {}

  private at(i: number): Tok | undefined {
    return this.toks[i];
  }

  /** A keyword (optionally followed by "."), returns the index after it or -1. */
  private kw(i: number, words: Set<string>): number {
    const t = this.at(i);
    if (!t || t.k !== 'w' || !words.has(t.lc)) return -1;
    const d = this.at(i + 1);
    if (d && d.t === '.' && d.s === t.e) return i + 2;
    return i + 1;
  }

  /** Skips ":" "#" "no." "Nr." before a number; returns the number token's index or -1. */
  private numberAfter(i: number): number {
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
  private plainNumber(j: number): boolean {
    const t = this.toks[j]!;
    if (t.t.length > 5) return false;
    const prev = this.at(j - 1);
    if (prev && prev.e === t.s && (prev.t === '.' || prev.t === ',') && this.at(j - 2)?.k === 'n' && this.at(j - 2)!.e === prev.s) return false;
    const next = this.at(j + 1);
    if (next && next.s === t.e && next.t === '.' && this.at(j + 2)?.k === 'n' && this.at(j + 2)!.s === next.e) return false;
    return true;
  }

  /** True when token j (after a number) ends it cleanly: not a unit, not a running word (strict: for list items). */
  private cleanEnd(j: number): boolean {
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
  private refEnd(j: number): boolean {
    const t = this.at(j);
    if (!t || t.k === 'p') return this.cleanEnd(j);
    if (t.k === 'n') return false;
    return t.s > this.toks[j - 1]!.e && !UNITS.has(t.lc);
  }

  private notUnit(j: number): boolean {
    const t = this.at(j);
    return !(t && (t.k === 'w' || t.t === '%') && UNITS.has(t.lc));
  }

  /** Parses an image number, range or list at token j. */
  private numList(j: number): { end: number; images: number[]; kind: RefKind } | null {
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
  private priorStudy(j: number): boolean {
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
  private totalCount(j: number, image: number): number {
    const sep = this.at(j);
    const tot = this.at(j + 1);
    if (!sep || !tot || tot.k !== 'n' || !this.plainNumber(j + 1) || !this.cleanEnd(j + 2) || !this.notUnit(j + 2)) return j;
    const n = Number(tot.t);
    if (((sep.lc === 'of' || sep.lc === 'von') && n >= image) || (sep.t === '/' && sep.s === this.toks[j - 1]!.e && n > image)) return j + 2;
    return j;
  }

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

  /** A series word at i, long ("series", "Se.") or, when `short`, one letter ("S"): the index after it, or -1. */
  private seriesWord(i: number, short: boolean): number {
    const a = this.kw(i, SERIES_WORDS);
    return a >= 0 || !short ? a : this.kw(i, SERIES_ABBREV);
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

  /** Whether a word of `words` is among the `n` word tokens before token i (stopping at a sentence end). */
  private wordBefore(i: number, n: number, words: Set<string>): boolean {
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

function findRefs(text: string, toks: Tok[]): Ref[] {
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

// ---------------------------------------------------------------------------------------
// Sentences

const ABBREV = new Set([
  'e', 'i', 'g', 'eg', 'ie', 'approx', 'ca', 'bzw', 'vs', 'dr', 'nr', 'no', 'fig', 'figs', 'mr', 'mrs', 'st', 'vgl', 'ggf',
  'evtl', 'li', 're', 'inkl', 'max', 'min', 'etc', 'resp', 'cf', 'abb', 'sog', 'bds', 'mind', 'z', 'b', 'u', 'a', 'v', 'n',
  'zn', 'diam', 'ant', 'post', 'lat', 'sup', 'inf', 'prox', 'dist', 'seg', 'ser', 'se', 'img', 'im', 'li', 'dd', 'gr', 'vv',
]);
/** German words before an ordinal ("im 3. Segment", "der 5. Rippe"). */
const ORDINAL_BEFORE = new Set(['im', 'am', 'der', 'die', 'das', 'des', 'dem', 'den', 'zum', 'zur', 'vom', 'ab', 'bis', 'ein', 'eine', 'einer', 'einem', 'in', 'dorsal', 'ventral']);
const HEADERS =
  /^(?:findings?|impressions?|conclusions?|technique|comparison|clinical (?:information|history|indication)|history|indication|summary|opinion|lungs?|lungs and airways|airways|pleura|pleural space|heart|heart and vessels|mediastinum|mediastinum and hila|hila|lymph nodes|bones|osseous structures|soft tissues|chest wall|upper abdomen|vessels|befund|befunde|beurteilung|technik|vergleich|fragestellung|klinische angaben|anamnese|diagnose|lunge|lungen|atemwege|herz|herz und gefäße|gefäße|mediastinum|lymphknoten|skelett|knochen|weichteile|thoraxwand|oberbauch)\s*:\s*/i;

/** A line that is only a section header without its colon ("Findings", "BEFUND"). */
const HEADER_LINE = /^\s*(?:findings?|impressions?|conclusions?|technique|comparison|befund|befunde|beurteilung|technik|vergleich)\s*$/i;

interface Span {
  s: number;
  e: number;
}

/** Sentence spans of the text; reference spans are atomic (their periods do not split). */
function sentences(text: string, toks: Tok[], refs: Ref[]): Span[] {
  const inRef = new Uint8Array(toks.length);
  for (const r of refs) for (let k = r.ts; k < r.te; k++) inRef[k] = 1;
  const spans: Span[] = [];
  let start = 0;
  let lineStart = 0;
  const push = (end: number) => {
    if (end > start) spans.push({ s: start, e: end });
    start = end;
  };
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    // A blank line is a boundary; a single newline is one after . ! ? : or before a capitalised
    // word or a list marker ("-", "*", "1."), otherwise a wrapped line goes on.
    if (i > 0) {
      const gap = text.slice(toks[i - 1]!.e, t.s);
      if (gap.includes('\n')) {
        const prev = toks[i - 1]!;
        const blank = /\n[ \t\r]*\n/.test(gap);
        const ended = prev.k === 'p' && (prev.t === '.' || prev.t === '!' || prev.t === '?' || prev.t === ':');
        const capital = t.k === 'w' && /^\p{Lu}/u.test(t.t);
        const marker = (t.k === 'p' && (t.t === '-' || t.t === '*' || t.t === '\u2022')) || (t.k === 'n' && (toks[i + 1]?.t === '.' || toks[i + 1]?.t === ')'));
        const header = HEADER_LINE.test(text.slice(lineStart, prev.e));
        if (blank || ended || capital || marker || header) push(prev.e);
        lineStart = text.lastIndexOf('\n', t.s) + 1;
      }
    }
    if (inRef[i] || t.k !== 'p' || !(t.t === '.' || t.t === '!' || t.t === '?')) continue;
    const next = toks[i + 1];
    if (next && next.s === t.e && next.k !== 'p') continue; // "5.2", "z.B", ".net"
    if (t.t === '.') {
      const prev = toks[i - 1];
      if (prev && prev.e === t.s) {
        if (prev.k === 'w' && ABBREV.has(prev.lc)) continue;
        if (prev.k === 'w' && prev.t.length === 1) continue;
        if (prev.k === 'n' && !inRef[i - 1]) {
          const before = toks[i - 2];
          if (before && before.k === 'w' && ORDINAL_BEFORE.has(before.lc) && next && next.k === 'w') continue;
          if (next && next.k === 'n' && next.s - t.e <= 1) continue; // "12. 03. 2021"
        }
      }
      if (next && next.k === 'w' && /^\p{Ll}/u.test(next.t)) continue;
    }
    push(t.e);
  }
  push(text.length);
  return spans;
}

const DANGLE = new Set(['see', 'siehe', 'vgl', 'cf', 'on', 'at', 'in', 'auf', 'im', 's', 'also', 'as', 'seen', 'shown']);
const DANGLE_KEEP = new Set(['seen', 'shown', 'also', 'as']);

/** The sentence text with the given reference spans removed and tidied. */
function stripRefs(text: string, span: Span, refSpans: Span[]): string {
  let out = '';
  let pos = span.s;
  for (const r of refSpans) {
    let s = r.s;
    let e = r.e;
    // Extend over an enclosing parenthesis "( ... )" / "[ ... ]" with optional "see"/"siehe"/"s." inside.
    let ls = s;
    // Only a short window before / after the reference matters (keeps this linear in length).
    const wStart = Math.max(span.s, s - 48);
    const before = text.slice(wStart, s);
    const mParen = /[([]\s*(?:(?:see|siehe|vgl\.?|cf\.?|s\.)\s*)?$/i.exec(before);
    const after = text.slice(e, Math.min(span.e, e + 8));
    const mClose = /^\s*[)\]]/.exec(after);
    if (mParen && mClose) {
      ls = wStart + mParen.index;
      e = e + mClose[0].length;
      s = ls;
    } else {
      // Dangling words before an inline reference: "seen on series 3 ...", ", see image 4".
      const m = /(?:^|[\s,;:(])((?:(?:see|siehe|vgl\.?|cf\.?|on|at|in|auf|im|s\.)\s+){1,2})$/i.exec(before);
      if (m) {
        const words = m[1]!.trim().split(/\s+/);
        if (words.every((w) => DANGLE.has(w.replace(/\.$/, '').toLowerCase()) && !DANGLE_KEEP.has(w.toLowerCase()))) {
          s = wStart + before.length - m[1]!.length;
        }
      }
    }
    out += text.slice(pos, s);
    pos = e;
  }
  out += text.slice(pos, span.e);
  return tidy(out);
}

function tidy(s: string): string {
  let t = s.replace(/\s+/g, ' ').trim();
  // Brackets emptied by removed references, also of the words between them: "( and )".
  t = t.replace(/[([]\s*(?:(?:and|und|or|oder|&|[,;:])\s*)*[)\]]/gi, '');
  t = t.replace(/\s+([.,;:!?)\]])/g, '$1').replace(/([([])\s+/g, '$1');
  t = dropStrayPunct(t);
  t = t.replace(HEADERS, '');
  t = t.replace(/^\d{1,2}[.)]\s+/, '');
  t = t.replace(/^[-*•]\s+/, '');
  t = t.replace(/^[\s,;:.]+/, '');
  return t.replace(/\s+/g, ' ').trim();
}

/**
 * Removes , ; : left dangling by a removed reference: before . ! ? ) ] or the end, after ( [,
 * and doubled ones. One linear pass (no regex backtracking on long runs).
 */
function dropStrayPunct(t: string): string {
  const isP = (c: string | undefined) => c === ',' || c === ';' || c === ':';
  const out: string[] = [];
  // Right to left: drop a separator when the next kept character closes or ends the text.
  let nextKept: string | undefined;
  for (let i = t.length - 1; i >= 0; i--) {
    const c = t[i]!;
    if (isP(c)) {
      let k = i + 1;
      while (t[k] === ' ') k++;
      const after = k < t.length ? t[k] : undefined;
      if (after === undefined || after === '.' || after === '!' || after === '?' || after === ')' || after === ']' || isP(nextKept)) continue;
    }
    out.push(c);
    if (c !== ' ') nextKept = c;
  }
  out.reverse();
  // Left to right: drop a separator right after an opening bracket.
  let r = '';
  let prevKept = '';
  for (const c of out) {
    if (isP(c) && (prevKept === '(' || prevKept === '[')) continue;
    r += c;
    if (c !== ' ') prevKept = c;
  }
  return r;
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

// ---------------------------------------------------------------------------------------
// Image -> slice -> world z -> depth bin

export interface SliceLocation {
  z: number;
  thickness: number;
}

/** Slice thickness of a series: its own field, else the median spacing of slice positions. */
export function seriesThickness(series: SeriesMeta): number {
  if (series.sliceThickness && series.sliceThickness > 0) return series.sliceThickness;
  const zs = series.slices.map((s) => s.z).sort((a, b) => a - b);
  const d: number[] = [];
  for (let i = 1; i < zs.length; i++) if (zs[i]! - zs[i - 1]! > 1e-6) d.push(zs[i]! - zs[i - 1]!);
  if (d.length === 0) return 0;
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)]!;
}

/** The slice of an image (InstanceNumber) in a series, or null when the series has no such image. */
export function resolveImage(series: SeriesMeta, image: number): SliceLocation | null {
  const sl = series.slices.find((s) => s.instanceNumber === image);
  if (!sl) return null;
  return { z: sl.z, thickness: seriesThickness(series) };
}

/** A grid after preparation (resampling, cropping): voxel -> world affine and shape. */
export interface DepthGrid {
  affine: mat4 | ArrayLike<number>;
  shape: [number, number, number];
}

/**
 * The depth bin (groups of `binDepth` voxels along k; floor(nz / binDepth) bins, trailing voxels
 * belong to none) with the largest overlap with the slice extent [z - t/2, z + t/2], or null when
 * less than half the slice (its centre, for t = 0) lies inside the binned part of the grid.
 */
export function depthBin(grid: DepthGrid, z: number, thickness: number, binDepth = 4): number | null {
  const m = grid.affine;
  const [nx, ny, nz] = grid.shape;
  const dz = m[10]!;
  if (Math.abs(dz) < 1e-6) throw new DataError('prepared grid', 'affine', 'the k axis has no z component; cannot map slices to depth bins');
  // World z of voxel k at the grid's in-plane centre.
  const z0 = m[2]! * ((nx - 1) / 2) + m[6]! * ((ny - 1) / 2) + m[14]!;
  const nBins = Math.floor(nz / binDepth);
  if (nBins <= 0) return null;
  const zOfK = (k: number) => z0 + dz * k;
  const t = Math.max(thickness, 0);
  const lo = z - t / 2;
  const hi = z + t / 2;
  let best = -1;
  let bestOv = -1;
  let total = 0;
  for (let b = 0; b < nBins; b++) {
    const za = zOfK(b * binDepth - 0.5);
    const zb = zOfK((b + 1) * binDepth - 0.5);
    const bl = Math.min(za, zb);
    const bh = Math.max(za, zb);
    let ov: number;
    if (t === 0) ov = z >= bl && z < bh ? 1 : 0;
    else ov = Math.max(0, Math.min(hi, bh) - Math.max(lo, bl));
    total += ov;
    if (ov > bestOv) {
      bestOv = ov;
      best = b;
    }
  }
  if (t === 0 ? total === 0 : total < t / 2 - 1e-9) return null;
  return best;
}

export type DropReason = 'no-series-metadata' | 'other-series' | 'unknown-series' | 'ambiguous-series' | 'image-not-in-series' | 'outside-crop';

export interface LocatedSnippet extends Snippet {
  z: number;
  bin: number;
}

export interface DroppedSnippet {
  snippet: Snippet;
  reason: DropReason;
  detail: string;
}

export interface Localisation {
  located: LocatedSnippet[];
  dropped: DroppedSnippet[];
}

export interface ResolveOptions {
  /**
   * When the volume's SeriesNumber is unknown (null, e.g. anonymised DICOM), references that
   * name a series: 'drop' (default; reason 'unknown-series': "series 5" may be another
   * reconstruction with other image numbers) or 'accept' (resolve the image number in this series).
   */
  unknownSeries?: 'drop' | 'accept';
}

/**
 * The slice a mined reference points to in the case's series, or why it cannot be placed
 * (never throws): no metadata, another series, an unknown series number, no series named while
 * the study has several (series.seriesCount > 1: 'ambiguous-series'), an image the series lacks.
 * A reference is never placed on a series other than the one it names.
 */
export function resolveSnippet(
  sn: Pick<Snippet, 'series' | 'image'>,
  series: SeriesMeta | undefined,
  opts: ResolveOptions = {},
): SliceLocation | { reason: Exclude<DropReason, 'outside-crop'>; detail: string } {
  if (!series) return { reason: 'no-series-metadata', detail: 'the case has no slice metadata' };
  if (sn.series !== null && series.seriesNumber === null && (opts.unknownSeries ?? 'drop') === 'drop')
    return { reason: 'unknown-series', detail: `series ${sn.series}: the volume's SeriesNumber is unknown (empty), so the reference cannot be checked` };
  if (sn.series !== null && series.seriesNumber !== null && sn.series !== series.seriesNumber)
    return { reason: 'other-series', detail: `series ${sn.series}, the volume is series ${series.seriesNumber}` };
  if (sn.series === null && (series.seriesCount ?? 1) > 1)
    return { reason: 'ambiguous-series', detail: `image ${sn.image} names no series, and the study has ${series.seriesCount} image series` };
  const loc = resolveImage(series, sn.image);
  if (!loc) {
    let lo = Infinity, hi = -Infinity;
    for (const s of series.slices) (lo = Math.min(lo, s.instanceNumber)), (hi = Math.max(hi, s.instanceNumber));
    const name = series.seriesNumber === null ? 'the series' : `series ${series.seriesNumber}`;
    return { reason: 'image-not-in-series', detail: `image ${sn.image}; ${name} has ${series.slices.length} images${series.slices.length ? ` (${lo}-${hi})` : ''}` };
  }
  return loc;
}

/**
 * Maps mined snippets to depth bins of a prepared grid through the case's series metadata.
 * Snippets that cannot be placed are dropped with a reason (never thrown): no metadata, a
 * series other than the case's (or any series, when the case's number is unknown, unless
 * opts.unknownSeries is 'accept'), an image the series lacks, a slice outside the crop.
 */
export function locateSnippets(snippets: Snippet[], series: SeriesMeta | undefined, grid: DepthGrid, binDepth = 4, opts: ResolveOptions = {}): Localisation {
  const located: LocatedSnippet[] = [];
  const dropped: DroppedSnippet[] = [];
  for (const sn of snippets) {
    const loc = resolveSnippet(sn, series, opts);
    if ('reason' in loc) {
      dropped.push({ snippet: sn, reason: loc.reason, detail: loc.detail });
      continue;
    }
    const bin = depthBin(grid, loc.z, loc.thickness, binDepth);
    if (bin === null) {
      dropped.push({ snippet: sn, reason: 'outside-crop', detail: `image ${sn.image} at z = ${loc.z.toFixed(1)} mm lies outside the prepared volume` });
      continue;
    }
    located.push({ ...sn, z: loc.z, bin });
  }
  return { located, dropped };
}

/** Counts of dropped snippets by reason. */
export function dropCounts(dropped: DroppedSnippet[]): Record<DropReason, number> {
  const c: Record<DropReason, number> = { 'no-series-metadata': 0, 'other-series': 0, 'unknown-series': 0, 'ambiguous-series': 0, 'image-not-in-series': 0, 'outside-crop': 0 };
  for (const d of dropped) c[d.reason]++;
  return c;
}

// ---------------------------------------------------------------------------------------
// Evaluation against ground truth

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
