// Compressed DICOM pixel data: every supported codec round-trips a synthetic CT-like slice
// (signed and unsigned, with RescaleIntercept) through a DICOM file written by the test
// writer (encapsulated: fragments, basic offset table) and the series reader. Encoders: RLE
// and JPEG Lossless from test/helpers/dicom-writer.ts (written independently of the decoders);
// JPEG-LS, JPEG 2000 and JPEG baseline from the full (encoder) builds of the same
// @cornerstonejs codec packages, loaded here from node_modules. Bad codestreams must give a
// DataError naming the file and the transfer syntax, never a crash or a hang.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import dicomParser from 'dicom-parser';
import { DataError } from '../../src/errors.ts';
import { readDicomSeries, transferSyntaxName, type DicomFileInput, type DicomReadOptions } from '../../src/data/dicom.ts';
import { jpegLosslessDecoder } from '../../src/data/codecs/jpeg-lossless.ts';
import { decodeRleFrame } from '../../src/data/codecs/rle.ts';
import { charlsDecoder, type WasmDecoderObject } from '../../src/data/codecs/emscripten.ts';
import { loadCharlsNode, loadLibJpegTurboNode, loadOpenJpegNode, readDicomFolder } from '../../src/data/io/node.ts';
import { encodeJpegLossless, encodeRle, fragments, writeTestDicom } from '../helpers/dicom-writer.ts';
import { rng } from '../helpers/random.ts';

const TS = {
  rle: '1.2.840.10008.1.2.5',
  lossless: '1.2.840.10008.1.2.4.57',
  sv1: '1.2.840.10008.1.2.4.70',
  jpegLs: '1.2.840.10008.1.2.4.80',
  jpegLsNear: '1.2.840.10008.1.2.4.81',
  baseline: '1.2.840.10008.1.2.4.50',
  extended: '1.2.840.10008.1.2.4.51',
  j2k: '1.2.840.10008.1.2.4.90',
};

const ROWS = 80, COLS = 96, N = ROWS * COLS;

/** A CT-like slice in HU: padding (-2048) outside the scan circle, air, a body of soft tissue with two lungs and a bone, noise. */
function ctSliceHu(seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(N);
  for (let y = 0; y < ROWS; y++)
    for (let x = 0; x < COLS; x++) {
      const u = ((x + 0.5) / COLS) * 2 - 1, v = ((y + 0.5) / ROWS) * 2 - 1;
      const noise = Math.round((r() - 0.5) * 40);
      let hu: number;
      if (u * u + v * v > 1.1) hu = -2048;
      else if ((u / 0.85) ** 2 + (v / 0.7) ** 2 > 1) hu = -1000 + (noise >> 2);
      else if (((u - 0.4) / 0.3) ** 2 + (v / 0.4) ** 2 < 1 || ((u + 0.4) / 0.3) ** 2 + (v / 0.4) ** 2 < 1) hu = -850 + noise;
      else if (u * u + (v - 0.45) ** 2 < 0.02) hu = 1200 + 10 * noise;
      else hu = 40 + noise;
      out[y * COLS + x] = hu;
    }
  return out;
}

/** How a slice is stored: stored = clamp((HU - intercept) / slope) in BitsStored bits. */
interface Variant {
  signed: boolean;
  bitsStored: number;
  intercept: number;
  slope?: number;
  bitsAllocated?: 8 | 16;
}
const V = {
  /** Signed 16-bit, intercept -1000 (stored values -1048 .. 2400). */
  signed16: { signed: true, bitsStored: 16, intercept: -1000 },
  /** Unsigned 12-bit, intercept -1024 (the padding clamps to 0). */
  unsigned12: { signed: false, bitsStored: 12, intercept: -1024 },
  /** Signed 12-bit, intercept 0. */
  signed12: { signed: true, bitsStored: 12, intercept: 0 },
  /** Unsigned 8-bit (for JPEG baseline), slope 16. */
  unsigned8: { signed: false, bitsStored: 8, intercept: -1024, slope: 16, bitsAllocated: 8 },
} satisfies Record<string, Variant>;

