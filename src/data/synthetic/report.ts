// Radiology reports for synthetic cases, in English or German: Findings and Impression
// sections, varied wording and sentence order, negations of absent findings, and image
// references ("(series 3, image 57)", "(Se. 3/Bild 45)", ranges, lists) after the positive
// findings, pointing at slices inside each finding's z-extent. Returns the ground truth of
// every reference beside the text. The wording of the sentences is in report-wording.ts.
import { LABELS } from '../labels.ts';
import type { GroundTruthReference, RefKind } from '../manifest.ts';
import { primaryImage } from '../snippets.ts';
import { L, type Finding } from './finding-types.ts';
import type { Rng } from '../../rng.ts';
import { cap, findingText, GROUP, IMPRESSION_DE, IMPRESSION_EN, NEG_DE, NEG_EN, NORMAL_DE, NORMAL_EN, where, type Lang } from './report-wording.ts';

/** Slice metadata the report refers through. */
export interface ReportSeries {
  seriesNumber: number;
  /** Instance number of slice k (k = 0 is the most inferior slice). */
  instance: (k: number) => number;
  /** World z of slice k. */
  zOf: (k: number) => number;
  nz: number;
  sliceThickness: number;
}

export interface ReportOptions {
  lang: Lang;
  /** Probability that a positive finding's sentence carries an image reference (default 0.85). */
  refRate?: number;
}

export interface WrittenReport {
  text: string;
  references: GroundTruthReference[];
}

// ---------------------------------------------------------------------------------------
// Image references

interface RefSpec {
  series: number | null;
  images: number[];
  kind: RefKind;
  /** Inline (no parentheses) or parenthetical. */
  inline: boolean;
}

type RefStyle = (s: number, img: string, kind: RefKind) => { text: string; series: boolean };

const EN_PAREN: RefStyle[] = [
  (s, i, k) => ({ text: `(series ${s}, ${plural('image', k)} ${i})`, series: true }),
  (s, i) => ({ text: `(se ${s}, im ${i})`, series: true }),
  (s, i) => ({ text: `(Se ${s}, Im ${i})`, series: true }),
  (s, i, k) => ({ text: `(series ${s} ${plural('image', k)} ${i})`, series: true }),
  (s, i, k) => ({ text: `(${plural('image', k)} ${i} of series ${s})`, series: true }),
  (s, i) => ({ text: `(ser. ${s}, img. ${i})`, series: true }),
  (s, i, k) => ({ text: `(Series ${s}, ${cap(plural('image', k))} ${i})`, series: true }),
  (s, i, k) => ({ text: `(series ${s}: ${plural('image', k)} ${i})`, series: true }),
  (s, i, k) => ({ text: `[series ${s}, ${plural('image', k)} ${i}]`, series: true }),
  (s, i, k) => ({ text: `(see series ${s}, ${plural('image', k)} ${i})`, series: true }),
  (_s, i, k) => ({ text: `(${plural('image', k)} ${i})`, series: false }),
];
const EN_SLASH = (s: number, i: number) => `(se/im ${s}/${i})`;
const EN_INLINE: ((s: number, i: string, k: RefKind) => { pre: string; text: string })[] = [
  (s, i, k) => ({ pre: ', ', text: `series ${s} ${plural('image', k)} ${i}` }),
  (s, i, k) => ({ pre: ' on ', text: `${plural('image', k)} ${i} of series ${s}` }),
  (s, i, k) => ({ pre: ', see ', text: `series ${s}, ${plural('image', k)} ${i}` }),
  (s, i, k) => ({ pre: ' on ', text: `series ${s}, ${plural('image', k)} ${i}` }),
];
const DE_PAREN: RefStyle[] = [
  (s, i, k) => ({ text: `(Serie ${s}, ${k === 'single' ? 'Bild' : 'Bilder'} ${i})`, series: true }),
  (s, i) => ({ text: `(Se. ${s}/Bild ${i})`, series: true }),
  (s, i) => ({ text: `(Serie ${s} Bild ${i})`, series: true }),
  (s, i) => ({ text: `(Bild ${i} der Serie ${s})`, series: true }),
  (s, i) => ({ text: `(Se ${s}, Bild ${i})`, series: true }),
  (s, i) => ({ text: `(Ser. ${s}, Bild ${i})`, series: true }),
  (s, i) => ({ text: `(Serie ${s}/Bild ${i})`, series: true }),
  (s, i) => ({ text: `(s. Serie ${s}, Bild ${i})`, series: true }),
  (_s, i, k) => ({ text: `(${k === 'single' ? 'Bild' : 'Bilder'} ${i})`, series: false }),
];
const DE_INLINE: ((s: number, i: string, k: RefKind) => { pre: string; text: string })[] = [
  (s, i) => ({ pre: ', ', text: `Serie ${s}, Bild ${i}` }),
  (s, i) => ({ pre: ' auf ', text: `Bild ${i} der Serie ${s}` }),
  (s, i) => ({ pre: ', siehe ', text: `Serie ${s} Bild ${i}` }),
];

