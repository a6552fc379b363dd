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
// - Files without the Part 10 preamble are read too (dicomEncoding): a bare file meta group, or
//   a bare dataset (ACR-NEMA style, older planning-system exports) whose VR encoding is told
//   from its first element's bytes, as dcmtk and pydicom do.
// - Enhanced (multi-frame) images: each frame is one slice, its geometry taken from
//   PerFrameFunctionalGroupsSequence, else SharedFunctionalGroupsSequence, else the top level
//   (PlanePositionSequence, PlaneOrientationSequence, PixelMeasuresSequence,
//   PixelValueTransformationSequence), as PS3.3 C.7.6.16 lays them out.
// - Slices are sorted by their position along the slice normal n = row x column direction
//   (d = n . ImagePositionPatient), ascending; never by file name or InstanceNumber. Voxel
//   plane k of `volume` is `slices[k]`.
// - Voxel axes: i = column index (along the row direction, ImageOrientationPatient[0..2]),
//   j = row index (along the column direction, IOP[3..5]), k = slice (along n).
// - The affine is built in LPS (DICOM's patient frame) from IOP, PixelSpacing and the
//   positions of the first and last slice (slice step = (P_last - P_first) / (n - 1), so a
//   gantry tilt shows as a shear and SliceThickness is never used as the step), then
//   converted to RAS+ (x and y negated). `slices[k].position` stays LPS, as in the file.
// - HU = RescaleSlope * stored + RescaleIntercept, per slice. The stored value is read from the
//   bits BitsStored and HighBit name (PS3.5 8.1.1), not assumed to sit at the bottom of the word.
// - Series are told apart by SeriesInstanceUID (else SeriesNumber, else SeriesDescription and
//   SliceThickness), and within one of those by geometry (rows, columns, and orientation and
//   pixel spacing compared with a tolerance, never rounded), so e.g. a localizer stored in the
//   same series becomes a separate entry with a warning.
// - Files that cannot be part of a volume (a dose-report page without position, an unreadable
//   or undecodable file) are skipped and listed with the reason, unless options.strict.
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

/** Names of the SOP classes a CT folder commonly holds, for messages about skipped files. */
const SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.2': 'CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.2.1': 'Enhanced CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.2.2': 'Legacy Converted Enhanced CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.4': 'MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.4.1': 'Enhanced MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.128': 'PET Image Storage',
  '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.1': 'Multi-frame Single Bit Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.2': 'Multi-frame Grayscale Byte Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.3': 'Multi-frame Grayscale Word Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.4': 'Multi-frame True Color Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.88.67': 'X-Ray Radiation Dose SR Storage',
  '1.2.840.10008.5.1.4.1.1.481.2': 'RT Dose Storage',
};

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

/** The per-slice (per-frame, for multi-frame files) header fields this reader uses. Positions are LPS mm, as in the file. */
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
  /** 1-based frame number within a multi-frame file; null for a single-frame file. */
  frame: number | null;
  position: Vec3;
  orientation: [number, number, number, number, number, number];
  /** PixelSpacing as in the file: [row spacing (between rows), column spacing (between columns)]. */
  pixelSpacing: [number, number];
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  /** The most significant bit of a stored sample within its BitsAllocated-bit word. */
  highBit: number;
  pixelRepresentation: number;
  samplesPerPixel: number;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  sliceThickness: number | null;
}

export interface DicomSlice {
  instanceNumber: number | null;
  /** 1-based frame number for a frame of a multi-frame (enhanced) file, else null. */
  frame: number | null;
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
  /**
   * false (default): DICOM files that cannot be part of a volume (unparsable, no
   * ImagePositionPatient / ImageOrientationPatient / PixelSpacing such as a dose-report page,
   * unsupported layout, undecodable pixel data) are skipped and listed in `skipped` with the
   * reason. true: the first such file's DataError is thrown instead. Files that are not DICOM
   * and DICOM files without pixel data (reports, presentation states) are skipped either way.
   */
  strict?: boolean;
  /** Uneven slice spacing: 'warn' (default) or 'error'. */
  onUneven?: 'warn' | 'error';
  /** Only parse headers; `volume.data` is then empty (length 0) — for listing series quickly. */
  headersOnly?: boolean;
}

export interface DicomFolderResult {
  series: DicomSeries[];
  /** Files not used, with the reason: not DICOM, DICOM without image data, or unusable images (see DicomReadOptions.strict). */
  skipped: { file: string; reason: string }[];
  nonDicomCount: number;
}

/** One slice to be: a file's header for one of its frames, and the dataset for the pixel data. */
interface ParsedFile {
  header: DicomSliceHeader;
  dataSet: DataSet;
}