function stored(hu: Int32Array, v: Variant): Int32Array {
  const lo = v.signed ? -(2 ** (v.bitsStored - 1)) : 0, hi = v.signed ? 2 ** (v.bitsStored - 1) - 1 : 2 ** v.bitsStored - 1;
  return hu.map((h) => Math.min(hi, Math.max(lo, Math.round((h - v.intercept) / (v.slope ?? 1)))));
}

/** Two's-complement bit patterns in `bits` bits (what a codec of that precision stores). */
const pattern = (s: Int32Array, bits: number): Int32Array => s.map((x) => x & (2 ** bits - 1));

/** n slices (z = 2.5 k, so voxel plane k is slice k), each encoded by `encode`; and the expected HU. */
function series(
  ts: string,
  v: Variant,
  encode: (s: Int32Array, k: number) => Uint8Array,
  opts: { n?: number; fragmentSize?: number; offsetTable?: boolean; name?: string; seriesNumber?: number } = {},
): { files: DicomFileInput[]; expected: Float32Array } {
  const n = opts.n ?? 3;
  const files: DicomFileInput[] = [];
  const expected = new Float32Array(N * n);
  for (let k = 0; k < n; k++) {
    const s = stored(ctSliceHu(100 + k), v);
    for (let i = 0; i < N; i++) expected[k * N + i] = s[i] * (v.slope ?? 1) + v.intercept;
    files.push({
      name: `${opts.name ?? 'img'}${k}.dcm`,
      bytes: writeTestDicom({
        rows: ROWS,
        columns: COLS,
        pixels: [],
        position: [0, 0, 2.5 * k],
        instanceNumber: k + 1,
        seriesNumber: opts.seriesNumber ?? 1,
        seriesUID: `1.2.826.0.1.3680043.2.1125.7.${opts.seriesNumber ?? 1}`,
        rescaleIntercept: v.intercept,
        rescaleSlope: v.slope ?? 1,
        pixelRepresentation: v.signed ? 1 : 0,
        bitsStored: v.bitsStored,
        bitsAllocated: v.bitsAllocated ?? 16,
        transferSyntax: ts,
        encapsulated: fragments(encode(s, k), opts.fragmentSize),
        basicOffsetTable: opts.offsetTable,
      }),
    });
  }
  return { files, expected };
}

