// DICOM CT series -> Volume. Pure code (no Node built-ins): the caller hands in the files'
// bytes and, for the WebAssembly codecs, decoders; io/node.ts reads folders and loads them.
//
// Dependencies: dicom-parser (parses DICOM Part 10 files of every common transfer syntax and
// finds encapsulated pixel-data fragments; small, pure JavaScript); fflate (already used for
// .nii.gz) inflates the deflated transfer syntax. Compressed pixel data (codecs/):
// - RLE Lossless: codecs/rle.ts, our own (no dependency).
// - JPEG Lossless (.57, .70): codecs/jpeg-lossless.ts, jpeg-lossless-decoder-js (pure
//   JavaScript), built in.
// - JPEG 2000, JPEG-LS, 8-bit JPEG baseline/extended: behind the `FrameDecoder` interface
//   (options.jpeg2000 / jpegLs / jpegBaseline); codecs/emscripten.ts wraps the WebAssembly
//   builds of OpenJPEG, CharLS and libjpeg-turbo (@cornerstonejs/codec-*), and io/wasm-codecs.ts
//   loads them on Node.
// Every codestream's frame header is read first (codecs/headers.ts) and checked against the
// DICOM header, so a bad size field cannot make a decoder allocate without bound; a decoder's
// failure becomes a DataError naming the file and the transfer syntax.
//
// Conventions:
// - Slices are sorted by their position along the slice normal n = row x column direction
//   (d = n . ImagePositionPatient), ascending; never by file name or InstanceNumber. Voxel
//   plane k of `volume` is `slices[k]`.
// - Voxel axes: i = column index (along the row direction, ImageOrientationPatient[0..2]),
//   j = row index (along the column direction, IOP[3..5]), k = slice (along n).
// - The affine is built in LPS (DICOM's patient frame) from IOP, PixelSpacing and the
//   positions of the first and last slice (slice step = (P_last - P_first) / (n - 1), so a
//   gantry tilt shows as a shear and SliceThickness is never used as the step), then
//   converted to RAS+ (x and y negated). `slices[k].position` stays LPS, as in the file.
// - HU = RescaleSlope * stored + RescaleIntercept, per slice.
// - Series are told apart by SeriesInstanceUID (else SeriesNumber, else SeriesDescription and
//   SliceThickness), and within one of those by geometry (rows, columns, orientation, pixel
//   spacing), so e.g. a localizer stored in the same series becomes a separate entry with a warning.
// - Uneven slice spacing is reported in `warnings` (and `uneven`, `maxPositionError`); the
//   volume then uses the mean step. Slices at the same position: the lower InstanceNumber
//   is kept, the others are dropped with a warning.
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateSync } from 'fflate';
import { DataError } from '../errors.ts';
import { affineFromRows, spacingFromAffine, type Vec3, type Volume } from './volume.ts';
import type { SeriesMeta } from './manifest.ts';
import { jpegLosslessDecoder } from './codecs/jpeg-lossless.ts';
import { decodeRleFrame } from './codecs/rle.ts';
import { jpegProcessName, readJ2kSize, readJpegFrameHeader } from './codecs/headers.ts';
import type { DecodedFrame, FrameDecoder } from './codecs/types.ts';

export type { DecodedFrame, FrameDecoder } from './codecs/types.ts';

export const TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.202': 'HTJ2K Lossless RPCL',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
};
const NATIVE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2']);

/** The decoder option each compressed transfer syntax needs ('rle' is built in, and so by default is 'jpegLossless'). */
export type DicomCodec = 'rle' | 'jpegLossless' | 'jpegBaseline' | 'jpegLs' | 'jpeg2000';
const CODEC: Record<string, DicomCodec> = {
  '1.2.840.10008.1.2.5': 'rle',
  '1.2.840.10008.1.2.4.57': 'jpegLossless',
  '1.2.840.10008.1.2.4.70': 'jpegLossless',
  '1.2.840.10008.1.2.4.50': 'jpegBaseline',
  '1.2.840.10008.1.2.4.51': 'jpegBaseline',
  '1.2.840.10008.1.2.4.80': 'jpegLs',
  '1.2.840.10008.1.2.4.81': 'jpegLs',
  '1.2.840.10008.1.2.4.90': 'jpeg2000',
  '1.2.840.10008.1.2.4.91': 'jpeg2000',
};
const CODEC_LABEL: Record<DicomCodec, string> = {
  rle: 'RLE',
  jpegLossless: 'JPEG Lossless',
  jpegBaseline: 'JPEG baseline (8-bit)',
  jpegLs: 'JPEG-LS',
  jpeg2000: 'JPEG 2000',
};
const SUPPORTED = 'native little/big endian, deflated, RLE Lossless, JPEG Lossless, JPEG baseline/extended (8-bit), JPEG-LS, JPEG 2000';

