// The browser demo test's fixture and Node's answers: a tiny run trained here, three synthetic
// CTs (one served by `ctvlm web` with the manifest's slice metadata, one written as a DICOM
// folder whose InstanceNumbers follow the manifest, one picked as a .nii.gz), and what Node
// computes for them with the same weights and code: a sentence's localization, the zero-shot
// scores, the retrieval cosines, and a report's referenced sentences with their slices.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { openWeightsFolder } from '../../src/model/folder.ts';
import { readDicomFolder, readNiftiFile } from '../../src/data/io/node.ts';
import { seriesMetaFromDicom } from '../../src/data/dicom.ts';
import { prepareRadfinder, type RadfinderInput } from '../../src/data/radfinder-prep.ts';
import { binMm } from '../../src/model/config.ts';
import { dot, embedScan, embedTexts, localizeSnippet, zeroShotPrompts, zeroShotScore, type Localization, type ScanEmbeddings } from '../../src/model/tasks.ts';
import { mineSnippets } from '../../src/data/snippets.ts';
import { locateSnippets } from '../../src/data/snippet-locate.ts';
import { voxelToWorld, type Volume } from '../../src/data/volume.ts';
import type { ManifestEntry, SeriesMeta } from '../../src/data/manifest.ts';
import { writeTestDicom } from '../helpers/dicom-writer.ts';

export interface FixtureCt {
  /** The name the page shows: the file name, or the DICOM folder's name. */
  name: string;
  path: string;
  entry: ManifestEntry;
  volume: Volume;
  prepared: RadfinderInput;
}

export interface Expected {
  run: string;
  manifest: string;
  cts: FixtureCt[];
  /** Index in `cts` of the CT the sentence, the zero-shot scores and the report are checked on. */
  main: number;
  sentence: string;
  localization: Localization;
  scores: { label: string; score: number }[];
  /** Cosine of each CT's image embedding with the main CT's report. */
  cosines: number[];
  snippets: { sentence: string; probabilities: number[]; bin: number; referencedBin: number | null }[];
  tau: number;
  patchDepth: number;
  unknownWords: string;
  unknownIsUnk: boolean;
}

/** A volume as a DICOM series (int16 HU, one file per slice), numbered as the manifest says. */
function writeDicomSeries(v: Volume, series: SeriesMeta, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const [nx, ny, nz] = v.shape;
  const a = v.affine;
  const lps = (p: ArrayLike<number>) => [-p[0], -p[1], p[2]];
  const unit = (c: number) => lps([a[4 * c], a[4 * c + 1], a[4 * c + 2]]).map((x) => x / v.spacing[c]);
  for (let k = 0; k < nz; k++) {
    const position = lps(voxelToWorld(v, [0, 0, k])) as [number, number, number];
    const instance = series.slices.find((s) => Math.abs(s.z - position[2]) < 1e-3)?.instanceNumber;
    if (instance === undefined) throw new Error(`fixture: no instance number at z ${position[2]}`);
    const pixels = Int16Array.from(v.data.subarray(k * nx * ny, (k + 1) * nx * ny), Math.round);
    const bytes = writeTestDicom({
      rows: ny, columns: nx, pixels, position, orientation: [...unit(0), ...unit(1)], pixelSpacing: [v.spacing[1], v.spacing[0]],
      seriesNumber: series.seriesNumber, instanceNumber: instance, sliceThickness: series.sliceThickness, seriesUID: '1.2.826.0.1.3680043.2.1125.4242',
    });
    writeFileSync(join(dir, `IM${String(k).padStart(4, '0')}.dcm`), bytes);
  }
}