function voxelsMatch(actual: Float32Array, expected: Float32Array, tol: number, msg: string): number {
  assert.is(actual.length, expected.length, `${msg}: voxel count`);
  let maxErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= tol)) assert.unreachable(`${msg}: voxel ${i} is ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    maxErr = Math.max(maxErr, e);
  }
  return maxErr;
}

function readBack(files: DicomFileInput[], opts: DicomReadOptions = {}): Float32Array {
  const r = readDicomSeries(files, opts);
  assert.is(r.series.length, 1);
  assert.equal(r.series[0].volume.shape, [COLS, ROWS, files.length]);
  return r.series[0].volume.data;
}

/** A DataError naming the file, whose message names the transfer syntax (UID and name). */
function dataErrorFor(fn: () => unknown, file: string, ts: string, detail?: RegExp): DataError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DataError)) throw new Error(`expected a DataError, got ${e instanceof Error ? e.stack : e}`);
    const d = e;
    assert.is(d.source, file, d.message);
    assert.ok(d.message.includes(ts) && d.message.includes(transferSyntaxName(ts)), `message names ${ts}: ${d.message}`);
    if (detail) assert.match(d.message, detail);
    assert.ok(!/\n\s+at /.test(d.message), 'no stack trace in the message');
    return d;
  }
  assert.unreachable(`expected a DataError for ${file} (${ts})`);
  throw new Error('unreachable');
}

// The encoder builds of the codec packages (the reader only loads the decode-only builds).
const require = createRequire(import.meta.url);
type Encoder = {
  getDecodedBuffer(fi: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  delete(): void;
  setNearLossless?(n: number): void;
  setProgressive?(p: number): void;
  setQuality?(...a: unknown[]): void;
};
const encoderModules = new Map<string, Promise<Record<string, new () => Encoder>>>();
function encoderModule(pkg: string): Promise<Record<string, new () => Encoder>> {
  if (!encoderModules.has(pkg)) {
    const factory = require(`${pkg}/wasmjs`) as (m: object) => Promise<Record<string, new () => Encoder>>;
    encoderModules.set(pkg, factory({ wasmBinary: readFileSync(require.resolve(`${pkg}/wasm`)), print: () => {}, printErr: () => {} }));
  }
  return encoderModules.get(pkg)!;
}

async function wasmEncoder(pkg: string, cls: string, setup: (e: Encoder) => void): Promise<(px: ArrayLike<number>, fi: { bitsPerSample: number; isSigned?: boolean }) => Uint8Array> {
  const m = await encoderModule(pkg);
  return (px, fi) => {
    const e = new m[cls]();
    try {
      const buf = e.getDecodedBuffer({ width: COLS, height: ROWS, componentCount: 1, isSigned: false, ...fi });
      if (fi.bitsPerSample <= 8) for (let i = 0; i < N; i++) buf[i] = px[i];
      else {
        const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        for (let i = 0; i < N; i++) dv.setUint16(2 * i, px[i] & 0xffff, true);
      }
      setup(e);
      e.encode();
      return e.getEncodedBuffer().slice();
    } finally {
      e.delete();
    }
  };
}
const jpegLsEncoder = (near = 0) => wasmEncoder('@cornerstonejs/codec-charls', 'JpegLSEncoder', (e) => e.setNearLossless!(near));
const j2kEncoder = () => wasmEncoder('@cornerstonejs/codec-openjpeg', 'J2KEncoder', () => {});
const jpegEncoder = (progressive = 0) =>
  wasmEncoder('@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGEncoder', (e) => {
    e.setProgressive!(progressive);
    e.setQuality!(95);
  });

// ---------------------------------------------------------------------------------------

test('RLE Lossless: 16-bit signed / 12-bit unsigned (overlay bits masked) / 12-bit signed / 8-bit, fragments and offset table', () => {
  let s = series(TS.rle, V.signed16, (x) => encodeRle(x, ROWS, COLS, 16), { fragmentSize: 1000, offsetTable: true });
  voxelsMatch(readBack(s.files), s.expected, 0, 'signed 16');
  // bits above BitsStored (an overlay plane in bit 15 of some pixels) are masked off
  s = series(TS.rle, V.unsigned12, (x) => encodeRle(x.map((v, i) => (i % 97 === 0 ? v | 0x8000 : v)), ROWS, COLS, 16));
  voxelsMatch(readBack(s.files), s.expected, 0, 'unsigned 12');
  s = series(TS.rle, V.signed12, (x) => encodeRle(pattern(x, 12), ROWS, COLS, 16));
  voxelsMatch(readBack(s.files), s.expected, 0, 'signed 12 (sign-extended from bit 11)');
  assert.ok(s.expected.some((x) => x < -1000));
  s = series(TS.rle, V.unsigned8, (x) => encodeRle(x, ROWS, COLS, 8));
  voxelsMatch(readBack(s.files), s.expected, 0, 'unsigned 8');
  // the decoder alone: one segment byte beyond the image (padding) is tolerated
  const frame = encodeRle([1, 2, 3, 4, 5, 6], 2, 3, 8);
  assert.equal(Array.from(decodeRleFrame(frame, 2, 3, 8)), [1, 2, 3, 4, 5, 6]);
  const padded = new Uint8Array([...frame, 0x00, 0x07]); // a literal run of one extra byte
  assert.equal(Array.from(decodeRleFrame(padded, 2, 3, 8)), [1, 2, 3, 4, 5, 6]);
});

test('JPEG Lossless SV1 (.70): 16-bit signed, 12-bit unsigned and signed, fragments, restart intervals', () => {
  let s = series(TS.sv1, V.signed16, (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16 }), { fragmentSize: 2000, offsetTable: true });
  voxelsMatch(readBack(s.files), s.expected, 0, 'signed 16');
  s = series(TS.sv1, V.unsigned12, (x) => encodeJpegLossless(x, ROWS, COLS, { precision: 12 }));
  voxelsMatch(readBack(s.files), s.expected, 0, 'unsigned 12');
  s = series(TS.sv1, V.signed12, (x) => encodeJpegLossless(pattern(x, 12), ROWS, COLS, { precision: 12 }));
  voxelsMatch(readBack(s.files), s.expected, 0, 'signed 12');
  // 16-bit patterns of 12-bit signed data (the encoder used the whole container): sign-extended from BitsStored
  s = series(TS.sv1, V.signed12, (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16 }));
  voxelsMatch(readBack(s.files), s.expected, 0, 'signed 12 in 16-bit codestream');
  s = series(TS.sv1, V.signed16, (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16, restartInterval: 8 * COLS }));
  voxelsMatch(readBack(s.files), s.expected, 0, 'restart every 8 rows');
});

test('JPEG Lossless process 14 (.57): predictors 1..7', () => {
  for (let p = 1; p <= 7; p++) {
    const s = series(TS.lossless, V.signed16, (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16, predictor: p }), { n: 2 });
    voxelsMatch(readBack(s.files), s.expected, 0, `predictor ${p}`);
    const u = series(TS.lossless, V.unsigned12, (x) => encodeJpegLossless(x, ROWS, COLS, { precision: 12, predictor: p }), { n: 1 });
    voxelsMatch(readBack(u.files), u.expected, 0, `predictor ${p}, 12-bit`);
  }
});

test('JPEG Lossless decoder: 280 random small images (precision 2..16, predictors 1..7, restart intervals) against the test encoder', () => {
  const r = rng(11);
  const fails: string[] = [];
  for (let t = 0; t < 280; t++) {
    const rows = 1 + Math.floor(r() * 24), cols = 1 + Math.floor(r() * 24), P = 2 + Math.floor(r() * 15), pred = 1 + (t % 7);
    const max = 2 ** P;
    const px = new Int32Array(rows * cols);
    let v = Math.floor(r() * max);
    for (let i = 0; i < px.length; i++) {
      if (t % 3 === 0) v = Math.floor(r() * max); // noise: long codes, large differences, wrap-around
      else if (t % 3 === 1) v = (v + Math.round((r() - 0.5) * 8) + max) % max; // smooth
      else if (r() < 0.05) v = Math.floor(r() * max); // flat with jumps: mostly zero differences
      px[i] = v;
    }
    const restartInterval = t % 4 === 3 ? cols * (1 + Math.floor(r() * 3)) : 0;
    const out = jpegLosslessDecoder.decode(encodeJpegLossless(px, rows, cols, { precision: P, predictor: pred, restartInterval }));
    const got = P <= 8 ? out.pixels : new Uint16Array(out.pixels.buffer, out.pixels.byteOffset, px.length);
    const bad = px.findIndex((x, i) => got[i] !== x);
    if (bad >= 0) fails.push(`#${t} ${cols}x${rows} P=${P} predictor ${pred} restart ${restartInterval}: pixel ${bad} (of ${px.length}) is ${got[bad]}, not ${px[bad]}`);
  }
  assert.equal(fails, []);
});

