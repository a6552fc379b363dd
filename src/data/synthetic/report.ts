// Radiology reports for synthetic cases, in English or German: Findings and Impression
// sections, varied wording and sentence order, negations of absent findings, and image
// references ("(series 3, image 57)", "(Se. 3/Bild 45)", ranges, lists) after the positive
// findings, pointing at slices inside each finding's z-extent. Returns the ground truth of
// every reference beside the text.
import { LABELS } from '../labels.ts';
import type { GroundTruthReference, RefKind } from '../manifest.ts';
import { primaryImage } from '../snippets.ts';
import { L, type Finding } from './findings.ts';
import type { Rng } from '../../rng.ts';

export type Lang = 'en' | 'de';

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
function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
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
// Wording

const LOBE_EN: Record<string, string[]> = {
  RUL: ['the right upper lobe'],
  RML: ['the right middle lobe', 'the middle lobe'],
  RLL: ['the right lower lobe'],
  LUL: ['the left upper lobe'],
  LIN: ['the lingula', 'the lingular segment of the left upper lobe'],
  LLL: ['the left lower lobe'],
  upper: ['both upper lobes', 'the upper lobes'],
  lower: ['both lower lobes', 'the lower lobes', 'the lung bases'],
  both: ['both lungs', 'all lobes of both lungs'],
};
const LOBE_DE: Record<string, string[]> = {
  RUL: ['im rechten Oberlappen'],
  RML: ['im Mittellappen'],
  RLL: ['im rechten Unterlappen'],
  LUL: ['im linken Oberlappen'],
  LIN: ['in der Lingula'],
  LLL: ['im linken Unterlappen'],
  upper: ['in beiden Oberlappen', 'beidseits apikal'],
  lower: ['in beiden Unterlappen', 'beidseits basal'],
  both: ['in beiden Lungen', 'beidseits'],
};
const STATION_EN: Record<string, string> = {
  'right paratracheal': 'the right paratracheal region',
  subcarinal: 'the subcarinal region',
  aortopulmonary: 'the aortopulmonary window',
  'right hilar': 'the right hilum',
  'left hilar': 'the left hilum',
  prevascular: 'the prevascular space',
};
const STATION_DE: Record<string, string> = {
  'right paratracheal': 'rechts paratracheal',
  subcarinal: 'subkarinal',
  aortopulmonary: 'im aortopulmonalen Fenster',
  'right hilar': 'rechts hilär',
  'left hilar': 'links hilär',
  prevascular: 'prävaskulär',
};

function where(f: Finding, lang: Lang, rng: Rng): string {
  let key = f.where;
  if (f.label === L.EMPHYSEMA && f.side !== 'both') key = f.side === 'right' ? 'RUL' : 'LUL';
  const table = lang === 'de' ? LOBE_DE : LOBE_EN;
  return rng.pick(table[key] ?? table.both!);
}

function grade(size: number, lang: Lang): string {
  if (lang === 'de') return size < 30 ? 'schmaler' : size < 45 ? 'mäßiger' : 'ausgedehnter';
  return size < 30 ? 'small' : size < 45 ? 'moderate' : 'large';
}

