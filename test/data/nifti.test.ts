import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { DataError } from '../../src/errors.ts';
import {
  baseAffine,
  decodeNifti,
  decodeNiftiHeader,
  encodeNifti,
  NIFTI_DATATYPES,
  type NiftiDatatype,
} from '../../src/data/nifti.ts';
import { readNiftiFile, writeNiftiFile } from '../../src/data/io/node.ts';
import {
  affineFromRows,
  affineFromSpacing,
  createVolume,
  orientationCodes,
  sampleWorld,
  valueRange,
  voxelToWorld,
  type Volume,
} from '../../src/data/volume.ts';
import { reorientToRas } from '../../src/data/prep.ts';
import { sharedData, skipWithoutSharedData } from '../helpers/paths.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg = '') => {
  assert.is(a.length, b.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${msg} [${i}]: ${a[i]} vs ${b[i]}`);
};

/** Expects a DataError whose message names the source and the field. */
function throwsData(fn: () => unknown, source: string, field: string | RegExp, detail?: RegExp): DataError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DataError, `expected a DataError, got ${e}`);
    const d = e as DataError;
    assert.is(d.source, source);
    if (typeof field === 'string') assert.is(d.field, field, d.message);
    else assert.match(d.field, field);
    if (detail) assert.match(d.message, detail);
    assert.ok(d.message.includes(source));
    return d;
  }
  assert.unreachable(`expected a DataError (${field})`);
  throw new Error('unreachable');
}

// A float32-exact oblique affine (permuted, flipped axes; exact in the NIfTI-1 float32 sform).
const OBLIQUE = affineFromRows(
  [
    [0, -0.75, 0],
    [1.5, 0, 0],
    [0, 0, -2.5],
  ],
  [-120.5, 33.25, 70],
);

function testVolume(datatype: NiftiDatatype): Volume {
  const v = createVolume([7, 5, 4], { affine: OBLIQUE });
  const t = NIFTI_DATATYPES[datatype];
  for (let i = 0; i < v.data.length; i++) {
    if (!t.integer) v.data[i] = Math.fround(Math.sin(i) * 1000.123);
    else if (t.min < 0) v.data[i] = ((i * 37) % (Math.min(t.max, 30000) * 2)) - Math.min(t.max, 30000);
    else v.data[i] = (i * 37) % Math.min(t.max, 60000);
  }
  return v;
}

test('round trip: every datatype, .nii and .nii.gz, NIfTI-1 and NIfTI-2', () => {
  for (const dt of Object.keys(NIFTI_DATATYPES) as NiftiDatatype[])
    for (const gzip of [false, true])
      for (const version of [1, 2] as const) {
        const v = testVolume(dt);
        const bytes = encodeNifti(v, { datatype: dt, gzip, version });
        const r = decodeNifti(bytes, `rt.${dt}.v${version}${gzip ? '.gz' : ''}`);
        const what = `${dt} v${version} gz=${gzip}`;
        assert.is(r.header.version, version, what);
        assert.is(r.header.datatype, dt, what);
        assert.is(r.header.gzip, gzip, what);
        assert.equal(r.shape, v.shape, what);
        assert.equal(Array.from(r.data), Array.from(v.data), what);
        close(r.affine, v.affine, 0, what);
        close(r.spacing, [1.5, 0.75, 2.5], 1e-12, what);
        assert.is(r.header.affineSource, 'sform');
        // the qform is written too and agrees
        close(r.header.qform!, v.affine, 1e-5, `${what} qform`);
      }
});

test('scl_slope / scl_inter: applied on read, used on write; slope 0 means no scaling', () => {
  const v = createVolume([4, 3, 2], { spacing: [1, 1, 1] });
  for (let i = 0; i < v.data.length; i++) v.data[i] = -1024 + 2 * i * 50;
  const bytes = encodeNifti(v, { datatype: 'int16', sclSlope: 2, sclInter: -1024 });
  const r = decodeNifti(bytes, 'scaled.nii');
  assert.equal(Array.from(r.data), Array.from(v.data));
  assert.is(r.header.sclSlope, 2);
  assert.is(r.header.sclInter, -1024);
  // the stored values are (v + 1024) / 2
  const stored = new Int16Array(bytes.buffer, 352, v.data.length);
  assert.equal(Array.from(stored), Array.from(v.data, (x) => (x + 1024) / 2));
  // slope 0: the stored values as they are (NIfTI: "scl_slope = 0 means no scaling")
  const z = bytes.slice();
  new DataView(z.buffer).setFloat32(112, 0, true);
  const rz = decodeNifti(z, 'noscale.nii');
  assert.is(rz.header.scaled, false);
  assert.equal(Array.from(rz.data), Array.from(stored));
  // float slope on an int32 file in NIfTI-2
  const b2 = encodeNifti(v, { datatype: 'int32', version: 2, sclSlope: 0.5, sclInter: 10 });
  assert.equal(Array.from(decodeNifti(b2, 'v2.nii').data), Array.from(v.data));
});

test('sform is preferred over qform; qform from the quaternion; pixdim fallback', () => {
  const v = createVolume([3, 3, 3], { affine: affineFromSpacing([2, 3, 4], [1, 2, 3]) });
  const bytes = encodeNifti(v, { datatype: 'int16' });
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  // qform: 180 degrees about z (b = c = 0, d = 1) -> diag(-2, -3, 4), offset (10, 20, 30)
  const q = bytes.slice();
  const d = dv(q);
  d.setInt16(252, 1, true); // qform_code
  d.setFloat32(256, 0, true);
  d.setFloat32(260, 0, true);
  d.setFloat32(264, 1, true);
  d.setFloat32(268, 10, true);
  d.setFloat32(272, 20, true);
  d.setFloat32(276, 30, true);
  // sform_code > 0 (also when lower than qform_code): the sform wins
  d.setInt16(254, 1, true);
  d.setInt16(252, 2, true);
  let r = decodeNifti(q, 'both.nii');
  assert.is(r.header.affineSource, 'sform');
  close(r.affine, affineFromSpacing([2, 3, 4], [1, 2, 3]), 0, 'sform');
  close(r.header.qform!, affineFromSpacing([-2, -3, 4], [10, 20, 30]), 1e-12, 'qform');
  // sform_code 0: the qform
  d.setInt16(254, 0, true);
  r = decodeNifti(q, 'qonly.nii');
  assert.is(r.header.affineSource, 'qform');
  close(r.affine, affineFromSpacing([-2, -3, 4], [10, 20, 30]), 1e-12, 'qform only');
  assert.is(orientationCodes(r), 'LPS');
  // qfac = pixdim[0] = -1 flips k
  d.setFloat32(76, -1, true);
  r = decodeNifti(q, 'qfac.nii');
  close(r.affine, affineFromSpacing([-2, -3, -4], [10, 20, 30]), 1e-12, 'qfac');
  // a broken (all-zero) sform with a usable qform: the qform
  d.setInt16(254, 1, true);
  d.setInt16(252, 1, true);
  for (let o = 280; o < 328; o += 4) d.setFloat32(o, 0, true);
  r = decodeNifti(q, 'zerosform.nii');
  assert.is(r.header.affineSource, 'qform');
  // ... and without a qform it is an error naming the sform
  d.setInt16(252, 0, true);
  throwsData(() => decodeNifti(q, 'zerosform.nii'), 'zerosform.nii', 'sform', /zero length/);
  d.setInt16(254, 0, true);
  // neither: nibabel's base affine (x flipped, the origin at the volume's centre), as MONAI reads it
  d.setInt16(252, 0, true);
  r = decodeNifti(q, 'none.nii');
  assert.is(r.header.affineSource, 'pixdim');
  close(r.affine, affineFromSpacing([-2, 3, 4], [2, -3, -4]), 0, 'pixdim');
  assert.is(orientationCodes(r), 'LAS');
  // a pixdim of 0 reads as 1 (nibabel: 'setting 0 dims to 1'), a negative one as its size; NaN is refused
  d.setFloat32(84, 0, true); // pixdim[2]
  d.setFloat32(88, -4, true); // pixdim[3]
  close(decodeNifti(q, 'zero.nii').affine, affineFromSpacing([-2, 1, 4], [2, -1, -4]), 0, 'pixdim 0');
  d.setFloat32(88, NaN, true);
  throwsData(() => decodeNifti(q, 'nan.nii'), 'nan.nii', 'pixdim[3]', /is NaN and the file has no sform or qform/);
  // nibabel 5.0.0: Nifti1Header, shape (5, 4, 3), zooms (0.8, 0.9, 3), both codes 0: get_best_affine()
  // [[-0.8, 0, 0, 1.6], [0, 0.9, 0, -1.35], [0, 0, 3, -3]]
  close(baseAffine([5, 4, 3], [0.8, 0.9, 3]), affineFromRows([[-0.8, 0, 0], [0, 0.9, 0], [0, 0, 3]], [1.6, -1.35, -3]), 1e-12, 'nibabel');
});

test('qform round trip for a rotated (non axis-aligned) affine', () => {
  const c = Math.cos(0.4), s = Math.sin(0.4);
  const m = affineFromRows(
    [
      [0.8 * c, -0.8 * s, 0],
      [0.8 * s, 0.8 * c, 0],
      [0, 0, -3],
    ],
    [5, -6, 7],
  );
  const v = createVolume([2, 2, 2], { affine: m });
  for (const version of [1, 2] as const) {
    const r = decodeNifti(encodeNifti(v, { version }), 'rot.nii');
    close(r.header.qform!, m, version === 1 ? 2e-6 : 1e-12, `qform v${version}`);
    close(r.affine, m, version === 1 ? 1e-6 : 0, `sform v${version}`);
  }
  // a sheared affine has no qform (code 0), only the sform
  const sheared = affineFromRows([[1, 0.5, 0], [0, 1, 0], [0, 0, 1]]);
  const r = decodeNifti(encodeNifti(createVolume([2, 2, 2], { affine: sheared })), 'shear.nii');
  assert.is(r.header.qformCode, 0);
  close(r.affine, sheared, 0, 'shear');
});

test('writeNiftiFile / readNiftiFile: gzip by extension, identical voxels and affine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-nifti-'));
  try {
    const v = testVolume('int16');
    writeNiftiFile(join(dir, 'a.nii.gz'), v, { datatype: 'int16' });
    writeNiftiFile(join(dir, 'sub/b.nii'), v);
    const raw = readFileSync(join(dir, 'a.nii.gz'));
    assert.is(raw[0], 0x1f);
    assert.is(readFileSync(join(dir, 'sub/b.nii'))[0], 92); // 348 little-endian
    for (const f of ['a.nii.gz', 'sub/b.nii']) {
      const r = readNiftiFile(join(dir, f));
      assert.equal(Array.from(r.data), Array.from(v.data));
      close(r.affine, v.affine, 0, f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same phantom stored LPS and RAS: same HU at every world point; identical after reorientation', () => {
  // HU as a function of world position (integer grid in RAS mm).
  const hu = (x: number, y: number, z: number) => Math.round(3 * x - 7 * y + 11 * z) % 2000;
  const n: [number, number, number] = [6, 5, 4];
  const sp = [2, 1.5, 3];
  const origin = [-5, 10, 40]; // RAS world of the RAS volume's voxel 0
  const far = [origin[0] + (n[0] - 1) * sp[0], origin[1] + (n[1] - 1) * sp[1], origin[2]];
  const ras = createVolume(n, { affine: affineFromSpacing(sp, origin) });
  // LPS storage: i runs towards Left (-x), j towards Posterior (-y), starting at the far corner.
  const lps = createVolume(n, { affine: affineFromSpacing([-sp[0], -sp[1], sp[2]], far) });
  for (const v of [ras, lps])
    for (let k = 0; k < n[2]; k++)
      for (let j = 0; j < n[1]; j++)
        for (let i = 0; i < n[0]; i++) {
          const [x, y, z] = voxelToWorld(v, [i, j, k]);
          v.data[i + n[0] * (j + n[1] * k)] = hu(x, y, z);
        }
  const a = decodeNifti(encodeNifti(ras, { datatype: 'int16' }), 'ras.nii');
  const b = decodeNifti(encodeNifti(lps, { datatype: 'int16', gzip: true }), 'lps.nii.gz');
  assert.is(orientationCodes(a), 'RAS');
  assert.is(orientationCodes(b), 'LPS');
  assert.not.equal(Array.from(a.data), Array.from(b.data)); // stored differently
  for (let k = 0; k < n[2]; k++)
    for (let j = 0; j < n[1]; j++)
      for (let i = 0; i < n[0]; i++) {
        const w = voxelToWorld(a, [i, j, k]);
        assert.is(sampleWorld(b, w), sampleWorld(a, w), `world ${w}`);
        assert.is(sampleWorld(b, w), hu(w[0], w[1], w[2]));
      }
  const ra = reorientToRas(a), rb = reorientToRas(b);
  assert.is(orientationCodes(rb), 'RAS');
  assert.equal(Array.from(rb.data), Array.from(ra.data));
  close(rb.affine, ra.affine, 1e-12, 'reoriented affine');
});

test('real CT NIfTI (shared data): 122 x 101 x 30, int16, 3 mm, RAS, -1100..1207 HU', () => {
  if (skipWithoutSharedData('real CT NIfTI')) return;
  const v = readNiftiFile(join(sharedData!, 'real-ct/example_ct_sm.nii.gz'));
  assert.equal(v.shape, [122, 101, 30]);
  assert.is(v.header.datatype, 'int16');
  assert.is(v.header.version, 1);
  close(v.spacing, [3, 3, 3], 1e-6, 'spacing');
  assert.is(orientationCodes(v), 'RAS');
  assert.is(v.header.affineSource, 'sform');
  assert.is(v.header.sformCode, 2);
  const r = valueRange(v.data);
  assert.equal(r, { min: -1100, max: 1207, nonFinite: 0 });
  close(voxelToWorld(v, [0, 0, 0]), [-177.95632934570312, 11.319000244140625, 94.3017578125], 1e-9, 'origin');
  // header-only read agrees
  const h = decodeNiftiHeader(new Uint8Array(readFileSync(join(sharedData!, 'real-ct/example_ct_sm.nii.gz'))), 'x');
  assert.equal(h.shape, [122, 101, 30]);
});

// ----------------------------------------------------------------------------------------
// Bad input

const good = () => encodeNifti(testVolume('int16'), { datatype: 'int16' });

test('bad input: truncated and corrupt .nii.gz', () => {
  const gz = encodeNifti(testVolume('int16'), { datatype: 'int16', gzip: true });
  throwsData(() => decodeNifti(gz.subarray(0, gz.length >> 1), 'cut.nii.gz'), 'cut.nii.gz', 'gzip stream', /truncated/);
  throwsData(() => decodeNifti(gz.subarray(0, 12), 'tiny.nii.gz'), 'tiny.nii.gz', 'gzip stream', /truncated/);
  // only the last 4 bytes (ISIZE) missing
  throwsData(() => decodeNifti(gz.subarray(0, gz.length - 4), 'notrailer.nii.gz'), 'notrailer.nii.gz', 'gzip stream');
  // flipped bits in the compressed body: inflate error or CRC mismatch, never silent
  for (let at = 20; at < gz.length - 8; at += 37) {
    const bad = gz.slice();
    bad[at] ^= 0x55;
    throwsData(() => decodeNifti(bad, 'corrupt.nii.gz'), 'corrupt.nii.gz', /gzip stream|voxel data|sizeof_hdr|magic|dim|datatype|bitpix|header/);
  }
  const crc = gz.slice();
  crc[crc.length - 6] ^= 1;
  throwsData(() => decodeNifti(crc, 'crc.nii.gz'), 'crc.nii.gz', 'gzip stream', /CRC/);
  // a gzip of a NIfTI whose voxel data is cut
  const cut = gzipSync(good().subarray(0, 400));
  throwsData(() => decodeNifti(cut, 'short.nii.gz'), 'short.nii.gz', 'voxel data', /truncated/);
});

test('bad input: a header asking for 1e9 voxels (under the limit) over a tiny .nii.gz is truncated, not a 4 GB allocation', () => {
  const b = good().slice(0, 352 + 4096);
  const d = new DataView(b.buffer);
  d.setInt16(42, 1024, true);
  d.setInt16(44, 1024, true);
  d.setInt16(46, 1000, true);
  d.setInt16(70, 64, true); // float64: 8.4 GB of voxel data
  d.setInt16(72, 64, true);
  const t0 = performance.now();
  throwsData(() => decodeNifti(gzipSync(b), 'lying.nii.gz'), 'lying.nii.gz', 'voxel data', /truncated: 1024x1024x1000 float64 needs 8388608352 bytes/);
  assert.ok(performance.now() - t0 < 2000);
});

test('multi-member gzip (bgzip style, larger than the first buffer) reads identically', () => {
  // 256 x 256 x 72 float32 = 18.9 MB: past the 16 MB the streaming path starts with, so it grows.
  const v = createVolume([256, 256, 72], { affine: OBLIQUE });
  for (let i = 0; i < v.data.length; i++) v.data[i] = (i % 4099) - 2000;
  const raw = encodeNifti(v, { datatype: 'float32' });
  const cuts = [0, 100, 7_000_000, raw.length];
  const members = cuts.slice(1).map((c, k) => gzipSync(raw.subarray(cuts[k], c), { level: 1 }));
  const multi = new Uint8Array(members.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of members) multi.set(m, o), (o += m.length);
  const r = decodeNifti(multi, 'multi.nii.gz');
  assert.equal(r.shape, [256, 256, 72]);
  assert.ok(r.data.every((x, i) => x === v.data[i]));
  // a multi-member stream cut short is still an error
  throwsData(() => decodeNifti(multi.subarray(0, multi.length - 1000), 'multi-cut.nii.gz'), 'multi-cut.nii.gz', /gzip stream|voxel data/);
});

test('zero padding after the gzip stream (tape / block copies) is read as gzip and nibabel do; other trailing bytes are refused by name', async () => {
  const v = testVolume('int16');
  const gz = encodeNifti(v, { datatype: 'int16', gzip: true });
  const plain = decodeNifti(gz, 'plain.nii.gz');
  const padded = (n: number, fill = 0) => {
    const b = new Uint8Array(gz.length + n).fill(fill);
    b.set(gz);
    return b;
  };
  // 1..3 bytes (fflate reads past them) and 4+ (fflate takes them for a next member's header).
  for (const n of [1, 2, 3, 4, 7, 8, 9, 512, 4096]) {
    const r = decodeNifti(padded(n), `pad${n}.nii.gz`);
    assert.equal(r.shape, plain.shape, `pad ${n}`);
    assert.ok(r.data.every((x, i) => x === plain.data[i]), `pad ${n}`);
    assert.equal(decodeNiftiHeader(padded(n), `pad${n}.nii.gz`).header.dim, plain.header.dim);
  }
  // A trailer that itself ends in zero bytes (ISIZE < 2^24), then padding: found, not cut.
  assert.is(gz[gz.length - 1], 0);
  // Multi-member (bgzip style) with padding: every member still checked.
  const raw = encodeNifti(v, { datatype: 'int16' });
  const m1 = gzipSync(raw.subarray(0, 200)), m2 = gzipSync(raw.subarray(200));
  const multi = new Uint8Array(m1.length + m2.length + 100);
  multi.set(m1);
  multi.set(m2, m1.length);
  assert.ok(decodeNifti(multi, 'multi-pad.nii.gz').data.every((x, i) => x === plain.data[i]));
  const badFirst = multi.slice();
  badFirst[m1.length - 6] ^= 1; // CRC of the first member
  throwsData(() => decodeNifti(badFirst, 'multi-crc.nii.gz'), 'multi-crc.nii.gz', 'gzip stream', /CRC/);
  // Text after the stream: GNU gzip warns "trailing garbage ignored", nibabel refuses: refused, by name.
  const text = new TextEncoder().encode('appended by a transfer tool\n');
  const withText = new Uint8Array(gz.length + text.length);
  withText.set(gz);
  withText.set(text, gz.length);
  throwsData(() => decodeNifti(withText, 'text.nii.gz'), 'text.nii.gz', 'gzip stream', new RegExp(`the ${text.length} bytes after the end of the gzip stream \\(byte ${gz.length}\\) are not zero padding`));
  // Zeros then junk is not padding either; a corrupt stream followed by zeros is still corrupt.
  const zerosThenJunk = padded(64);
  zerosThenJunk[zerosThenJunk.length - 1] = 7;
  throwsData(() => decodeNifti(zerosThenJunk, 'junk.nii.gz'), 'junk.nii.gz', 'gzip stream', /not zero padding/);
  const crcPadded = padded(512);
  crcPadded[gz.length - 6] ^= 1;
  throwsData(() => decodeNifti(crcPadded, 'crc-pad.nii.gz'), 'crc-pad.nii.gz', 'gzip stream', /CRC|does not match/);
  throwsData(() => decodeNifti(padded(512).subarray(0, gz.length >> 1), 'cut-pad.nii.gz'), 'cut-pad.nii.gz', 'gzip stream', /truncated/);
  // And from disk, through the reader `data inspect` and training use.
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-gzpad-'));
  try {
    const path = join(dir, 'padded.nii.gz');
    writeFileSync(path, padded(512));
    assert.ok(readNiftiFile(path).data.every((x, i) => x === plain.data[i]));
    const { readCaseVolume } = await import('../../src/data/dataset-volumes.ts');
    assert.ok((await readCaseVolume(path, {})).data.every((x, i) => x === plain.data[i]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: truncated .nii, wrong magic, not NIfTI, short header', () => {
  const b = good();
  throwsData(() => decodeNifti(b.subarray(0, b.length - 10), 'cut.nii'), 'cut.nii', 'voxel data', /truncated/);
  throwsData(() => decodeNifti(b.subarray(0, 200), 'hdr.nii'), 'hdr.nii', 'header', /truncated/);
  const m = b.slice();
  m[345] = 0x78; // 'n+1' -> 'nx1'
  throwsData(() => decodeNifti(m, 'magic.nii'), 'magic.nii', 'magic', /wrong magic/);
  const pair = b.slice();
  pair[345] = 0x69; // 'ni1': .hdr/.img pair
  throwsData(() => decodeNifti(pair, 'pair.hdr'), 'pair.hdr', 'magic', /hdr\/.img/);
  throwsData(() => decodeNifti(new TextEncoder().encode('hello, this is not a NIfTI file at all'), 'text.nii'), 'text.nii', 'sizeof_hdr');
  throwsData(() => decodeNifti(new Uint8Array(0), 'empty.nii'), 'empty.nii', 'sizeof_hdr');
});

test('bad input: voxel count over the limit is refused before allocating', () => {
  const b = good().slice(0, 352);
  const d = new DataView(b.buffer);
  d.setInt16(42, 30000, true);
  d.setInt16(44, 30000, true);
  d.setInt16(46, 30000, true); // 2.7e13 voxels
  throwsData(() => decodeNifti(b, 'huge.nii'), 'huge.nii', 'dim', /exceeds the limit/);
  // gzipped: refused after inflating the header only (the stream is tiny anyway, but no 54 TB buffer)
  throwsData(() => decodeNifti(gzipSync(b), 'huge.nii.gz'), 'huge.nii.gz', 'dim', /exceeds the limit/);
  // the limit is an option
  throwsData(() => decodeNifti(good(), 'small.nii', { maxVoxels: 100 }), 'small.nii', 'dim', /limit of 100/);
  // NIfTI-2 with 64-bit dims
  const v2 = encodeNifti(testVolume('uint8'), { datatype: 'uint8', version: 2 }).slice(0, 544);
  new DataView(v2.buffer).setBigInt64(24, 2n ** 40n, true);
  throwsData(() => decodeNifti(v2, 'huge2.nii'), 'huge2.nii', 'dim', /exceeds the limit/);
});

test('bad input: zero / negative dimensions, 4D', () => {
  const b = good();
  const z = b.slice();
  new DataView(z.buffer).setInt16(44, 0, true);
  throwsData(() => decodeNifti(z, 'zero.nii'), 'zero.nii', 'dim[2]', /positive/);
  const n = b.slice();
  new DataView(n.buffer).setInt16(46, -4, true);
  throwsData(() => decodeNifti(n, 'neg.nii'), 'neg.nii', 'dim[3]');
  const d0 = b.slice();
  new DataView(d0.buffer).setInt16(40, 0, true);
  throwsData(() => decodeNifti(d0, 'dim0.nii'), 'dim0.nii', 'dim[0]');
  const four = b.slice();
  new DataView(four.buffer).setInt16(40, 4, true);
  new DataView(four.buffer).setInt16(48, 2, true);
  throwsData(() => decodeNifti(four, '4d.nii'), '4d.nii', 'dim[4]', /only 3D/);
});

test('bad input: unsupported datatypes (complex, RGB, float128) name the type', () => {
  for (const [code, bits, name] of [
    [32, 64, 'complex64'],
    [128, 24, 'RGB24'],
    [1536, 128, 'float128'],
    [1792, 128, 'complex128'],
    [2304, 32, 'RGBA32'],
    [77, 16, 'code 77'],
  ] as const) {
    const b = good().slice();
    const d = new DataView(b.buffer);
    d.setInt16(70, code, true);
    d.setInt16(72, bits, true);
    throwsData(() => decodeNifti(b, `t${code}.nii`), `t${code}.nii`, 'datatype', new RegExp(name));
  }
  const bp = good().slice();
  new DataView(bp.buffer).setInt16(72, 8, true);
  throwsData(() => decodeNifti(bp, 'bitpix.nii'), 'bitpix.nii', 'bitpix');
});

test('NaN voxels: an error by default; keep (counted) or zero on request', () => {
  const v = createVolume([3, 3, 3]);
  v.data[5] = NaN;
  v.data[20] = Infinity;
  const b = encodeNifti(v, { datatype: 'float32' });
  throwsData(() => decodeNifti(b, 'nan.nii'), 'nan.nii', 'voxel data', /2 NaN\/Inf voxel\(s\), first at \(2, 1, 0\)/);
  const k = decodeNifti(b, 'nan.nii', { nonFinite: 'keep' });
  assert.is(k.header.nonFinite, 2);
  assert.ok(Number.isNaN(k.data[5]));
  const z = decodeNifti(b, 'nan.nii', { nonFinite: 'zero', fill: -1024 });
  assert.is(z.data[5], -1024);
  assert.is(z.data[20], -1024);
  assert.is(z.header.nonFinite, 2);
  // the writer refuses NaN / out-of-range values for integer types
  assert.throws(() => encodeNifti(v, { datatype: 'int16' }), (e: unknown) => e instanceof DataError && /NaN/.test((e as Error).message));
  const big = createVolume([1, 1, 1], { data: new Float32Array([40000]) });
  assert.throws(() => encodeNifti(big, { datatype: 'int16' }), (e: unknown) => e instanceof DataError && /does not fit int16/.test((e as Error).message));
  assert.equal(Array.from(decodeNifti(encodeNifti(big, { datatype: 'int16', clamp: true }), 'c').data), [32767]);
});

test('big-endian NIfTI-1 is read', () => {
  // Build a big-endian file by hand from a little-endian one: swap every header field we set.
  const v = createVolume([2, 2, 1], { data: new Float32Array([1, -2, 300, -400]), spacing: [1, 2, 3] });
  const le = encodeNifti(v, { datatype: 'int16' });
  const be = le.slice();
  const src = new DataView(le.buffer), dst = new DataView(be.buffer);
  const swap16 = (o: number) => dst.setInt16(o, src.getInt16(o, true), false);
  const swap32 = (o: number) => dst.setInt32(o, src.getInt32(o, true), false);
  swap32(0);
  for (let i = 0; i < 8; i++) swap16(40 + 2 * i);
  swap16(70);
  swap16(72);
  for (let o = 76; o < 148; o += 4) swap32(o); // pixdim .. glmin (floats/ints of 4 bytes; 120..123 handled below)
  dst.setInt16(120, 0, false);
  be[122] = le[122];
  be[123] = le[123];
  swap16(252);
  swap16(254);
  for (let o = 256; o < 328; o += 4) swap32(o);
  for (let i = 0; i < 4; i++) swap16(352 + 2 * i);
  const r = decodeNifti(be, 'be.nii');
  assert.is(r.header.littleEndian, false);
  assert.equal(Array.from(r.data), [1, -2, 300, -400]);
  close(r.affine, v.affine, 0, 'be affine');
});

test('ctvlm data inspect: NIfTI file (text and JSON), usage errors', async () => {
  const { command } = await import('../../src/cli/data-inspect.ts');
  const { UsageError } = await import('../../src/app-errors.ts');
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-inspect-'));
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    const path = join(dir, 'v.nii.gz');
    writeNiftiFile(path, createVolume([4, 3, 2], { affine: affineFromSpacing([-0.5, -0.5, 3], [1, 2, 3]), data: Float32Array.from({ length: 24 }, (_, i) => i * 10 - 100) }), { datatype: 'int16' });
    assert.is(await command.run([path]), 0);
    const text = lines.join('\n');
    assert.match(text, /NIfTI-1 \(gzip\)/);
    assert.match(text, /datatype:\s+int16/);
    assert.match(text, /shape:\s+4 x 3 x 2/);
    assert.match(text, /spacing \(mm\):\s+0.5 x 0.5 x 3/);
    assert.match(text, /orientation:\s+LPS/);
    assert.match(text, /value range:\s+-100 \.\. 130/);
    lines.length = 0;
    await command.run([path, '--json']);
    const j = JSON.parse(lines.join('\n'));
    assert.equal(j.shape, [4, 3, 2]);
    assert.is(j.orientation, 'LPS');
    for (const bad of [[], [path, path], [path, '--max-voxels', 'x'], [path, '--bogus']]) {
      try {
        await command.run(bad);
        assert.unreachable(`usage error for ${bad}`);
      } catch (e) {
        assert.instance(e, UsageError);
      }
    }
    try {
      await command.run([join(dir, 'missing.nii')]);
      assert.unreachable('missing file');
    } catch (e) {
      assert.instance(e, DataError);
    }
  } finally {
    console.log = log;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
