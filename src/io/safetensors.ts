// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
// Browser-safe: the header is parsed from bytes, and tensors are read through a `read`
// callback, so Node can read a 4 GB file tensor by tensor from disk (src/train/checkpoint.ts)
// and the browser from a File or an ArrayBuffer.
import { DataError } from '../errors.ts';

export interface NamedArray {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** The dtypes read (converted to f32 or i32) and written (F32, I32). */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32';
const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4 };

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range in the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** File offset of the data section (8 + header length). */
  dataStart: number;
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

export function encodeSafetensors(tensors: Record<string, NamedArray>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new DataError('safetensors', name, `shape [${t.shape}] does not match ${t.data.length} values`);
    header[name] = { dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  while ((8 + json.length) % 8) json += ' ';
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let at = 8 + jsonBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/** The header's length from the file's first 8 bytes (checked against the file size). */
export function headerLength(first8: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8 || first8.length < 8) throw new DataError(source, 'header', `file of ${fileSize} bytes is too short for safetensors`);
  const n = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (n > fileSize - 8 || n > 100 * 2 ** 20) throw new DataError(source, 'header', `header length ${n} does not fit the ${fileSize}-byte file (truncated or not safetensors)`);
  return n;
}

/**
 * Parses the JSON header (the bytes after the first 8) of a file of `fileSize` bytes. Every
 * entry is checked (known dtype, shape of non-negative integers, a byte range inside the file
 * that holds exactly the shape); errors name the file and the tensor.
 */
export function parseHeader(json: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(json));
  } catch (e) {
    throw new DataError(source, 'header', `not valid JSON (${(e as Error).message}; truncated or not safetensors?)`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DataError(source, 'header', 'not a JSON object (not safetensors?)');
  const dataStart = 8 + json.length;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry && typeof entry === 'object') metadata = entry as Record<string, string>;
      continue;
    }
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new DataError(source, name, `header entry is ${JSON.stringify(entry)}, not {dtype, shape, data_offsets}`);
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) throw new DataError(source, name, `dtype ${JSON.stringify(e.dtype)} is not supported (${Object.keys(BYTES).join(', ')})`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new DataError(source, name, `shape ${JSON.stringify(e.shape)} is not a list of sizes`);
    const [begin, end] = Array.isArray(e.data_offsets) ? (e.data_offsets as number[]) : [];
    if (!(Number.isInteger(begin) && Number.isInteger(end) && begin >= 0 && end >= begin && dataStart + end <= fileSize))
      throw new DataError(source, name, `data_offsets ${JSON.stringify(e.data_offsets)} fall outside the file (truncated?)`);
    const dtype = e.dtype as SafetensorsDtype;
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[dtype]) throw new DataError(source, name, `${end - begin} bytes do not hold ${dtype} shape [${e.shape}]`);
    entries.set(name, { dtype, shape: e.shape as number[], begin, end });
  }
  return { dataStart, entries, metadata };
}

/** IEEE half to f32. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

let halfTable: Float32Array | null = null;

/** A tensor's raw bytes (little-endian, as stored) to f32 (F32, F16, BF16, F64) or i32 (I32). */
export function decodeTensor(entry: TensorEntry, bytes: Uint8Array): Float32Array | Int32Array {
  const n = (entry.end - entry.begin) / BYTES[entry.dtype];
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer.slice(aligned.byteOffset, aligned.byteOffset + 4 * n));
    case 'I32':
      return new Int32Array(aligned.buffer.slice(aligned.byteOffset, aligned.byteOffset + 4 * n));
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, n));
    case 'F16': {
      const u = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
      const out = new Float32Array(n);
      const table = (halfTable ??= Float32Array.from({ length: 65536 }, (_, i) => halfToFloat(i)));
      for (let i = 0; i < n; i++) out[i] = table[u[i]];
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of an f32.
      const u = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = u[i] << 16;
      return new Float32Array(out.buffer);
    }
  }
}

/** A whole file in memory: every tensor decoded (F16/BF16/F64 as f32). */
export function decodeSafetensors(bytes: Uint8Array, source: string): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, source);
  const h = parseHeader(bytes.subarray(8, 8 + n), bytes.length, source);
  const tensors: Record<string, NamedArray> = {};
  for (const [name, e] of h.entries) tensors[name] = { shape: e.shape, data: decodeTensor(e, bytes.subarray(h.dataStart + e.begin, h.dataStart + e.end)) };
  return { tensors, metadata: h.metadata };
}

/** Reads a file's tensors one at a time: `read(begin, end)` returns the file's bytes there. */
export interface SafetensorsSource {
  name: string;
  size: number;
  read(begin: number, end: number): Promise<Uint8Array>;
}

/** Opens a safetensors source: its header, and a reader of one tensor (decoded to f32 / i32). */
export async function openSafetensors(src: SafetensorsSource): Promise<SafetensorsHeader & { tensor(name: string): Promise<Float32Array | Int32Array> }> {
  const n = headerLength(await src.read(0, Math.min(8, src.size)), src.size, src.name);
  const h = parseHeader(await src.read(8, 8 + n), src.size, src.name);
  return {
    ...h,
    async tensor(name: string) {
      const e = h.entries.get(name);
      if (!e) throw new DataError(src.name, name, 'no such tensor');
      return decodeTensor(e, await src.read(h.dataStart + e.begin, h.dataStart + e.end));
    },
  };
}

/** A source over bytes in memory (browser files read whole, tests). */
export function bytesSource(bytes: Uint8Array, name: string): SafetensorsSource {
  return { name, size: bytes.length, read: async (b, e) => bytes.subarray(b, e) };
}