/** The codec a transfer syntax needs: null for native (uncompressed) ones, undefined for unsupported ones. */
export function codecOfTransferSyntax(uid: string): DicomCodec | null | undefined {
  return NATIVE.has(uid) ? null : CODEC[uid];
}

export function transferSyntaxName(uid: string): string {
  return TRANSFER_SYNTAXES[uid] ?? 'unknown';
}

/** Decodes one JPEG 2000 codestream (as found in a DICOM pixel-data frame). */
export type Jpeg2000Decoder = FrameDecoder;

/** A file given to the series reader: a name for messages, and its bytes. */
export interface DicomFileInput {
  name: string;
  bytes: Uint8Array;
}

/** The per-slice header fields this reader uses. Positions are LPS mm, as in the file. */
export interface DicomSliceHeader {
  file: string;
  transferSyntax: string;
  sopClassUID: string | null;
  modality: string | null;
  seriesUID: string | null;
  seriesNumber: number | null;
  seriesDescription: string | null;
  studyUID: string | null;
  frameOfReferenceUID: string | null;
  instanceNumber: number | null;
  position: Vec3;
  orientation: [number, number, number, number, number, number];
  /** PixelSpacing as in the file: [row spacing (between rows), column spacing (between columns)]. */
  pixelSpacing: [number, number];
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  samplesPerPixel: number;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  sliceThickness: number | null;
}

export interface DicomSlice {
  instanceNumber: number | null;
  /** ImagePositionPatient (LPS mm, as in the file). */
  position: Vec3;
  file: string;
}

export interface DicomSeries {
  seriesNumber: number | null;
  seriesUID: string | null;
  description: string | null;
  modality: string | null;
  /** The transfer syntax UID (the first slice's; `transferSyntaxes` lists all seen). */
  transferSyntax: string;
  transferSyntaxes: string[];
  /** Sorted along the slice normal; slices[k] is voxel plane k of `volume`. */
  slices: DicomSlice[];
  /** HU voxels with a RAS+ affine. */
  volume: Volume;
  /** ImageOrientationPatient (LPS), and the slice normal (LPS) used for sorting. */
  orientation: number[];
  normal: Vec3;
  /** Mean distance between consecutive slices along the normal (mm). */
  sliceSpacing: number;
  /** Distances between consecutive slices along the normal (mm), length n - 1. */
  sliceGaps: number[];
  /** Whether the gaps differ by more than the tolerance (1% of the mean, at least 0.01 mm). */
  uneven: boolean;
  /** Largest distance (mm) between a slice's real position and its voxel plane's. */
  maxPositionError: number;
  sliceThickness: number | null;
  warnings: string[];
}

/** Decoders for compressed pixel data; on Node, readDicomFolder loads the ones a folder needs. */
export interface DicomDecoderOptions {
  /** Needed for JPEG 2000 pixel data (1.2.840.10008.1.2.4.90 / .91). */
  jpeg2000?: FrameDecoder;
  /** Needed for JPEG-LS pixel data (1.2.840.10008.1.2.4.80 / .81). */
  jpegLs?: FrameDecoder;
  /** Needed for JPEG baseline / extended pixel data (1.2.840.10008.1.2.4.50 / .51; 8-bit samples). */
  jpegBaseline?: FrameDecoder;
  /** JPEG Lossless (1.2.840.10008.1.2.4.57 / .70); default: the built-in pure-JavaScript decoder. */
  jpegLossless?: FrameDecoder;
}

export interface DicomReadOptions extends DicomDecoderOptions {
  /** Refuse series with more voxels than this before allocating. Default 2^30. */
  maxVoxels?: number;
  /** Image files without ImagePositionPatient / ImageOrientationPatient / PixelSpacing: 'error' (default) or 'skip'. */
  onMissingGeometry?: 'error' | 'skip';
  /** Uneven slice spacing: 'warn' (default) or 'error'. */
  onUneven?: 'warn' | 'error';
  /** Only parse headers; `volume.data` is then empty (length 0) — for listing series quickly. */
  headersOnly?: boolean;
}

export interface DicomFolderResult {
  series: DicomSeries[];
  /** Files that are not DICOM, or DICOM without image data (e.g. structured reports). */
  skipped: { file: string; reason: string }[];
  nonDicomCount: number;
}

/** A parsed file (header + dataset for the pixel data). */
interface ParsedFile {
  header: DicomSliceHeader;
  dataSet: DataSet;
}

