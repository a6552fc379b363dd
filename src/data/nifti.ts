// NIfTI-1 / NIfTI-2 reading and writing (.nii and .nii.gz) as a Volume. Pure code: no Node
// built-ins (the browser demo reads NIfTI with it); file access is in io/node.ts.
//
// Dependencies: nifti-reader-js parses the header fields of both versions and both byte
// orders (we then compute the affine ourselves, because its header.affine prefers the qform
// when qform_code > sform_code, and the NIfTI rule this project follows is "sform if
// sform_code > 0"); fflate (through io/gzip.ts) for gzip. The writer is ours: a few lines
// of DataView for a fixed header layout, for both versions.
//
// Decisions (documented in the report and relied on by the tests):
// - Affine: sform when sform_code > 0; else qform (quaternion + qoffset + pixdim, qfac from
//   pixdim[0]) when qform_code > 0; else (NIfTI method 1, no orientation in the file) the
//   affine nibabel's get_base_affine() gives, which MONAI's NibabelReader and so RadFinder's
//   preprocessing use: ANALYZE's radiological convention, x flipped (LAS), the origin at the
//   volume's centre, diag(-pixdim[1], pixdim[2], pixdim[3]) with a pixdim of 0 read as 1 (as
//   nibabel does) and a non-finite one refused. (The NIfTI-1 standard's own method 1 has no
//   flip; a reader following it would mirror such a file left-right against the weights.)
//   Units (xyzt_units) are reported, not applied: millimetres are assumed.
// - Scaling: value = scl_slope * stored + scl_inter; slope 0 or non-finite means no scaling.
// - NaN / Inf voxels: an error by default (option nonFinite: 'error'); 'keep' keeps them (and
//   counts them in header.nonFinite), 'zero' replaces them with `fill` (default 0).
// - 4D files (dim[4..7] > 1) are refused, 2D files (dim[0] = 2) read as nz = 1.
// - int64/uint64 are read through BigInt (exact up to 2^53, then float32 anyway).
// - Big-endian files are read (byte-swapped); files are always written little-endian.
import { isNIFTI1, isNIFTI2, NIFTI1, NIFTI2 } from 'nifti-reader-js';
import type { mat4 } from 'gl-matrix';
import { DataError } from '../errors.ts';
import { gunzipChecked, gunzipPrefix, gzip, isGzip } from './io/gzip.ts';
import {
  affineFromRows,
  affineFromSpacing,
  spacingFromAffine,
  toAffine64,
  type Vec3,
  type Volume,
} from './volume.ts';

export type NiftiDatatype =
  | 'uint8'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float32'
  | 'float64';

interface TypeInfo {
  code: number;
  bytes: number;
  min: number;
  max: number;
  integer: boolean;
}

export const NIFTI_DATATYPES: Record<NiftiDatatype, TypeInfo> = {
  uint8: { code: 2, bytes: 1, min: 0, max: 255, integer: true },
  int8: { code: 256, bytes: 1, min: -128, max: 127, integer: true },
  int16: { code: 4, bytes: 2, min: -32768, max: 32767, integer: true },
  uint16: { code: 512, bytes: 2, min: 0, max: 65535, integer: true },
  int32: { code: 8, bytes: 4, min: -2147483648, max: 2147483647, integer: true },
  uint32: { code: 768, bytes: 4, min: 0, max: 4294967295, integer: true },
  int64: { code: 1024, bytes: 8, min: -(2 ** 63), max: 2 ** 63 - 1024, integer: true },
  uint64: { code: 1280, bytes: 8, min: 0, max: 2 ** 64 - 2048, integer: true },
  float32: { code: 16, bytes: 4, min: -3.4028234663852886e38, max: 3.4028234663852886e38, integer: false },
  float64: { code: 64, bytes: 8, min: -Number.MAX_VALUE, max: Number.MAX_VALUE, integer: false },
};

const UNSUPPORTED_TYPES: Record<number, string> = {
  0: 'unknown (0)',
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'RGB24',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'RGBA32',
};

function datatypeFromCode(code: number): NiftiDatatype | undefined {
  for (const [name, t] of Object.entries(NIFTI_DATATYPES)) if (t.code === code) return name as NiftiDatatype;
  return undefined;
}

/** Default voxel limit: 2^30 voxels (4 GiB of float32). */
export const DEFAULT_MAX_VOXELS = 2 ** 30;

