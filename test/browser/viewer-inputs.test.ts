// The page's input handling in Node (File and Blob are Node globals): what a dropped or picked
// file is (web/loading.ts sorts, web/decode.ts decodes with the page's limits and says what a
// non-CT file is), and which checkpoint of a picked run folder is loaded (web/weights.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gzipSync } from 'node:zlib';
import { encodeNifti } from '../../src/data/nifti.ts';
import { createVolume } from '../../src/data/volume.ts';
import { decodeCt } from '../../web/decode.ts';
import { sortPicked } from '../../web/loading.ts';
import { chooseWeightFiles } from '../../web/weights.ts';
import type { PickedFile } from '../../web/protocol.ts';
import { writeTestDicom } from '../helpers/dicom-writer.ts';

const t = suite('viewer inputs');

const file = (name: string, bytes: Uint8Array | string, path = ''): PickedFile => ({ path, file: new File([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)], name) });
const noProgress = () => {};

async function refused(f: PickedFile[], message: RegExp): Promise<void> {
  try {
    // Named as sortPicked names it: a file by its name, a folder's files by the folder.
    const p = f[0].path;
    await decodeCt(p ? p.slice(0, p.lastIndexOf('/')) : f[0].file.name, f, noProgress);
  } catch (e) {
    assert.match((e as Error).message, message, (e as Error).message);
    return;
  }
  assert.unreachable(`${f[0].file.name}: accepted`);
}

function ct(shape: [number, number, number], fill = -1000) {
  const v = createVolume(shape, { spacing: [0.8, 0.8, 2] });
  v.data.forEach((_, i) => (v.data[i] = i % 7 === 0 ? 40 : fill));
  return v;
}

t('a .nii.gz decodes with its shape and affine; a cut one names the truncation', async () => {
  const bytes = gzipSync(encodeNifti(ct([20, 18, 12])));
  const d = await decodeCt('a.nii.gz', [file('a.nii.gz', bytes)], noProgress);
  assert.equal(d.shape, [20, 18, 12]);
  assert.is(d.data.length, 20 * 18 * 12);
  assert.equal(d.notes, []);
  assert.match(d.description, /NIfTI-1 .*\(gzip\), RAS/);
  await refused([file('cut.nii.gz', bytes.subarray(0, Math.floor(bytes.length * 0.6)))], /cut\.nii\.gz/);
});

