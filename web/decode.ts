// CT files into a volume, in the worker: a NIfTI file (.nii, .nii.gz) or the files of a DICOM
// folder, with the page's limits checked before anything large is allocated, and a message
// that says what a file is when it is not a CT (a PNG, a 2D image, a text file).
import { DataError } from '../src/errors.ts';
import { decodeNifti, decodeNiftiHeader } from '../src/data/nifti.ts';
import { looksLikeDicom, readDicomSeries, seriesMetaFromDicom } from '../src/data/dicom.ts';
import { isGzip } from '../src/data/io/gzip.ts';
import { orientationCodes, valueRange, type Volume } from '../src/data/volume.ts';
import type { DecodedCt, PickedFile, Progress } from './protocol.ts';

/**
 * The page keeps the voxels as float32 on the page and briefly a copy in the worker: 2^28
 * voxels (1 GiB each; 512 x 512 x 1024) is as much as a tab can be asked to hold.
 */
export const MAX_VOXELS = 2 ** 28;
/** A file larger than this is refused before it is read (it would not fit MAX_VOXELS anyway). */
export const MAX_FILE_BYTES = 2 ** 31;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** What a file that is not a CT is, from its first bytes (null: not recognized). */
export function sniffNonCt(b: Uint8Array): string | null {
  const at = (i: number, ...v: number[]) => v.every((x, k) => b[i + k] === x);
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return 'a PNG image';
  if (at(0, 0xff, 0xd8, 0xff)) return 'a JPEG image';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'a GIF image';
  if (at(0, 0x25, 0x50, 0x44, 0x46)) return 'a PDF document';
  if (at(0, 0x50, 0x4b, 0x03, 0x04)) return 'a ZIP archive (unpack it and drop the folder)';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'a TIFF image';
  if (b.length > 0 && b.subarray(0, Math.min(256, b.length)).every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127))) return 'a text file';
  return null;
}

const readBytes = async (f: File) => new Uint8Array(await f.arrayBuffer());

/** The shape of a 2D image or a sliver: a CT volume has some depth in every axis. */
function checkShape(shape: readonly number[], name: string): void {
  const flat = shape.filter((n) => n <= 1).length;
  if (flat > 0) throw new DataError(name, 'shape', `${shape.join('x')} voxels: a 2D image, not a CT volume (drop the whole series)`);
  const n = shape[0] * shape[1] * shape[2];
  if (n > MAX_VOXELS)
    throw new DataError(name, 'shape', `${shape.join('x')} voxels (${gib(4 * n)} as float32) is more than this page holds (${MAX_VOXELS / 2 ** 20} M voxels); crop or downsample it first`);
}

async function decodeNiftiFile(f: PickedFile, progress: (p: Progress) => void): Promise<DecodedCt> {
  const name = f.file.name;
  // The header first (from the first 64 KiB, inflated as far as needed): a huge or 2D volume
  // is refused before the whole file is read and inflated.
  const head = await readBytes(f.file.slice(0, 1 << 16) as File);
  const h = decodeNiftiHeader(head, name, { maxVoxels: Number.MAX_SAFE_INTEGER });
  checkShape(h.shape, name);
  progress({ label: `reading ${name} (${(f.file.size / 2 ** 20).toFixed(1)} MiB)`, done: 0, total: 0 });
  const bytes = await readBytes(f.file);
  progress({ label: `${h.header.gzip ? 'inflating and ' : ''}decoding ${name}`, done: 0, total: 0 });
  // NaN voxels (outside the scanned field in some exports) become -1024 HU, as air.
  const v = decodeNifti(bytes, name, { maxVoxels: MAX_VOXELS, nonFinite: 'zero', fill: -1024 });
  const notes: string[] = [];
  if (v.header.nonFinite) notes.push(`${v.header.nonFinite} NaN/Inf voxels shown as -1024 HU`);
  return finish(v, name, `NIfTI-${v.header.version} ${v.header.datatype}${h.header.gzip ? ' (gzip)' : ''}, ${orientationCodes(v)}`, null, notes);
}