export interface NiftiReadOptions {
  /** Refuse (before allocating) files with more voxels than this. Default 2^30. */
  maxVoxels?: number;
  /** NaN / +-Inf voxels: 'error' (default), 'keep', or 'zero' (replace by `fill`). */
  nonFinite?: 'error' | 'keep' | 'zero';
  /** Replacement value for nonFinite: 'zero'. Default 0. */
  fill?: number;
}

export interface NiftiHeaderInfo {
  version: 1 | 2;
  gzip: boolean;
  littleEndian: boolean;
  datatype: NiftiDatatype;
  datatypeCode: number;
  bitpix: number;
  /** dim[0..7] as in the file. */
  dim: number[];
  /** pixdim[0..7] as in the file. */
  pixdim: number[];
  voxOffset: number;
  /** As in the file (0 means "no scaling"). */
  sclSlope: number;
  sclInter: number;
  /** Whether scaling was applied (slope finite and non-zero). */
  scaled: boolean;
  qformCode: number;
  sformCode: number;
  /** Which of the header's transforms gave the affine. */
  affineSource: 'sform' | 'qform' | 'pixdim';
  /** The qform as an affine (when qform_code > 0), for comparison with the sform. */
  qform?: Float64Array;
  /** The sform as an affine (when sform_code > 0). */
  sform?: Float64Array;
  /** xyzt_units spatial unit name ('mm', 'm', 'um' or 'unknown'); not applied. */
  spatialUnits: string;
  description: string;
  calMin: number;
  calMax: number;
  /** Number of NaN / Inf voxels found (after the nonFinite policy; 0 with 'error'). */
  nonFinite: number;
}

export type NiftiVolume = Volume & { header: NiftiHeaderInfo };

export interface NiftiWriteOptions {
  /** Stored type. Default 'float32' (lossless for a Volume's Float32Array). */
  datatype?: NiftiDatatype;
  /** gzip the whole file (.nii.gz). Default false. */
  gzip?: boolean;
  /** gzip level 0..9 (default 6). */
  gzipLevel?: number;
  /** Scaling written to the header: stored = round((value - sclInter) / sclSlope) for integer types. */
  sclSlope?: number;
  sclInter?: number;
  /** NIfTI-1 (default) or NIfTI-2. */
  version?: 1 | 2;
  /** Header description (max 79 ASCII characters). */
  description?: string;
  /** Codes written with the transforms (default 1 = scanner anatomical for both). */
  sformCode?: number;
  qformCode?: number;
  /** Clamp values outside the stored type's range instead of throwing. Default false. */
  clamp?: boolean;
}

// ---------------------------------------------------------------------------------------
// Reading

/** Size of the header (348 or 540) and the byte order, from the first 4 bytes; or null. */
function sniffHeader(b: Uint8Array): { version: 1 | 2; littleEndian: boolean } | null {
  if (b.length < 4) return null;
  const v = new DataView(b.buffer, b.byteOffset, 4);
  const le = v.getInt32(0, true), be = v.getInt32(0, false);
  if (le === 348) return { version: 1, littleEndian: true };
  if (be === 348) return { version: 1, littleEndian: false };
  if (le === 540) return { version: 2, littleEndian: true };
  if (be === 540) return { version: 2, littleEndian: false };
  return null;
}

function exactArrayBuffer(b: Uint8Array, length: number): ArrayBuffer {
  const n = Math.min(length, b.length);
  if (b.byteOffset === 0 && b.buffer instanceof ArrayBuffer && b.buffer.byteLength === n) return b.buffer;
  return b.slice(0, n).buffer as ArrayBuffer;
}

interface ParsedHeader {
  info: NiftiHeaderInfo;
  shape: Vec3;
  affine: Float64Array;
  dataBytes: number;
}

