import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { DataError } from '../../src/errors.ts';
import { LABELS, findLabel, labelIndex } from '../../src/data/labels.ts';
import { affineFromRows, createVolume } from '../../src/data/volume.ts';
import { parseManifest, readManifestFile, resolveVolumePath, serializeManifest, type ManifestEntry } from '../../src/data/manifest.ts';
import { entrySplit, splitFor } from '../../src/data/splits.ts';
import { parseCsv } from '../../src/data/csv.ts';
import { applyCtRateMeta, ctRateRelativePath, fromCtRate, fromCtRateTables } from '../../src/data/ctrate.ts';

const fx = (name: string) => readFileSync(join(repoRoot, 'test/data/fixtures', name), 'utf8');
const zeros = () => new Array(18).fill(0);
const good: ManifestEntry = {
  id: 'case-1',
  volume: 'volumes/case-1.nii.gz',
  report: 'Findings: Nodule (series 3, image 45).',
  labels: [1, 0, -1, ...new Array(15).fill(0)],
  series: { seriesNumber: 3, sliceThickness: 2.5, slices: [{ instanceNumber: 1, z: -10 }, { instanceNumber: 2, z: -12.5 }] },
  references: [{ label: 'Lung nodule', sentence: 'Nodule.', series: 3, images: [45], kind: 'single', image: 45, z: -10, zExtent: [-15, -5] }],
  split: 'val',
};

/** Asserts a DataError whose message names all the given parts. */
function throwsData(fn: () => unknown, ...parts: string[]) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DataError);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `'${(e as Error).message}' should name '${p}'`);
    return;
  }
  assert.unreachable('expected a DataError');
}

test('the 18 labels in CT-RATE order', () => {
  assert.is(LABELS.length, 18);
  assert.is(LABELS[0], 'Medical material');
  assert.is(LABELS[17], 'Interlobular septal thickening');
  assert.is(labelIndex('Pleural effusion'), 12);
  assert.is(findLabel('pleural_effusion'), 12);
  assert.is(findLabel('nope'), -1);
});

test('manifest round trip and blank lines', () => {
  const text = serializeManifest([good, { id: 'case-2', volume: 'b.nii.gz', report: '', labels: zeros() }]);
  const back = parseManifest(`\n${text}\n\n`, 'm.jsonl');
  assert.is(back.length, 2);
  assert.equal(back[0], good);
  assert.is(back[1]!.report, '');
  // Slices given by position (DICOM ImagePositionPatient) take z from it.
  const pos = parseManifest(JSON.stringify({ ...good, series: { seriesNumber: 4, slices: [{ instanceNumber: 7, position: [1, 2, -30.5] }] } }));
  assert.equal(pos[0]!.series!.slices, [{ instanceNumber: 7, z: -30.5 }]);
  // The study's number of image series (a series-less "image 45" is ambiguous with several).
  const two = parseManifest(JSON.stringify({ ...good, series: { seriesNumber: 4, seriesCount: 2, slices: [{ instanceNumber: 7, z: 0 }] } }));
  assert.is(two[0]!.series!.seriesCount, 2);
  assert.equal(parseManifest(serializeManifest(two))[0]!.series, two[0]!.series);
});

