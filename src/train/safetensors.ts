// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
// Browser-safe (bytes in, bytes out); the Node file helpers are in src/train/checkpoint.ts.
import { DataError } from '../errors.ts';

export interface NamedArray {
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPES = { F32: Float32Array, I32: Int32Array } as const;

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

export function decodeSafetensors(bytes: Uint8Array, source: string): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new DataError(source, 'header', `file of ${bytes.length} bytes is too short for safetensors`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8 || n > 100 * 2 ** 20) throw new DataError(source, 'header', `header length ${n} does not fit the ${bytes.length}-byte file (truncated or not safetensors)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new DataError(source, 'header', `not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const tensors: Record<string, NamedArray> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const Ctor = DTYPES[e.dtype as keyof typeof DTYPES];
    if (!Ctor) throw new DataError(source, name, `dtype ${e.dtype} is not supported (F32, I32)`);
    const [start, end] = e.data_offsets ?? [];
    const count = (e.shape ?? []).reduce((a: number, b: number) => a * b, 1);
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end >= start && dataStart + end <= bytes.length))
      throw new DataError(source, name, `data_offsets [${start}, ${end}] fall outside the file (truncated?)`);
    if (end - start !== count * 4) throw new DataError(source, name, `${end - start} bytes do not hold shape [${e.shape}]`);
    const copy = bytes.slice(dataStart + start, dataStart + end);
    tensors[name] = { shape: e.shape, data: new Ctor(copy.buffer) };
  }
  return { tensors, metadata };
}