/** A finding sentence as [main clause, tail]; the sentence is main + tail + ".". */
function findingText(f: Finding, lang: Lang, rng: Rng): [string, string] {
  const loc = where(f, lang, rng);
  const d = f.size;
  const side = f.side ?? 'right';
  if (lang === 'en') {
    switch (f.label) {
      case L.MEDICAL_MATERIAL:
        if (f.where === 'pacemaker')
          return [rng.pick(['A cardiac pacemaker is noted in the left chest wall', 'Pacemaker generator in the left anterior chest wall', 'Cardiac pacemaker']), rng.pick([' with its lead terminating in the right ventricle', ' with a lead in the right ventricle', ''])];
        if (f.where === 'port') return [rng.pick([`A ${side} chest port is present`, `Port system in the ${side} anterior chest wall`]), rng.pick([' with the catheter tip in the superior vena cava', ''])];
        return [rng.pick(['Median sternotomy wires are noted', 'Sternal cerclage wires after median sternotomy', 'Postoperative sternotomy wires']), ''];
      case L.ARTERIAL_CALC:
        return [rng.pick(['Atherosclerotic calcifications are seen in the thoracic aorta', 'Calcified atherosclerotic plaques in the aortic arch and descending aorta', 'Aortic wall calcifications']), rng.pick(['', ' and its branches'])];
      case L.CARDIOMEGALY:
        return [rng.pick(['The heart is enlarged', 'Cardiomegaly is present', 'Cardiac size is increased', 'Enlarged cardiac silhouette']), rng.pick(['', ` with a transverse diameter of ${d} mm`])];
      case L.PERICARDIAL_EFFUSION:
        return [rng.pick(['Pericardial effusion', 'There is a pericardial effusion', 'A pericardial effusion is present']), rng.pick([` measuring ${d} mm in thickness`, ` with a maximum thickness of ${d} mm`, ''])];
      case L.CORONARY_CALC:
        return [rng.pick(['Coronary artery calcifications are present', 'Calcifications of the coronary arteries', 'Coronary artery wall calcification is noted']), rng.pick(['', ' in the LAD and circumflex territories'])];
      case L.HIATAL_HERNIA:
        return [rng.pick([`A ${d < 60 ? 'small' : 'moderate'} hiatal hernia is present`, 'Sliding hiatal hernia', 'Hiatal hernia']), rng.pick(['', ` measuring ${d} mm`])];
      case L.LYMPHADENOPATHY: {
        const st = STATION_EN[f.where] ?? 'the mediastinum';
        return [rng.pick([`Enlarged lymph node in ${st}`, `Mediastinal lymphadenopathy, the largest node in ${st}`, `A pathologically enlarged lymph node is seen in ${st}`]), rng.pick([` measuring ${d} mm in short axis`, ` with a short axis of ${d} mm`, ''])];
      }
      case L.EMPHYSEMA:
        return [rng.pick([`Centrilobular emphysema in ${loc}`, `Emphysematous changes are seen in ${loc}`, `Paraseptal and centrilobular emphysema predominantly in ${loc}`]), ''];
      case L.ATELECTASIS:
        return [rng.pick([`Subsegmental atelectasis in ${loc}`, `Plate-like atelectasis is seen in ${loc}`, `Atelectatic changes in ${loc}`]), rng.pick(['', ' posteriorly'])];
      case L.NODULE:
        return [
          rng.pick([`A ${d} mm solid nodule is seen in ${loc}`, `There is a ${d} mm pulmonary nodule in ${loc}`, `Noncalcified nodule measuring ${d} mm in ${loc}`, `A ${(d / 10).toFixed(1)} cm nodule in ${loc}`]),
          rng.pick(['', ', unchanged', ' with smooth margins']),
        ];
      case L.OPACITY:
        return [rng.pick([`Ground-glass opacity in ${loc}`, `Patchy ground-glass opacities are present in ${loc}`, `An area of ground-glass density is seen in ${loc}`]), rng.pick(['', ', likely inflammatory'])];
      case L.FIBROTIC:
        return [rng.pick([`Fibrotic bands in ${loc}`, `Linear fibrotic sequelae are seen in ${loc}`, `Post-inflammatory fibrotic changes in ${loc}`]), rng.pick(['', ', compatible with sequelae'])];
      case L.PLEURAL_EFFUSION:
        return [rng.pick([`${cap(grade(d, 'en'))} ${side} pleural effusion`, `There is a ${grade(d, 'en')} pleural effusion on the ${side}`, `${cap(side)}-sided pleural effusion`]), rng.pick(['', ` with a maximum depth of ${d} mm`])];
      case L.MOSAIC:
        return [rng.pick([`Mosaic attenuation pattern in ${loc}`, `There is a mosaic attenuation pattern involving ${loc}`]), rng.pick(['', ', suggestive of small airway disease'])];
      case L.PERIBRONCHIAL:
        return [rng.pick([`Peribronchial thickening in ${loc}`, `Bronchial wall thickening is seen in ${loc}`]), ''];
      case L.CONSOLIDATION:
        return [rng.pick([`Consolidation in ${loc}`, `There is an area of consolidation in ${loc}`, `Dense consolidation with air bronchograms in ${loc}`]), rng.pick(['', ', consistent with pneumonia'])];
      case L.BRONCHIECTASIS:
        return [rng.pick([`Cylindrical bronchiectasis in ${loc}`, `Bronchiectatic changes are present in ${loc}`, `Dilated bronchi consistent with bronchiectasis in ${loc}`]), ''];
      default:
        return [rng.pick([`Interlobular septal thickening in ${loc}`, `Thickened interlobular septa are seen in ${loc}`, `Smooth interlobular septal thickening involving ${loc}`]), ''];
    }
  }
  const seite = side === 'left' ? 'links' : 'rechts';
  switch (f.label) {
    case L.MEDICAL_MATERIAL:
      if (f.where === 'pacemaker') return [rng.pick(['Herzschrittmacher links pektoral', 'Schrittmacheraggregat links pektoral']), rng.pick([' mit Sondenspitze im rechten Ventrikel', ''])];
      if (f.where === 'port') return [rng.pick([`Portsystem ${seite} pektoral`, `Portkatheter ${seite} pektoral`]), rng.pick([' mit Katheterspitze in der V. cava superior', ''])];
      return [rng.pick(['Drahtcerclagen nach medianer Sternotomie', 'Sternale Drahtcerclagen']), ''];
    case L.ARTERIAL_CALC:
      return [rng.pick(['Arteriosklerotische Wandverkalkungen der thorakalen Aorta', 'Kalzifizierte Plaques im Aortenbogen und in der Aorta descendens', 'Aortensklerose']), ''];
    case L.CARDIOMEGALY:
      return [rng.pick(['Kardiomegalie', 'Das Herz ist vergrößert', 'Vergrößertes Herz']), rng.pick(['', ` mit einem Querdurchmesser von ${d} mm`])];
    case L.PERICARDIAL_EFFUSION:
      return [rng.pick(['Perikarderguss', 'Zirkulärer Perikarderguss']), rng.pick([` bis ${d} mm`, ` mit einer Breite von ${d} mm`, ''])];
    case L.CORONARY_CALC:
      return [rng.pick(['Koronarsklerose', 'Verkalkungen der Koronararterien', 'Koronare Wandverkalkungen']), ''];
    case L.HIATAL_HERNIA:
      return [rng.pick(['Axiale Hiatushernie', 'Kleine Hiatushernie', 'Hiatushernie']), ''];
    case L.LYMPHADENOPATHY: {
      const st = STATION_DE[f.where] ?? 'mediastinal';
      return [rng.pick([`Vergrößerter Lymphknoten ${st}`, `Mediastinale Lymphadenopathie, größter Lymphknoten ${st}`]), rng.pick([` mit ${d} mm Kurzachse`, ` (Kurzachse ${d} mm)`, ''])];
    }
    case L.EMPHYSEMA:
      return [rng.pick([`Zentrilobuläres Emphysem ${loc}`, `Emphysematöse Veränderungen ${loc}`]), ''];
    case L.ATELECTASIS:
      return [rng.pick([`Dystelektase ${loc}`, `Plattenatelektase ${loc}`, `Streifige Atelektase ${loc}`]), ''];
    case L.NODULE:
      return [rng.pick([`Solider Rundherd ${loc} mit ${d} mm Durchmesser`, `${d} mm messender Lungenrundherd ${loc}`, `Rundherd ${loc} (${String((d / 10).toFixed(1)).replace('.', ',')} cm)`]), rng.pick(['', ', größenkonstant'])];
    case L.OPACITY:
      return [rng.pick([`Milchglastrübung ${loc}`, `Fleckige Milchglasverdichtungen ${loc}`]), ''];
    case L.FIBROTIC:
      return [rng.pick([`Fibrotische Residuen ${loc}`, `Streifige Fibrosestränge ${loc}`, `Narbige Veränderungen ${loc}`]), ''];
    case L.PLEURAL_EFFUSION:
      return [rng.pick([`Pleuraerguss ${seite}`, `${cap(grade(d, 'de'))} Pleuraerguss ${seite}`, `${side === 'left' ? 'Linksseitiger' : 'Rechtsseitiger'} Pleuraerguss`]), rng.pick(['', ` mit einer Breite von ${d} mm`])];
    case L.MOSAIC:
      return [rng.pick([`Mosaikartige Dichteverteilung ${loc}`, `Mosaikmuster der Lunge ${loc}`]), ''];
    case L.PERIBRONCHIAL:
      return [rng.pick([`Peribronchiale Wandverdickungen ${loc}`, `Verdickte Bronchialwände ${loc}`]), ''];
    case L.CONSOLIDATION:
      return [rng.pick([`Konsolidierung ${loc}`, `Flächige Konsolidierung ${loc}`]), rng.pick([' mit positivem Aerobronchogramm', ', vereinbar mit einer Pneumonie', ''])];
    case L.BRONCHIECTASIS:
      return [rng.pick([`Zylindrische Bronchiektasen ${loc}`, `Bronchiektasen ${loc}`]), ''];
    default:
      return [rng.pick([`Verdickte interlobuläre Septen ${loc}`, `Interlobuläre Septenverdickung ${loc}`]), ''];
  }
}