test('malformed lines: DataError naming file, line and field', () => {
  const line = (o: object) => JSON.stringify(o);
  const two = (o: object | string) => `${line(good)}\n${typeof o === 'string' ? o : line(o)}\n`;
  throwsData(() => parseManifest(two('{not json'), 'data/m.jsonl'), 'data/m.jsonl:2', 'line', 'JSON');
  throwsData(() => parseManifest(two('[1,2]'), 'm.jsonl'), 'm.jsonl:2', 'object');
  throwsData(() => parseManifest(two({ ...good, id: 'x', labels: zeros().slice(1) }), 'm.jsonl'), 'm.jsonl:2', 'labels', '18', 'got 17');
  throwsData(() => parseManifest(two({ ...good, id: 'x', labels: [2, ...zeros().slice(1)] }), 'm.jsonl'), 'm.jsonl:2', 'labels[0]', 'Medical material');
  throwsData(() => parseManifest(two({ ...good, id: 'x', labels: 'none' }), 'm.jsonl'), 'labels', 'array');
  const { volume: _v, ...noVolume } = good;
  throwsData(() => parseManifest(two({ ...noVolume, id: 'x' }), 'm.jsonl'), 'm.jsonl:2', 'volume', 'missing');
  throwsData(() => parseManifest(two({ ...good, id: 5 }), 'm.jsonl'), 'm.jsonl:2', 'id', 'string');
  throwsData(() => parseManifest(two(good), 'm.jsonl'), 'm.jsonl:2', 'id', 'duplicate', 'line 1');
  throwsData(() => parseManifest(two({ ...good, id: 'x', split: 'training' }), 'm.jsonl'), 'split');
  throwsData(() => parseManifest(two({ ...good, id: 'x', series: { seriesNumber: 3, slices: [{ instanceNumber: 1, z: 0 }, { instanceNumber: 1, z: 1 }] } }), 'm.jsonl'), 'series.slices[1].instanceNumber', 'duplicate');
  throwsData(() => parseManifest(two({ ...good, id: 'x', series: { seriesNumber: 3, slices: [{ instanceNumber: 1 }] } }), 'm.jsonl'), 'series.slices[0]', 'z');
  throwsData(() => parseManifest(two({ ...good, id: 'x', series: { seriesNumber: 'three', slices: [] } }), 'm.jsonl'), 'series.seriesNumber');
  throwsData(() => parseManifest(two({ ...good, id: 'x', series: { seriesNumber: 3, seriesCount: 0, slices: [{ instanceNumber: 1, z: 0 }] } }), 'm.jsonl'), 'series.seriesCount', 'positive integer');
  throwsData(() => parseManifest(two({ ...good, id: 'x', references: [{ ...good.references![0], label: 'Nodule' }] }), 'm.jsonl'), 'references[0].label');
});

test('deterministic hash splits', () => {
  assert.is(splitFor('abc'), splitFor('abc'));
  const counts = { train: 0, val: 0, test: 0 };
  for (let i = 0; i < 2000; i++) counts[splitFor(`case-${i}`)]++;
  assert.ok(counts.train > 1450 && counts.train < 1750, JSON.stringify(counts));
  assert.ok(counts.val > 120 && counts.test > 120);
  // Consecutive ids (differing in the last characters only) spread too.
  const seq = { train: 0, val: 0, test: 0 };
  for (let i = 0; i < 100; i++) seq[splitFor(`synth-${String(i).padStart(5, '0')}`)]++;
  assert.ok(seq.train >= 65 && seq.val >= 4 && seq.test >= 4, JSON.stringify(seq));
  assert.is(entrySplit(good), 'val');
  assert.is(entrySplit({ ...good, split: undefined }), splitFor('case-1'));
  assert.is(resolveVolumePath('/data/set/manifest.jsonl', good), '/data/set/volumes/case-1.nii.gz');
  assert.is(resolveVolumePath('manifest.jsonl', good), 'volumes/case-1.nii.gz');
  assert.is(resolveVolumePath('/x/m.jsonl', { ...good, volume: '/abs/v.nii.gz' }), '/abs/v.nii.gz');
});

test('CSV: quoted commas, newlines, escaped quotes, CRLF, BOM', () => {
  const t = parseCsv('\ufeffa,b,c\r\n1,"x, y","he said ""hi""\nsecond line"\r\n2,,\n', 't.csv');
  assert.equal(t.header, ['a', 'b', 'c']);
  assert.equal(t.rows, [
    ['1', 'x, y', 'he said "hi"\nsecond line'],
    ['2', '', ''],
  ]);
  assert.equal(t.lines, [2, 4]);
  throwsData(() => parseCsv('a,b\n1,"open\n', 't.csv'), 't.csv:2', 'unterminated');
  throwsData(() => parseCsv('a,b\n1,2,3\n', 't.csv'), 't.csv:2', 'expected 2 fields');
  throwsData(() => parseCsv('', 'e.csv'), 'e.csv', 'empty');
  // A large field parses quickly.
  const big = `a,b\n1,"${'word, '.repeat(200000)}"\n`;
  const t0 = performance.now();
  assert.is(parseCsv(big).rows[0]![1]!.length, 6 * 200000);
  assert.ok(performance.now() - t0 < 2000);
});

