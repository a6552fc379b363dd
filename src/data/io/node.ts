// Node-only file access for the volume readers/writers (nifti.ts, dicom.ts stay pure so the
// browser bundle can use them on bytes it already has).
//
// The WebAssembly pixel-data decoders (JPEG 2000, JPEG-LS, JPEG baseline) are loaded from
// node_modules by wasm-codecs.ts (its header names the packages); readDicomFolder loads the
// ones a folder's transfer syntaxes need.
import { readFileSync, writeFileSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DataError } from '../../errors.ts';
import { decodeNifti, decodeNiftiHeader, encodeNifti, type NiftiReadOptions, type NiftiVolume, type NiftiWriteOptions } from '../nifti.ts';
import {
  looksLikeDicom,
  readDicomSeries,
  seriesByNumber,
  type DicomFolderResult,
  type DicomReadOptions,
  type DicomSeries,
} from '../dicom.ts';
import { loadDicomDecodersNode } from './wasm-codecs.ts';
import type { Volume } from '../volume.ts';

function readBytes(path: string, what: string): Uint8Array {
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new DataError(path, what, `cannot read: ${(e as Error).message}`);
  }
}

/** Reads a .nii / .nii.gz file (gzip detected from the bytes). */
export function readNiftiFile(path: string, opts: NiftiReadOptions = {}): NiftiVolume {
  return decodeNifti(readBytes(path, 'file'), path, opts);
}

/** Reads only the header of a .nii / .nii.gz file. */
export function readNiftiHeaderFile(path: string, opts: NiftiReadOptions = {}): ReturnType<typeof decodeNiftiHeader> {
  return decodeNiftiHeader(readBytes(path, 'file'), path, opts);
}

/** Writes a NIfTI file; gzipped when the path ends in .gz (unless opts.gzip says otherwise). Creates the folder. */
export function writeNiftiFile(path: string, volume: Volume, opts: NiftiWriteOptions = {}): void {
  const bytes = encodeNifti(volume, { ...opts, gzip: opts.gzip ?? path.toLowerCase().endsWith('.gz') });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

export { loadOpenJpegNode, loadCharlsNode, loadLibJpegTurboNode, loadDicomDecodersNode } from './wasm-codecs.ts';

// ---------------------------------------------------------------------------------------
// DICOM folders

/**
 * Reads every file of a folder (not recursive; hidden files skipped) as DICOM series (see
 * readDicomSeries). Files that cannot be read (permissions, dangling links) are skipped and
 * listed like the DICOM files that cannot be used, unless opts.strict (then a DataError naming
 * the file). Throws a DataError naming the folder when it holds no image series.
 */
export async function readDicomFolder(dir: string, opts: DicomReadOptions = {}): Promise<DicomFolderResult> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch (e) {
    throw new DataError(dir, 'folder', `cannot read: ${(e as Error).message}`);
  }
  // Sub-folders are not searched.
  const unreadable: { file: string; reason: string }[] = [];
  const files: { name: string; bytes: Uint8Array }[] = [];
  for (const p of names.sort().map((n) => join(dir, n))) {
    try {
      if (!statSync(p).isFile()) continue;
      files.push({ name: p, bytes: readBytes(p, 'file') });
    } catch (e) {
      const err = e instanceof DataError ? e : new DataError(p, 'file', `cannot read: ${(e as Error).message}`);
      if (opts.strict) throw err;
      unreadable.push({ file: p, reason: err.message.slice(p.length + 2) });
    }
  }
  const withUnreadable = (r: DicomFolderResult): DicomFolderResult =>
    unreadable.length ? { ...r, skipped: [...unreadable, ...r.skipped] } : r;
  const result = withUnreadable(readDicomSeries(files, { ...opts, headersOnly: true }));
  if (result.series.length === 0) {
    const other = result.skipped.length - result.nonDicomCount - unreadable.length;
    throw new DataError(
      dir,
      'folder',
      `no DICOM image series (${files.length} files; ${result.nonDicomCount} not DICOM, ${other} without usable images${unreadable.length ? `; ${unreadable.length} unreadable` : ''})`,
    );
  }
  if (opts.headersOnly) return result;
  const decoders = await loadDicomDecodersNode(result.series.flatMap((s) => s.transferSyntaxes), opts);
  return withUnreadable(readDicomSeries(files, { ...opts, ...decoders }));
}

/** One series of a folder: by SeriesNumber, or the only/largest one when none is given. */
export async function readDicomSeriesFolder(dir: string, seriesNumber?: number, opts: DicomReadOptions = {}): Promise<DicomSeries> {
  const r = await readDicomFolder(dir, opts);
  if (seriesNumber !== undefined) return seriesByNumber(r, seriesNumber, dir);
  return r.series.reduce((a, b) => (b.volume.data.length > a.volume.data.length ? b : a));
}

/**
 * A NIfTI file, a DICOM folder (its largest series) or one DICOM file (the series it belongs
 * to, read from its folder) as a Volume. DICOM files that cannot be used are skipped unless
 * opts.strict (see readDicomSeries).
 */
export async function readVolumeFile(path: string, opts: NiftiReadOptions & DicomReadOptions = {}): Promise<Volume> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw new DataError(path, 'path', `cannot read: ${(e as Error).message}`);
  }
  if (isDir) return (await readDicomSeriesFolder(path, undefined, opts)).volume;
  const bytes = readBytes(path, 'file');
  if (looksLikeDicom(bytes)) {
    // One DICOM file: the series it belongs to, read from its folder.
    const r = await readDicomFolder(dirname(path), opts);
    const same = (f: string) => resolve(f) === resolve(path);
    const s = r.series.find((x) => x.slices.some((sl) => same(sl.file)));
    if (!s) {
      const why = r.skipped.find((x) => same(x.file));
      throw new DataError(path, 'file', `is DICOM but not part of any image series in its folder${why ? ` (${why.reason})` : ''}`);
    }
    return s.volume;
  }
  return decodeNifti(bytes, path, opts);
}
