// Sentences of a report for the miner (snippets.ts): where a sentence ends (abbreviations,
// ordinals, decimals and dates do not end one; a reference's periods never do; a line break
// does after a full stop, before a capital or list marker, or after a header line), and the
// sentence text with its references removed and the punctuation they leave tidied. Browser-safe.
import type { Ref } from './snippet-refs.ts';
import type { Tok } from './snippet-tokens.ts';

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

export interface Span {
  s: number;
  e: number;
}

/** Sentence spans of the text; reference spans are atomic (their periods do not split). */
export function sentences(text: string, toks: Tok[], refs: Ref[]): Span[] {
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
export function stripRefs(text: string, span: Span, refSpans: Span[]): string {
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