test('CT-RATE tables -> manifest entries', () => {
  const r = fromCtRateTables({ reportsCsv: fx('ctrate_reports.csv'), labelsCsv: fx('ctrate_labels.csv'), volumePrefix: 'ct/' });
  assert.is(r.entries.length, 4);
  assert.is(r.skipped.length, 0);
  const [a, b, c, d] = r.entries as [ManifestEntry, ManifestEntry, ManifestEntry, ManifestEntry];
  assert.is(a.id, 'train_1_a_1');
  assert.is(a.volume, 'ct/train/train_1/train_1_a/train_1_a_1.nii.gz');
  assert.ok(a.report.startsWith('Findings: Trachea and both main bronchi are open.'));
  assert.ok(a.report.includes('\n\nImpression: Emphysema. Pulmonary nodule.'));
  assert.equal(a.labels.slice(0, 3), [0, 1, 0]);
  // Reconstructions of one patient share the split; valid_* is the test set.
  assert.is(a.split, b.split);
  assert.ok(a.split === 'train' || a.split === 'val');
  assert.is(d.split, 'test');
  assert.ok(c.report.includes('two lines and contains "quotes".'));
  assert.is(ctRateRelativePath('valid_7_b_1.nii.gz'), 'valid/valid_7/valid_7_b/valid_7_b_1.nii.gz');
  // Every entry is a valid manifest line.
  assert.is(parseManifest(serializeManifest(r.entries)).length, 4);
});

test('CT-RATE: missing column, bad label value, labels without a report', () => {
  const labels = fx('ctrate_labels.csv');
  const noCol = labels.replace('Lung nodule,', 'Lung nodules,');
  throwsData(() => fromCtRateTables({ reportsCsv: fx('ctrate_reports.csv'), labelsCsv: noCol, labelsSource: 'labels.csv' }), 'labels.csv', 'Lung nodule', 'missing column');
  throwsData(() => fromCtRateTables({ reportsCsv: 'VolumeName,Findings_EN\nx,y\n', labelsCsv: labels, reportsSource: 'r.csv' }), 'r.csv', 'Impressions_EN');
  const bad = labels.replace('train_2_a_1.nii.gz,0,', 'train_2_a_1.nii.gz,yes,');
  throwsData(() => fromCtRateTables({ reportsCsv: fx('ctrate_reports.csv'), labelsCsv: bad, labelsSource: 'labels.csv' }), 'labels.csv:4', 'Medical material', 'yes');
  const extra = `${labels}train_9_a_1.nii.gz,${new Array(18).fill('').join(',')}\r\n`;
  const r = fromCtRateTables({ reportsCsv: fx('ctrate_reports.csv'), labelsCsv: extra });
  const e = r.entries.find((x) => x.id === 'train_9_a_1')!;
  assert.is(e.report, '');
  assert.equal(e.labels, new Array(18).fill(-1));
});