const TAG = {
  transferSyntax: 'x00020010',
  sopClass: 'x00080016',
  modality: 'x00080060',
  seriesDescription: 'x0008103e',
  studyUID: 'x0020000d',
  seriesUID: 'x0020000e',
  seriesNumber: 'x00200011',
  instanceNumber: 'x00200013',
  position: 'x00200032',
  orientation: 'x00200037',
  frameOfReference: 'x00200052',
  sliceThickness: 'x00180050',
  samplesPerPixel: 'x00280002',
  numberOfFrames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  pixelSpacing: 'x00280030',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  pixelRepresentation: 'x00280103',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  pixelData: 'x7fe00010',
};
const TAG_NAME: Record<string, string> = {
  position: 'ImagePositionPatient (0020,0032)',
  orientation: 'ImageOrientationPatient (0020,0037)',
  pixelSpacing: 'PixelSpacing (0028,0030)',
  rows: 'Rows (0028,0010)',
  columns: 'Columns (0028,0011)',
  bitsAllocated: 'BitsAllocated (0028,0100)',
  pixelData: 'PixelData (7FE0,0010)',
};

function str(ds: DataSet, tag: string): string | null {
  const s = ds.string(tag);
  return s === undefined || s === '' ? null : s;
}

function numbers(ds: DataSet, tag: string): number[] | null {
  const s = str(ds, tag);
  if (s === null) return null;
  const v = s.split('\\').map((x) => Number(x.trim()));
  return v.every((x) => Number.isFinite(x)) ? v : null;
}

function int(ds: DataSet, tag: string): number | null {
  const v = numbers(ds, tag);
  return v && v.length > 0 && Number.isInteger(v[0]) ? v[0] : null;
}

function us(ds: DataSet, tag: string): number | null {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return null;
  // US normally; tolerate IS/DS text in malformed implicit files.
  if (el.length === 2 || el.vr === 'US') return ds.uint16(tag) ?? null;
  return int(ds, tag);
}

/** Whether the bytes look like a DICOM file (Part 10 preamble, or a bare dataset starting with group 0008). */
export function looksLikeDicom(bytes: Uint8Array): boolean {
  if (bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d) return true;
  return bytes.length >= 8 && bytes[0] === 0x08 && bytes[1] === 0x00 && bytes[3] === 0x00;
}

function inflater(byteArray: Uint8Array, position: number): Uint8Array {
  const inflated = inflateSync(byteArray.subarray(position));
  const full = new Uint8Array(position + inflated.length);
  full.set(byteArray.subarray(0, position));
  full.set(inflated, position);
  return full;
}

/**
 * Parses one file's header. Returns null for non-DICOM bytes (no Part 10 preamble and not a
 * bare little-endian dataset). Geometry tags are checked later (only image files need them).
 */