t('what a file that is not a CT is, before it is read whole', async () => {
  await refused([file('x.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0]))], /x\.png: format: a PNG image/);
  await refused([file('x.jpg', new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16]))], /a JPEG image/);
  await refused([file('notes.txt', 'Findings: none.\n')], /notes\.txt: format: a text file/);
  await refused([file('empty.nii', new Uint8Array(0))], /empty\.nii: size: the file is empty/);
  await refused([file('flat.nii', encodeNifti(ct([30, 20, 1])))], /flat\.nii: shape: 30x20x1 voxels: a 2D image/);
  const huge = Buffer.from(encodeNifti(ct([4, 4, 4])));
  for (const k of [1, 2, 3]) huge.writeInt16LE(2048, 40 + 2 * k);
  await refused([file('huge.nii', huge)], /2048x2048x2048 voxels \(32\.0 GiB as float32\) is more than this page holds/);
});

t('a value range that is not Hounsfield units is shown with a note', async () => {
  const d = await decodeCt('mr.nii', [file('mr.nii', encodeNifti(ct([8, 8, 8], 300)))], noProgress);
  assert.match(d.notes.join(' '), /not Hounsfield units/);
});

const slice = (k: number, extra: Partial<Parameters<typeof writeTestDicom>[0]> = {}) =>
  writeTestDicom({ rows: 6, columns: 5, pixels: new Int16Array(30).fill(-1000 + k), position: [0, 0, 2.5 * k], pixelSpacing: [0.7, 0.7], seriesNumber: 3, instanceNumber: 10 + k, ...extra });

t('a DICOM folder: the largest series, its slice metadata, the others named', async () => {
  const files = [
    ...Array.from({ length: 6 }, (_, k) => file(`IM${k}`, slice(k), `study/IM${k}`)),
    ...Array.from({ length: 3 }, (_, k) => file(`S${k}`, slice(k, { seriesNumber: 4, seriesUID: '1.2.3.4' }), `study/S${k}`)),
    file('README.txt', 'not DICOM', 'study/README.txt'),
  ];
  const d = await decodeCt('study', files, noProgress);
  assert.equal(d.shape, [5, 6, 6]);
  assert.is(d.series?.seriesNumber, 3);
  assert.is(d.series?.seriesCount, 2);
  assert.equal(d.series?.slices.map((s) => s.instanceNumber).sort(), [10, 11, 12, 13, 14, 15]);
  assert.match(d.notes.join(' '), /2 series; showing series 3 \(6 slices\), not 4 \(3\)/);
  assert.match(d.notes.join(' '), /1 file\(s\) skipped/);
  await refused([file('one.dcm', slice(0))], /one\.dcm: shape: 5x6x1 voxels: a 2D image/);
});

t('compressed DICOM the page cannot decode: a message that says so and where it can be read', async () => {
  const files = Array.from({ length: 3 }, (_, k) => file(`IM${k}`, slice(k, { transferSyntax: '1.2.840.10008.1.2.4.90', encapsulated: [new Uint8Array([0xff, 0x4f, 0xff, 0x51, 0, 0])] }), `j2k/IM${k}`));
  await refused(files, /j2k: DICOM: 1\.2\.840\.10008\.1\.2\.4\.90 \(.*\): the page does not decode JPEG 2000 pixel data yet/);
});

t('drops and picks sorted: weights, manifests, NIfTI files, one CT per DICOM folder', () => {
  const s = sortPicked([
    file('a.nii.gz', 'x'),
    file('b.nii', 'x'),
    file('manifest.jsonl', 'x'),
    file('IM1', 'x', 'case1/IM1'),
    file('IM2', 'x', 'case1/IM2'),
    file('IM1', 'x', 'case2/sub/IM1'),
    file('.DS_Store', 'x', 'case1/.DS_Store'),
  ]);
  assert.is(s.weights, null);
  assert.equal(s.manifests.map((f) => f.name), ['manifest.jsonl']);
  assert.equal(s.cts.map((c) => [c.name, c.files.length]), [['a.nii.gz', 1], ['b.nii', 1], ['case1', 2], ['case2/sub', 1]]);
  assert.equal(sortPicked([file('IM1', 'x'), file('IM2', 'x')]).cts.map((c) => c.name), ['2 DICOM files']);
  const w = sortPicked([file('model.safetensors', 'x', 'run/ckpt/model.safetensors'), file('config.json', '{}', 'run/ckpt/config.json'), file('log.txt', 'x', 'run/log.txt')]);
  assert.equal(w.weights?.map((f) => f.path), ['run/ckpt/model.safetensors', 'run/ckpt/config.json']);
  assert.equal([w.cts, w.manifests, w.skipped], [[], [], []], "a run folder's own files are neither CTs nor skipped");
  // A run folder as `ctvlm train` writes it: nothing but the model (its metrics.jsonl is not a manifest).
  const run = sortPicked([
    file('latest', 'ckpt-0000009', 'r/latest'),
    file('run.json', '{}', 'r/run.json'),
    file('metrics.jsonl', '{}', 'r/metrics.jsonl'),
    file('loss.svg', '<svg/>', 'r/plots/loss.svg'),
    file('report.html', 'x', 'r/report.html'),
    file('model.safetensors', 'x', 'r/ckpt-0000009/model.safetensors'),
    file('config.json', '{}', 'r/ckpt-0000009/config.json'),
  ]);
  assert.equal([run.weights?.length, run.cts, run.manifests, run.skipped], [4, [], [], []]);
  // A model and CTs picked together (one folder, or dropped together): both, and what is neither named.
  const mixed = sortPicked([
    file('model.safetensors', 'x', 'm/model.safetensors'),
    file('config.json', '{}', 'm/config.json'),
    file('tokenizer.json', '{}', 'm/tokenizer.json'),
    file('synth-00007.nii.gz', 'x', 'm/synth-00007.nii.gz'),
    file('manifest.jsonl', 'x', 'm/manifest.jsonl'),
    file('notes.bin', 'x', 'm/notes.bin'),
    file('IM1', 'x', 'm/series/IM1'),
    file('IM2', 'x', 'm/series/IM2'),
    file('IM2.json', '{}', 'm/series/IM2.json'), // a converter's sidecar: the series', not the model's
  ]);
  assert.equal(mixed.weights?.map((f) => f.path), ['m/model.safetensors', 'm/config.json', 'm/tokenizer.json']);
  assert.equal(mixed.cts.map((c) => [c.name, c.files.length]), [['synth-00007.nii.gz', 1], ['m/series', 3]]);
  assert.equal(mixed.manifests.map((f) => f.name), ['manifest.jsonl']);
  assert.equal(mixed.skipped, ['m/notes.bin']);
});

t("a run folder: the checkpoint its `latest` names; a folder of checkpoints without one is refused", async () => {
  const ckpt = (name: string) => [file('model.safetensors', name, `run/${name}/model.safetensors`), file('config.json', `{"from":"${name}"}`, `run/${name}/config.json`)];
  const files = [...ckpt('ckpt-0000002'), ...ckpt('ckpt-0000004'), file('latest', 'ckpt-0000004\n', 'run/latest')];
  const w = await chooseWeightFiles(files);
  assert.is(w.name, 'run/ckpt-0000004');
  assert.is(await w.text('config.json'), '{"from":"ckpt-0000004"}');
  assert.is(await w.text('tokenizer.json'), null);
  const src = await w.safetensors();
  assert.equal(new TextDecoder().decode(await src.read(0, src.size)), 'ckpt-0000004');
  await chooseWeightFiles(files.slice(0, 4)).then(
    () => assert.unreachable(),
    (e) => assert.match((e as Error).message, /2 checkpoints and no `latest` file/),
  );
  await chooseWeightFiles([file('config.json', '{}')]).then(
    () => assert.unreachable(),
    (e) => assert.match((e as Error).message, /model\.safetensors: missing/),
  );
});

t.run();
