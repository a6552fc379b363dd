// The kinds of DICOM files real scanner exports contain that other readers have had bug reports
// about (issue 8): odd files in a series folder, datasets without the Part 10 preamble, float
// noise in ImageOrientationPatient, Enhanced (multi-frame) CT, samples not at the bottom of the
// word (HighBit). Inputs are made here with the test writer; the values are what pydicom /
// dcmtk / ITK give for them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/errors.ts';
import { dicomEncoding, looksLikeDicom, readDicomSeries, seriesMetaFromDicom, type DicomFileInput } from '../../src/data/dicom.ts';
import { readDicomFolder, readVolumeFile } from '../../src/data/io/node.ts';
import { valueRange, voxelToWorld } from '../../src/data/volume.ts';
import { encodeRle, fragments, writeTestDicom, writeTestEnhancedDicom, type TestSlice } from '../helpers/dicom-writer.ts';

function throwsData(fn: () => unknown, source: string, field: RegExp, detail?: RegExp): DataError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DataError, `expected a DataError, got ${e}`);
    const d = e as DataError;
    assert.is(d.source, source, d.message);
    assert.match(d.field, field, d.message);
    if (detail) assert.match(d.message, detail);
    assert.not.match(d.message, /\n\s+at /);
    return d;
  }
  assert.unreachable(`expected a DataError (${field})`);
  throw new Error('unreachable');
}

/** n axial 3 x 2 slices 2.5 mm apart; slice s holds stored value 10 * s + pixel index, HU = stored - 1024. */
function slices(n: number, opts: Partial<TestSlice> & { name?: (s: number) => string; iop?: (s: number) => number[] } = {}): DicomFileInput[] {
  const { name, iop, ...rest } = opts;
  return Array.from({ length: n }, (_, s) => ({
    name: name ? name(s) : `IM${s + 1}`,
    bytes: writeTestDicom({
      rows: 2,
      columns: 3,
      pixels: Array.from({ length: 6 }, (_, p) => 10 * s + p),
      position: [0, 0, 2.5 * s],
      pixelSpacing: [0.7, 0.7],
      instanceNumber: s + 1,
      seriesNumber: 3,
      rescaleIntercept: -1024,
      ...(iop ? { orientation: iop(s) } : {}),
      ...rest,
    }),
  }));
}

const doseReport = (name = 'dose_report.dcm', extra: Partial<TestSlice> = {}): DicomFileInput => ({
  name,
  bytes: writeTestDicom({
    rows: 4,
    columns: 4,
    pixels: new Array(16).fill(200),
    bitsAllocated: 8,
    pixelRepresentation: 0,
    position: null,
    orientation: null,
    pixelSpacing: null,
    seriesNumber: 999,
    seriesUID: '1.2.826.0.1.3680043.2.1125.999',
    sopClassUID: '1.2.840.10008.5.1.4.1.1.7',
    imageType: 'DERIVED\\SECONDARY\\OTHER',
    seriesDescription: 'Dose Report',
    ...extra,
  }),
});

// ---------------------------------------------------------------------------------------
// Kind 3: one odd file must not sink the folder