function plural(w: string, k: RefKind): string {
  return k === 'single' ? w : `${w}s`;
}

function imagesText(images: number[], kind: RefKind, lang: Lang, rng: Rng): string {
  if (kind === 'single') return String(images[0]);
  if (kind === 'range') {
    const sep = lang === 'de' ? rng.pick(['-', ' bis ', '–']) : rng.pick(['-', ' to ', '–', '-']);
    return `${images[0]}${sep}${images[1]}`;
  }
  const and = lang === 'de' ? ' und ' : ' and ';
  if (images.length === 2) return rng.chance(0.7) ? `${images[0]}${and}${images[1]}` : `${images[0]}, ${images[1]}`;
  return `${images.slice(0, -1).join(', ')}${and}${images[images.length - 1]}`;
}

// ---------------------------------------------------------------------------------------
// Composition

interface Part {
  text: string;
  ref?: RefSpec & { finding: Finding };
}

interface Sentence {
  parts: Part[];
  group: number;
}

/** The image numbers for a finding (slice nearest its refZ; ranges / lists inside its extent). */
function chooseImages(f: Finding, ser: ReportSeries, rng: Rng): { images: number[]; kind: RefKind } {
  const kOf = (z: number) => Math.round((z - ser.zOf(0)) / (ser.zOf(1) - ser.zOf(0) || 1));
  const clampK = (k: number) => Math.max(0, Math.min(ser.nz - 1, k));
  let k = clampK(kOf(f.refZ));
  const inExt = (kk: number) => kk >= 0 && kk < ser.nz && ser.zOf(kk) >= f.zExtent[0] - 1e-6 && ser.zOf(kk) <= f.zExtent[1] + 1e-6;
  if (!inExt(k)) {
    for (let d = 1; d < ser.nz; d++) {
      if (inExt(k - d)) {
        k = k - d;
        break;
      }
      if (inExt(k + d)) {
        k = k + d;
        break;
      }
    }
  }
  const r = rng.next();
  if (r < 0.15) {
    const w = rng.int(1, 3);
    let lo = k;
    let hi = k;
    while (lo > k - w && inExt(lo - 1)) lo--;
    while (hi < k + w && inExt(hi + 1)) hi++;
    if (hi > lo) {
      const a = ser.instance(lo);
      const b = ser.instance(hi);
      return { images: [Math.min(a, b), Math.max(a, b)], kind: 'range' };
    }
  } else if (r < 0.25) {
    const d = rng.int(1, 3);
    const other = inExt(k + d) ? k + d : inExt(k - d) ? k - d : -1;
    if (other >= 0) {
      const a = ser.instance(k);
      const b = ser.instance(other);
      return { images: [Math.min(a, b), Math.max(a, b)], kind: 'list' };
    }
  }
  return { images: [ser.instance(k)], kind: 'single' };
}