test('JPEG-LS (.80 lossless, .81 near-lossless): 16-bit signed, 12-bit unsigned', async () => {
  const jpegLs = await loadCharlsNode();
  const enc = await jpegLsEncoder();
  let s = series(TS.jpegLs, V.signed16, (x) => enc(pattern(x, 16), { bitsPerSample: 16 }), { fragmentSize: 1500, offsetTable: true });
  voxelsMatch(readBack(s.files, { jpegLs }), s.expected, 0, 'signed 16');
  s = series(TS.jpegLs, V.unsigned12, (x) => enc(x, { bitsPerSample: 12 }));
  voxelsMatch(readBack(s.files, { jpegLs }), s.expected, 0, 'unsigned 12');
  s = series(TS.jpegLs, V.signed12, (x) => enc(pattern(x, 12), { bitsPerSample: 12 }));
  voxelsMatch(readBack(s.files, { jpegLs }), s.expected, 0, 'signed 12');
  const near = await jpegLsEncoder(3);
  s = series(TS.jpegLsNear, V.unsigned12, (x) => near(x, { bitsPerSample: 12 }));
  const err = voxelsMatch(readBack(s.files, { jpegLs }), s.expected, 3, 'near-lossless (NEAR = 3)');
  assert.ok(err > 0, 'near-lossless coding changed some values');
  // without a decoder: says which one is needed
  dataErrorFor(() => readDicomSeries(s.files), 'img0.dcm', TS.jpegLsNear, /needs a JPEG-LS decoder \(options\.jpegLs/);
});

test('JPEG 2000 lossless (.90): 16-bit signed, 12-bit unsigned', async () => {
  const jpeg2000 = await loadOpenJpegNode();
  const enc = await j2kEncoder();
  let s = series(TS.j2k, V.signed16, (x) => enc(x, { bitsPerSample: 16, isSigned: true }), { fragmentSize: 1500 });
  voxelsMatch(readBack(s.files, { jpeg2000 }), s.expected, 0, 'signed 16');
  s = series(TS.j2k, V.unsigned12, (x) => enc(x, { bitsPerSample: 12 }));
  voxelsMatch(readBack(s.files, { jpeg2000 }), s.expected, 0, 'unsigned 12');
});

test('JPEG baseline (.50, and 8-bit .51): lossy within tolerance; progressive and 12-bit refused by name', async () => {
  const jpegBaseline = await loadLibJpegTurboNode();
  const enc = await jpegEncoder();
  const s = series(TS.baseline, V.unsigned8, (x) => enc(x, { bitsPerSample: 8 }));
  const got = readBack(s.files, { jpegBaseline });
  // quality 95: a few stored units at the sharpest edges (x 16 HU per unit), small on average
  const maxErr = voxelsMatch(got, s.expected, 8 * 16, 'baseline');
  let sum = 0;
  for (let i = 0; i < got.length; i++) sum += Math.abs(got[i] - s.expected[i]);
  assert.ok(sum / got.length < 16, `mean error ${sum / got.length} HU`);
  assert.ok(maxErr > 0, 'lossy coding changed some values');
  const ext = series(TS.extended, V.unsigned8, (x) => enc(x, { bitsPerSample: 8 }), { n: 1 });
  voxelsMatch(readBack(ext.files, { jpegBaseline }), ext.expected, 8 * 16, 'extended, 8-bit');

  const progressive = await jpegEncoder(1);
  const prog = series(TS.baseline, V.unsigned8, (x) => progressive(x, { bitsPerSample: 8 }), { n: 1, name: 'prog' });
  dataErrorFor(() => readDicomSeries(prog.files, { jpegBaseline }), 'prog0.dcm', TS.baseline, /progressive \(SOF2\)/);
  // a 12-bit extended frame header (SOF1, P = 12): refused before decoding
  const twelve = series(TS.extended, V.unsigned8, (x) => {
    const b = enc(x, { bitsPerSample: 8 });
    const at = b.findIndex((v, i) => v === 0xff && b[i + 1] === 0xc0);
    b[at + 1] = 0xc1;
    b[at + 4] = 12;
    return b;
  }, { n: 1, name: 'twelve' });
  dataErrorFor(() => readDicomSeries(twelve.files, { jpegBaseline }), 'twelve0.dcm', TS.extended, /12-bit extended sequential \(SOF1\) JPEG is not supported/);
  dataErrorFor(() => readDicomSeries(s.files), 'img0.dcm', TS.baseline, /needs a JPEG baseline \(8-bit\) decoder/);
});

test('readDicomFolder loads the decoders a folder needs (JPEG-LS, baseline, JPEG 2000; RLE and JPEG Lossless built in)', async () => {
  const ls = await jpegLsEncoder();
  const jpg = await jpegEncoder();
  const j2k = await j2kEncoder();
  const parts = [
    series(TS.jpegLs, V.signed16, (x) => ls(pattern(x, 16), { bitsPerSample: 16 }), { n: 2, name: 'ls', seriesNumber: 1 }),
    series(TS.baseline, V.unsigned8, (x) => jpg(x, { bitsPerSample: 8 }), { n: 2, name: 'jpg', seriesNumber: 2 }),
    series(TS.j2k, V.unsigned12, (x) => j2k(x, { bitsPerSample: 12 }), { n: 2, name: 'j2k', seriesNumber: 3 }),
    series(TS.sv1, V.signed16, (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16 }), { n: 2, name: 'sv1', seriesNumber: 4 }),
    series(TS.rle, V.unsigned12, (x) => encodeRle(x, ROWS, COLS, 16), { n: 2, name: 'rle', seriesNumber: 5 }),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-codecs-'));
  try {
    for (const p of parts) for (const f of p.files) writeFileSync(join(dir, f.name), f.bytes);
    const r = await readDicomFolder(dir);
    assert.equal(r.series.map((s) => s.transferSyntax), [TS.jpegLs, TS.baseline, TS.j2k, TS.sv1, TS.rle]);
    r.series.forEach((s, i) => voxelsMatch(s.volume.data, parts[i].expected, i === 1 ? 8 * 16 : 0, s.transferSyntax));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------
// Bad input

test('corrupt, truncated, garbage and mis-sized codestreams: DataError naming the file and transfer syntax; no hang', async () => {
  const decoders: DicomReadOptions = { jpegLs: await loadCharlsNode(), jpeg2000: await loadOpenJpegNode(), jpegBaseline: await loadLibJpegTurboNode() };
  const ls = await jpegLsEncoder();
  const jpg = await jpegEncoder();
  const j2k = await j2kEncoder();
  const codecs: { ts: string; v: Variant; encode: (x: Int32Array) => Uint8Array }[] = [
    { ts: TS.rle, v: V.signed16, encode: (x) => encodeRle(x, ROWS, COLS, 16) },
    { ts: TS.sv1, v: V.signed16, encode: (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16 }) },
    { ts: TS.lossless, v: V.signed16, encode: (x) => encodeJpegLossless(pattern(x, 16), ROWS, COLS, { precision: 16, predictor: 6, restartInterval: 4 * COLS }) },
    { ts: TS.jpegLs, v: V.signed16, encode: (x) => ls(pattern(x, 16), { bitsPerSample: 16 }) },
    { ts: TS.j2k, v: V.signed16, encode: (x) => j2k(x, { bitsPerSample: 16, isSigned: true }) },
    { ts: TS.baseline, v: V.unsigned8, encode: (x) => jpg(x, { bitsPerSample: 8 }) },
  ];
  const r = rng(7);
  for (const c of codecs) {
    const good = c.encode(stored(ctSliceHu(1), c.v));
    const one = (name: string, bytes: Uint8Array, rows = ROWS) =>
      series(c.ts, c.v, () => bytes, { n: 1, name }).files.map((f) => (rows === ROWS ? f : { ...f, bytes: withRows(f.bytes, rows) }));
    // sanity: the good one reads
    readDicomSeries(one('good', good), decoders);
    // truncated codestream (the DICOM file itself is whole)
    for (let tenth = 1; tenth <= 9; tenth++) {
      const t = Date.now();
      dataErrorFor(() => readDicomSeries(one('cut', good.slice(0, Math.floor((good.length * tenth) / 10) & ~1)), decoders), 'cut0.dcm', c.ts);
      assert.ok(Date.now() - t < 1000, `${c.ts} cut at ${tenth}/10: ${Date.now() - t} ms`);
    }
    // garbage, and an empty frame
    const junk = new Uint8Array(600).map(() => Math.floor(r() * 256));
    dataErrorFor(() => readDicomSeries(one('junk', junk), decoders), 'junk0.dcm', c.ts);
    dataErrorFor(() => readDicomSeries(one('tiny', new Uint8Array(2)), decoders), 'tiny0.dcm', c.ts);
    // the DICOM header says 79 rows, the codestream has 80: refused (before decoding, where the codestream says its size)
    dataErrorFor(() => readDicomSeries(one('rows', good, ROWS - 1), decoders), 'rows0.dcm', c.ts, /80|79/);
    // random byte errors after the first 80 bytes: decoded (possibly wrong: these codecs have no checksums) or a DataError; nothing else, and quickly
    const t0 = Date.now();
    for (let trial = 0; trial < 15; trial++) {
      const bad = good.slice();
      for (let k = 0; k < 1 + trial; k++) bad[80 + Math.floor(r() * (bad.length - 80))] = Math.floor(r() * 256);
      try {
        readDicomSeries(one('flip', bad), decoders);
      } catch (e) {
        if (!(e instanceof DataError)) throw new Error(`${c.ts} trial ${trial}: expected a DataError, got ${e instanceof Error ? e.stack : e}`);
        assert.is(e.source, 'flip0.dcm');
        assert.ok(e.message.includes(c.ts), e.message);
      }
    }
    assert.ok(Date.now() - t0 < 3000, `${c.ts}: corrupt codestreams took ${Date.now() - t0} ms`);
    // the file cut inside the pixel data: a DataError naming the file
    const whole = one('filecut', good)[0].bytes;
    try {
      readDicomSeries([{ name: 'filecut.dcm', bytes: whole.subarray(0, whole.length - Math.floor(good.length / 2)) }], decoders);
      assert.unreachable('file cut inside the pixel data');
    } catch (e) {
      assert.instance(e, DataError);
      assert.is((e as DataError).source, 'filecut.dcm');
    }
  }
  // the decoders still work after all that
  const s = series(TS.jpegLs, V.signed16, (x) => ls(pattern(x, 16), { bitsPerSample: 16 }), { n: 1 });
  voxelsMatch(readBack(s.files, decoders), s.expected, 0, 'JPEG-LS after errors');
  const t = series(TS.j2k, V.signed16, (x) => j2k(x, { bitsPerSample: 16, isSigned: true }), { n: 1 });
  voxelsMatch(readBack(t.files, decoders), t.expected, 0, 'JPEG 2000 after errors');
});

test('RLE headers: wrong segment count, offsets out of range', () => {
  const good = encodeRle(stored(ctSliceHu(1), V.signed16), ROWS, COLS, 16);
  const edit = (f: (dv: DataView) => void) => {
    const b = good.slice();
    f(new DataView(b.buffer));
    return series(TS.rle, V.signed16, () => b, { n: 1, name: 'rle' }).files;
  };
  dataErrorFor(() => readDicomSeries(edit((dv) => dv.setUint32(0, 1, true))), 'rle0.dcm', TS.rle, /1 segments; 16-bit single-sample pixels need 2/);
  dataErrorFor(() => readDicomSeries(edit((dv) => dv.setUint32(8, 1 << 30, true))), 'rle0.dcm', TS.rle, /segment 2 offset \d+ is outside the frame/);
  dataErrorFor(() => readDicomSeries(edit((dv) => dv.setUint32(4, 10, true))), 'rle0.dcm', TS.rle, /segment 1 offset 10/);
});

test('WebAssembly wrapper: a C++ exception becomes the library message; after a trap the decoder refuses work', () => {
  let mode: 'exception' | 'trap' = 'exception';
  let deleted = 0;
  class FakeDecoder implements WasmDecoderObject {
    getEncodedBuffer(n: number) {
      return new Uint8Array(n);
    }
    decode() {
      if (mode === 'exception') throw 1234; // how Emscripten hands over a C++ exception
      throw new WebAssembly.RuntimeError('unreachable');
    }
    getFrameInfo() {
      return { width: COLS, height: ROWS, bitsPerSample: 16, componentCount: 1 };
    }
    getDecodedBuffer() {
      return new Uint8Array(2 * N);
    }
    delete() {
      deleted++;
    }
  }
  const jpegLs = charlsDecoder({ JpegLSDecoder: FakeDecoder, getExceptionMessage: (e) => ['std::runtime_error', `bad stream ${e}`] });
  const good = series(TS.jpegLs, V.signed16, (x) => encodeJpegLossless(x, ROWS, COLS, { precision: 16 }), { n: 1 }).files;
  // (the frame header check wants SOF55; give it a JPEG-LS-looking header)
  for (const f of good) {
    const i = f.bytes.findIndex((v, k) => v === 0xff && f.bytes[k + 1] === 0xc3);
    f.bytes[i + 1] = 0xf7;
  }
  dataErrorFor(() => readDicomSeries(good, { jpegLs }), 'img0.dcm', TS.jpegLs, /CharLS: std::runtime_error: bad stream 1234/);
  assert.is(jpegLs.broken, false);
  mode = 'trap';
  dataErrorFor(() => readDicomSeries(good, { jpegLs }), 'img0.dcm', TS.jpegLs, /decoding failed: unreachable/);
  assert.is(jpegLs.broken, true);
  dataErrorFor(() => readDicomSeries(good, { jpegLs }), 'img0.dcm', TS.jpegLs, /CharLS is unusable after an earlier failure \(unreachable\)/);
  assert.is(deleted, 2, 'decoder objects deleted after each failure');
});

/** The same file with another Rows value (the writer's Rows element is found by its tag bytes). */
function withRows(bytes: Uint8Array, rows: number): Uint8Array {
  const b = bytes.slice();
  for (let i = 132; i + 10 <= b.length; i++)
    if (b[i] === 0x28 && b[i + 1] === 0 && b[i + 2] === 0x10 && b[i + 3] === 0 && b[i + 4] === 0x55 && b[i + 5] === 0x53) {
      new DataView(b.buffer).setUint16(i + 8, rows, true);
      return b;
    }
  throw new Error('no Rows element');
}

// ---------------------------------------------------------------------------------------
// Codestreams from another encoder

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

test("jpeg-lossless-decoder-js's own test files (an MR slice coded with predictors 1..7; read from node_modules, not part of this repo)", () => {
  // The package ships DICOM files from another encoder with its tests, and their checksums
  // (tests/driver-sel*.test.ts: 3476557349 for each predictor of the 256x256 MR slice).
  const dir = join(dirname(require.resolve('jpeg-lossless-decoder-js')), '../../tests/data');
  if (!existsSync(join(dir, 'jpeg_lossless_sel1.dcm'))) {
    console.log('  (skipped: jpeg-lossless-decoder-js ships no test files in this version)');
    return;
  }
  let first: Float32Array | null = null;
  for (let p = 1; p <= 7; p++) {
    const name = `jpeg_lossless_sel${p}.dcm`;
    const bytes = new Uint8Array(readFileSync(join(dir, name)));
    const ds = dicomParser.parseDicom(bytes);
    const el = ds.elements.x7fe00010;
    const frame = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length) as Uint8Array;
    assert.is(crc32(jpegLosslessDecoder.decode(frame).pixels), 3476557349, name);
    const s = readDicomSeries([{ name, bytes }]).series[0];
    assert.equal(s.volume.shape, [256, 256, 1]);
    if (!first) first = s.volume.data;
    else voxelsMatch(s.volume.data, first, 0, name);
  }
});

test.run();