test('a dose-report page (secondary capture, no position) is skipped with its reason; --strict refuses', () => {
  const files = [...slices(3), doseReport()];
  const r = readDicomSeries(files);
  assert.is(r.series.length, 1);
  assert.is(r.series[0]!.slices.length, 3);
  assert.equal(valueRange(r.series[0]!.volume.data), { min: -1024, max: 20 + 5 - 1024, nonFinite: 0 });
  assert.is(r.skipped.length, 1);
  assert.is(r.skipped[0]!.file, 'dose_report.dcm');
  // The reason names the attribute and says what the file is.
  assert.match(r.skipped[0]!.reason, /^ImagePositionPatient \(0020,0032\): missing/);
  assert.match(r.skipped[0]!.reason, /Secondary Capture Image Storage, ImageType DERIVED\\SECONDARY\\OTHER, "Dose Report"/);
  assert.not.match(r.skipped[0]!.reason, /dose_report\.dcm/); // the file is in `file`, not repeated
  throwsData(() => readDicomSeries(files, { strict: true }), 'dose_report.dcm', /ImagePositionPatient/, /Dose Report/);
  // Alone, the page is not a volume: its own error, naming it.
  throwsData(() => readDicomSeries([doseReport()]), 'dose_report.dcm', /ImagePositionPatient/);
  // An RGB screenshot page (SamplesPerPixel 3) in the same folder: skipped too.
  const rgb = writeTestDicom({ rows: 1, columns: 1, pixels: [0], seriesNumber: 998, seriesUID: '9.8' });
  const spp = rgb.slice();
  // SamplesPerPixel (0028,0002) US 1 -> 3: find the element in the explicit-VR body.
  for (let o = 132; o + 10 <= spp.length; o += 2)
    if (spp[o] === 0x28 && spp[o + 1] === 0 && spp[o + 2] === 2 && spp[o + 3] === 0 && spp[o + 4] === 0x55 && spp[o + 5] === 0x53) {
      spp[o + 8] = 3;
      break;
    }
  const r2 = readDicomSeries([...slices(3), { name: 'screenshot.dcm', bytes: spp }]);
  assert.is(r2.series.length, 1);
  assert.equal(r2.skipped.map((s) => s.file), ['screenshot.dcm']);
  assert.match(r2.skipped[0]!.reason, /SamplesPerPixel \(0028,0002\): is 3/);
});

test('unreadable files: truncated header, garbage after a DICOM start, cut pixel data: skipped with the file named; strict names the file', () => {
  const good = slices(4);
  const whole = good[1]!.bytes;
  const cases: [string, Uint8Array, RegExp, RegExp][] = [
    ['cut-header.dcm', whole.subarray(0, 200), /DICOM dataset/, /unreadable/],
    ['cut-pixels.dcm', whole.subarray(0, whole.length - 5), /DICOM dataset|PixelData/, /truncated/],
    ['garbage.dcm', (() => { const b = whole.slice(); b.fill(0xff, 200, 260); return b; })(), /DICOM dataset|Rows|PixelData|BitsAllocated/, /./],
  ];
  for (const [name, bytes, field, detail] of cases) {
    const files = [good[0]!, good[2]!, good[3]!, { name, bytes }];
    const r = readDicomSeries(files);
    assert.is(r.series.length, 1, name);
    assert.is(r.series[0]!.slices.length, 3, name);
    const sk = r.skipped.find((s) => s.file === name);
    assert.ok(sk, `${name} listed as skipped: ${JSON.stringify(r.skipped)}`);
    assert.match(sk!.reason, field, name);
    throwsData(() => readDicomSeries(files, { strict: true }), name, field, detail);
  }
  // Pixel data that cannot be decoded (an RLE frame whose segment offsets point past its end):
  // the slice is left out, the series rebuilt from the others (uneven spacing says where).
  const pixels = [1, 2, 3, 4, 5, 6];
  const rle = encodeRle(pixels, 2, 3, 16);
  new DataView(rle.buffer).setUint32(8, 9999, true);
  const bad = {
    name: 'bad-rle.dcm',
    bytes: writeTestDicom({ rows: 2, columns: 3, pixels, position: [0, 0, 5], pixelSpacing: [0.7, 0.7], instanceNumber: 3, seriesNumber: 3, transferSyntax: '1.2.840.10008.1.2.5', encapsulated: [rle] }),
  };
  const r = readDicomSeries([good[0]!, good[1]!, bad, good[3]!]);
  assert.equal(r.series[0]!.slices.map((s) => s.instanceNumber), [1, 2, 4]);
  assert.ok(r.series[0]!.uneven);
  assert.equal(r.skipped.map((s) => s.file), ['bad-rle.dcm']);
  assert.match(r.skipped[0]!.reason, /PixelData \(7FE0,0010\)/);
  throwsData(() => readDicomSeries([good[0]!, bad], { strict: true }), 'bad-rle.dcm', /PixelData/);
  // With headersOnly the pixel data is not read, so nothing is skipped for it.
  assert.is(readDicomSeries([good[0]!, bad], { headersOnly: true }).series[0]!.slices.length, 2);
});

