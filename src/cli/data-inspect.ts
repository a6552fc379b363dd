// `ctvlm data inspect FILE_OR_DIR`: what a CT file or DICOM folder holds, as the readers see it.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseCliArgs, type Command } from './command.ts';
import { DataError } from '../errors.ts';
import { UsageError } from '../app-errors.ts';
import { readNiftiFile, readDicomFolder } from '../data/io/node.ts';
import { imageNumbers, looksLikeDicom, transferSyntaxName, type DicomSeries } from '../data/dicom.ts';
import { orientationCodes, valueRange, voxelToWorld, type Volume } from '../data/volume.ts';

const usage = `usage: ctvlm data inspect FILE_OR_DIR [options]

Prints what a NIfTI file (.nii, .nii.gz) or a folder of DICOM files holds: header, shape,
spacing, orientation codes (from the voxel -> RAS affine), affine, HU range, datatype; for
DICOM every series in the folder, its instance range, transfer syntax, slice spacing and
any unevenness, and the files skipped with the reason (files that are not DICOM, and DICOM
files that cannot be part of a volume: a dose-report page without position, an unreadable or
undecodable file). A single DICOM file shows the series it belongs to (read from its folder).
Enhanced (multi-frame) files count each frame as a slice.

options:
  --max-voxels N   refuse volumes larger than N voxels (default 1073741824)
  --headers-only   DICOM: do not decode pixel data (no HU range)
  --strict         DICOM: refuse the folder when a DICOM file in it cannot be used,
                   instead of skipping that file
  --json           print JSON instead of text
  -h, --help       this text`;

const fmt = (x: number, d = 4): string => (Number.isInteger(x) ? String(x) : Number(x.toFixed(d)).toString());
const vec = (v: ArrayLike<number>, d = 4): string => Array.from(v, (x) => fmt(x, d)).join(' x ');

function affineRows(v: Volume): string[] {
  const m = v.affine;
  return [0, 1, 2].map((r) => '  [' + [0, 1, 2, 3].map((c) => fmt(m[4 * c + r], 4).padStart(11)).join(' ') + ' ]');
}

function volumeLines(v: Volume, withData: boolean): string[] {
  const lines = [
    `shape:        ${v.shape.join(' x ')}`,
    `spacing (mm): ${vec(v.spacing)}`,
    `orientation:  ${orientationCodes(v)} (voxel axes i, j, k towards; world RAS+)`,
    `origin (mm):  ${vec(voxelToWorld(v, [0, 0, 0]), 3)} (RAS centre of voxel 0,0,0)`,
    `affine (voxel -> RAS mm):`,
    ...affineRows(v),
  ];
  if (withData) {
    const r = valueRange(v.data);
    lines.push(`value range:  ${fmt(r.min)} .. ${fmt(r.max)} (HU)${r.nonFinite ? `, ${r.nonFinite} NaN/Inf voxels` : ''}`);
  }
  return lines;
}

/** "InstanceNumber 11..15", or for a series that is one multi-frame file "frames 1..3 of one multi-frame file (InstanceNumber 1)". */
function numbering(s: DicomSeries): string {
  const nums = imageNumbers(s).filter((x): x is number => x !== null);
  const range = nums.length ? `${Math.min(...nums)}..${Math.max(...nums)}` : '(none)';
  const files = new Set(s.slices.map((x) => x.file)).size;
  if (s.slices.some((x) => x.frame !== null)) {
    if (files === 1) return `frames ${range} of one multi-frame file (InstanceNumber ${s.slices[0]!.instanceNumber ?? 'none'})`;
    return `${files} files, multi-frame`;
  }
  return `InstanceNumber ${range}`;
}

const label = (x: { instanceNumber: number | null; frame: number | null }) => (x.frame !== null ? `frame ${x.frame}` : `instance ${x.instanceNumber ?? '?'}`);