test('CT-RATE metadata: stored values -> HU, voxel size from XYSpacing / ZSpacing; HU files left alone', () => {
  // stored values as a scanner writes them (air 0, water 1024), header spacing 1 mm
  const stored = createVolume([4, 4, 4], { affine: affineFromRows([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], [10, 20, 30]) });
  for (let i = 0; i < stored.data.length; i++) stored.data[i] = i % 4 ? 0 : 1064; // mostly air, as a chest CT
  const meta = { RescaleSlope: 1, RescaleIntercept: -1024, XYSpacing: '[0.7, 0.75]', ZSpacing: 1.5 };
  const r = applyCtRateMeta(stored, meta, 'train_1_a_1');
  assert.ok(r.rescaled && r.respaced, r.notes.join('; '));
  assert.equal(Array.from(r.volume.data.slice(0, 2)), [40, -1024]);
  assert.equal(r.volume.spacing.map((x) => +x.toFixed(6)), [0.7, 0.75, 1.5]);
  assert.equal(Array.from(r.volume.affine).map((x) => +x.toFixed(6)), [-0.7, 0, 0, 0, 0, -0.75, 0, 0, 0, 0, 1.5, 0, 10, 20, 30, 1]);
  assert.is(stored.data[0], 1064, 'input untouched');
  // already HU (median at air): not rescaled again; a scaled header: not rescaled either
  const hu = applyCtRateMeta(r.volume, meta, 'hu');
  assert.is(hu.rescaled, false);
  assert.match(hu.notes.join(' '), /look like HU already/);
  assert.is(applyCtRateMeta(stored, meta, 's', true).rescaled, false);
  // no metadata: nothing changes
  const none = applyCtRateMeta(stored, undefined, 'n');
  assert.ok(!none.rescaled && !none.respaced);
  assert.is(none.volume.data, stored.data);
  // bad values name the field
  throwsData(() => applyCtRateMeta(stored, { XYSpacing: 'wide' }, 'v1'), 'v1', 'XYSpacing', 'expected');
  throwsData(() => applyCtRateMeta(stored, { RescaleSlope: 'x' }, 'v2'), 'v2', 'RescaleSlope', 'expected a number');
  throwsData(() => applyCtRateMeta(stored, { ZSpacing: -3 }, 'v3'), 'v3', 'ZSpacing', 'positive');
});

test('fromCtRate (files): finds volumes recursively, relative paths, skips missing ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-ctrate-'));
  try {
    mkdirSync(join(dir, 'vols/train/train_1/train_1_a'), { recursive: true });
    mkdirSync(join(dir, 'vols/valid/valid_7/valid_7_b'), { recursive: true });
    writeFileSync(join(dir, 'vols/train/train_1/train_1_a/train_1_a_1.nii.gz'), 'x');
    writeFileSync(join(dir, 'vols/valid/valid_7/valid_7_b/valid_7_b_1.nii.gz'), 'x');
    writeFileSync(join(dir, 'reports.csv'), fx('ctrate_reports.csv'));
    writeFileSync(join(dir, 'labels.csv'), fx('ctrate_labels.csv'));
    writeFileSync(join(dir, 'meta.csv'), 'VolumeName,RescaleSlope,RescaleIntercept,XYSpacing,ZSpacing\ntrain_1_a_1.nii.gz,1,-1024,"[0.7, 0.7]",1.5\n');
    const r = await fromCtRate({ volumesDir: join(dir, 'vols'), reportsCsv: join(dir, 'reports.csv'), labelsCsv: join(dir, 'labels.csv'), metadataCsv: join(dir, 'meta.csv'), manifestDir: dir });
    assert.equal(r.entries.map((e) => e.volume), ['vols/train/train_1/train_1_a/train_1_a_1.nii.gz', 'vols/valid/valid_7/valid_7_b/valid_7_b_1.nii.gz']);
    assert.equal(r.skipped.map((s) => s.volumeName), ['train_1_a_2.nii.gz', 'train_2_a_1.nii.gz']);
    assert.equal(r.entries[0]!.meta, { RescaleSlope: 1, RescaleIntercept: -1024, XYSpacing: '[0.7, 0.7]', ZSpacing: 1.5 });
    writeFileSync(join(dir, 'm.jsonl'), serializeManifest(r.entries));
    assert.is((await readManifestFile(join(dir, 'm.jsonl'))).length, 2);
    let err: unknown;
    await fromCtRate({ volumesDir: join(dir, 'nope'), reportsCsv: join(dir, 'reports.csv'), labelsCsv: join(dir, 'labels.csv') }).catch((e) => (err = e));
    assert.instance(err, DataError);
    err = undefined;
    await readManifestFile(join(dir, 'missing.jsonl')).catch((e) => (err = e));
    assert.instance(err, DataError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