test('readDicomFolder and readVolumeFile skip what they cannot use, list it, and refuse with strict', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-kinds-'));
  try {
    for (const f of slices(3)) writeFileSync(join(dir, f.name), f.bytes);
    const dose = doseReport();
    writeFileSync(join(dir, dose.name), dose.bytes);
    writeFileSync(join(dir, 'locked.dcm'), slices(1)[0]!.bytes);
    chmodSync(join(dir, 'locked.dcm'), 0o000);
    const root = process.getuid?.() === 0; // root reads anything
    const r = await readDicomFolder(dir);
    assert.is(r.series.length, 1);
    assert.is(r.series[0]!.slices.length, 3); // root reads locked.dcm: a duplicate of IM1, dropped with a warning
    assert.ok(r.skipped.some((s) => s.file === join(dir, 'dose_report.dcm') && /ImagePositionPatient/.test(s.reason)), JSON.stringify(r.skipped));
    if (!root) assert.ok(r.skipped.some((s) => s.file === join(dir, 'locked.dcm') && /cannot read/.test(s.reason)), JSON.stringify(r.skipped));
    // The same through the volume reader (folder and one file of it), and strict refusals.
    assert.equal((await readVolumeFile(dir)).shape, [3, 2, 3]);
    assert.equal((await readVolumeFile(join(dir, 'IM2'))).shape, [3, 2, 3]);
    for (const read of [() => readDicomFolder(dir, { strict: true }), () => readVolumeFile(dir, { strict: true })]) {
      try {
        await read();
        assert.unreachable('strict');
      } catch (e) {
        assert.instance(e, DataError);
        assert.ok([join(dir, 'dose_report.dcm'), join(dir, 'locked.dcm')].includes((e as DataError).source), (e as Error).message);
      }
    }
    // The page itself, asked for as one file: why it is not a volume.
    try {
      await readVolumeFile(join(dir, 'dose_report.dcm'));
      assert.unreachable('dose page');
    } catch (e) {
      assert.instance(e, DataError);
      assert.match((e as Error).message, /dose_report\.dcm: file: is DICOM but not part of any image series in its folder \(ImagePositionPatient/);
    }
  } finally {
    chmodSync(join(dir, 'locked.dcm'), 0o644);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------
// Kind 4: datasets without the preamble and meta header

test('bare datasets: explicit vs implicit VR told from the bytes; a bare meta group; not taken for other formats', () => {
  const explicit = slices(3, { layout: 'bare' });
  const implicit = slices(3, { layout: 'bare', implicit: true });
  const meta = slices(3, { layout: 'bare-meta', implicit: true });
  assert.equal(dicomEncoding(explicit[0]!.bytes), { kind: 'bare', transferSyntax: '1.2.840.10008.1.2.1' });
  assert.equal(dicomEncoding(implicit[0]!.bytes), { kind: 'bare', transferSyntax: '1.2.840.10008.1.2' });
  assert.equal(dicomEncoding(meta[0]!.bytes), { kind: 'bare-meta' });
  assert.equal(dicomEncoding(slices(1)[0]!.bytes), { kind: 'part10' });
  // Explicit VR Big Endian, bare: group 0008 byte-swapped, then a VR.
  assert.equal(dicomEncoding(new Uint8Array([0x00, 0x08, 0x00, 0x16, 0x55, 0x49, 0x00, 0x02, 0x31, 0x00])), { kind: 'bare', transferSyntax: '1.2.840.10008.1.2.2' });
  // Not DICOM: NIfTI-1 and -2 headers, gzip, text, a short file, an implicit length past the end.
  for (const b of [[0x5c, 1, 0, 0, 0, 0, 0, 0], [0x1c, 2, 0, 0, 0, 0, 0, 0], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0], [...new TextEncoder().encode('hello world')], [8, 0, 5], [8, 0, 5, 0, 0xff, 0xff, 0, 0]])
    assert.is(looksLikeDicom(new Uint8Array(b)), false, JSON.stringify(b));
  for (const files of [explicit, implicit, meta]) {
    const r = readDicomSeries(files);
    assert.is(r.series.length, 1);
    assert.is(r.skipped.length, 0);
    assert.equal(r.series[0]!.volume.shape, [3, 2, 3]);
    assert.equal(valueRange(r.series[0]!.volume.data), { min: -1024, max: 25 - 1024, nonFinite: 0 });
  }
  // Mixed with Part 10 files in one folder: one series.
  const mixed = [slices(3, { implicit: true })[0]!, explicit[1]!, implicit[2]!];
  const r = readDicomSeries(mixed);
  assert.equal(r.series.map((s) => s.slices.length), [3]);
  assert.equal(r.series[0]!.transferSyntaxes.sort(), ['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);
  // A bare dataset that does not parse is named, with how it was read.
  throwsData(() => readDicomSeries([{ name: 'cut', bytes: explicit[0]!.bytes.subarray(0, 150) }]), 'cut', /DICOM dataset|Rows|PixelData/);
});

test('a single bare DICOM file given as a volume path (data inspect, training) is read as DICOM (its series), not as NIfTI', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-bare-'));
  try {
    for (const f of slices(3, { layout: 'bare' })) writeFileSync(join(dir, f.name), f.bytes);
    const v = await readVolumeFile(join(dir, 'IM1'));
    assert.equal(v.shape, [3, 2, 3]);
    // The training data path too (a manifest's volume may be one DICOM file).
    const { readCaseVolume } = await import('../../src/data/dataset-volumes.ts');
    assert.equal((await readCaseVolume(join(dir, 'IM2'), {})).shape, [3, 2, 3]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------
// Kind 5: orientation tolerance

test('ImageOrientationPatient float noise does not split a series; real differences still do', () => {
  // Alternating +-1e-9 .. 3e-9 noise, as the case in dwv issues 1877 / 2185 (rounding to 3
  // decimals turned +1e-9 into "0.000" and -1e-9 into "-0.000").
  const noise = [1e-9, -1e-9, 3e-9, -2e-9, 1e-9, -3e-9];
  const noisy = slices(6, { iop: (s) => [1, noise[s]!, 0, -noise[s]!, 1, 0] });
  const r = readDicomSeries(noisy);
  assert.is(r.series.length, 1);
  const s = r.series[0]!;
  assert.is(s.slices.length, 6);
  assert.is(s.sliceSpacing, 2.5);
  assert.equal(s.warnings, []);
  // Noise around 0.5 (an oblique series), at the rounding boundary of 3 decimals: one series.
  const c = Math.SQRT1_2;
  const oblique = slices(4, { iop: (k) => [1, 0, 0, 0, c + (k % 2 ? 4e-7 : -4e-7), c], position: undefined });
  assert.is(readDicomSeries(oblique).series.length, 1);
  // Pixel spacing noise likewise.
  const ps = slices(4, { name: (k) => `p${k}` }).map((f, k) => ({ name: f.name, bytes: writeTestDicom({ rows: 2, columns: 3, pixels: new Array(6).fill(k), position: [0, 0, 2.5 * k], pixelSpacing: [0.703125 + (k % 2 ? 1e-9 : 0), 0.703125], instanceNumber: k + 1, seriesNumber: 3 }) }));
  assert.is(readDicomSeries(ps).series.length, 1);
  // A localizer in the same series (a different orientation) is its own entry, with a warning.
  const loc = { name: 'loc', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: new Array(6).fill(0), position: [0, 0, 0], orientation: [1, 0, 0, 0, 0, -1], pixelSpacing: [0.7, 0.7], instanceNumber: 99, seriesNumber: 3 }) };
  const withLoc = readDicomSeries([...noisy, loc]);
  assert.equal(withLoc.series.map((x) => x.slices.length).sort(), [1, 6]);
  assert.ok(withLoc.series.every((x) => x.warnings.some((w) => /2 different geometries/.test(w))));
  // A tilt of 0.01 (0.6 degrees) is a different geometry, not noise.
  const tilted = [...slices(2), ...slices(2, { iop: () => [1, 0, 0, 0, 0.99995, 0.01], name: (k) => `t${k}`, instanceNumber: undefined })];
  assert.is(readDicomSeries(tilted).series.length, 2);
});

// ---------------------------------------------------------------------------------------
// Kind 6: Enhanced (multi-frame) CT

test('Enhanced CT: frames placed from the per-frame and shared functional groups; rescale from PixelValueTransformationSequence', () => {
  const frames = [0, 1, 2].map((f) => ({ position: [-10, -20, 5 - 2.5 * f] as [number, number, number], pixels: Array.from({ length: 20 }, (_, p) => 1000 + 10 * f + p) }));
  for (const implicit of [false, true]) {
    const file = { name: 'enh.dcm', bytes: writeTestEnhancedDicom({ rows: 4, columns: 5, frames, implicit, rescaleIntercept: -1024 }) };
    const r = readDicomSeries([file]);
    assert.is(r.series.length, 1);
    const s = r.series[0]!;
    assert.equal(s.volume.shape, [5, 4, 3]);
    assert.equal(s.slices.map((x) => [x.frame, x.position[2], x.file]), [[3, 0, 'enh.dcm'], [2, 2.5, 'enh.dcm'], [1, 5, 'enh.dcm']]);
    assert.equal(Array.from(s.volume.spacing), [0.7, 0.7, 2.5]);
    assert.equal(voxelToWorld(s.volume, [0, 0, 0]), [10, 20, 0]);
    // Plane k = 0 is frame 3 (lowest z): stored 1020 + p -> HU -4 + p.
    assert.is(s.volume.data[0], 1020 - 1024);
    assert.is(s.volume.data[2 * 20 + 19], 1000 + 19 - 1024);
    // "image N" in a series that is one multi-frame file means frame N.
    assert.equal(seriesMetaFromDicom(s).slices, [{ instanceNumber: 3, z: 0 }, { instanceNumber: 2, z: 2.5 }, { instanceNumber: 1, z: 5 }]);
  }
  // A per-frame rescale overrides the shared one.
  const perFrame = frames.map((f, k) => ({ ...f, rescaleIntercept: k === 1 ? -1000 : undefined }));
  const s2 = readDicomSeries([{ name: 'e2', bytes: writeTestEnhancedDicom({ rows: 4, columns: 5, frames: perFrame, rescaleIntercept: -1024 }) }]).series[0]!;
  assert.is(s2.volume.data[20], 1010 - 1000); // plane 1 = frame 2
  assert.is(s2.volume.data[0], 1020 - 1024);
  // Per-frame orientations (no shared one), a stack of two orientations in one file: two entries.
  const two = frames.map((f, k) => ({ ...f, orientation: k < 2 ? [1, 0, 0, 0, 1, 0] : [1, 0, 0, 0, 0, -1] }));
  const r3 = readDicomSeries([{ name: 'e3', bytes: writeTestEnhancedDicom({ rows: 4, columns: 5, frames: two }) }]);
  assert.equal(r3.series.map((x) => x.slices.length).sort(), [1, 2]);
});

test('Enhanced CT with encapsulated frames (RLE): offset table, one fragment per frame, several fragments per frame', () => {
  const frames = [0, 1, 2].map((f) => ({ position: [0, 0, 2.5 * f] as [number, number, number], pixels: Array.from({ length: 20 }, (_, p) => 100 * f + p) }));
  const rle = frames.map((f) => encodeRle(f.pixels, 4, 5, 16));
  const variants: [string, Uint8Array[][], boolean][] = [
    ['offset table', rle.map((x) => fragments(x, 40)), true],
    ['one fragment per frame', rle.map((x) => [x]), false],
  ];
  for (const [what, enc, bot] of variants) {
    const bytes = writeTestEnhancedDicom({ rows: 4, columns: 5, frames, transferSyntax: '1.2.840.10008.1.2.5', encapsulated: enc, basicOffsetTable: bot, rescaleIntercept: 0 });
    const s = readDicomSeries([{ name: 'rle.dcm', bytes }]).series[0]!;
    assert.equal(Array.from(s.volume.data), frames.flatMap((f) => f.pixels), what);
  }
  // Several RLE fragments per frame and no offset table: which fragments belong to which frame cannot be told.
  const bytes = writeTestEnhancedDicom({ rows: 4, columns: 5, frames, transferSyntax: '1.2.840.10008.1.2.5', encapsulated: rle.map((x) => fragments(x, 40)) });
  throwsData(() => readDicomSeries([{ name: 'rle.dcm', bytes }]), 'rle.dcm', /PixelData/, /3 frames in \d+ .*fragments without a basic offset table/);
});

test('multi-frame files that cannot be placed: the error says multi-frame and names what is missing, never tags that are there', () => {
  const frames = [0, 1].map((f) => ({ position: [0, 0, 2.5 * f] as [number, number, number], pixels: new Array(20).fill(f) }));
  throwsData(
    () => readDicomSeries([{ name: 'noperframe.dcm', bytes: writeTestEnhancedDicom({ rows: 4, columns: 5, frames, noPerFrameGroups: true }) }]),
    'noperframe.dcm',
    /NumberOfFrames \(0028,0008\)/,
    /is 2, but the file has no PerFrameFunctionalGroupsSequence \(5200,9230\): multi-frame images without per-frame positions are not supported/,
  );
  throwsData(
    () => readDicomSeries([{ name: 'count.dcm', bytes: writeTestEnhancedDicom({ rows: 4, columns: 5, frames, numberOfFrames: 3 }) }]),
    'count.dcm',
    /PerFrameFunctionalGroupsSequence \(5200,9230\)/,
    /has 2 items, NumberOfFrames \(0028,0008\) is 3/,
  );
  // Pixel data shorter than NumberOfFrames frames.
  const short = writeTestEnhancedDicom({ rows: 4, columns: 5, frames });
  throwsData(() => readDicomSeries([{ name: 'short.dcm', bytes: short.subarray(0, short.length - 10) }]), 'short.dcm', /PixelData|DICOM dataset/);
});

// ---------------------------------------------------------------------------------------
// Kind 7: HighBit

test('HighBit other than BitsStored - 1: the stored value is read from the bits HighBit names (unsigned and signed)', () => {
  // The legacy left-aligned layout: 12 bits stored at bits 15..4 (HighBit 15); unused bits set.
  const stored = [1024, 1064, 1104, 0, 4095, 7];
  const u = readDicomSeries([{ name: 'u', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: stored, bitsStored: 12, highBit: 15, pixelRepresentation: 0, rescaleIntercept: -1024, fillUnusedBits: true }) }]);
  assert.equal(Array.from(u.series[0]!.volume.data), stored.map((v) => v - 1024));
  // HighBit 13: bits 13..2.
  const m = readDicomSeries([{ name: 'm', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: stored, bitsStored: 12, highBit: 13, pixelRepresentation: 0, fillUnusedBits: true }) }]);
  assert.equal(Array.from(m.series[0]!.volume.data), stored);
  // Signed 12-bit at HighBit 15: sign-extended from bit 15.
  const signed = [-1000, -1, 0, 2047, -2048, 40];
  const sg = readDicomSeries([{ name: 's', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: signed, bitsStored: 12, highBit: 15, pixelRepresentation: 1, fillUnusedBits: true }) }]);
  assert.equal(Array.from(sg.series[0]!.volume.data), signed);
  // The usual layout with junk above BitsStored still masks it (unchanged behaviour).
  const low = readDicomSeries([{ name: 'l', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: stored, bitsStored: 12, pixelRepresentation: 0, fillUnusedBits: true }) }]);
  assert.equal(Array.from(low.series[0]!.volume.data), stored);
  // A HighBit the stored bits cannot end at: refused by name, never read as something else.
  for (const [highBit, why] of [[10, /is 10, which does not fit BitsStored 12 in BitsAllocated 16 \(HighBit must be 11\.\.15\)/], [16, /is 16/]] as const)
    throwsData(
      () => readDicomSeries([{ name: 'bad', bytes: writeTestDicom({ rows: 2, columns: 3, pixels: stored, bitsStored: 12, highBit, pixelRepresentation: 0 }) }], { strict: true }),
      'bad',
      /HighBit \(0028,0102\)/,
      why,
    );
});

test.run();