const TAG = {
  transferSyntax: 'x00020010',
  imageType: 'x00080008',
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
  highBit: 'x00280102',
  pixelRepresentation: 'x00280103',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  pixelData: 'x7fe00010',
  // Enhanced (multi-frame) functional groups, PS3.3 C.7.6.16.
  sharedGroups: 'x52009229',
  perFrameGroups: 'x52009230',
  planePosition: 'x00209113',
  planeOrientation: 'x00209116',
  pixelMeasures: 'x00289110',
  pixelValueTransformation: 'x00289145',
};
const TAG_NAME: Record<string, string> = {
  position: 'ImagePositionPatient (0020,0032)',
  orientation: 'ImageOrientationPatient (0020,0037)',
  pixelSpacing: 'PixelSpacing (0028,0030)',
  rows: 'Rows (0028,0010)',
  columns: 'Columns (0028,0011)',
  bitsAllocated: 'BitsAllocated (0028,0100)',
  bitsStored: 'BitsStored (0028,0101)',
  highBit: 'HighBit (0028,0102)',
  numberOfFrames: 'NumberOfFrames (0028,0008)',
  perFrameGroups: 'PerFrameFunctionalGroupsSequence (5200,9230)',
  pixelData: 'PixelData (7FE0,0010)',
};
/** Where each geometry attribute sits inside a functional group item. */
const GROUP_MACRO: Record<'position' | 'orientation' | 'pixelSpacing' | 'sliceThickness' | 'rescaleSlope' | 'rescaleIntercept', string> = {
  position: TAG.planePosition,
  orientation: TAG.planeOrientation,
  pixelSpacing: TAG.pixelMeasures,
  sliceThickness: TAG.pixelMeasures,
  rescaleSlope: TAG.pixelValueTransformation,
  rescaleIntercept: TAG.pixelValueTransformation,
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

/** Item `index` of a sequence, or undefined. */
function seqItem(ds: DataSet | undefined, tag: string, index = 0): DataSet | undefined {
  return ds?.elements[tag]?.items?.[index]?.dataSet;
}

// ---------------------------------------------------------------------------------------
// Telling DICOM bytes apart, and their encoding

/** The two-letter value representations of PS3.5 6.2 (an explicit-VR element has one at bytes 4-5). */
const VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH', 'SL',
  'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);

/**
 * How a file's bytes hold a dataset: 'part10' (128-byte preamble, "DICM", file meta header);
 * 'bare-meta' (the file meta group without the preamble); 'bare' (a dataset without preamble
 * or meta header, in `transferSyntax`).
 */
export type DicomEncoding = { kind: 'part10' } | { kind: 'bare-meta' } | { kind: 'bare'; transferSyntax: string };

function hasPreamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/**
 * The encoding of a DICOM file from its first bytes, or null when they are not DICOM. A bare
 * dataset must start with group 0008 (or the meta group 0002), as every image file's first
 * attributes are; its VR encoding is told as dcmtk and pydicom do: explicit when bytes 4-5 of
 * the first element are a known VR, else implicit; explicit big endian when the group reads
 * byte-swapped (00 08) and a VR follows.
 */
export function dicomEncoding(bytes: Uint8Array): DicomEncoding | null {
  if (hasPreamble(bytes)) return { kind: 'part10' };
  if (bytes.length < 8) return null;
  const vr = String.fromCharCode(bytes[4]!, bytes[5]!);
  const explicit = VRS.has(vr);
  if (bytes[0] === 0x02 && bytes[1] === 0x00 && bytes[3] === 0x00 && explicit) return { kind: 'bare-meta' };
  if (bytes[0] === 0x08 && bytes[1] === 0x00 && bytes[3] === 0x00) {
    if (explicit) return { kind: 'bare', transferSyntax: '1.2.840.10008.1.2.1' };
    // Implicit: a 32-bit length that fits in the file.
    const len = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
    return len === 0xffffffff || len <= bytes.length - 8 ? { kind: 'bare', transferSyntax: '1.2.840.10008.1.2' } : null;
  }
  if (bytes[0] === 0x00 && bytes[1] === 0x08 && bytes[2] === 0x00 && explicit) return { kind: 'bare', transferSyntax: '1.2.840.10008.1.2.2' };
  return null;
}

/** Whether the bytes look like a DICOM file (Part 10, or a bare meta group or dataset; see dicomEncoding). */
export function looksLikeDicom(bytes: Uint8Array): boolean {
  return dicomEncoding(bytes) !== null;
}

function inflater(byteArray: Uint8Array, position: number): Uint8Array {
  const inflated = inflateSync(byteArray.subarray(position));
  const full = new Uint8Array(position + inflated.length);
  full.set(byteArray.subarray(0, position));
  full.set(inflated, position);
  return full;
}

const errorText = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === 'string' ? e : typeof e === 'object' && e !== null && 'exception' in e ? errorText((e as { exception: unknown }).exception) : String(e);

/** The dataset of a file; DataError naming the file when it cannot be parsed. */
function parseDataSet(file: DicomFileInput, enc: DicomEncoding): DataSet {
  let bytes = file.bytes;
  let opts: Record<string, unknown> = { inflater };
  if (enc.kind === 'bare-meta') {
    // The meta group is there, only the preamble is missing: put one in front.
    const full = new Uint8Array(132 + bytes.length);
    full.set([0x44, 0x49, 0x43, 0x4d], 128);
    full.set(bytes, 132);
    bytes = full;
  } else if (enc.kind === 'bare') opts = { ...opts, TransferSyntaxUID: enc.transferSyntax };
  try {
    return dicomParser.parseDicom(bytes, opts as Parameters<typeof dicomParser.parseDicom>[1]);
  } catch (e) {
    const detail = errorText(e).replace(/^dicomParser[.:][\w.]+: ?/, '');
    const how = enc.kind === 'bare' ? ` (no preamble or meta header; read as ${transferSyntaxName(enc.transferSyntax)})` : '';
    throw new DataError(file.name, 'DICOM dataset', `unreadable${/overrun|end of buffer|past end/i.test(detail) ? ' (truncated?)' : ''}${how}: ${detail}`);
  }
}

// ---------------------------------------------------------------------------------------
// Headers

/** A file's header fields, with the geometry of each frame (one entry for a single-frame file). */
interface FileHeader {
  file: string;
  dataSet: DataSet;
  /** The fields shared by all frames (geometry fields are per frame, below). */
  common: Omit<DicomSliceHeader, 'position' | 'orientation' | 'pixelSpacing' | 'frame' | 'rescaleSlope' | 'rescaleIntercept' | 'sliceThickness'>;
  sopClassUID: string | null;
  imageType: string | null;
  frames: FrameGeometry[];
  /** Why the frames cannot be read, when NumberOfFrames and the functional groups disagree. */
  frameProblem: { field: string; detail: string } | null;
}

interface FrameGeometry {
  position: number[] | null;
  orientation: number[] | null;
  pixelSpacing: number[] | null;
  sliceThickness: number | null;
  rescaleSlope: number | null;
  rescaleIntercept: number | null;
  /** Where the geometry came from, for messages: 'top level' or 'frame 3 (functional groups)'. */
  where: string;
}

/** Geometry fields of one dataset level (the top level, or inside one functional group item). */
function geometryOf(ds: DataSet | undefined, macros: boolean): Omit<FrameGeometry, 'where'> {
  const at = (key: keyof typeof GROUP_MACRO) => (macros ? seqItem(ds, GROUP_MACRO[key]) : ds);
  const n = (key: keyof typeof GROUP_MACRO, tag: string) => {
    const d = at(key);
    return d ? numbers(d, tag) : null;
  };
  return {
    position: n('position', TAG.position),
    orientation: n('orientation', TAG.orientation),
    pixelSpacing: n('pixelSpacing', TAG.pixelSpacing),
    sliceThickness: n('sliceThickness', TAG.sliceThickness)?.[0] ?? null,
    rescaleSlope: n('rescaleSlope', TAG.rescaleSlope)?.[0] ?? null,
    rescaleIntercept: n('rescaleIntercept', TAG.rescaleIntercept)?.[0] ?? null,
  };
}

/**
 * Parses one file's header. Returns null for bytes that are not DICOM (see dicomEncoding);
 * throws a DataError naming the file when a DICOM file cannot be parsed. Geometry is checked
 * later, per frame (only image files need it).
 */
function parseFileHeader(file: DicomFileInput): FileHeader | null {
  const enc = dicomEncoding(file.bytes);
  if (!enc) return null;
  const ds = parseDataSet(file, enc);
  try {
    const ts = (str(ds, TAG.transferSyntax) ?? (enc.kind === 'bare' ? enc.transferSyntax : '1.2.840.10008.1.2')).replace(/\0/g, '').trim();
    const bitsAllocated = us(ds, TAG.bitsAllocated) ?? 0;
    const bitsStored = us(ds, TAG.bitsStored) ?? 0;
    const common: FileHeader['common'] = {
      file: file.name,
      transferSyntax: ts,
      sopClassUID: str(ds, TAG.sopClass),
      modality: str(ds, TAG.modality),
      seriesUID: str(ds, TAG.seriesUID),
      seriesNumber: int(ds, TAG.seriesNumber),
      seriesDescription: str(ds, TAG.seriesDescription),
      studyUID: str(ds, TAG.studyUID),
      frameOfReferenceUID: str(ds, TAG.frameOfReference),
      instanceNumber: int(ds, TAG.instanceNumber),
      rows: us(ds, TAG.rows) ?? 0,
      columns: us(ds, TAG.columns) ?? 0,
      bitsAllocated,
      bitsStored,
      highBit: us(ds, TAG.highBit) ?? (bitsStored > 0 ? bitsStored - 1 : -1),
      pixelRepresentation: us(ds, TAG.pixelRepresentation) ?? 0,
      samplesPerPixel: us(ds, TAG.samplesPerPixel) ?? 1,
      numberOfFrames: int(ds, TAG.numberOfFrames) ?? 1,
    };
    const top = geometryOf(ds, false);
    const shared = geometryOf(seqItem(ds, TAG.sharedGroups), true);
    const perFrameEl = ds.elements[TAG.perFrameGroups];
    const nFrames = common.numberOfFrames;
    let frameProblem: FileHeader['frameProblem'] = null;
    const frames: FrameGeometry[] = [];
    const pick = <K extends keyof Omit<FrameGeometry, 'where'>>(k: K, own: Omit<FrameGeometry, 'where'> | null) => own?.[k] ?? shared[k] ?? top[k];
    if (nFrames < 1) frameProblem = { field: TAG_NAME.numberOfFrames, detail: `is ${nFrames}` };
    else if (nFrames > 1 && !perFrameEl?.items)
      // Legacy multi-frame objects (cine, NM, RT Dose's GridFrameOffsetVector) place frames
      // in other ways; only the enhanced per-frame PlanePositionSequence is read here.
      frameProblem = {
        field: TAG_NAME.numberOfFrames,
        detail: `is ${nFrames}, but the file has no ${TAG_NAME.perFrameGroups}: multi-frame images without per-frame positions are not supported`,
      };
    else if (perFrameEl?.items && perFrameEl.items.length !== nFrames)
      frameProblem = { field: TAG_NAME.perFrameGroups, detail: `has ${perFrameEl.items.length} items, NumberOfFrames (0028,0008) is ${nFrames}` };
    else
      for (let f = 0; f < nFrames; f++) {
        const own = perFrameEl?.items ? geometryOf(perFrameEl.items[f]?.dataSet, true) : null;
        frames.push({
          position: pick('position', own),
          orientation: pick('orientation', own),
          pixelSpacing: pick('pixelSpacing', own),
          sliceThickness: pick('sliceThickness', own),
          rescaleSlope: pick('rescaleSlope', own),
          rescaleIntercept: pick('rescaleIntercept', own),
          where: nFrames > 1 || perFrameEl ? `frame ${f + 1} (functional groups, else top level)` : 'top level',
        });
      }
    return { file: file.name, dataSet: ds, common, sopClassUID: common.sopClassUID, imageType: str(ds, TAG.imageType), frames, frameProblem };
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(file.name, 'DICOM dataset', `unreadable header: ${errorText(e)}`);
  }
}

/** "Secondary Capture Image Storage, ImageType DERIVED\SECONDARY, "Dose Report"": what a file is, for skip reasons. */
function describeFile(h: FileHeader): string {
  const parts: string[] = [];
  if (h.sopClassUID) parts.push(SOP_CLASSES[h.sopClassUID] ?? `SOPClassUID ${h.sopClassUID}`);
  if (h.imageType) parts.push(`ImageType ${h.imageType}`);
  if (h.common.seriesDescription) parts.push(`"${h.common.seriesDescription}"`);
  return parts.join(', ');
}

/** The complete header of each frame of an image file; DataError naming the file and the field at fault. */
function frameHeaders(h: FileHeader): DicomSliceHeader[] {
  const c = h.common;
  const what = describeFile(h);
  const fail = (field: string, detail: string): never => {
    throw new DataError(h.file, field, what ? `${detail} (${what})` : detail);
  };
  if (h.frameProblem) fail(h.frameProblem.field, h.frameProblem.detail);
  for (const key of ['rows', 'columns', 'bitsAllocated'] as const) if (!(c[key] > 0)) fail(TAG_NAME[key], 'missing or zero');
  if (c.samplesPerPixel !== 1) fail('SamplesPerPixel (0028,0002)', `is ${c.samplesPerPixel}: only single-sample (grayscale) images are supported`);
  if (![8, 16, 32].includes(c.bitsAllocated)) fail(TAG_NAME.bitsAllocated, `is ${c.bitsAllocated}: only 8, 16 and 32 are supported`);
  const bitsStored = c.bitsStored > 0 ? c.bitsStored : c.bitsAllocated;
  if (bitsStored > c.bitsAllocated) fail(TAG_NAME.bitsStored, `is ${bitsStored}, more than BitsAllocated (${c.bitsAllocated})`);
  const highBit = c.highBit >= 0 ? c.highBit : bitsStored - 1;
  // PS3.5 8.1.1: the stored bits run from HighBit down; they must fit in the word.
  if (highBit < bitsStored - 1 || highBit >= c.bitsAllocated)
    fail(TAG_NAME.highBit, `is ${highBit}, which does not fit BitsStored ${bitsStored} in BitsAllocated ${c.bitsAllocated} (HighBit must be ${bitsStored - 1}..${c.bitsAllocated - 1})`);
  return h.frames.map((g, f) => {
    const missing: string[] = [];
    if (!g.position || g.position.length !== 3) missing.push(TAG_NAME.position);
    if (!g.orientation || g.orientation.length !== 6) missing.push(TAG_NAME.orientation);
    if (!g.pixelSpacing || g.pixelSpacing.length !== 2 || !(g.pixelSpacing[0]! > 0 && g.pixelSpacing[1]! > 0)) missing.push(TAG_NAME.pixelSpacing);
    if (missing.length > 0)
      fail(missing[0]!, `missing or invalid${missing.length > 1 ? ` (also ${missing.slice(1).join(', ')})` : ''}${h.frames.length > 1 || g.where !== 'top level' ? ` in ${g.where}` : ''}: cannot place the image in space`);
    const o = g.orientation!;
    if (!(Math.hypot(...cross(o.slice(0, 3), o.slice(3, 6))) > 0.5)) fail(TAG_NAME.orientation, `row and column directions are (nearly) parallel: ${o.join('\\')}`);
    return {
      ...c,
      bitsStored,
      highBit,
      frame: c.numberOfFrames > 1 ? f + 1 : null,
      position: g.position as Vec3,
      orientation: g.orientation as DicomSliceHeader['orientation'],
      pixelSpacing: g.pixelSpacing as [number, number],
      rescaleSlope: g.rescaleSlope !== null && g.rescaleSlope !== 0 ? g.rescaleSlope : 1,
      rescaleIntercept: g.rescaleIntercept ?? 0,
      sliceThickness: g.sliceThickness,
    };
  });
}

const cross = (a: ArrayLike<number>, b: ArrayLike<number>): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/**
 * Tolerances for "the same geometry": direction cosines within 1e-4 (ITK's own check uses 1e-6;
 * writers print IOP with as few as 6 decimals, and 1e-4 moves the edge of a 512-pixel image
 * by under 0.05 mm), pixel spacing within 1e-4 relative. Slices of one series differ only by
 * such float noise; a localizer or reformat in the same series differs by far more.
 */
const IOP_TOLERANCE = 1e-4;
const SPACING_TOLERANCE = 1e-4;

function sameGeometry(a: DicomSliceHeader, b: DicomSliceHeader): boolean {
  if (a.rows !== b.rows || a.columns !== b.columns) return false;
  for (let i = 0; i < 6; i++) if (!(Math.abs(a.orientation[i]! - b.orientation[i]!) <= IOP_TOLERANCE)) return false;
  for (let i = 0; i < 2; i++) if (!(Math.abs(a.pixelSpacing[i]! - b.pixelSpacing[i]!) <= SPACING_TOLERANCE * Math.max(a.pixelSpacing[i]!, b.pixelSpacing[i]!))) return false;
  return true;
}

/** Encapsulated pixel data: which fragments hold each frame, cached per element (frames are decoded one by one). */
const frameOffsets = new WeakMap<Element, number[]>();

/** The bytes of one frame of encapsulated pixel data: its fragments, joined. */
function encapsulatedFrame(p: ParsedFile, el: Element, codec: DicomCodec, tsDesc: string): Uint8Array {
  const h = p.header;
  const ds = p.dataSet;
  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0)
    throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc} transfer syntax, but the pixel data is not encapsulated in fragments`);
  const size = ds.byteArray.length;
  for (const f of el.fragments)
    if (f.position + f.length > size)
      throw new DataError(h.file, TAG_NAME.pixelData, `truncated: a ${tsDesc} fragment of ${f.length} bytes runs past the end of the file`);
  const nFrames = h.numberOfFrames;
  const f = (h.frame ?? 1) - 1;
  try {
    if (nFrames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments.length) as Uint8Array;
    if (el.basicOffsetTable && el.basicOffsetTable.length === nFrames) return dicomParser.readEncapsulatedImageFrame(ds, el, f) as Uint8Array;
    if (el.fragments.length === nFrames) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, f, 1) as Uint8Array;
    if (codec !== 'rle') {
      // No offset table and several fragments per frame: JPEG-family codestreams end with an
      // EOI / EOC marker, which tells where each frame ends.
      let bot = frameOffsets.get(el);
      if (!bot) frameOffsets.set(el, (bot = dicomParser.createJPEGBasicOffsetTable(ds, el) as number[]));
      if (bot.length === nFrames) return dicomParser.readEncapsulatedImageFrame(ds, el, f, bot) as Uint8Array;
    }
  } catch (e) {
    throw new DataError(h.file, TAG_NAME.pixelData, `cannot read frame ${f + 1} from the ${tsDesc} fragments: ${errorText(e)}`);
  }
  throw new DataError(
    h.file,
    TAG_NAME.pixelData,
    `${nFrames} frames in ${el.fragments.length} ${tsDesc} fragments without a basic offset table: cannot tell which fragments hold frame ${f + 1}`,
  );
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

/** A decoder the caller did not give: not the file's fault, so never a reason to skip it. */
class MissingDecoderError extends DataError {}

/** The decoder a compressed transfer syntax needs; a missing one is the caller's omission, not the file's fault (always thrown). */
function decoderFor(h: DicomSliceHeader, opts: DicomDecoderOptions): FrameDecoder | undefined {
  const codec = CODEC[h.transferSyntax];
  if (!codec || codec === 'rle') return undefined;
  const decoder = codec === 'jpegLossless' ? (opts.jpegLossless ?? jpegLosslessDecoder) : opts[codec];
  if (!decoder)
    throw new MissingDecoderError(
      h.file,
      'TransferSyntaxUID (0002,0010)',
      `${h.transferSyntax} (${transferSyntaxName(h.transferSyntax)}) needs a ${CODEC_LABEL[codec]} decoder (options.${codec}; on Node, readDicomFolder loads it)`,
    );
  return decoder;
}

/** Reads the stored pixel values of one slice (one frame), rescaled to HU, into `out`. */
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
  // Native and RLE data hand back whole words, laid out as BitsStored / HighBit say; the
  // JPEG-family codecs hand back the samples themselves.
  let words = true;
  if (NATIVE.has(ts)) {
    if (el.encapsulatedPixelData) throw new DataError(h.file, TAG_NAME.pixelData, 'encapsulated, but the transfer syntax is native');
    bits = precision = h.bitsAllocated;
    const bytesPer = bits / 8;
    const frameBytes = n * bytesPer;
    const need = frameBytes * h.numberOfFrames;
    const start = el.dataOffset + frameBytes * ((h.frame ?? 1) - 1);
    if (el.dataOffset + need > ds.byteArray.length || el.length < need)
      throw new DataError(
        h.file,
        TAG_NAME.pixelData,
        `truncated: ${h.numberOfFrames > 1 ? `${h.numberOfFrames} frames of ` : ''}${h.columns}x${h.rows} at ${bits} bits needs ${need} bytes, has ${Math.min(el.length, ds.byteArray.length - el.dataOffset)}`,
      );
    raw = ds.byteArray.subarray(start, start + frameBytes);
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
    const decoder = decoderFor(h, opts);
    const frame = encapsulatedFrame(p, el, codec, tsDesc);
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
    words = codec === 'rle';
    if (raw.length < n * (bits / 8)) throw new DataError(h.file, TAG_NAME.pixelData, `${tsDesc}: decoder returned ${raw.length} bytes, ${h.columns}x${h.rows} at ${bits} bits needs ${n * (bits / 8)}`);
  }
  const bytesPer = bits / 8;
  if (raw.byteOffset % bytesPer !== 0) raw = raw.slice(0, n * bytesPer);
  const b = raw.buffer, off = raw.byteOffset;
  const arr =
    bits === 8 ? (srcSigned ? new Int8Array(b, off, n) : new Uint8Array(b, off, n))
    : bits === 16 ? (srcSigned ? new Int16Array(b, off, n) : new Uint16Array(b, off, n))
    : srcSigned ? new Int32Array(b, off, n) : new Uint32Array(b, off, n);
  // The stored value is the BitsStored bits ending at HighBit (PS3.5 8.1.1): shift them down
  // (legacy files left-align 12-bit samples, HighBit 15), then keep only them: bits around may
  // hold overlays or garbage, and codecs hand signed data back as unsigned bit patterns, so
  // mask (unsigned) or sign-extend (signed) from there.
  const shift = words ? h.highBit + 1 - h.bitsStored : 0;
  const sig = Math.min(h.bitsStored, precision);
  let get: (i: number) => number;
  if (srcSigned) get = (i) => arr[i];
  else if (signed) {
    const sh = 32 - sig;
    get = shift ? (i) => ((arr[i] >>> shift) << sh) >> sh : (i) => (arr[i] << sh) >> sh;
  } else if (sig < 32) {
    const mask = 2 ** sig - 1;
    get = shift ? (i) => ((arr[i] >>> shift) & mask) >>> 0 : sig < bits ? (i) => (arr[i] & mask) >>> 0 : (i) => arr[i];
  } else get = (i) => arr[i];
  for (let i = 0; i < n; i++) out[i] = get(i) * slope + inter;
}

/** Records a file that cannot be used (or throws, with options.strict). */
type OnFailure = (file: string, error: DataError) => void;

/**
 * One series from slices of one geometry. Slices whose pixel data cannot be decoded are passed
 * to `onFailure` and left out (the series is rebuilt without them); null when none is left.
 */
function makeSeries(group: ParsedFile[], opts: DicomReadOptions, extraWarnings: string[], onFailure: OnFailure): DicomSeries | null {
  for (;;) {
    const built = buildSeries(group, opts, extraWarnings);
    if (opts.headersOnly) return built.series;
    const failed = new Set<ParsedFile>();
    const { data, kept } = built;
    const plane = built.series.volume.shape[0] * built.series.volume.shape[1];
    for (let k = 0; k < kept.length; k++) {
      try {
        decodePixels(kept[k]!, data.subarray(k * plane, (k + 1) * plane), opts);
      } catch (e) {
        if (e instanceof MissingDecoderError) throw e;
        const file = kept[k]!.header.file;
        onFailure(file, e instanceof DataError ? e : new DataError(file, TAG_NAME.pixelData, `cannot be decoded: ${errorText(e)}`));
        failed.add(kept[k]!);
      }
    }
    if (failed.size === 0) return built.series;
    group = group.filter((p) => !failed.has(p));
    if (group.length === 0) return null;
  }
}

function buildSeries(group: ParsedFile[], opts: DicomReadOptions, extraWarnings: string[]): { series: DicomSeries; kept: ParsedFile[]; data: Float32Array } {
  const warnings = [...extraWarnings];
  const first = group[0].header;
  const iop = first.orientation;
  const rowDir = iop.slice(0, 3), colDir = iop.slice(3, 6);
  const normal = cross(rowDir, colDir);
  const nn = Math.hypot(...normal);
  for (let a = 0; a < 3; a++) normal[a] /= nn;

  // Sort along the normal; drop duplicates at the same position.
  const withD = group.map((p) => ({ p, d: dot(normal, p.header.position) }));
  const order = (h: DicomSliceHeader) => h.instanceNumber ?? 0;
  withD.sort((a, b) => a.d - b.d || order(a.p.header) - order(b.p.header) || (a.p.header.frame ?? 0) - (b.p.header.frame ?? 0));
  const kept: typeof withD = [];
  const dropped: string[] = [];
  const label = (h: DicomSliceHeader) => (h.frame !== null ? `${h.file} frame ${h.frame}` : h.file);
  for (const x of withD) {
    const last = kept[kept.length - 1];
    if (last && Math.abs(x.d - last.d) < 1e-3) {
      // Keep the lower InstanceNumber (then frame) at a repeated position.
      const a = last.p.header.instanceNumber ?? Infinity, b = x.p.header.instanceNumber ?? Infinity;
      if (b < a) (dropped.push(label(last.p.header)), (kept[kept.length - 1] = x));
      else dropped.push(label(x.p.header));
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
  // The other slices' orientation and spacing agree with the first one's within the grouping tolerance.
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

  const data = opts.headersOnly ? new Float32Array(0) : new Float32Array(voxels);
  const tss = [...new Set(kept.map((x) => x.p.header.transferSyntax))];
  const slices = kept.map((x) => ({ instanceNumber: x.p.header.instanceNumber, frame: x.p.header.frame, position: [...x.p.header.position] as Vec3, file: x.p.header.file }));
  const series: DicomSeries = {
    seriesNumber: first.seriesNumber,
    seriesUID: first.seriesUID,
    description: first.seriesDescription,
    modality: first.modality,
    transferSyntax: first.transferSyntax,
    transferSyntaxes: tss,
    slices,
    volume: { data, shape: [columns, rows, n], spacing: spacingFromAffine(affine), affine, dicomSlices: slices.map(({ instanceNumber, frame }) => ({ instanceNumber, frame })) },
    orientation: [...iop],
    normal,
    sliceSpacing,
    sliceGaps: gaps,
    uneven,
    maxPositionError,
    sliceThickness: first.sliceThickness,
    warnings,
  };
  return { series, kept: kept.map((x) => x.p), data };
}

/** "field: detail" of a DataError (its message without the file name), for the skipped list. */
function reasonOf(e: DataError): string {
  const prefix = `${e.source}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/**
 * Reads every series in a set of files (e.g. one folder). Multi-frame (enhanced) files give one
 * slice per frame. Files that are not DICOM and DICOM files without pixel data are skipped and
 * counted. Image files that cannot be part of a volume (unparsable; without ImagePositionPatient,
 * ImageOrientationPatient or PixelSpacing, e.g. a dose-report page; an unsupported layout;
 * undecodable pixel data) are skipped and listed with the reason, or, with opts.strict, raise
 * their DataError (naming the file and the field). When no series is left and image files were
 * skipped, the first one's DataError is thrown. Series are sorted by SeriesNumber (unknown last).
 * Always thrown: maxVoxels exceeded, uneven spacing with onUneven 'error', a missing decoder.
 */