export function parseDicomFile(file: DicomFileInput): { header: Partial<DicomSliceHeader> & { file: string }; dataSet: DataSet; missing: string[] } | null {
  if (!looksLikeDicom(file.bytes)) return null;
  let ds: DataSet;
  const hasPreamble = file.bytes.length >= 132 && file.bytes[128] === 0x44 && file.bytes[131] === 0x4d;
  try {
    ds = dicomParser.parseDicom(file.bytes, {
      ...(hasPreamble ? {} : { TransferSyntaxUID: '1.2.840.10008.1.2' }),
      inflater,
    } as Parameters<typeof dicomParser.parseDicom>[1]);
  } catch (e) {
    const msg = typeof e === 'string' ? e : e instanceof Error ? e.message : String((e as { exception?: string }).exception ?? e);
    if (!hasPreamble) return null;
    const detail = msg.replace(/^dicomParser[.:]\w+: ?/, '');
    throw new DataError(file.name, 'DICOM dataset', `unreadable${/overrun|end of buffer/i.test(detail) ? ' (truncated?)' : ''}: ${detail}`);
  }
  const ts = str(ds, TAG.transferSyntax) ?? '1.2.840.10008.1.2';
  const missing: string[] = [];
  const position = numbers(ds, TAG.position);
  const orientation = numbers(ds, TAG.orientation);
  const spacing = numbers(ds, TAG.pixelSpacing);
  if (!position || position.length !== 3) missing.push(TAG_NAME.position);
  if (!orientation || orientation.length !== 6) missing.push(TAG_NAME.orientation);
  if (!spacing || spacing.length !== 2 || !(spacing[0] > 0 && spacing[1] > 0)) missing.push(TAG_NAME.pixelSpacing);
  const slope = numbers(ds, TAG.rescaleSlope)?.[0];
  const inter = numbers(ds, TAG.rescaleIntercept)?.[0];
  const header: Partial<DicomSliceHeader> & { file: string } = {
    file: file.name,
    transferSyntax: ts.replace(/\0/g, '').trim(),
    sopClassUID: str(ds, TAG.sopClass),
    modality: str(ds, TAG.modality),
    seriesUID: str(ds, TAG.seriesUID),
    seriesNumber: int(ds, TAG.seriesNumber),
    seriesDescription: str(ds, TAG.seriesDescription),
    studyUID: str(ds, TAG.studyUID),
    frameOfReferenceUID: str(ds, TAG.frameOfReference),
    instanceNumber: int(ds, TAG.instanceNumber),
    position: position && position.length === 3 ? (position as Vec3) : undefined,
    orientation: orientation && orientation.length === 6 ? (orientation as DicomSliceHeader['orientation']) : undefined,
    pixelSpacing: spacing && spacing.length === 2 ? (spacing as [number, number]) : undefined,
    rows: us(ds, TAG.rows) ?? undefined,
    columns: us(ds, TAG.columns) ?? undefined,
    bitsAllocated: us(ds, TAG.bitsAllocated) ?? undefined,
    bitsStored: us(ds, TAG.bitsStored) ?? undefined,
    pixelRepresentation: us(ds, TAG.pixelRepresentation) ?? 0,
    samplesPerPixel: us(ds, TAG.samplesPerPixel) ?? 1,
    numberOfFrames: int(ds, TAG.numberOfFrames) ?? 1,
    rescaleSlope: slope !== undefined && slope !== 0 ? slope : 1,
    rescaleIntercept: inter ?? 0,
    sliceThickness: numbers(ds, TAG.sliceThickness)?.[0] ?? null,
  };
  return { header, dataSet: ds, missing };
}

function requireImageHeader(p: { header: Partial<DicomSliceHeader> & { file: string }; missing: string[] }): DicomSliceHeader {
  const h = p.header;
  if (p.missing.length > 0) throw new DataError(h.file, p.missing[0], `missing or invalid${p.missing.length > 1 ? ` (also ${p.missing.slice(1).join(', ')})` : ''}: cannot place the slice in space`);
  for (const key of ['rows', 'columns', 'bitsAllocated'] as const)
    if (!(h[key]! > 0)) throw new DataError(h.file, TAG_NAME[key], 'missing or zero');
  if (h.bitsStored === undefined || !(h.bitsStored > 0)) h.bitsStored = h.bitsAllocated;
  if (h.samplesPerPixel !== 1)
    throw new DataError(h.file, 'SamplesPerPixel (0028,0002)', `is ${h.samplesPerPixel}: only single-sample (grayscale) images are supported`);
  if (h.numberOfFrames !== 1)
    throw new DataError(h.file, 'NumberOfFrames (0028,0008)', `is ${h.numberOfFrames}: multi-frame (enhanced) images are not supported`);
  if (![8, 16, 32].includes(h.bitsAllocated!))
    throw new DataError(h.file, TAG_NAME.bitsAllocated, `is ${h.bitsAllocated}: only 8, 16 and 32 are supported`);
  return h as DicomSliceHeader;
}

const cross = (a: ArrayLike<number>, b: ArrayLike<number>): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

function geometryKey(h: DicomSliceHeader): string {
  const o = h.orientation.map((x) => x.toFixed(3)).join(',');
  const s = h.pixelSpacing.map((x) => x.toFixed(4)).join(',');
  return `${h.rows}x${h.columns}|${o}|${s}`;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : typeof e === 'string' ? e : String(e));