function seriesSummary(s: DicomSeries, withData: boolean): Record<string, unknown> {
  const inst = s.slices.map((x) => x.instanceNumber).filter((x): x is number => x !== null);
  const r = withData ? valueRange(s.volume.data) : null;
  return {
    seriesNumber: s.seriesNumber,
    seriesUID: s.seriesUID,
    description: s.description,
    modality: s.modality,
    slices: s.slices.length,
    instanceRange: inst.length ? [Math.min(...inst), Math.max(...inst)] : null,
    firstSliceInstance: s.slices[0]?.instanceNumber ?? null,
    frames: s.slices.some((x) => x.frame !== null) ? s.slices.map((x) => x.frame) : null,
    transferSyntax: s.transferSyntaxes,
    shape: s.volume.shape,
    spacing: s.volume.spacing,
    sliceSpacing: s.sliceSpacing,
    sliceThickness: s.sliceThickness,
    uneven: s.uneven,
    maxPositionError: s.maxPositionError,
    orientation: orientationCodes(s.volume),
    imageOrientationPatient: s.orientation,
    affine: Array.from(s.volume.affine),
    huRange: r ? [r.min, r.max] : null,
    warnings: s.warnings,
  };
}

/** Whether the file is DICOM: the Part 10 preamble, or a bare meta group or dataset (see dicomEncoding). */
function isDicomFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    // Enough for the first element of a bare dataset, whose length the implicit-VR check uses.
    const b = Buffer.alloc(65536);
    const n = readSync(fd, b, 0, b.length, 0);
    return looksLikeDicom(new Uint8Array(b.buffer, b.byteOffset, n));
  } catch {
    return false; // the NIfTI reader reports unreadable files
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export const command: Command = {
  name: 'data inspect',
  summary: 'print header, shape, spacing, orientation and HU range of a NIfTI file or DICOM folder',
  usage,
  async run(argv) {
    const parsed = parseCliArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'max-voxels': { type: 'string' },
        'headers-only': { type: 'boolean' },
        strict: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    const { values, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError(positionals.length ? 'give one FILE_OR_DIR' : 'missing FILE_OR_DIR');
    const path = positionals[0];
    let maxVoxels: number | undefined;
    if (values['max-voxels'] !== undefined) {
      maxVoxels = Number(values['max-voxels']);
      if (!Number.isInteger(maxVoxels) || maxVoxels < 1) throw new UsageError(`--max-voxels must be a positive integer, got '${values['max-voxels']}'`);
    }
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (e) {
      throw new DataError(path, 'path', `cannot read: ${(e as Error).message}`);
    }
    const json = values.json ?? false;
    const dicomFile = !isDir && isDicomFile(path);

    if (isDir || dicomFile) {
      const headersOnly = values['headers-only'] ?? false;
      const folder = dicomFile ? dirname(path) : path;
      const all = await readDicomFolder(folder, { maxVoxels, headersOnly, strict: values.strict ?? false });
      const same = (f: string) => resolve(f) === resolve(path);
      const r = dicomFile ? { ...all, series: all.series.filter((s) => s.slices.some((x) => same(x.file))), skipped: all.skipped.filter((x) => same(x.file)) } : all;
      if (dicomFile && r.series.length === 0) throw new DataError(path, 'file', `is DICOM but not part of any image series in ${folder}${r.skipped.length ? ` (${r.skipped[0]!.reason})` : ''}`);
      if (json) {
        console.log(JSON.stringify({ path, format: 'DICOM', series: r.series.map((s) => seriesSummary(s, !headersOnly)), skipped: r.skipped }, null, 2));
        return 0;
      }
      if (dicomFile) console.log(`${path}: DICOM file, of the series below (read from ${folder})`);
      else console.log(`${path}: DICOM folder, ${r.series.length} image series${r.skipped.length ? `, ${r.skipped.length} file(s) skipped (${r.nonDicomCount} not DICOM)` : ''}`);
      for (const s of r.series) {
        console.log('');
        console.log(`series ${s.seriesNumber ?? '(no SeriesNumber)'}${s.description ? ` "${s.description}"` : ''}${s.modality ? ` [${s.modality}]` : ''}`);
        console.log(`  series UID:    ${s.seriesUID ?? '(none)'}`);
        console.log(`  slices:        ${s.slices.length}, ${numbering(s)}; voxel k = 0 is ${label(s.slices[0]!)}, k = ${s.slices.length - 1} is ${label(s.slices[s.slices.length - 1]!)}`);
        console.log(`  transfer syntax: ${s.transferSyntaxes.map((t) => `${t} (${transferSyntaxName(t)})`).join(', ')}`);
        const gaps = s.sliceGaps;
        console.log(`  slice spacing: ${fmt(s.sliceSpacing)} mm from positions${gaps.length ? ` (gaps ${fmt(Math.min(...gaps))}..${fmt(Math.max(...gaps))})` : ''}${s.sliceThickness !== null ? `; SliceThickness ${fmt(s.sliceThickness)} mm` : ''}`);
        console.log(`  uneven:        ${s.uneven ? `YES, up to ${fmt(s.maxPositionError, 3)} mm off` : 'no'}`);
        console.log(`  orientation (IOP, LPS): ${s.orientation.map((x) => fmt(x)).join('\\')}`);
        for (const l of volumeLines(s.volume, !headersOnly)) console.log('  ' + l);
        for (const w of s.warnings) console.log(`  warning: ${w}`);
      }
      if (r.skipped.length) {
        console.log('');
        console.log('skipped:');
        for (const s of r.skipped.slice(0, 20)) console.log(`  ${s.file}: ${s.reason}`);
        if (r.skipped.length > 20) console.log(`  ... and ${r.skipped.length - 20} more`);
      }
      return 0;
    }

    const v = readNiftiFile(path, { maxVoxels, nonFinite: 'keep' });
    const h = v.header;
    if (json) {
      const { qform, sform, ...rest } = h;
      console.log(
        JSON.stringify(
          {
            path,
            format: `NIfTI-${h.version}`,
            header: { ...rest, qform: qform && Array.from(qform), sform: sform && Array.from(sform) },
            shape: v.shape,
            spacing: v.spacing,
            orientation: orientationCodes(v),
            affine: Array.from(v.affine),
            range: valueRange(v.data),
          },
          null,
          2,
        ),
      );
      return 0;
    }
    console.log(`${path}: NIfTI-${h.version}${h.gzip ? ' (gzip)' : ''}, ${h.littleEndian ? 'little' : 'big'}-endian`);
    console.log(`datatype:     ${h.datatype} (code ${h.datatypeCode}, ${h.bitpix} bits)`);
    console.log(`dim:          [${h.dim.join(', ')}]`);
    console.log(`pixdim:       [${h.pixdim.map((x) => fmt(x)).join(', ')}]`);
    console.log(`scaling:      ${h.scaled ? `value = ${fmt(h.sclSlope, 6)} * stored + ${fmt(h.sclInter, 6)}` : `none (scl_slope ${h.sclSlope})`}`);
    console.log(`transforms:   sform_code ${h.sformCode}, qform_code ${h.qformCode}; affine from the ${h.affineSource}${h.affineSource === 'pixdim' ? " (no orientation in the file: LAS about the volume's centre assumed, as nibabel and MONAI read it)" : ''}`);
    console.log(`units:        ${h.spatialUnits}${h.spatialUnits !== 'mm' ? ' (millimetres assumed)' : ''}`);
    if (h.description) console.log(`description:  ${h.description}`);
    for (const l of volumeLines(v, true)) console.log(l);
    if (h.qform && h.sform) {
      let d = 0;
      for (let i = 0; i < 16; i++) d = Math.max(d, Math.abs(h.qform[i] - h.sform[i]));
      if (d > 1e-3) console.log(`warning: qform and sform differ (max |difference| ${fmt(d)}); the sform is used`);
    }
    return 0;
  },
};