function parseHeader(bytes: Uint8Array, source: string, gz: boolean, maxVoxels: number): ParsedHeader {
  const sniff = sniffHeader(bytes);
  if (!sniff)
    throw new DataError(source, 'sizeof_hdr', `not a NIfTI file (first 4 bytes are not 348 or 540 in either byte order)`);
  const hdrSize = sniff.version === 1 ? 348 : 540;
  if (bytes.length < hdrSize)
    throw new DataError(source, 'header', `truncated: ${bytes.length} bytes, a NIfTI-${sniff.version} header needs ${hdrSize}`);
  // Exactly the fixed header: nifti-reader-js then leaves extensions alone (we skip them).
  const ab = exactArrayBuffer(bytes, hdrSize);
  const isOk = sniff.version === 1 ? isNIFTI1(ab) : isNIFTI2(ab);
  if (!isOk) {
    const magicAt = sniff.version === 1 ? 344 : 4;
    const m = Array.from(bytes.subarray(magicAt, magicAt + 4))
      .map((c) => (c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`))
      .join('');
    const want = sniff.version === 1 ? "'n+1\\0' (or 'ni1\\0' for a .hdr/.img pair)" : "'n+2\\0'";
    if (sniff.version === 1 && bytes[344] === 0x6e && bytes[345] === 0x69 && bytes[346] === 0x31)
      throw new DataError(source, 'magic', `'ni1' is a .hdr/.img pair header; only single-file .nii is supported`);
    throw new DataError(source, 'magic', `wrong magic number '${m}', expected ${want}`);
  }
  let h: NIFTI1 | NIFTI2;
  try {
    h = sniff.version === 1 ? new NIFTI1() : new NIFTI2();
    h.readHeader(ab);
  } catch (e) {
    throw new DataError(source, 'header', `unreadable: ${(e as Error).message}`);
  }
  const dv = new DataView(ab);
  const le = h.littleEndian;

  const dim = h.dims.slice(0, 8).map(Number);
  const ndim = dim[0];
  if (!(ndim >= 1 && ndim <= 7)) throw new DataError(source, 'dim[0]', `must be 1..7, is ${ndim} (byte order or header corrupt)`);
  const shape: Vec3 = [1, 1, 1];
  for (let a = 0; a < 3; a++) {
    if (a < ndim) {
      const n = dim[a + 1];
      if (!Number.isInteger(n) || n < 1)
        throw new DataError(source, `dim[${a + 1}]`, `must be a positive integer, is ${n}`);
      shape[a] = n;
    }
  }
  for (let a = 4; a <= ndim; a++) {
    if (dim[a] > 1) throw new DataError(source, `dim[${a}]`, `is ${dim[a]}: only 3D volumes are supported (4D and higher are not)`);
    if (dim[a] < 1 || !Number.isInteger(dim[a])) throw new DataError(source, `dim[${a}]`, `must be a positive integer, is ${dim[a]}`);
  }
  const count = shape[0] * shape[1] * shape[2];
  if (count > maxVoxels)
    throw new DataError(source, 'dim', `${shape.join(' x ')} = ${count} voxels exceeds the limit of ${maxVoxels} (option maxVoxels)`);

  const code = h.datatypeCode;
  const datatype = datatypeFromCode(code);
  if (!datatype) {
    const name = UNSUPPORTED_TYPES[code] ?? `code ${code}`;
    throw new DataError(source, 'datatype', `${name} is not supported (supported: ${Object.keys(NIFTI_DATATYPES).join(', ')})`);
  }
  const t = NIFTI_DATATYPES[datatype];
  if (h.numBitsPerVoxel !== t.bytes * 8)
    throw new DataError(source, 'bitpix', `is ${h.numBitsPerVoxel}, datatype ${datatype} has ${t.bytes * 8}`);
  const voxOffset = Math.round(Number(h.vox_offset));
  if (!(voxOffset >= 0) || !Number.isFinite(voxOffset)) throw new DataError(source, 'vox_offset', `invalid (${h.vox_offset})`);
  const dataStart = Math.max(voxOffset, hdrSize);

  const pixdim = h.pixDims.slice(0, 8).map(Number);
  const slope = Number(h.scl_slope), inter = Number(h.scl_inter);
  const scaled = Number.isFinite(slope) && slope !== 0;

  // Transforms.
  let qform: Float64Array | undefined;
  let sform: Float64Array | undefined;
  if (h.qform_code > 0) qform = quaternToAffine(h.quatern_b, h.quatern_c, h.quatern_d, [h.qoffset_x, h.qoffset_y, h.qoffset_z], pixdim);
  if (h.sform_code > 0) {
    const rows: number[][] = [];
    const tr: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row: number[] = [];
      for (let c = 0; c < 4; c++) {
        const v = sniff.version === 1 ? dv.getFloat32(280 + (r * 4 + c) * 4, le) : dv.getFloat64(400 + (r * 4 + c) * 8, le);
        if (c < 3) row.push(v);
        else tr.push(v);
      }
      rows.push(row);
    }
    sform = affineFromRows(rows, tr);
  }
  let affine: Float64Array;
  let affineSource: NiftiHeaderInfo['affineSource'];
  const usable = (m: Float64Array | undefined): m is Float64Array =>
    !!m && Array.from(m).every(Number.isFinite) && spacingFromAffine(m).every((x) => x > 0);
  // A singular sform (e.g. all-zero srow_*, seen in broken files) with a usable qform: the qform.
  if (sform && (usable(sform) || !usable(qform))) (affine = sform), (affineSource = 'sform');
  else if (qform) (affine = qform), (affineSource = 'qform');
  else {
    for (const a of [1, 2, 3]) if (a <= ndim && !Number.isFinite(pixdim[a])) throw new DataError(source, `pixdim[${a}]`, `is ${pixdim[a]} and the file has no sform or qform: the voxel size is unknown`);
    // Axes past ndim count as one voxel of 1 mm, as nibabel pads them.
    const zoom = (a: number) => (a > ndim ? 1 : pixdim[a] === 0 ? 1 : Math.abs(pixdim[a]));
    affine = baseAffine([1, 2, 3].map((a) => (a > ndim ? 1 : dim[a])), [1, 2, 3].map(zoom));
    affineSource = 'pixdim';
  }
  for (let i = 0; i < 16; i++)
    if (!Number.isFinite(affine[i])) throw new DataError(source, `${affineSource}`, 'has non-finite entries');
  const sp = spacingFromAffine(affine);
  for (let a = 0; a < 3; a++)
    if (!(sp[a] > 0)) throw new DataError(source, affineSource, `axis ${a} has zero length (spacing 0): singular affine`);

  const unitCode = h.xyzt_units & 7;
  const spatialUnits = unitCode === 2 ? 'mm' : unitCode === 1 ? 'm' : unitCode === 3 ? 'um' : 'unknown';
  const info: NiftiHeaderInfo = {
    version: sniff.version,
    gzip: gz,
    littleEndian: le,
    datatype,
    datatypeCode: code,
    bitpix: h.numBitsPerVoxel,
    dim,
    pixdim,
    voxOffset,
    sclSlope: slope,
    sclInter: inter,
    scaled,
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    affineSource,
    qform,
    sform,
    spatialUnits,
    description: (h.description ?? '').replace(/\0.*$/s, ''),
    calMin: Number(h.cal_min),
    calMax: Number(h.cal_max),
    nonFinite: 0,
  };
  return { info, shape, affine, dataBytes: dataStart + count * t.bytes };
}

/**
 * nibabel's AnalyzeHeader.get_base_affine() (shape_zoom_affine with x flipped): the affine of a
 * NIfTI file with neither sform nor qform as nibabel, and so MONAI, read it.
 * shape: voxels along i, j, k; zooms: pixdim[1..3] in mm (positive).
 */
export function baseAffine(shape: ArrayLike<number>, zooms: ArrayLike<number>): Float64Array {
  const z = [-zooms[0], zooms[1], zooms[2]];
  return affineFromSpacing(z, [0, 1, 2].map((a) => (-(shape[a] - 1) / 2) * z[a]));
}

/** The NIfTI quaternion -> affine (nifti_quatern_to_mat44). */
export function quaternToAffine(b: number, c: number, d: number, offset: ArrayLike<number>, pixdim: ArrayLike<number>): Float64Array {
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else a = Math.sqrt(a);
  const xd = pixdim[1] > 0 ? pixdim[1] : 1;
  const yd = pixdim[2] > 0 ? pixdim[2] : 1;
  let zd = pixdim[3] > 0 ? pixdim[3] : 1;
  if (pixdim[0] < 0) zd = -zd;
  const R = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  return affineFromRows(
    R.map((row) => [row[0] * xd, row[1] * yd, row[2] * zd]),
    offset,
  );
}

/**
 * The NIfTI quaternion of an affine (nifti_mat44_to_quatern), or null when the 3x3 part is
 * not a rotation times a scaling (columns not orthogonal): such an affine only goes in the sform.
 */
export function affineToQuatern(m: mat4): { b: number; c: number; d: number; qfac: 1 | -1; pixdim: Vec3; offset: Vec3 } | null {
  const sp = spacingFromAffine(m);
  if (!(sp[0] > 0 && sp[1] > 0 && sp[2] > 0)) return null;
  const r = [0, 1, 2].map((row) => [0, 1, 2].map((col) => m[4 * col + row] / sp[col]));
  // Orthogonality check.
  for (let i = 0; i < 3; i++)
    for (let j = i + 1; j < 3; j++) {
      const dot = r[0][i] * r[0][j] + r[1][i] * r[1][j] + r[2][i] * r[2][j];
      if (Math.abs(dot) > 1e-4) return null;
    }
  const det =
    r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
    r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
    r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  let qfac: 1 | -1 = 1;
  if (det < 0) {
    qfac = -1;
    for (let row = 0; row < 3; row++) r[row][2] = -r[row][2];
  }
  const [r11, r12, r13] = r[0], [r21, r22, r23] = r[1], [r31, r32, r33] = r[2];
  let a = r11 + r22 + r33 + 1, b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) (b = -b), (c = -c), (d = -d);
  }
  return { b, c, d, qfac, pixdim: sp, offset: [m[12], m[13], m[14]] };
}

function byteSwap(b: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let o = 0; o + size <= b.length; o += size)
    for (let x = 0, y = size - 1; x < y; x++, y--) {
      const t = b[o + x];
      b[o + x] = b[o + y];
      b[o + y] = t;
    }
}

/** The float32 voxel buffer; an allocation failure (too little memory) is a DataError, not a crash. */
function allocVoxels(count: number): Float32Array {
  try {
    return new Float32Array(count);
  } catch (e) {
    throw new DataError('NIfTI reader', 'voxel data', `cannot allocate ${count} float32 voxels (${(count * 4 / 2 ** 30).toFixed(1)} GiB): ${(e as Error).message}; lower the volume size or maxVoxels`);
  }
}

function convertVoxels(raw: Uint8Array, datatype: NiftiDatatype, count: number, littleEndian: boolean): Float32Array {
  const t = NIFTI_DATATYPES[datatype];
  let buf = raw;
  // Typed arrays need aligned offsets (and native = little byte order on every platform we run).
  if (!littleEndian || raw.byteOffset % t.bytes !== 0) buf = raw.slice();
  if (!littleEndian) byteSwap(buf, t.bytes);
  const ab = buf.buffer, off = buf.byteOffset;
  const out = allocVoxels(count);
  // Explicit loops: V8's TypedArray.prototype.set between element types is several times slower.
  const copy = (src: ArrayLike<number>) => {
    for (let i = 0; i < count; i++) out[i] = src[i];
  };
  switch (datatype) {
    case 'uint8': copy(new Uint8Array(ab, off, count)); break;
    case 'int8': copy(new Int8Array(ab, off, count)); break;
    case 'int16': copy(new Int16Array(ab, off, count)); break;
    case 'uint16': copy(new Uint16Array(ab, off, count)); break;
    case 'int32': copy(new Int32Array(ab, off, count)); break;
    case 'uint32': copy(new Uint32Array(ab, off, count)); break;
    case 'float32': out.set(new Float32Array(ab, off, count)); break;
    case 'float64': copy(new Float64Array(ab, off, count)); break;
    case 'int64': {
      const src = new BigInt64Array(ab, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      break;
    }
    case 'uint64': {
      const src = new BigUint64Array(ab, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      break;
    }
  }
  return out;
}

/** Stored values scaled to float64 and then float32 (for slope/inter not exact in float32). */
function scaleVoxels(raw: Uint8Array, datatype: NiftiDatatype, count: number, le: boolean, slope: number, inter: number): Float32Array {
  if (datatype === 'float64' || datatype === 'int64' || datatype === 'uint64' || datatype === 'int32' || datatype === 'uint32') {
    // Read through float64 so large stored values keep their precision before scaling.
    const t = NIFTI_DATATYPES[datatype];
    const buf = !le || raw.byteOffset % t.bytes !== 0 ? raw.slice() : raw;
    if (!le) byteSwap(buf, t.bytes);
    const out = allocVoxels(count);
    const src =
      datatype === 'float64'
        ? new Float64Array(buf.buffer, buf.byteOffset, count)
        : datatype === 'int32'
          ? new Int32Array(buf.buffer, buf.byteOffset, count)
          : datatype === 'uint32'
            ? new Uint32Array(buf.buffer, buf.byteOffset, count)
            : null;
    if (src) for (let i = 0; i < count; i++) out[i] = src[i] * slope + inter;
    else {
      const big = datatype === 'int64' ? new BigInt64Array(buf.buffer, buf.byteOffset, count) : new BigUint64Array(buf.buffer, buf.byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = Number(big[i]) * slope + inter;
    }
    return out;
  }
  const out = convertVoxels(raw, datatype, count, le);
  for (let i = 0; i < count; i++) out[i] = out[i] * slope + inter;
  return out;
}

/** Header only (no voxel data is converted); decompresses only as far as the header. */
export function decodeNiftiHeader(bytes: Uint8Array, source: string, opts: NiftiReadOptions = {}): { header: NiftiHeaderInfo; shape: Vec3; affine: Float64Array } {
  const maxVoxels = opts.maxVoxels ?? DEFAULT_MAX_VOXELS;
  const gz = isGzip(bytes);
  let hdrBytes = bytes;
  if (gz) hdrBytes = gunzipPrefix(bytes, source, 544);
  const p = parseHeader(hdrBytes, source, gz, maxVoxels);
  return { header: p.info, shape: p.shape, affine: p.affine };
}

/**
 * Decodes a .nii or .nii.gz (detected by the gzip magic, not the name). `source` names the
 * file in errors. Voxels become float32 with scl_slope/scl_inter applied.
 */
export function decodeNifti(bytes: Uint8Array, source: string, opts: NiftiReadOptions = {}): NiftiVolume {
  const maxVoxels = opts.maxVoxels ?? DEFAULT_MAX_VOXELS;
  const gz = isGzip(bytes);
  let raw = bytes;
  let parsed: ParsedHeader | undefined;
  if (gz) {
    raw = gunzipChecked(bytes, source, {
      sizeFromPrefix: (p) => {
        const s = sniffHeader(p);
        if (!s) {
          if (p.length >= 4) parseHeader(p, source, true, maxVoxels); // throws the sizeof_hdr error
          return undefined;
        }
        if (p.length < (s.version === 1 ? 348 : 540)) return undefined;
        parsed = parseHeader(p, source, true, maxVoxels);
        return parsed.dataBytes;
      },
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
  }
  if (!parsed) parsed = parseHeader(raw, source, gz, maxVoxels);
  const { info, shape, affine, dataBytes } = parsed;
  const count = shape[0] * shape[1] * shape[2];
  if (raw.length < dataBytes)
    throw new DataError(
      source,
      'voxel data',
      `truncated: ${shape.join('x')} ${info.datatype} needs ${dataBytes} bytes (from vox_offset ${info.voxOffset}), the ${gz ? 'decompressed ' : ''}file has ${raw.length}`,
    );
  const start = dataBytes - count * NIFTI_DATATYPES[info.datatype].bytes;
  const body = raw.subarray(start, dataBytes);
  const identityScale = !info.scaled || (info.sclSlope === 1 && (info.sclInter === 0 || !Number.isFinite(info.sclInter)));
  let data: Float32Array;
  try {
    data = !identityScale
      ? scaleVoxels(body, info.datatype, count, info.littleEndian, info.sclSlope, Number.isFinite(info.sclInter) ? info.sclInter : 0)
      : convertVoxels(body, info.datatype, count, info.littleEndian);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(source, e.field, e.message.slice(e.source.length + e.field.length + 4));
    throw e;
  }

  const policy = opts.nonFinite ?? 'error';
  let bad = 0, first = -1;
  // Integer types without scaling cannot hold NaN/Inf: skip the scan.
  const mayBeNonFinite = !NIFTI_DATATYPES[info.datatype].integer || !identityScale;
  for (let i = 0; mayBeNonFinite && i < count; i++) {
    const x = data[i];
    if (x - x !== 0) {
      if (bad === 0) first = i;
      bad++;
      if (policy === 'zero') data[i] = opts.fill ?? 0;
    }
  }
  if (bad > 0 && policy === 'error') {
    const i = first % shape[0], j = Math.floor(first / shape[0]) % shape[1], k = Math.floor(first / (shape[0] * shape[1]));
    throw new DataError(
      source,
      'voxel data',
      `${bad} NaN/Inf voxel(s), first at (${i}, ${j}, ${k}); read with nonFinite: 'keep' or 'zero' to accept`,
    );
  }
  info.nonFinite = bad;
  return { data, shape, spacing: spacingFromAffine(affine), affine, header: info };
}

// ---------------------------------------------------------------------------------------
// Writing

function writeString(b: Uint8Array, offset: number, s: string, max: number): void {
  for (let i = 0; i < Math.min(s.length, max - 1); i++) {
    const c = s.charCodeAt(i);
    b[offset + i] = c < 128 ? c : 63;
  }
}

/** Stored values for the datatype (rounding and range-checking integer types). */
function encodeVoxels(v: Volume, datatype: NiftiDatatype, slope: number, inter: number, clamp: boolean, source: string): Uint8Array {
  const t = NIFTI_DATATYPES[datatype];
  const n = v.data.length;
  const out = new Uint8Array(n * t.bytes);
  const ab = out.buffer;
  const d = v.data;
  const identity = slope === 1 && inter === 0;
  const check = (x: number, i: number): number => {
    if (x !== x) {
      if (t.integer) throw new DataError(source, 'voxel data', `NaN at index ${i} cannot be stored as ${datatype}`);
      return x;
    }
    if (x < t.min || x > t.max) {
      if (!clamp)
        throw new DataError(
          source,
          'voxel data',
          `value ${d[i]} at index ${i} does not fit ${datatype}${identity ? '' : ` with scl_slope ${slope}, scl_inter ${inter}`} (use clamp: true, another datatype or scaling)`,
        );
      return x < t.min ? t.min : t.max;
    }
    return x;
  };
  if (datatype === 'float32' && identity) {
    new Float32Array(ab).set(d);
    return out;
  }
  if (datatype === 'float64' && identity) {
    new Float64Array(ab).set(d);
    return out;
  }
  if (datatype === 'int64' || datatype === 'uint64') {
    const dst = datatype === 'int64' ? new BigInt64Array(ab) : new BigUint64Array(ab);
    for (let i = 0; i < n; i++) dst[i] = BigInt(Math.round(check((d[i] - inter) / slope, i)));
    return out;
  }
  const dst =
    datatype === 'uint8' ? new Uint8Array(ab)
    : datatype === 'int8' ? new Int8Array(ab)
    : datatype === 'int16' ? new Int16Array(ab)
    : datatype === 'uint16' ? new Uint16Array(ab)
    : datatype === 'int32' ? new Int32Array(ab)
    : datatype === 'uint32' ? new Uint32Array(ab)
    : datatype === 'float32' ? new Float32Array(ab)
    : new Float64Array(ab);
  const lo = t.min, hi = t.max;
  if (t.integer) {
    for (let i = 0; i < n; i++) {
      let x = identity ? d[i] : (d[i] - inter) / slope;
      if (!(x >= lo && x <= hi)) x = check(x, i); // NaN or out of range: error or clamp
      dst[i] = Math.round(x);
    }
  } else for (let i = 0; i < n; i++) dst[i] = check(identity ? d[i] : (d[i] - inter) / slope, i);
  return out;
}

/**
 * Encodes a Volume as a NIfTI file (NIfTI-1 by default, little-endian), optionally gzipped.
 * The affine goes in the sform (code 1) and, when its 3x3 part is a rotation times a
 * scaling, also in the qform (code 1); pixdim[1..3] = spacing; xyzt_units = mm.
 */
export function encodeNifti(volume: Volume, opts: NiftiWriteOptions = {}): Uint8Array {
  const source = 'encodeNifti';
  const datatype = opts.datatype ?? 'float32';
  const t = NIFTI_DATATYPES[datatype];
  if (!t) throw new DataError(source, 'datatype', `unknown datatype '${datatype}'`);
  const version = opts.version ?? 1;
  const slope = opts.sclSlope ?? 1, inter = opts.sclInter ?? 0;
  if (!Number.isFinite(slope) || slope === 0) throw new DataError(source, 'sclSlope', `must be finite and non-zero, is ${slope}`);
  if (!Number.isFinite(inter)) throw new DataError(source, 'sclInter', `must be finite, is ${inter}`);
  const [nx, ny, nz] = volume.shape;
  for (const n of volume.shape) if (!Number.isInteger(n) || n < 1) throw new DataError(source, 'shape', `bad shape ${volume.shape.join('x')}`);
  if (volume.data.length !== nx * ny * nz)
    throw new DataError(source, 'data', `has ${volume.data.length} values, shape ${volume.shape.join('x')} needs ${nx * ny * nz}`);
  if (version === 1 && Math.max(nx, ny, nz) > 32767)
    throw new DataError(source, 'shape', `${volume.shape.join('x')} does not fit NIfTI-1 (dims <= 32767): use version 2`);
  const m = toAffine64(volume.affine);
  const q = affineToQuatern(m);
  const sp = spacingFromAffine(m);
  const sformCode = opts.sformCode ?? 1;
  const qformCode = q ? (opts.qformCode ?? 1) : 0;

  const hdrSize = version === 1 ? 348 : 540;
  const voxOffset = hdrSize + 4;
  const voxels = encodeVoxels(volume, datatype, slope, inter, opts.clamp ?? false, source);
  const file = new Uint8Array(voxOffset + voxels.length);
  const dv = new DataView(file.buffer);
  const le = true;
  const pixdim = [q ? q.qfac : 1, sp[0], sp[1], sp[2], 0, 0, 0, 0];
  const dim = [3, nx, ny, nz, 1, 1, 1, 1];
  const desc = opts.description ?? 'ct-vlm-webgpu';
  if (version === 1) {
    dv.setInt32(0, 348, le);
    file[38] = 0x72; // 'r'
    for (let i = 0; i < 8; i++) dv.setInt16(40 + 2 * i, dim[i], le);
    dv.setInt16(70, t.code, le);
    dv.setInt16(72, t.bytes * 8, le);
    for (let i = 0; i < 8; i++) dv.setFloat32(76 + 4 * i, pixdim[i], le);
    dv.setFloat32(108, voxOffset, le);
    dv.setFloat32(112, slope, le);
    dv.setFloat32(116, inter, le);
    file[123] = 2; // xyzt_units: mm
    writeString(file, 148, desc, 80);
    dv.setInt16(252, qformCode, le);
    dv.setInt16(254, sformCode, le);
    if (q) {
      dv.setFloat32(256, q.b, le);
      dv.setFloat32(260, q.c, le);
      dv.setFloat32(264, q.d, le);
      dv.setFloat32(268, q.offset[0], le);
      dv.setFloat32(272, q.offset[1], le);
      dv.setFloat32(276, q.offset[2], le);
    }
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat32(280 + (r * 4 + c) * 4, m[4 * c + r], le);
    writeString(file, 344, 'n+1', 4);
  } else {
    dv.setInt32(0, 540, le);
    file.set([0x6e, 0x2b, 0x32, 0x00, 0x0d, 0x0a, 0x1a, 0x0a], 4); // "n+2\0\r\n\032\n"
    dv.setInt16(12, t.code, le);
    dv.setInt16(14, t.bytes * 8, le);
    for (let i = 0; i < 8; i++) dv.setBigInt64(16 + 8 * i, BigInt(dim[i]), le);
    for (let i = 0; i < 8; i++) dv.setFloat64(104 + 8 * i, pixdim[i], le);
    dv.setBigInt64(168, BigInt(voxOffset), le);
    dv.setFloat64(176, slope, le);
    dv.setFloat64(184, inter, le);
    writeString(file, 240, desc, 80);
    dv.setInt32(344, qformCode, le);
    dv.setInt32(348, sformCode, le);
    if (q) {
      dv.setFloat64(352, q.b, le);
      dv.setFloat64(360, q.c, le);
      dv.setFloat64(368, q.d, le);
      dv.setFloat64(376, q.offset[0], le);
      dv.setFloat64(384, q.offset[1], le);
      dv.setFloat64(392, q.offset[2], le);
    }
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat64(400 + (r * 4 + c) * 8, m[4 * c + r], le);
    dv.setInt32(500, 2, le); // xyzt_units: mm
  }
  // Extension flag bytes (hdrSize .. hdrSize + 3) stay 0: no extensions.
  file.set(voxels, voxOffset);
  return opts.gzip ? gzip(file, opts.gzipLevel ?? 6) : file;
}