/** The bytes of the (single) frame of encapsulated pixel data: all its fragments, joined. */
function encapsulatedFrame(p: ParsedFile, el: Element, tsDesc: string): Uint8Array {
  const h = p.header;
  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0)
    throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc} transfer syntax, but the pixel data is not encapsulated in fragments`);
  const size = p.dataSet.byteArray.length;
  for (const f of el.fragments)
    if (f.position + f.length > size)
      throw new DataError(h.file, TAG_NAME.pixelData, `truncated: a ${tsDesc} fragment of ${f.length} bytes runs past the end of the file`);
  try {
    return dicomParser.readEncapsulatedPixelDataFromFragments(p.dataSet, el, 0, el.fragments.length) as Uint8Array;
  } catch (e) {
    throw new DataError(h.file, TAG_NAME.pixelData, `cannot read the ${tsDesc} fragments: ${errorText(e)}`);
  }
}

/**
 * Checks a codestream's own frame header against the DICOM header before any decoder sees it:
 * the coding process must fit the transfer syntax, and the size and component count must match.
 */
function checkCodestream(codec: DicomCodec, frame: Uint8Array, h: DicomSliceHeader, tsDesc: string): void {
  let size: { width: number; height: number; components: number } | null = null;
  if (codec === 'jpeg2000') {
    const s = readJ2kSize(frame);
    if (s) size = { width: s.width, height: s.height, components: s.components };
  } else if (codec !== 'rle') {
    const f = readJpegFrameHeader(frame);
    const ok = codec === 'jpegLs' ? f.sof === 0xf7 : codec === 'jpegLossless' ? f.sof === 0xc3 : f.sof === 0xc0 || f.sof === 0xc1;
    if (!ok) throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: the codestream is ${jpegProcessName(f.sof)} JPEG, which this transfer syntax does not allow`);
    if (codec === 'jpegBaseline' && f.precision !== 8)
      throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: ${f.precision}-bit ${jpegProcessName(f.sof)} JPEG is not supported (only 8-bit)`);
    size = { width: f.columns, height: f.rows, components: f.components };
  }
  if (size && (size.width !== h.columns || size.height !== h.rows || size.components !== 1))
    throw new DataError(
      h.file,
      TAG_NAME.pixelData,
      `${tsDesc}: the codestream is ${size.width}x${size.height}x${size.components}, the DICOM header says ${h.columns}x${h.rows}x1`,
    );
}

/** Reads the stored pixel values of one slice, rescaled to HU, into `out`. */
function decodePixels(p: ParsedFile, out: Float32Array, opts: DicomDecoderOptions): void {
  const h = p.header;
  const ds = p.dataSet;
  const el: Element | undefined = ds.elements[TAG.pixelData];
  const n = h.rows * h.columns;
  if (!el) throw new DataError(h.file, TAG_NAME.pixelData, 'missing');
  const signed = h.pixelRepresentation === 1;
  const slope = h.rescaleSlope, inter = h.rescaleIntercept;
  const ts = h.transferSyntax;
  const tsDesc = `${ts} (${transferSyntaxName(ts)})`;
  // The samples as little-endian bytes, their container size, significant bits, and signedness.
  let raw: Uint8Array;
  let bits: number;
  let precision: number;
  let srcSigned = false;
  if (NATIVE.has(ts)) {
    if (el.encapsulatedPixelData) throw new DataError(h.file, TAG_NAME.pixelData, 'encapsulated, but the transfer syntax is native');
    bits = precision = h.bitsAllocated;
    const bytesPer = bits / 8;
    if (el.dataOffset + n * bytesPer > ds.byteArray.length || el.length < n * bytesPer)
      throw new DataError(h.file, TAG_NAME.pixelData, `truncated: ${h.columns}x${h.rows} at ${bits} bits needs ${n * bytesPer} bytes, has ${Math.min(el.length, ds.byteArray.length - el.dataOffset)}`);
    raw = ds.byteArray.subarray(el.dataOffset, el.dataOffset + n * bytesPer);
    if (ts === '1.2.840.10008.1.2.2' && bytesPer > 1) {
      raw = raw.slice();
      for (let o = 0; o < raw.length; o += bytesPer)
        for (let x = 0, y = bytesPer - 1; x < y; x++, y--) {
          const t = raw[o + x];
          raw[o + x] = raw[o + y];
          raw[o + y] = t;
        }
    }
  } else {
    const codec = CODEC[ts];
    if (!codec)
      throw new DataError(h.file, 'TransferSyntaxUID (0002,0010)', `${tsDesc} is not supported (supported: ${SUPPORTED})`);
    const decoder = codec === 'rle' ? undefined : codec === 'jpegLossless' ? (opts.jpegLossless ?? jpegLosslessDecoder) : opts[codec];
    if (codec !== 'rle' && !decoder)
      throw new DataError(h.file, 'TransferSyntaxUID (0002,0010)', `${tsDesc} needs a ${CODEC_LABEL[codec]} decoder (options.${codec}; on Node, readDicomFolder loads it)`);
    const frame = encapsulatedFrame(p, el, tsDesc);
    let img: DecodedFrame;
    try {
      checkCodestream(codec, frame, h, tsDesc);
      img =
        codec === 'rle'
          ? { width: h.columns, height: h.rows, componentCount: 1, bitsPerSample: h.bitsAllocated, isSigned: false, pixels: decodeRleFrame(frame, h.rows, h.columns, h.bitsAllocated) }
          : decoder!.decode(frame);
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc} decoding failed: ${errorText(e)}`);
    }
    if (img.width !== h.columns || img.height !== h.rows || img.componentCount !== 1)
      throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: decoded image is ${img.width}x${img.height}x${img.componentCount}, the DICOM header says ${h.columns}x${h.rows}x1`);
    if (!(img.bitsPerSample >= 1 && img.bitsPerSample <= 32))
      throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: decoder reports ${img.bitsPerSample} bits per sample`);
    bits = img.bitsPerSample <= 8 ? 8 : img.bitsPerSample <= 16 ? 16 : 32;
    precision = img.bitsPerSample;
    srcSigned = img.isSigned;
    raw = img.pixels;
    if (raw.length < n * (bits / 8)) throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: decoder returned ${raw.length} bytes, ${h.columns}x${h.rows} at ${bits} bits needs ${n * (bits / 8)}`);
  }
  const bytesPer = bits / 8;
  if (raw.byteOffset % bytesPer !== 0) raw = raw.slice(0, n * bytesPer);
  const b = raw.buffer, off = raw.byteOffset;
  const arr =
    bits === 8 ? (srcSigned ? new Int8Array(b, off, n) : new Uint8Array(b, off, n))
    : bits === 16 ? (srcSigned ? new Int16Array(b, off, n) : new Uint16Array(b, off, n))
    : srcSigned ? new Int32Array(b, off, n) : new Uint32Array(b, off, n);
  // Only the low min(BitsStored, precision) bits count: bits above may hold overlays or
  // garbage (native data), and codecs hand signed data back as unsigned bit patterns, so
  // mask (unsigned) or sign-extend (signed) from there.
  const sig = Math.min(h.bitsStored, precision);
  let get: (i: number) => number;
  if (srcSigned) get = (i) => arr[i];
  else if (signed) {
    const sh = 32 - sig;
    get = (i) => (arr[i] << sh) >> sh;
  } else if (sig < bits) {
    const mask = 2 ** sig - 1;
    get = (i) => (arr[i] & mask) >>> 0;
  } else get = (i) => arr[i];
  for (let i = 0; i < n; i++) out[i] = get(i) * slope + inter;
}

function makeSeries(group: ParsedFile[], opts: DicomReadOptions, extraWarnings: string[]): DicomSeries {
  const warnings = [...extraWarnings];
  const first = group[0].header;
  const iop = first.orientation;
  const rowDir = iop.slice(0, 3), colDir = iop.slice(3, 6);
  const normal = cross(rowDir, colDir);
  const nn = Math.hypot(...normal);
  if (!(nn > 0.5))
    throw new DataError(first.file, TAG_NAME.orientation, `row and column directions are (nearly) parallel: ${iop.join('\\')}`);
  for (let a = 0; a < 3; a++) normal[a] /= nn;

  // Sort along the normal; drop duplicates at the same position.
  const withD = group.map((p) => ({ p, d: dot(normal, p.header.position) }));
  withD.sort((a, b) => a.d - b.d || (a.p.header.instanceNumber ?? 0) - (b.p.header.instanceNumber ?? 0));
  const kept: typeof withD = [];
  const dropped: string[] = [];
  for (const x of withD) {
    const last = kept[kept.length - 1];
    if (last && Math.abs(x.d - last.d) < 1e-3) {
      // Keep the lower InstanceNumber at a repeated position.
      const a = last.p.header.instanceNumber ?? Infinity, b = x.p.header.instanceNumber ?? Infinity;
      if (b < a) (dropped.push(last.p.header.file), (kept[kept.length - 1] = x));
      else dropped.push(x.p.header.file);
    } else kept.push(x);
  }
  if (dropped.length > 0)
    warnings.push(`${dropped.length} slice(s) at an already-used position dropped (kept the lower InstanceNumber): ${dropped.slice(0, 5).join(', ')}${dropped.length > 5 ? ', ...' : ''}`);

  const n = kept.length;
  const { rows, columns } = first;
  const voxels = rows * columns * n;
  const maxVoxels = opts.maxVoxels ?? 2 ** 30;
  if (voxels > maxVoxels)
    throw new DataError(first.file, 'series size', `${columns} x ${rows} x ${n} = ${voxels} voxels exceeds the limit of ${maxVoxels} (option maxVoxels)`);

  const gaps: number[] = [];
  for (let k = 1; k < n; k++) gaps.push(kept[k].d - kept[k - 1].d);
  const p0 = kept[0].p.header.position;
  let step: Vec3;
  let sliceSpacing: number;
  if (n > 1) {
    const pl = kept[n - 1].p.header.position;
    step = [(pl[0] - p0[0]) / (n - 1), (pl[1] - p0[1]) / (n - 1), (pl[2] - p0[2]) / (n - 1)];
    sliceSpacing = (kept[n - 1].d - kept[0].d) / (n - 1);
  } else {
    sliceSpacing = first.sliceThickness && first.sliceThickness > 0 ? first.sliceThickness : 1;
    step = [normal[0] * sliceSpacing, normal[1] * sliceSpacing, normal[2] * sliceSpacing];
    warnings.push(`single slice: the slice step (${sliceSpacing} mm) is taken from SliceThickness (or 1 mm)`);
  }
  let maxPositionError = 0;
  for (let k = 0; k < n; k++) {
    const p = kept[k].p.header.position;
    const e = Math.hypot(p[0] - (p0[0] + k * step[0]), p[1] - (p0[1] + k * step[1]), p[2] - (p0[2] + k * step[2]));
    if (e > maxPositionError) maxPositionError = e;
  }
  const tol = Math.max(0.01, 0.01 * Math.abs(sliceSpacing));
  const uneven = gaps.some((g) => Math.abs(g - sliceSpacing) > tol);
  if (uneven) {
    const gmin = Math.min(...gaps), gmax = Math.max(...gaps);
    const msg = `uneven slice spacing: gaps ${gmin.toFixed(3)}..${gmax.toFixed(3)} mm (mean ${sliceSpacing.toFixed(3)} mm); the volume uses the mean step, so a slice is up to ${maxPositionError.toFixed(3)} mm from its true position (slices[k].position holds the true ones)`;
    if (opts.onUneven === 'error') throw new DataError(first.file, 'ImagePositionPatient (0020,0032)', msg);
    warnings.push(msg);
  }
  // Orientation of other slices must match (grouping already ensures it to 1e-3).
  const [rs, cs] = first.pixelSpacing; // row spacing (between rows = along j), column spacing (along i)
  const lps = affineFromRows(
    [
      [rowDir[0] * cs, colDir[0] * rs, step[0]],
      [rowDir[1] * cs, colDir[1] * rs, step[1]],
      [rowDir[2] * cs, colDir[2] * rs, step[2]],
    ],
    p0,
  );
  // LPS -> RAS: negate x and y rows.
  const affine = lps.slice() as Float64Array;
  for (let c = 0; c < 4; c++) (affine[4 * c] = 0 - lps[4 * c] || 0), (affine[4 * c + 1] = 0 - lps[4 * c + 1] || 0);

  let data: Float32Array;
  if (opts.headersOnly) data = new Float32Array(0);
  else {
    data = new Float32Array(voxels);
    const plane = rows * columns;
    for (let k = 0; k < n; k++) decodePixels(kept[k].p, data.subarray(k * plane, (k + 1) * plane), opts);
  }
  const tss = [...new Set(kept.map((x) => x.p.header.transferSyntax))];
  return {
    seriesNumber: first.seriesNumber,
    seriesUID: first.seriesUID,
    description: first.seriesDescription,
    modality: first.modality,
    transferSyntax: first.transferSyntax,
    transferSyntaxes: tss,
    slices: kept.map((x) => ({ instanceNumber: x.p.header.instanceNumber, position: [...x.p.header.position] as Vec3, file: x.p.header.file })),
    volume: { data, shape: [columns, rows, n], spacing: spacingFromAffine(affine), affine },
    orientation: [...iop],
    normal,
    sliceSpacing,
    sliceGaps: gaps,
    uneven,
    maxPositionError,
    sliceThickness: first.sliceThickness,
    warnings,
  };
}

/**
 * Reads every series in a set of files (e.g. one folder). Non-DICOM files and DICOM files
 * without pixel data are skipped and counted; image files missing position / orientation /
 * pixel spacing raise a DataError naming the file and tag (or are skipped, with
 * onMissingGeometry: 'skip'). Series are sorted by SeriesNumber (unknown last).
 */
export function readDicomSeries(files: DicomFileInput[], opts: DicomReadOptions = {}): DicomFolderResult {
  const skipped: { file: string; reason: string }[] = [];
  let nonDicomCount = 0;
  const groups = new Map<string, ParsedFile[]>();
  const uidGeometries = new Map<string, Set<string>>();
  for (const f of files) {
    const parsed = parseDicomFile(f);
    if (!parsed) {
      nonDicomCount++;
      skipped.push({ file: f.name, reason: 'not DICOM' });
      continue;
    }
    if (!parsed.dataSet.elements[TAG.pixelData]) {
      skipped.push({ file: f.name, reason: 'DICOM without pixel data' });
      continue;
    }
    let header: DicomSliceHeader;
    try {
      header = requireImageHeader(parsed);
    } catch (e) {
      if (e instanceof DataError && opts.onMissingGeometry === 'skip') {
        skipped.push({ file: f.name, reason: e.message });
        continue;
      }
      throw e;
    }
    // Without SeriesInstanceUID and SeriesNumber (anonymised data), SeriesDescription and
    // SliceThickness still tell e.g. a 1 mm lung reconstruction from a 3 mm body one.
    const anon = `(no series UID or number; "${(header.seriesDescription ?? '').replace(/\|/g, '/')}", ${header.sliceThickness ?? '?'} mm)`;
    const id = header.seriesUID ?? (header.seriesNumber !== null ? `#${header.seriesNumber}` : anon);
    const key = `${id}|${geometryKey(header)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push({ header, dataSet: parsed.dataSet });
    if (!uidGeometries.has(id)) uidGeometries.set(id, new Set());
    uidGeometries.get(id)!.add(key);
  }
  const series: DicomSeries[] = [];
  for (const [key, group] of groups) {
    const id = key.slice(0, key.indexOf('|'));
    const extra: string[] = [];
    const nGeo = uidGeometries.get(id)!.size;
    if (nGeo > 1)
      extra.push(`series ${id} holds images of ${nGeo} different geometries (size/orientation/spacing); this entry is one of them (${group[0].header.columns}x${group[0].header.rows})`);
    if (id.startsWith('(no')) extra.push('no SeriesInstanceUID or SeriesNumber: files grouped by SeriesDescription, SliceThickness and geometry');
    series.push(makeSeries(group, opts, extra));
  }
  series.sort((a, b) => (a.seriesNumber ?? Infinity) - (b.seriesNumber ?? Infinity) || b.slices.length - a.slices.length);
  return { series, skipped, nonDicomCount };
}

/** The series with this SeriesNumber (the largest one when several share it); DataError if none. */
export function seriesByNumber(result: DicomFolderResult | DicomSeries[], seriesNumber: number, source = 'DICOM folder'): DicomSeries {
  const list = Array.isArray(result) ? result : result.series;
  const hits = list.filter((s) => s.seriesNumber === seriesNumber);
  if (hits.length === 0)
    throw new DataError(source, 'SeriesNumber (0020,0011)', `no series ${seriesNumber} (found: ${list.map((s) => s.seriesNumber ?? '?').join(', ') || 'none'})`);
  return hits.reduce((a, b) => (b.slices.length > a.slices.length ? b : a));
}

/** Voxel plane k of the slice with this InstanceNumber ("image Y"), or -1. */
export function sliceIndexOfInstance(series: DicomSeries, instanceNumber: number): number {
  return series.slices.findIndex((s) => s.instanceNumber === instanceNumber);
}

/** RAS+ world position (mm) of the slice with this InstanceNumber (its true position), or null. */
export function instanceWorldRas(series: DicomSeries, instanceNumber: number): Vec3 | null {
  const s = series.slices.find((x) => x.instanceNumber === instanceNumber);
  return s ? [-s.position[0], -s.position[1], s.position[2]] : null;
}

/**
 * The series' slice metadata as a manifest stores it (InstanceNumber -> world z of the slice's
 * true position; z is the same in LPS and RAS), for resolving a report's "series X, image Y".
 * `seriesNumber` overrides the file's SeriesNumber, e.g. when it is empty (anonymised data):
 * otherwise it stays null and references naming a series are dropped as 'unknown-series'.
 * Slices without an InstanceNumber cannot be referenced and are left out (counted in `unnumbered`).
 */
export function seriesMetaFromDicom(series: DicomSeries, opts: { seriesNumber?: number } = {}): SeriesMeta & { unnumbered: number } {
  const slices: SeriesMeta['slices'] = [];
  let unnumbered = 0;
  const seen = new Set<number>();
  for (const s of series.slices) {
    if (s.instanceNumber === null || seen.has(s.instanceNumber)) {
      unnumbered++;
      continue;
    }
    seen.add(s.instanceNumber);
    slices.push({ instanceNumber: s.instanceNumber, z: s.position[2] });
  }
  const meta: SeriesMeta & { unnumbered: number } = { seriesNumber: opts.seriesNumber ?? series.seriesNumber, slices, unnumbered };
  if (series.sliceThickness !== null && series.sliceThickness > 0) meta.sliceThickness = series.sliceThickness;
  return meta;
}

/** LPS <-> RAS (the same map both ways). */
export function lpsToRas(p: ArrayLike<number>): Vec3 {
  return [-p[0], -p[1], p[2]];
}
