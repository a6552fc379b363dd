// The wording of synthetic reports (report.ts), in English and German: where a finding is, a
// sentence for each positive finding in several phrasings, negations of absent findings, normal
// statements, impression lines, and the section group each label's sentence goes in.
// Browser-safe.
import type { Rng } from '../../rng.ts';
import { L, type Finding } from './finding-types.ts';

export type Lang = 'en' | 'de';

/** The text with its first letter capitalised. */
export function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

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

/** Where a finding is, in words (a lobe, a side, a node station...). */
export function where(f: Finding, lang: Lang, rng: Rng): string {
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
export function findingText(f: Finding, lang: Lang, rng: Rng): [string, string] {
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

export const NEG_EN: string[][] = [
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
export const NEG_DE: string[][] = [
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
export const NORMAL_EN = [
  'The trachea and both main bronchi are patent.',
  'The thoracic aorta is of normal caliber.',
  'No pneumothorax.',
  'Degenerative changes of the thoracic spine.',
  'The visualized upper abdominal organs are unremarkable.',
  'The thyroid gland is unremarkable.',
  'No lytic or sclerotic bone lesions.',
];
export const NORMAL_DE = [
  'Trachea und Hauptbronchien frei.',
  'Aorta thoracalis normkalibrig.',
  'Kein Pneumothorax.',
  'Degenerative Veränderungen der BWS.',
  'Miterfasste Oberbauchorgane unauffällig.',
  'Ossäre Strukturen ohne Destruktion.',
];
export const IMPRESSION_EN: string[] = [
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
export const IMPRESSION_DE: string[] = [
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

export const GROUP: number[] = [3, 2, 1, 1, 1, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