export function readDicomSeries(files: DicomFileInput[], opts: DicomReadOptions = {}): DicomFolderResult {
  const skipped: { file: string; reason: string }[] = [];
  const failures: DataError[] = [];
  let nonDicomCount = 0;
  const onFailure: OnFailure = (file, error) => {
    if (opts.strict) throw error;
    failures.push(error);
    const reason = reasonOf(error);
    if (!skipped.some((s) => s.file === file && s.reason === reason)) skipped.push({ file, reason });
  };
  const asDataError = (file: string, e: unknown): DataError => {
    if (e instanceof DataError) return e;
    return new DataError(file, 'DICOM dataset', `unreadable: ${errorText(e)}`);
  };
  const groups: { id: string; members: ParsedFile[] }[] = [];
  const idGeometries = new Map<string, number>();
  for (const f of files) {
    let fh: FileHeader | null;
    let headers: DicomSliceHeader[];
    try {
      fh = parseFileHeader(f);
      if (!fh) {
        nonDicomCount++;
        skipped.push({ file: f.name, reason: 'not DICOM' });
        continue;
      }
      if (!fh.dataSet.elements[TAG.pixelData]) {
        const what = describeFile(fh);
        skipped.push({ file: f.name, reason: `DICOM without pixel data${what ? ` (${what})` : ''}` });
        continue;
      }
      headers = frameHeaders(fh);
    } catch (e) {
      onFailure(f.name, asDataError(f.name, e));
      continue;
    }
    for (const header of headers) {
      // Without SeriesInstanceUID and SeriesNumber (anonymised data), SeriesDescription and
      // SliceThickness still tell e.g. a 1 mm lung reconstruction from a 3 mm body one.
      const anon = `(no series UID or number; "${header.seriesDescription ?? ''}", ${header.sliceThickness ?? '?'} mm)`;
      const id = header.seriesUID ?? (header.seriesNumber !== null ? `#${header.seriesNumber}` : anon);
      let g = groups.find((x) => x.id === id && sameGeometry(x.members[0]!.header, header));
      if (!g) {
        groups.push((g = { id, members: [] }));
        idGeometries.set(id, (idGeometries.get(id) ?? 0) + 1);
      }
      g.members.push({ header, dataSet: fh.dataSet });
    }
  }
  const series: DicomSeries[] = [];
  for (const { id, members } of groups) {
    const extra: string[] = [];
    const nGeo = idGeometries.get(id)!;
    if (nGeo > 1)
      extra.push(`series ${id} holds images of ${nGeo} different geometries (size/orientation/spacing); this entry is one of them (${members[0]!.header.columns}x${members[0]!.header.rows})`);
    if (id.startsWith('(no')) extra.push('no SeriesInstanceUID or SeriesNumber: files grouped by SeriesDescription, SliceThickness and geometry');
    const s = makeSeries(members, opts, extra, onFailure);
    if (s) series.push(s);
  }
  if (series.length === 0 && failures.length > 0) throw failures[0]!;
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
 * The image number a report's "image Y" means for each slice: its InstanceNumber, or, when the
 * series is one multi-frame (enhanced) file, its frame number (what viewers number the images by).
 */
export function imageNumbers(series: DicomSeries): (number | null)[] {
  const s0 = series.slices[0];
  const oneMultiFrame = s0 !== undefined && series.slices.every((s) => s.frame !== null && s.file === s0.file);
  return series.slices.map((s) => (oneMultiFrame ? s.frame : s.instanceNumber));
}

/**
 * The series' slice metadata as a manifest stores it (image number -> world z of the slice's
 * true position; z is the same in LPS and RAS), for resolving a report's "series X, image Y".
 * Image numbers are InstanceNumbers (frame numbers for a series that is one multi-frame file;
 * see imageNumbers). `seriesNumber` overrides the file's SeriesNumber, e.g. when it is empty
 * (anonymised data): otherwise it stays null and references naming a series are dropped as
 * 'unknown-series'. `seriesCount`: how many image series the study (folder) has; when more than
 * one, references that name no series are not resolved. Slices without an image number cannot be
 * referenced and are left out (counted in `unnumbered`).
 */
export function seriesMetaFromDicom(series: DicomSeries, opts: { seriesNumber?: number; seriesCount?: number } = {}): SeriesMeta & { unnumbered: number } {
  const slices: SeriesMeta['slices'] = [];
  let unnumbered = 0;
  const seen = new Set<number>();
  const numbersOf = imageNumbers(series);
  series.slices.forEach((s, k) => {
    const num = numbersOf[k]!;
    if (num === null || seen.has(num)) {
      unnumbered++;
      return;
    }
    seen.add(num);
    slices.push({ instanceNumber: num, z: s.position[2] });
  });
  const meta: SeriesMeta & { unnumbered: number } = { seriesNumber: opts.seriesNumber ?? series.seriesNumber, slices, unnumbered };
  if (series.sliceThickness !== null && series.sliceThickness > 0) meta.sliceThickness = series.sliceThickness;
  if (opts.seriesCount !== undefined && opts.seriesCount > 1) meta.seriesCount = opts.seriesCount;
  return meta;
}

/** LPS <-> RAS (the same map both ways). */
export function lpsToRas(p: ArrayLike<number>): Vec3 {
  return [-p[0], -p[1], p[2]];
}