function decodeDicomFiles(name: string, files: { name: string; bytes: Uint8Array }[]): DecodedCt {
  let r: ReturnType<typeof readDicomSeries>;
  try {
    r = readDicomSeries(files, { maxVoxels: MAX_VOXELS });
  } catch (e) {
    // The WebAssembly codecs (JPEG 2000, JPEG-LS, 8-bit JPEG) are loaded on Node only; the
    // page reads native, RLE and JPEG Lossless pixel data.
    const m = /(\S+ \([^)]*\)) needs a (.*?) decoder/.exec((e as Error).message);
    if (m) throw new DataError(name, 'DICOM', `${m[1]}: the page does not decode ${m[2]} pixel data yet; the command line reads it (ctvlm localize / classify --ct ${name})`);
    throw e;
  }
  if (r.series.length === 0) {
    const why = r.skipped.slice(0, 3).map((s) => `${s.file}: ${s.reason}`).join('; ');
    throw new DataError(name, 'DICOM', `no image series among ${files.length} file(s)${why ? ` (${why})` : ''}`);
  }
  // The series with the most slices is the one a report's images most likely refer to; the
  // others are named so the user can drop one alone.
  const s = r.series.reduce((a, b) => (b.slices.length > a.slices.length ? b : a));
  checkShape(s.volume.shape, name);
  const notes = [...s.warnings];
  const others = r.series.filter((x) => x !== s);
  if (others.length) notes.push(`the folder holds ${r.series.length} series; showing series ${s.seriesNumber ?? '?'} (${s.slices.length} slices), not ${others.map((o) => `${o.seriesNumber ?? '?'} (${o.slices.length})`).join(', ')}`);
  if (r.skipped.length) notes.push(`${r.skipped.length} file(s) skipped (${r.skipped[0].file}: ${r.skipped[0].reason}${r.skipped.length > 1 ? ', ...' : ''})`);
  const series = seriesMetaFromDicom(s, { seriesCount: r.series.length });
  const desc = `DICOM series ${s.seriesNumber ?? '(no number)'}${s.description ? ` "${s.description}"` : ''}, ${s.slices.length} slices, ${s.modality ?? '?'}`;
  return finish(s.volume, name, desc, series, notes);
}

function finish(v: Volume, name: string, description: string, series: DecodedCt['series'], notes: string[]): DecodedCt {
  const { min, max } = valueRange(v.data);
  // A CT in HU has air near -1000; an MR or a [0, 1]-scaled volume does not: it is shown, but
  // the windows (and the model, which expects HU) will not fit it.
  if (!(min < -500) || !(max > 0)) notes.push(`values range ${min.toFixed(0)} to ${max.toFixed(0)}: not Hounsfield units (is this a CT?)`);
  const affine = Float64Array.from(v.affine as ArrayLike<number>);
  return { name, description, series, notes, data: v.data, shape: [...v.shape], affine };
}

/**
 * One CT from the files of one input: a single NIfTI file, or the files of one DICOM folder.
 * Throws a DataError naming the file and what it is when it is not a CT.
 */
export async function decodeCt(name: string, files: PickedFile[], progress: (p: Progress) => void): Promise<DecodedCt> {
  if (files.length === 0) throw new DataError(name, 'files', 'no files');
  const big = files.find((f) => f.file.size > MAX_FILE_BYTES);
  if (big) throw new DataError(big.file.name, 'size', `${gib(big.file.size)}: larger than this page reads (${gib(MAX_FILE_BYTES)})`);
  if (files.length === 1) {
    const f = files[0];
    if (f.file.size === 0) throw new DataError(f.file.name, 'size', 'the file is empty');
    const head = await readBytes(f.file.slice(0, 1 << 12) as File);
    if (isGzip(head) || isNiftiHeader(head)) return decodeNiftiFile(f, progress);
    if (looksLikeDicom(head)) return decodeDicomFiles(f.file.name, [{ name: f.file.name, bytes: await readBytes(f.file) }]);
    const what = sniffNonCt(head);
    throw new DataError(f.file.name, 'format', `${what ?? 'not a NIfTI or DICOM file'}: a CT is a .nii / .nii.gz file or a folder of DICOM files`);
  }
  const out: { name: string; bytes: Uint8Array }[] = [];
  let bytes = 0;
  for (const f of files) {
    out.push({ name: f.path || f.file.name, bytes: await readBytes(f.file) });
    bytes += f.file.size;
    if (out.length % 32 === 0) progress({ label: `reading ${name}: ${out.length} of ${files.length} files (${(bytes / 2 ** 20).toFixed(0)} MiB)`, done: out.length, total: files.length });
  }
  progress({ label: `parsing ${files.length} DICOM files`, done: 0, total: 0 });
  return decodeDicomFiles(name, out);
}

function isNiftiHeader(b: Uint8Array): boolean {
  if (b.length < 4) return false;
  const v = new DataView(b.buffer, b.byteOffset, 4);
  return [348, 540].includes(v.getInt32(0, true)) || [348, 540].includes(v.getInt32(0, false));
}