export function writeReport(findings: Finding[], labels: number[], ser: ReportSeries, rng: Rng, opts: ReportOptions): WrittenReport {
  const lang = opts.lang;
  const refRate = opts.refRate ?? 0.85;
  // One reference style for most of a report (radiologists are consistent), sometimes mixed.
  const mixed = rng.chance(0.2);
  const parenStyles = lang === 'de' ? DE_PAREN : EN_PAREN;
  const inlineStyles = lang === 'de' ? DE_INLINE : EN_INLINE;
  const baseParen = rng.int(0, parenStyles.length - 1);
  const baseInline = rng.int(0, inlineStyles.length - 1);
  const inlineShare = rng.pick([0, 0.1, 0.3]);

  const sentences: Sentence[] = [];
  const mkRef = (f: Finding): RefSpec & { finding: Finding } => {
    const { images, kind } = chooseImages(f, ser, rng);
    return { series: ser.seriesNumber, images, kind, inline: rng.chance(inlineShare), finding: f };
  };

  // Positive findings, with references.
  const nodules = findings.filter((f) => f.label === L.NODULE);
  for (const f of findings) {
    if (f.label === L.NODULE && nodules.length >= 2 && lang === 'en' && f === nodules[0] && rng.chance(0.4)) {
      // Several nodules in one sentence, each with its own reference.
      const parts: Part[] = [{ text: `${nodules.length === 2 ? 'Two' : 'Three'} solid pulmonary nodules are seen, in ` }];
      nodules.forEach((n, i) => {
        if (i > 0) parts.push({ text: i === nodules.length - 1 ? ' and in ' : ', in ' });
        parts.push({ text: `${where(n, lang, rng)} measuring ${n.size} mm` });
        parts.push({ text: ' ', ref: { ...mkRef(n), inline: false } });
      });
      parts.push({ text: '.' });
      sentences.push({ parts, group: 0 });
      continue;
    }
    if (f.label === L.NODULE && nodules.length >= 2 && sentences.some((s) => s.parts.some((p) => p.ref?.finding === f))) continue;
    const [main, tail] = findingText(f, lang, rng);
    const parts: Part[] = [];
    if (rng.chance(refRate)) {
      const ref = mkRef(f);
      const pos = rng.next();
      if (ref.inline) {
        parts.push({ text: main + tail }, { text: '', ref }, { text: '.' });
      } else if (pos < 0.2 && tail) {
        parts.push({ text: main }, { text: ' ', ref }, { text: `${tail}.` });
      } else if (pos < 0.27 && lang === 'en') {
        ref.inline = true;
        parts.push({ text: '', ref }, { text: `: ${main}${tail}.` });
      } else {
        parts.push({ text: main + tail }, { text: ' ', ref }, { text: '.' });
      }
    } else {
      parts.push({ text: `${main}${tail}.` });
    }
    sentences.push({ parts, group: GROUP[f.label]! });
  }
  // Negations of (some) absent findings and normal statements.
  const neg = lang === 'de' ? NEG_DE : NEG_EN;
  for (let l = 0; l < LABELS.length; l++) {
    if (labels[l] !== 0 || neg[l]!.length === 0 || !rng.chance(0.5)) continue;
    sentences.push({ parts: [{ text: rng.pick(neg[l]!) }], group: GROUP[l]! });
  }
  const normals = rng.shuffle(lang === 'de' ? NORMAL_DE : NORMAL_EN).slice(0, rng.int(1, 3));
  for (const n of normals) sentences.push({ parts: [{ text: n }], group: rng.pick([1, 2, 3]) });

  // Order: groups (lungs 0, mediastinum 1, heart 2, other 3) in one of two orders, shuffled inside.
  const order = rng.chance(0.5) ? [0, 1, 2, 3] : [2, 1, 0, 3];
  const ordered: Sentence[] = [];
  for (const gi of order) ordered.push(...rng.shuffle(sentences.filter((s) => s.group === gi)));

  // Text and ground truth.
  const references: GroundTruthReference[] = [];
  let text = '';
  const head = lang === 'de' ? rng.pick(['Befund:', 'BEFUND:', 'Befund']) : rng.pick(['Findings:', 'FINDINGS:', 'Findings']);
  if (rng.chance(0.4)) {
    const th = String(ser.sliceThickness);
    text +=
      lang === 'de'
        ? `Technik: Native CT des Thorax, Schichtdicke ${th.replace('.', ',')} mm.\n\n`
        : `Technique: Non-contrast CT of the chest, axial reconstructions at ${th} mm.\n\n`;
  }
  text += `${head}\n`;
  const paragraph = rng.chance(0.6);
  ordered.forEach((s, i) => {
    const rendered = renderSentence(s, ser, lang, parenStyles, inlineStyles, baseParen, baseInline, mixed, rng);
    for (const r of rendered.refs) references.push({ ...r, sentence: rendered.clean });
    text += rendered.text + (i === ordered.length - 1 ? '\n' : paragraph ? ' ' : '\n');
  });

  // Impression.
  text += `\n${lang === 'de' ? rng.pick(['Beurteilung:', 'BEURTEILUNG:']) : rng.pick(['Impression:', 'IMPRESSION:', 'Conclusion:'])}\n`;
  const pos = [...new Set(findings.map((f) => f.label))];
  if (pos.length === 0) {
    text += lang === 'de' ? rng.pick(['Kein Nachweis einer akuten kardiopulmonalen Pathologie.', 'Altersentsprechender Normalbefund.']) : rng.pick(['No acute cardiopulmonary abnormality.', 'Normal CT of the chest.']);
    text += '\n';
  } else {
    const numbered = rng.chance(0.5);
    const items = rng.shuffle(pos).map((l) => {
      const f = findings.find((x) => x.label === l)!;
      let t = (lang === 'de' ? IMPRESSION_DE : IMPRESSION_EN)[l]!;
      if (l === L.PLEURAL_EFFUSION) {
        const sides = new Set(findings.filter((x) => x.label === l).map((x) => x.side));
        t = lang === 'de' ? `${t} ${sides.size > 1 ? 'beidseits' : sides.has('left') ? 'links' : 'rechts'}` : `${sides.size > 1 ? 'Bilateral' : sides.has('left') ? 'Left' : 'Right'} pleural effusion${sides.size > 1 ? 's' : ''}`;
      }
      return { t, f };
    });
    items.forEach(({ t, f }, i) => {
      const withRef = rng.chance(0.1) && findings.filter((x) => x.label === f.label).length === 1;
      const parts: Part[] = withRef ? [{ text: t }, { text: ' ', ref: { ...mkRef(f), inline: false } }, { text: '.' }] : [{ text: `${t}.` }];
      const rendered = renderSentence({ parts, group: 0 }, ser, lang, parenStyles, inlineStyles, baseParen, baseInline, mixed, rng);
      for (const r of rendered.refs) references.push({ ...r, sentence: rendered.clean });
      text += numbered ? `${i + 1}. ${rendered.text}\n` : `${rendered.text}${i === items.length - 1 ? '\n' : ' '}`;
    });
  }
  return { text, references };
}