const NEG_EN: string[][] = [
  [],
  ['No significant atherosclerotic calcification of the aorta.', 'The thoracic aorta shows no calcified plaques.'],
  ['Heart size is normal.', 'Heart size is within normal limits.', 'The heart is not enlarged.'],
  ['No pericardial effusion.', 'No pericardial thickening or effusion.'],
  ['No coronary artery calcification.', 'No calcification of the coronary arteries is seen.'],
  ['No hiatal hernia.'],
  ['No mediastinal or hilar lymphadenopathy.', 'No lymph nodes of pathological size in the mediastinum.'],
  ['No emphysema.', 'No emphysematous changes.'],
  ['No atelectasis.'],
  ['No pulmonary nodules.', 'No suspicious pulmonary nodule is identified.'],
  ['No ground-glass opacity.', 'No areas of increased lung density.'],
  ['No fibrotic changes.'],
  ['No pleural effusion.', 'No pleural effusion or pneumothorax.'],
  ['No mosaic attenuation.'],
  ['No bronchial wall thickening.'],
  ['No consolidation.', 'No focal consolidation or infiltrate.'],
  ['No bronchiectasis.'],
  ['No interlobular septal thickening.'],
];
const NEG_DE: string[][] = [
  [],
  ['Keine relevante Aortensklerose.'],
  ['Herz normal groß.', 'Normale Herzgröße.'],
  ['Kein Perikarderguss.'],
  ['Keine Koronarverkalkungen.'],
  ['Keine Hiatushernie.'],
  ['Keine Lymphadenopathie.', 'Keine vergrößerten mediastinalen oder hilären Lymphknoten.'],
  ['Kein Emphysem.'],
  ['Keine Atelektasen.'],
  ['Keine Rundherde.', 'Kein Nachweis pulmonaler Rundherde.'],
  ['Keine Milchglastrübungen.'],
  ['Keine fibrotischen Veränderungen.'],
  ['Kein Pleuraerguss.', 'Kein Pleuraerguss, kein Pneumothorax.'],
  ['Kein Mosaikmuster.'],
  ['Keine Bronchialwandverdickung.'],
  ['Kein Infiltrat.', 'Keine Konsolidierung.'],
  ['Keine Bronchiektasen.'],
  ['Keine Septenverdickung.'],
];
const NORMAL_EN = [
  'The trachea and both main bronchi are patent.',
  'The thoracic aorta is of normal caliber.',
  'No pneumothorax.',
  'Degenerative changes of the thoracic spine.',
  'The visualized upper abdominal organs are unremarkable.',
  'The thyroid gland is unremarkable.',
  'No lytic or sclerotic bone lesions.',
];
const NORMAL_DE = [
  'Trachea und Hauptbronchien frei.',
  'Aorta thoracalis normkalibrig.',
  'Kein Pneumothorax.',
  'Degenerative Veränderungen der BWS.',
  'Miterfasste Oberbauchorgane unauffällig.',
  'Ossäre Strukturen ohne Destruktion.',
];
const IMPRESSION_EN: string[] = [
  'Medical device in situ',
  'Aortic atherosclerosis',
  'Cardiomegaly',
  'Pericardial effusion',
  'Coronary artery calcification',
  'Hiatal hernia',
  'Mediastinal lymphadenopathy',
  'Emphysema',
  'Atelectasis',
  'Pulmonary nodule',
  'Ground-glass opacity',
  'Fibrotic sequelae',
  'Pleural effusion',
  'Mosaic attenuation',
  'Peribronchial thickening',
  'Consolidation, suspicious for pneumonia',
  'Bronchiectasis',
  'Interlobular septal thickening',
];
const IMPRESSION_DE: string[] = [
  'Fremdmaterial in situ',
  'Aortensklerose',
  'Kardiomegalie',
  'Perikarderguss',
  'Koronarsklerose',
  'Hiatushernie',
  'Mediastinale Lymphadenopathie',
  'Lungenemphysem',
  'Atelektase',
  'Pulmonaler Rundherd',
  'Milchglastrübung',
  'Fibrotische Residuen',
  'Pleuraerguss',
  'Mosaikmuster',
  'Peribronchiale Wandverdickung',
  'Pneumonisches Infiltrat',
  'Bronchiektasen',
  'Septenverdickung',
];

const GROUP: number[] = [3, 2, 1, 1, 1, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

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