export async function buildFixture(gpu: Gpu, dir: string): Promise<Expected> {
  await writeSyntheticDataset({ out: join(dir, 'data'), n: 12, seed: 9, size: [64, 64], slices: [24, 32], gzipLevel: 1 });
  const run = join(dir, 'run');
  await train(gpu, { data: join(dir, 'data'), out: run, config: { ...preset('tiny'), steps: 4 } });

  // The CTs the page loads: larger than the training ones, with findings and references.
  const view = await writeSyntheticDataset({ out: join(dir, 'view'), n: 3, seed: 21, size: [144, 144], slices: [48, 60], prevalence: 0.35, gzipLevel: 1 });
  const refs = view.entries.map((e) => mineSnippets(e.report).length);
  const main = refs.indexOf(Math.max(...refs));
  if (refs[main] === 0) throw new Error('fixture: no report with image references; change the seed');
  const dicomIndex = (main + 1) % 3;
  const w = await openWeightsFolder(gpu, run);
  try {
    const c = w.config;
    const prep = (v: Volume, name: string) => prepareRadfinder(v, { pixdim: c.preprocessing.pixdim, window: c.vision.window, patchDepth: c.vision.patch[2], huMin: c.preprocessing.huMin, huMax: c.preprocessing.huMax, dtype: c.preprocessing.dtype }, name);
    const cts: FixtureCt[] = [];
    const series: (SeriesMeta | undefined)[] = [];
    for (const [i, entry] of view.entries.entries()) {
      const file = join(dir, 'view', entry.volume);
      let volume: Volume = readNiftiFile(file);
      let path = file;
      let name = entry.volume.slice(entry.volume.lastIndexOf('/') + 1);
      series.push(entry.series);
      if (i === dicomIndex) {
        path = join(dir, 'dicom', entry.id);
        writeDicomSeries(volume, entry.series!, path);
        const s = (await readDicomFolder(path)).series[0];
        volume = s.volume;
        series[i] = seriesMetaFromDicom(s, { seriesCount: 1 });
        name = entry.id;
      }
      cts.push({ name, path, entry, volume, prepared: prep(volume, name) });
    }
    const embedded: ScanEmbeddings[] = [];
    for (const ct of cts) embedded.push(await embedScan(w.model, ct.prepared.data, ct.prepared.shape));
    const bmm = binMm(c);
    const tok = w.tokenizer!;
    const sentence = 'Small pleural effusion at the left lung base.';
    const [sn] = await embedTexts(w.model, tok, [sentence], w.maxTextTokens, { which: 'snippet' });
    const localization = localizeSnippet(embedded[main].depth.normalized, embedded[main].depth.valid, sn.snippet.normalized, c.localization.tau, bmm);
    const prompts = await zeroShotPrompts(w.model, tok, w.maxTextTokens);
    const scores = prompts.map((p) => ({ label: p.label, score: zeroShotScore(embedded[main].disease.normalized, p) }));
    const report = cts[main].entry.report;
    const [rep] = await embedTexts(w.model, tok, [report], w.maxTextTokens, { which: 'report' });
    const cosines = embedded.map((e) => dot(e.image.normalized, rep.report.normalized));
    const mined = mineSnippets(report);
    const snEmb = await embedTexts(w.model, tok, mined.map((m) => m.sentence), w.maxTextTokens, { which: 'snippet' });
    const g = cts[main].prepared;
    const located = locateSnippets(mined, series[main], { affine: g.affine, shape: g.shape }, c.vision.patch[2]);
    const snippets = mined.map((m, i) => {
      const l = localizeSnippet(embedded[main].depth.normalized, embedded[main].depth.valid, snEmb[i].snippet.normalized, c.localization.tau, bmm);
      const hit = located.located.find((x) => x.start === m.start);
      return { sentence: m.sentence, probabilities: l.probabilities, bin: l.bin, referencedBin: hit ? hit.bin : null };
    });
    // Words (letters) in scripts the English reports' vocabulary never saw: Georgian and Cherokee.
    const unknownWords = 'ႠႡႢ ᏣᏤᏥ';
    return {
      run, manifest: join(dir, 'view', 'manifest.jsonl'), cts, main, sentence, localization, scores, cosines, snippets,
      tau: c.localization.tau, patchDepth: c.vision.patch[2],
      unknownWords, unknownIsUnk: tok.encode(unknownWords).every((id) => id <= 4),
    };
  } finally {
    w.model.dispose();
  }
}

/** The first bytes of a .nii.gz: a gzip stream that ends early. */
export function truncated(path: string, fraction = 0.6): Buffer {
  const b = readFileSync(path);
  return b.subarray(0, Math.floor(b.length * fraction));
}
