// The inputs of issue 8's reports (test/data/fixtures/real-world, README there), each with the
// value the reference tools give: pydicom / dcmtk for the DICOM folders, GNU gzip / nibabel for
// the .nii.gz files, tokenizers.js for the tokenizer.json files, the source dataset's own
// annotation for the report sentences.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { DataError } from '../../src/errors.ts';
import { readDicomFolder, readNiftiFile, readVolumeFile } from '../../src/data/io/node.ts';
import { readDicomSeries, seriesMetaFromDicom } from '../../src/data/dicom.ts';
import { valueRange, voxelToWorld } from '../../src/data/volume.ts';
import { mineSnippets, resolveSnippet } from '../../src/data/snippets.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { repoRoot } from '../helpers/paths.ts';
import { writeTestDicom } from '../helpers/dicom-writer.ts';

const dir = join(repoRoot, 'test/data/fixtures/real-world');
const range = (data: Float32Array) => {
  const r = valueRange(data);
  return [r.min, r.max];
};

test('dose-report page in the folder: the 3-slice CT series (HU 0 .. 2), the page skipped with its reason', async () => {
  const r = await readDicomFolder(join(dir, 'dose-page'));
  assert.is(r.series.length, 1);
  assert.is(r.series[0]!.slices.length, 3);
  assert.equal(range(r.series[0]!.volume.data), [0, 2]);
  assert.equal(r.skipped.map((s) => s.file), [join(dir, 'dose-page/dose_report.dcm')]);
  assert.match(r.skipped[0]!.reason, /ImagePositionPatient \(0020,0032\): missing .*Secondary Capture Image Storage.*"Dose Report"/);
});

test('Enhanced CT: 3 frames as a 5x4x3 volume at z 0, 2.5, 5 mm, HU -24 .. 35 (folder and file)', async () => {
  const r = await readDicomFolder(join(dir, 'enhanced'));
  const s = r.series[0]!;
  assert.equal(s.volume.shape, [5, 4, 3]);
  assert.equal(s.slices.map((x) => x.position[2]), [0, 2.5, 5]);
  assert.equal(range(s.volume.data), [-24, 35]);
  assert.equal([0, 1, 2].map((k) => voxelToWorld(s.volume, [0, 0, k])[2]), [0, 2.5, 5]);
  assert.equal((await readVolumeFile(join(dir, 'enhanced/enh.dcm'))).shape, [5, 4, 3]);
  assert.equal(seriesMetaFromDicom(s).slices.map((x) => x.instanceNumber), [1, 2, 3]);
});

test('bare explicit-VR datasets (no preamble): read (HU 0 .. 2), alone and beside implicit-VR files; one file reads as DICOM', async () => {
  const a = await readDicomFolder(join(dir, 'explicit-no-preamble'));
  assert.equal([a.series.length, a.series[0]!.slices.length, a.skipped.length], [1, 3, 0]);
  assert.equal(range(a.series[0]!.volume.data), [0, 2]);
  assert.equal(a.series[0]!.transferSyntaxes, ['1.2.840.10008.1.2.1']); // what dcmdump calls "Little Endian Explicit"
  const b = await readDicomFolder(join(dir, 'good-plus-one-stray'));
  assert.equal(b.series.map((s) => s.slices.length), [3]);
  assert.equal(range(b.series[0]!.volume.data), [0, 2]);
  assert.equal((await readVolumeFile(join(dir, 'explicit-no-preamble/IM1'))).shape, [5, 4, 3]);
});

test('HighBit 15, BitsStored 12: HU 0, 40, 80', async () => {
  const s = (await readDicomFolder(join(dir, 'highbit-msb'))).series[0]!;
  const perSlice = [0, 1, 2].map((k) => range(s.volume.data.subarray(k * 20, (k + 1) * 20)));
  assert.equal(perSlice, [[0, 0], [40, 40], [80, 80]]);
});

