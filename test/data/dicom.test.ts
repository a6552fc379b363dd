import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/errors.ts';
import {
  instanceWorldRas,
  readDicomSeries,
  seriesByNumber,
  seriesMetaFromDicom,
  sliceIndexOfInstance,
  type DicomFileInput,
} from '../../src/data/dicom.ts';
import { readDicomFolder, readVolumeFile } from '../../src/data/io/node.ts';
import { orientationCodes, sampleWorld, valueRange, voxelToWorld } from '../../src/data/volume.ts';
import { writeTestDicom, type TestSlice } from '../helpers/dicom-writer.ts';
import { sharedData, skipWithoutSharedData } from '../helpers/paths.ts';
import { mineSnippets } from '../../src/data/snippets.ts';
import { dropCounts, locateSnippets, resolveSnippet } from '../../src/data/snippet-locate.ts';
import { prepareVolume } from '../../src/data/prep.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg = '') => {
  assert.is(a.length, b.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${msg} [${i}]: ${a[i]} vs ${b[i]}`);
};

function throwsData(fn: () => unknown, source: string, field: RegExp, detail?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DataError, `expected a DataError, got ${e}`);
    const d = e as DataError;
    assert.is(d.source, source, d.message);
    assert.match(d.field, field, d.message);
    if (detail) assert.match(d.message, detail);
    return;
  }
  assert.unreachable(`expected a DataError (${field})`);
}

/** n axial slices of 4 x 3 (columns x rows); slice s holds stored value 100 * s + pixel index. */
function axialSeries(n: number, opts: Partial<TestSlice> & { z?: (s: number) => number; name?: (s: number) => string } = {}): DicomFileInput[] {
  const files: DicomFileInput[] = [];
  for (let s = 0; s < n; s++) {
    const pixels = Array.from({ length: 12 }, (_, p) => 100 * s + p);
    const { z, name, ...rest } = opts;
    files.push({
      name: name ? name(s) : `slice${s}.dcm`,
      bytes: writeTestDicom({
        rows: 3,
        columns: 4,
        pixels,
        position: [-10, -20, z ? z(s) : 50 - 2.5 * s], // z falls with s: slice 0 is the top
        pixelSpacing: [0.5, 0.8], // 0.5 between rows (j), 0.8 between columns (i)
        instanceNumber: s + 1,
        rescaleIntercept: -1024,
        rescaleSlope: 1,
        ...rest,
      }),
    });
  }
  return files;
}

test('synthetic series: sorted along the normal (not by name), HU, spacing, LPS -> RAS affine, instance mapping', () => {
  const files = axialSeries(6, { name: (s) => `img_${String.fromCharCode(70 - s)}.dcm` }); // names sort opposite to z
  // shuffle the input order too
  const shuffled = [files[3], files[0], files[5], files[1], files[4], files[2]];
  const r = readDicomSeries(shuffled);
  assert.is(r.series.length, 1);
  const s = r.series[0];
  assert.is(s.slices.length, 6);
  // ascending along the normal (0, 0, 1): lowest z first = instance 6
  assert.equal(s.slices.map((x) => x.instanceNumber), [6, 5, 4, 3, 2, 1]);
  assert.equal(s.slices.map((x) => x.position[2]), [37.5, 40, 42.5, 45, 47.5, 50]);
  assert.equal(s.volume.shape, [4, 3, 6]);
  close(s.volume.spacing, [0.8, 0.5, 2.5], 1e-12, 'spacing');
  assert.is(s.sliceSpacing, 2.5);
  assert.is(s.uneven, false);
  assert.is(orientationCodes(s.volume), 'LPS');
  // voxel (0, 0, 0) is at LPS (-10, -20, 37.5) = RAS (10, 20, 37.5); i runs to LPS +x = RAS -x
  close(voxelToWorld(s.volume, [0, 0, 0]), [10, 20, 37.5], 1e-12, 'origin');
  close(voxelToWorld(s.volume, [1, 2, 1]), [10 - 0.8, 20 - 1.0, 40], 1e-12, 'axes');
  // voxel values: plane k holds slice s = 5 - k, HU = stored - 1024
  assert.is(s.volume.data[0], 100 * 5 - 1024);
  assert.is(s.volume.data[12 * 5 + 7], 100 * 0 + 7 - 1024);
  // "image Y" -> k -> world
  assert.is(sliceIndexOfInstance(s, 1), 5);
  assert.is(sliceIndexOfInstance(s, 99), -1);
  close(instanceWorldRas(s, 2)!, [10, 20, 47.5], 0, 'instance 2');
  assert.is(sampleWorld(s.volume, instanceWorldRas(s, 2)!), 100 * 1 - 1024);
});

test('two series in one folder are separated; pick by SeriesNumber', () => {
  const a = axialSeries(3, { seriesUID: '1.2.3.1', seriesNumber: 3, name: (s) => `a${s}` });
  const b = axialSeries(4, { seriesUID: '1.2.3.2', seriesNumber: 5, name: (s) => `b${s}`, rescaleIntercept: 0 });
  const r = readDicomSeries([a[0], b[0], a[1], b[1], b[2], a[2], b[3]]);
  assert.is(r.series.length, 2);
  assert.equal(r.series.map((s) => s.seriesNumber), [3, 5]);
  assert.is(seriesByNumber(r, 3).slices.length, 3);
  assert.is(seriesByNumber(r, 5).slices.length, 4);
  assert.ok(seriesByNumber(r, 5).slices.every((s) => s.file.startsWith('b')));
  throwsData(() => seriesByNumber(r, 4), 'DICOM folder', /SeriesNumber/, /no series 4 \(found: 3, 5\)/);
  // slice metadata for the manifest / miner: instance -> world z, the series' own number
  assert.equal(seriesMetaFromDicom(seriesByNumber(r, 5)), {
    seriesNumber: 5,
    slices: [4, 3, 2, 1].map((inst) => ({ instanceNumber: inst, z: 50 - 2.5 * (inst - 1) })),
    unnumbered: 0,
  });
  // same SeriesNumber but different UIDs are still separate entries
  const c = axialSeries(2, { seriesUID: '9.9', seriesNumber: 3, name: (s) => `c${s}` });
  assert.is(readDicomSeries([...a, ...c]).series.length, 2);
  // anonymised (no UID, no number, as the real series): told apart by description and thickness
  const anon = { seriesUID: null, seriesNumber: null };
  const body = axialSeries(3, { ...anon, seriesDescription: 'Body 3.0', sliceThickness: 3, name: (s) => `body${s}` });
  const lung = axialSeries(3, { ...anon, seriesDescription: 'Lung 1.0', sliceThickness: 1, name: (s) => `lung${s}` });
  const mixed = readDicomSeries([...body, ...lung]);
  assert.is(mixed.series.length, 2);
  assert.equal(mixed.series.map((s) => [s.description, s.slices.length, s.uneven]), [['Body 3.0', 3, false], ['Lung 1.0', 3, false]]);
  assert.ok(mixed.series.every((s) => s.warnings.some((w) => /no SeriesInstanceUID or SeriesNumber/.test(w))));
});

test('uneven slice spacing is reported (warning), or an error on request', () => {
  const zs = [0, 2, 4, 8, 10]; // a missing slice
  const files = axialSeries(5, { z: (s) => zs[s] });
  const s = readDicomSeries(files).series[0];
  assert.is(s.uneven, true);
  assert.equal(s.sliceGaps, [2, 2, 4, 2]);
  assert.is(s.sliceSpacing, 2.5);
  assert.ok(s.maxPositionError > 0.9);
  assert.ok(s.warnings.some((w) => /uneven slice spacing/.test(w)), s.warnings.join('; '));
  throwsData(() => readDicomSeries(files, { onUneven: 'error' }), 'slice0.dcm', /ImagePositionPatient/, /uneven/);
});

test('missing ImagePositionPatient / orientation -> skipped with the tag as the reason, or (strict) a DataError naming the file and tag', () => {
  const files = axialSeries(3);
  files[1] = { name: 'noipp.dcm', bytes: writeTestDicom({ rows: 3, columns: 4, pixels: new Array(12).fill(0), position: null }) };
  throwsData(() => readDicomSeries(files, { strict: true }), 'noipp.dcm', /ImagePositionPatient \(0020,0032\)/, /missing/);
  files[1] = { name: 'noiop.dcm', bytes: writeTestDicom({ rows: 3, columns: 4, pixels: new Array(12).fill(0), orientation: null }) };
  throwsData(() => readDicomSeries(files, { strict: true }), 'noiop.dcm', /ImageOrientationPatient/);
  files[1] = { name: 'nops.dcm', bytes: writeTestDicom({ rows: 3, columns: 4, pixels: new Array(12).fill(0), pixelSpacing: null }) };
  throwsData(() => readDicomSeries(files, { strict: true }), 'nops.dcm', /PixelSpacing/);
  const r = readDicomSeries(files);
  assert.is(r.series[0].slices.length, 2);
  assert.is(r.skipped.length, 1);
  assert.match(r.skipped[0].reason, /PixelSpacing/);
  // The only image file: nothing to read, so its own error.
  throwsData(() => readDicomSeries([files[1]]), 'nops.dcm', /PixelSpacing/);
});

test('non-DICOM files are skipped and counted; DICOM without pixel data skipped', () => {
  const files = axialSeries(3);
  files.push({ name: 'README.txt', bytes: new TextEncoder().encode('not a dicom file, just text') });
  files.push({ name: 'empty', bytes: new Uint8Array(0) });
  files.push({ name: 'sr.dcm', bytes: writeTestDicom({ rows: 3, columns: 4, pixels: [], noPixelData: true }) });
  const r = readDicomSeries(files);
  assert.is(r.series.length, 1);
  assert.is(r.series[0].slices.length, 3);
  assert.is(r.nonDicomCount, 2);
  assert.is(r.skipped.length, 3);
  assert.match(r.skipped.find((s) => s.file === 'sr.dcm')!.reason, /without pixel data/);
});

test('implicit VR little endian, unsigned pixels, BitsStored masking, rescale slope', () => {
  const files = axialSeries(2, { implicit: true, pixelRepresentation: 0, bitsStored: 12, rescaleSlope: 2, rescaleIntercept: -1000 });
  // stored values 0..111 plus garbage above bit 12 in one pixel
  files.push({
    name: 'garbage.dcm',
    bytes: writeTestDicom({
      rows: 3, columns: 4, pixels: [0xf005, ...new Array(11).fill(1)], position: [-10, -20, 60], pixelSpacing: [0.5, 0.8],
      implicit: true, pixelRepresentation: 0, bitsStored: 12, rescaleSlope: 2, rescaleIntercept: -1000, instanceNumber: 9,
    }),
  });
  const s = readDicomSeries(files).series[0];
  assert.is(s.transferSyntax, '1.2.840.10008.1.2');
  assert.is(s.volume.data[0], 2 * 100 - 1000); // slice 1 (z = 47.5) is lowest
  assert.is(s.volume.data[12 * 2], 2 * 5 - 1000); // 0xf005 masked to 12 bits = 5
  // signed 12-bit in 16: sign extension of the stored bits
  const neg = readDicomSeries([
    { name: 'n.dcm', bytes: writeTestDicom({ rows: 1, columns: 2, pixels: [-5, 0x0fff], bitsStored: 12, pixelRepresentation: 1 }) },
  ]).series[0];
  assert.equal(Array.from(neg.volume.data), [-5, -1]);
});

test('oblique (sagittal) orientation: affine from IOP and positions, RAS world', () => {
  // rows along LPS +y (posterior), columns along LPS -z (down); normal = row x col = LPS -x (right)
  const iop = [0, 1, 0, 0, 0, -1];
  const files: DicomFileInput[] = [0, 1, 2].map((s) => ({
    name: `sag${s}`,
    bytes: writeTestDicom({ rows: 2, columns: 2, pixels: [s, s, s, s], orientation: iop, position: [5 + 3 * s, -1, 7], pixelSpacing: [2, 1] }),
  }));
  const s = readDicomSeries(files).series[0];
  assert.is(orientationCodes(s.volume), 'PIR');
  close(s.normal, [-1, 0, 0], 0, 'normal');
  // sorted along the normal: k = 0 is the slice at LPS x = 11
  assert.equal(s.slices.map((x) => x.position[0]), [11, 8, 5]);
  // voxel (i, j, k) -> LPS (11 - 3k, -1 + i * 1, 7 - 2j) -> RAS (3k - 11, 1 - i, 7 - 2j)
  close(voxelToWorld(s.volume, [1, 1, 2]), [-5, 0, 5], 1e-12, 'sagittal');
  assert.is(s.volume.data[0], 2); // plane 0 is slice s = 2
});

test('unsupported transfer syntax, J2K without decoder, size limit, multi-frame: DataErrors', () => {
  const htj2k = [{ name: 'htj2k.dcm', bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], transferSyntax: '1.2.840.10008.1.2.4.201' }) }];
  throwsData(() => readDicomSeries(htj2k), 'htj2k.dcm', /TransferSyntaxUID/, /4\.201 \(HTJ2K Lossless\) is not supported \(supported: .*RLE Lossless, JPEG Lossless/);
  // headers are still listed without decoding
  assert.is(readDicomSeries(htj2k, { headersOnly: true }).series.length, 1);
  // codecs that need a decoder the caller did not give (readDicomFolder loads them on Node)
  const jpeg = [{ name: 'jpeg.dcm', bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], transferSyntax: '1.2.840.10008.1.2.4.50' }) }];
  throwsData(() => readDicomSeries(jpeg), 'jpeg.dcm', /TransferSyntaxUID/, /JPEG Baseline\) needs a JPEG baseline \(8-bit\) decoder \(options\.jpegBaseline/);
  const j2k = [{ name: 'j2k.dcm', bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], transferSyntax: '1.2.840.10008.1.2.4.90' }) }];
  throwsData(() => readDicomSeries(j2k), 'j2k.dcm', /TransferSyntaxUID/, /needs a JPEG 2000 decoder \(options\.jpeg2000/);
  // a compressed transfer syntax with native (not encapsulated) pixel data
  const rle = [{ name: 'rle.dcm', bytes: writeTestDicom({ rows: 1, columns: 1, pixels: [0], transferSyntax: '1.2.840.10008.1.2.5' }) }];
  throwsData(() => readDicomSeries(rle), 'rle.dcm', /PixelData/, /RLE Lossless\) transfer syntax, but the pixel data is not encapsulated/);
  throwsData(() => readDicomSeries(axialSeries(4), { maxVoxels: 40 }), 'slice0.dcm', /series size/, /exceeds the limit of 40/);
  const corrupt = writeTestDicom({ rows: 3, columns: 4, pixels: new Array(12).fill(0) }).slice(0, 300);
  throwsData(() => readDicomSeries([{ name: 'cut.dcm', bytes: corrupt }]), 'cut.dcm', /DICOM dataset|PixelData|Rows|ImagePosition/);
});

test('truncated DICOM files: skipped and listed, or (strict) a DataError naming the file (header cut, or pixel data cut)', () => {
  const files = axialSeries(3);
  const whole = files[1]!.bytes;
  // cut inside the pixel data: the header parses, the pixels are short
  const cutPixels = [files[0]!, { name: 'cut-pixels.dcm', bytes: whole.subarray(0, whole.length - 10) }, files[2]!];
  const lenient = readDicomSeries(cutPixels);
  assert.equal(lenient.series[0]!.slices.map((s) => s.file), ['slice2.dcm', 'slice0.dcm']);
  assert.equal(lenient.skipped.map((s) => s.file), ['cut-pixels.dcm']);
  try {
    readDicomSeries(cutPixels, { strict: true });
    assert.unreachable('truncated pixel data');
  } catch (e) {
    assert.instance(e, DataError);
    assert.is((e as DataError).source, 'cut-pixels.dcm');
    assert.match((e as DataError).field, /PixelData|DICOM dataset/);
  }
  // cut inside the header (after the preamble)
  const cutHeader = [files[0]!, { name: 'cut-header.dcm', bytes: whole.subarray(0, 200) }, files[2]!];
  assert.equal(readDicomSeries(cutHeader).skipped.map((s) => s.file), ['cut-header.dcm']);
  try {
    readDicomSeries(cutHeader, { strict: true });
    assert.unreachable('truncated header');
  } catch (e) {
    assert.instance(e, DataError);
    assert.is((e as DataError).source, 'cut-header.dcm');
    assert.ok(!/\n\s+at /.test((e as Error).message), 'no stack trace in the message');
  }
});

test('duplicate positions: lower InstanceNumber kept, warning', () => {
  const files = axialSeries(3);
  files.push({ name: 'dup.dcm', bytes: writeTestDicom({ rows: 3, columns: 4, pixels: new Array(12).fill(0), position: [-10, -20, 50], pixelSpacing: [0.5, 0.8], instanceNumber: 10 }) });
  const s = readDicomSeries(files).series[0];
  assert.is(s.slices.length, 3);
  assert.ok(s.warnings.some((w) => /dup\.dcm/.test(w)));
});

test('readDicomFolder on disk: non-DICOM skipped, single file resolves to its series', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-dicom-'));
  try {
    for (const f of axialSeries(3)) writeFileSync(join(dir, f.name), f.bytes);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    symlinkSync(join(dir, 'no-such-file'), join(dir, 'dangling.dcm'));
    const r = await readDicomFolder(dir);
    assert.is(r.series[0].slices.length, 3);
    assert.is(r.nonDicomCount, 1);
    assert.ok(r.skipped.some((x) => x.file.endsWith('dangling.dcm') && /cannot read/.test(x.reason)), JSON.stringify(r.skipped));
    const v = await readVolumeFile(join(dir, 'slice1.dcm'));
    assert.equal(v.shape, [4, 3, 3]);
    const empty = mkdtempSync(join(tmpdir(), 'ctvlm-empty-'));
    writeFileSync(join(empty, 'x.txt'), 'x');
    try {
      await readDicomFolder(empty);
      assert.unreachable('no series');
    } catch (e) {
      assert.instance(e, DataError);
      assert.match((e as Error).message, /no DICOM image series/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real DICOM series (shared data): JPEG 2000, 20 slices along the normal, instance -> z, spacing, HU', async () => {
  if (skipWithoutSharedData('real CT DICOM')) return;
  const r = await readDicomFolder(join(sharedData!, 'real-ct/example_ct_dicom'));
  assert.is(r.series.length, 1);
  assert.is(r.skipped.length, 0);
  const s = r.series[0];
  assert.is(s.transferSyntax, '1.2.840.10008.1.2.4.90');
  assert.is(s.slices.length, 20);
  assert.equal(s.volume.shape, [512, 512, 20]);
  close(s.volume.spacing, [0.9765625, 0.9765625, 2], 1e-9, 'spacing');
  assert.is(s.sliceSpacing, 2);
  assert.is(s.sliceThickness, 3); // not used as the step
  assert.is(s.uneven, false);
  // sorted along the normal (0, 0, 1): z ascending; instance numbers run the other way
  const z = s.slices.map((x) => x.position[2]);
  for (let k = 1; k < 20; k++) assert.is(z[k] - z[k - 1], 2);
  assert.is(z[0], -804.5);
  assert.is(z[19], -766.5);
  assert.equal(s.slices.map((x) => x.instanceNumber), Array.from({ length: 20 }, (_, k) => 286 - k));
  assert.is(sliceIndexOfInstance(s, 267), 19);
  assert.is(sliceIndexOfInstance(s, 286), 0);
  for (const inst of [267, 270, 286]) {
    const k = sliceIndexOfInstance(s, inst);
    assert.is(voxelToWorld(s.volume, [0, 0, k])[2], -766.5 - 2 * (inst - 267));
    close(instanceWorldRas(s, inst)!, voxelToWorld(s.volume, [0, 0, k]), 1e-9, `instance ${inst}`);
  }
  assert.is(orientationCodes(s.volume), 'LPS');
  close(voxelToWorld(s.volume, [0, 0, 0]), [249.51171875, 437.51171875, -804.5], 1e-9, 'origin');
  const hu = valueRange(s.volume.data);
  assert.is(hu.nonFinite, 0);
  assert.is(hu.min, -1024); // air outside the scan field at the stored minimum 0
  assert.ok(hu.max > 1000 && hu.max < 3100, `max ${hu.max}`);
  // a plausible CT: lots of air and soft tissue around 0..100 HU
  let soft = 0;
  for (const x of s.volume.data) if (x > -100 && x < 100) soft++;
  assert.ok(soft > 0.1 * s.volume.data.length, `soft tissue fraction ${soft / s.volume.data.length}`);

  // The series has an empty SeriesNumber (anonymised): "image Y" resolves; "series X, image Y"
  // cannot be checked and is dropped with its reason, unless the caller names the series.
  assert.is(s.seriesNumber, null);
  const meta = seriesMetaFromDicom(s);
  assert.is(meta.seriesNumber, null);
  assert.is(meta.slices.length, 20);
  assert.is(meta.sliceThickness, 3);
  const report = 'Nodule in the right lower lobe (series 3, image 270). Small effusion (image 280). Opacity (series 3, image 900).';
  const mined = mineSnippets(report);
  assert.is(mined.length, 3);
  assert.equal(resolveSnippet(mined[1]!, meta), { z: -766.5 - 2 * (280 - 267), thickness: 3 });
  assert.is((resolveSnippet(mined[0]!, meta) as { reason: string }).reason, 'unknown-series');
  const p = prepareVolume(s.volume, { spacing: [4, 4, 2], window: [16, 16, 4] });
  const loc = locateSnippets(mined, meta, p);
  assert.equal(loc.located.map((l) => l.image), [280]);
  assert.equal(dropCounts(loc.dropped), { 'no-series-metadata': 0, 'other-series': 0, 'unknown-series': 2, 'ambiguous-series': 0, 'image-not-in-series': 0, 'outside-crop': 0 });
  const named = locateSnippets(mined, seriesMetaFromDicom(s, { seriesNumber: 3 }), p);
  assert.equal(named.located.map((l) => [l.image, l.z]), [[270, -772.5], [280, -792.5]]);
  assert.equal(named.dropped.map((d) => d.reason), ['image-not-in-series']);
  assert.match(named.dropped[0]!.detail, /image 900; series 3 has 20 images \(267-286\)/);
  // Bins count from the bottom of the prepared (RAS) grid: image 270 (higher) lies above image 280.
  assert.ok(named.located[0]!.bin > named.located[1]!.bin);
});

test.run();
