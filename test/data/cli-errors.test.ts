// The `ctvlm data ...` commands as a user runs them (the built dist/cli.js in a child process) on
// the bad inputs: each must end with exit code 1 and ONE line on stderr naming the file
// and the field (a CtvlmError message), never a stack trace or a hang. Plus the CLI-level
// features of the data commands (DICOM file inspection, mining against a DICOM series).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { encodeNifti } from '../../src/data/nifti.ts';
import { createVolume } from '../../src/data/volume.ts';
import { writeTestDicom, writeTestEnhancedDicom } from '../helpers/dicom-writer.ts';
import { repoRoot } from '../helpers/paths.ts';

const cli = join(repoRoot, 'dist/cli.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 20_000, env: { ...process.env, CTVLM_DEBUG: '' } }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
      resolve({ code: e ? (e.killed ? -1 : typeof e.code === 'number' ? e.code : -2) : 0, stdout, stderr });
    });
  });
}

/** Bad inputs written to `dir`: [what, path, the field the one-line message must name, extra options]. */
function makeBadInputs(dir: string): [string, string, RegExp, string[]?][] {
  const v = createVolume([6, 5, 4], { spacing: [1, 1, 2] });
  for (let i = 0; i < v.data.length; i++) v.data[i] = (i % 50) - 25;
  const raw = encodeNifti(v, { datatype: 'int16' });
  const gz = encodeNifti(v, { datatype: 'int16', gzip: true });
  const put = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const edit = (f: (d: DataView, b: Uint8Array) => void) => {
    const b = raw.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  // DICOM folders
  const slice = (z: number, inst: number, extra = {}) =>
    writeTestDicom({ rows: 2, columns: 2, pixels: [0, 1, 2, 3], position: [0, 0, z], pixelSpacing: [1, 1], instanceNumber: inst, ...extra });
  const noPos = join(dir, 'dicom-nopos');
  mkdirSync(noPos);
  writeFileSync(join(noPos, 'a.dcm'), slice(0, 1));
  writeFileSync(join(noPos, 'b.dcm'), slice(2, 2, { position: null }));
  writeFileSync(join(noPos, 'notes.txt'), 'a text file among the slices');
  const cut = join(dir, 'dicom-cut');
  mkdirSync(cut);
  writeFileSync(join(cut, 'a.dcm'), slice(0, 1));
  writeFileSync(join(cut, 'b.dcm'), slice(2, 2).subarray(0, 300));
  const onlyText = join(dir, 'dicom-none');
  mkdirSync(onlyText);
  writeFileSync(join(onlyText, 'readme.txt'), 'no images here');
  symlinkSync(join(onlyText, 'missing'), join(onlyText, 'dangling'));
  const cases: [string, string, RegExp, string[]?][] = [
    ['truncated .nii.gz', put('cut.nii.gz', gz.subarray(0, gz.length - 40)), /gzip stream/],
    ['corrupt .nii.gz', put('crc.nii.gz', (() => { const b = gz.slice(); b[b.length - 6] ^= 1; return b; })()), /gzip stream/],
    ['truncated .nii', put('cut.nii', raw.subarray(0, raw.length - 7)), /voxel data/],
    ['wrong magic', put('magic.nii', edit((_d, b) => (b[345] = 0x78))), /magic/],
    ['not NIfTI', put('text.nii', 'just some text, not an image'), /sizeof_hdr/],
    ['huge dims', put('huge.nii.gz', gzipSync(edit((d) => [42, 44, 46].forEach((o) => d.setInt16(o, 30000, true))).subarray(0, 352))), /dim/],
    ['zero dim', put('zero.nii', edit((d) => d.setInt16(44, 0, true))), /dim\[2\]/],
    ['unsupported datatype', put('complex.nii', edit((d) => (d.setInt16(70, 32, true), d.setInt16(72, 64, true)))), /datatype/],
    ['missing file', join(dir, 'nope.nii.gz'), /path/],
    // A folder's unusable files are skipped unless --strict (see the next test).
    ['DICOM missing ImagePositionPatient', noPos, /ImagePositionPatient/, ['--strict']],
    ['DICOM file cut short', cut, /DICOM dataset|PixelData/, ['--strict']],
    ['folder without DICOM', onlyText, /folder/],
  ];
  return cases;
}

test('ctvlm data inspect on bad inputs: exit 1, one line naming file and field, no stack trace', async () => {
  if (!existsSync(cli)) {
    console.log('  skip: dist/cli.js is not built (node build.mjs)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-cli-bad-'));
  try {
    const cases = makeBadInputs(dir);
    const results = await Promise.all(cases.map(([, path, , extra]) => run(['data', 'inspect', path, ...(extra ?? [])])));
    cases.forEach(([what, path, field], i) => {
      const r = results[i]!;
      const lines = r.stderr.trimEnd().split('\n');
      assert.is(r.code, 1, `${what}: exit code ${r.code}\n${r.stderr}`);
      assert.is(lines.length, 1, `${what}: one line expected:\n${r.stderr}`);
      assert.ok(!/\n\s+at /.test(r.stderr), `${what}: stack trace:\n${r.stderr}`);
      assert.ok(lines[0]!.startsWith(`ctvlm: ${path}`), `${what}: names the file: ${lines[0]}`);
      assert.match(lines[0]!.slice(`ctvlm: ${path}`.length), field, `${what}: names the field`);
    });
    // NaN voxels: inspect reads them (and counts them) instead of refusing
    const nan = createVolume([2, 2, 2]);
    nan.data[3] = NaN;
    writeFileSync(join(dir, 'nan.nii'), encodeNifti(nan, { datatype: 'float32' }));
    const n = await run(['data', 'inspect', join(dir, 'nan.nii')]);
    assert.is(n.code, 0, n.stderr);
    assert.match(n.stdout, /1 NaN\/Inf voxels/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ctvlm data inspect on one DICOM file, data mine against a DICOM series without SeriesNumber', async () => {
  if (!existsSync(cli)) {
    console.log('  skip: dist/cli.js is not built (node build.mjs)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-cli-dicom-'));
  try {
    const series = join(dir, 'series');
    mkdirSync(series);
    // 5 slices, numbered head first (instance 11 at the top, z = 8), no SeriesNumber
    for (let s = 0; s < 5; s++)
      writeFileSync(
        join(series, `s${s}.dcm`),
        writeTestDicom({ rows: 2, columns: 2, pixels: [0, 1, 2, 3], position: [0, 0, 8 - 2 * s], pixelSpacing: [1, 1], instanceNumber: 11 + s, seriesNumber: null, sliceThickness: 2 }),
      );
    const one = await run(['data', 'inspect', join(series, 's2.dcm')]);
    assert.is(one.code, 0, one.stderr);
    assert.match(one.stdout, /DICOM file/);
    assert.match(one.stdout, /InstanceNumber 11\.\.15/);
    writeFileSync(join(dir, 'report.txt'), 'Findings: Nodule (series 3, image 12). Effusion (image 14). Opacity (series 3, image 99).');
    const unnamed = await run(['data', 'mine', join(dir, 'report.txt'), '--dicom', series]);
    assert.is(unnamed.code, 0, unnamed.stderr);
    assert.match(unnamed.stdout, /image 14 {2}z=2\.0mm/);
    assert.match(unnamed.stdout, /image 12 {2}\(not resolved: series 3: the volume's SeriesNumber is unknown/);
    assert.match(unnamed.stderr, /no SeriesNumber/);
    const named = await run(['data', 'mine', join(dir, 'report.txt'), '--dicom', series, '--series', '3', '--json']);
    assert.is(named.code, 0, named.stderr);
    const refs = JSON.parse(named.stdout).references as { image: number; z: number | null; unresolved?: string }[];
    assert.equal(refs.map((r) => [r.image, r.z, r.unresolved ?? null]), [[12, 6, null], [14, 2, null], [99, null, 'image-not-in-series']]);
    const noRefs = join(dir, 'plain.txt');
    writeFileSync(noRefs, 'Findings: No pleural effusion. Impression: Normal.');
    const none = await run(['data', 'mine', noRefs]);
    assert.is(none.code, 0);
    assert.match(none.stdout, /0 references/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ctvlm data inspect / data mine on the files real exports contain (issue 8): skipped with the reason, --strict refuses; bare and multi-frame files; series:image notation', async () => {
  if (!existsSync(cli)) {
    console.log('  skip: dist/cli.js is not built (node build.mjs)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-cli-kinds-'));
  try {
    const folder = join(dir, 'ct');
    mkdirSync(folder);
    // Series 3, InstanceNumber 1..60, and a dose-report page (secondary capture, no position).
    for (let k = 0; k < 60; k++)
      writeFileSync(join(folder, `IM${k + 1}`), writeTestDicom({ rows: 2, columns: 2, pixels: [0, 1, 2, 3], position: [0, 0, -25 - 2.5 * k], pixelSpacing: [1, 1], instanceNumber: k + 1, seriesNumber: 3, layout: k % 2 ? 'bare' : 'part10', implicit: k % 3 === 0 }));
    writeFileSync(
      join(folder, 'dose_report.dcm'),
      writeTestDicom({ rows: 2, columns: 2, pixels: [9, 9, 9, 9], bitsAllocated: 8, pixelRepresentation: 0, position: null, orientation: null, pixelSpacing: null, seriesNumber: 999, seriesUID: '9.9.9', sopClassUID: '1.2.840.10008.5.1.4.1.1.7', seriesDescription: 'Dose Report' }),
    );
    const lenient = await run(['data', 'inspect', folder]);
    assert.is(lenient.code, 0, lenient.stderr);
    assert.match(lenient.stdout, /1 image series, 1 file\(s\) skipped/);
    assert.match(lenient.stdout, /slices: {8}60, InstanceNumber 1\.\.60/);
    assert.match(lenient.stdout, /skipped:\n {2}.*dose_report\.dcm: ImagePositionPatient \(0020,0032\): missing .*Secondary Capture Image Storage/);
    const strict = await run(['data', 'inspect', folder, '--strict']);
    assert.is(strict.code, 1);
    assert.equal(strict.stderr.trimEnd().split('\n'), [strict.stderr.trimEnd()]);
    assert.match(strict.stderr, /^ctvlm: .*dose_report\.dcm: ImagePositionPatient \(0020,0032\)/);
    const json = JSON.parse((await run(['data', 'inspect', folder, '--json', '--headers-only'])).stdout);
    assert.equal(json.skipped.map((x: { file: string }) => x.file), [join(folder, 'dose_report.dcm')]);
    // One bare (no preamble) file: DICOM, not "not a NIfTI file".
    const one = await run(['data', 'inspect', join(folder, 'IM2')]);
    assert.is(one.code, 0, one.stderr);
    assert.match(one.stdout, /DICOM file, of the series below/);
    // Mining against the folder: other series are never placed on series 3; "image 12" alone is.
    writeFileSync(join(dir, 'report.txt'), 'A 4 mm nodule on image 406 of series 7 which is unchanged. A 5 mm nodule on image 52 of series 4 is new. Effusion (3:20). Atelectasis on image 12.');
    const mined = await run(['data', 'mine', join(dir, 'report.txt'), '--dicom', folder, '--json']);
    assert.is(mined.code, 0, mined.stderr);
    const refs = JSON.parse(mined.stdout).references as { series: number | null; image: number; z: number | null; unresolved?: string; sentence: string }[];
    assert.equal(refs.map((r) => [r.series, r.image, r.z, r.unresolved ?? null]), [[7, 406, null, 'other-series'], [4, 52, null, 'other-series'], [3, 20, -25 - 2.5 * 19, null], [null, 12, -25 - 2.5 * 11, null]]);
    assert.equal(refs[1]!.sentence, 'A 5 mm nodule is new.');
    assert.match(mined.stderr, /dose_report\.dcm skipped: ImagePositionPatient/);
    const strictMine = await run(['data', 'mine', join(dir, 'report.txt'), '--dicom', folder, '--strict']);
    assert.is(strictMine.code, 1);
    assert.match(strictMine.stderr, /dose_report\.dcm: ImagePositionPatient/);
    // A second image series in the folder: "image 12" names none of them, so it is not placed.
    writeFileSync(join(folder, 'other.dcm'), writeTestDicom({ rows: 2, columns: 2, pixels: [0, 1, 2, 3], position: [0, 0, 0], pixelSpacing: [1, 1], instanceNumber: 12, seriesNumber: 5, seriesUID: '5.5.5' }));
    const two = JSON.parse((await run(['data', 'mine', join(dir, 'report.txt'), '--dicom', folder, '--series', '3', '--json'])).stdout).references as { image: number; unresolved?: string }[];
    assert.equal(two.map((r) => r.unresolved ?? null), ['other-series', 'other-series', null, 'ambiguous-series']);
    // An Enhanced CT file: frames as slices.
    const enh = join(dir, 'enh');
    mkdirSync(enh);
    writeFileSync(join(enh, 'enh.dcm'), writeTestEnhancedDicom({ rows: 4, columns: 5, frames: [0, 1, 2].map((f) => ({ position: [0, 0, 2.5 * f] as [number, number, number], pixels: new Array(20).fill(1000 + f) })) }));
    const e = await run(['data', 'inspect', join(enh, 'enh.dcm')]);
    assert.is(e.code, 0, e.stderr);
    assert.match(e.stdout, /slices: {8}3, frames 1\.\.3 of one multi-frame file/);
    assert.match(e.stdout, /value range: {2}-24 \.\. -22 \(HU\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