function renderSentence(
  s: Sentence,
  ser: ReportSeries,
  lang: Lang,
  parenStyles: RefStyle[],
  inlineStyles: ((s: number, i: string, k: RefKind) => { pre: string; text: string })[],
  baseParen: number,
  baseInline: number,
  mixed: boolean,
  rng: Rng,
): { text: string; clean: string; refs: Omit<GroundTruthReference, 'sentence'>[] } {
  let text = '';
  let clean = '';
  const refs: Omit<GroundTruthReference, 'sentence'>[] = [];
  for (const p of s.parts) {
    if (!p.ref) {
      text += p.text;
      clean += p.text;
      continue;
    }
    const r = p.ref;
    let imgs = imagesText(r.images, r.kind, lang, rng);
    // Some radiologists add the series' image count: "image 56 of 240", "Bild 56 von 240".
    if (r.kind === 'single' && rng.chance(0.1)) imgs += `${lang === 'de' ? ' von ' : ' of '}${Math.max(ser.instance(0), ser.instance(ser.nz - 1))}`;
    let series: number | null = r.series;
    let refText: string;
    if (r.inline) {
      const st = inlineStyles[mixed ? rng.int(0, inlineStyles.length - 1) : baseInline]!(ser.seriesNumber, imgs, r.kind);
      if (text === '') {
        refText = cap(st.text);
      } else {
        refText = st.pre + st.text;
      }
    } else if (lang === 'en' && r.kind === 'single' && rng.chance(0.08)) {
      refText = `${p.text}${EN_SLASH(ser.seriesNumber, r.images[0]!)}`;
    } else {
      const st = parenStyles[mixed ? rng.int(0, parenStyles.length - 1) : baseParen]!(ser.seriesNumber, imgs, r.kind);
      refText = p.text + st.text;
      if (!st.series) series = null;
    }
    text += refText;
    const image = primaryImage(r.images, r.kind);
    let k = -1;
    for (let kk = 0; kk < ser.nz; kk++) if (ser.instance(kk) === image) k = kk;
    refs.push({
      label: LABELS[r.finding.label]!,
      series,
      images: r.images,
      kind: r.kind,
      image,
      z: ser.zOf(k),
      zExtent: r.finding.zExtent,
    });
  }
  return { text, clean: clean.replace(/\s+/g, ' ').replace(/^:\s*/, '').trim(), refs };
}