test('IOP float noise: one series of 4 slices, 2.5 mm apart', async () => {
  const r = await readDicomFolder(join(dir, 'iop-noise'));
  assert.is(r.series.length, 1);
  assert.is(r.series[0]!.slices.length, 4);
  assert.is(r.series[0]!.sliceSpacing, 2.5);
  assert.equal(r.series[0]!.warnings, []);
  assert.equal((await readVolumeFile(join(dir, 'iop-noise'))).shape[2], 4);
});

test('.nii.gz with 512 zero bytes after the stream: read (-60 .. 59); with text after it: refused by name', () => {
  const v = readNiftiFile(join(dir, 'padded_zeros.nii.gz'));
  assert.equal(v.shape, [4, 5, 6]);
  assert.equal(range(v.data), [-60, 59]);
  const p = join(dir, 'trailing_text.nii.gz');
  try {
    readNiftiFile(p);
    assert.unreachable('trailing text');
  } catch (e) {
    assert.instance(e, DataError);
    assert.is((e as DataError).source, p);
    assert.match((e as Error).message, /gzip stream: the \d+ bytes after the end of the gzip stream .* are not zero padding/);
  }
});

test('tokenizer.json with BertNormalizer {lowercase, strip_accents: null} and a cased one: the tokens tokenizers.js gives', () => {
  for (const [file, text, want] of [
    ['uncased_strip_default.json', 'Größe Pleuraerguss rechts. Herd lässt sich abgrenzen.', ['große', 'pleuraerguss', 'rechts', '.', 'herd', 'lasst', 'sich', 'abgrenzen', '.']],
    ['cased.json', 'Small CT nodule in the RUL.', ['Small', 'CT', 'nodule', 'in', 'the', 'RUL', '.']],
  ] as const) {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const mine = WordPieceTokenizer.fromJSON(json, file);
    assert.equal(mine.tokenize(text), [...want]);
    assert.equal(mine.encode(text).ids, new Tokenizer(json, {}).encode(text).ids);
  }
});

test('reports: US series:image notation (3 references), and "image N of series M <more words>" never placed on series 3', () => {
  const colon = mineSnippets(
    'LUNGS: A stable 3 mm nodule sits along the left major fissure (301:290).\nTwo 2 mm subpleural nodules are seen in the left lung (7:87 and 7:209).\nThere is a 4 mm nodule in the right lower lobe (7:200).',
  );
  assert.equal(colon.map((m) => [m.series, m.images]), [[301, [290]], [7, [87, 209]], [7, [200]]]);
  assert.equal(colon.map((m) => m.sentence), [
    'A stable 3 mm nodule sits along the left major fissure.',
    'Two 2 mm subpleural nodules are seen in the left lung.',
    'There is a 4 mm nodule in the right lower lobe.',
  ]);
  const mined = mineSnippets(
    'A 4 mm nodule in the right lower lobe on image 406 of series 7 which is unchanged. A 5 mm nodule in the lingula on image 52 of series 4 is new.',
  );
  assert.equal(mined.map((m) => [m.series, m.images, m.sentence]), [
    [7, [406], 'A 4 mm nodule in the right lower lobe which is unchanged.'],
    [4, [52], 'A 5 mm nodule in the lingula is new.'],
  ]);
  // Against a 60-slice series 3 (InstanceNumber 1-60), as a DICOM folder gives it: both other-series.
  const files = Array.from({ length: 60 }, (_, k) => ({
    name: `s${k}`,
    bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], position: [0, 0, -25 - 2.5 * k], instanceNumber: k + 1, seriesNumber: 3 }),
  }));
  const meta = seriesMetaFromDicom(readDicomSeries(files, { headersOnly: true }).series[0]!, { seriesCount: 1 });
  assert.is(meta.slices.length, 60);
  assert.equal(mined.map((m) => (resolveSnippet(m, meta) as { reason?: string }).reason), ['other-series', 'other-series']);
});

test.run();
