// gzip for NIfTI (.nii.gz), with the checks a reader of untrusted files needs.
//
// Dependency: fflate (pure JavaScript deflate/inflate; runs in Node and the browser alike,
// no native code, no Node built-ins), so the browser demo reads .nii.gz with the same code.
// What fflate's one-shot gunzipSync lacks, and this adds: an output size limit checked
// while inflating (a header is seen before the voxel data is allocated), CRC-32 and length
// checks against the gzip trailer (a corrupt file is an error, not wrong voxels), and
// errors that name the file.
import { Gunzip, gunzipSync, gzipSync } from 'fflate';
import { DataError } from '../../errors.ts';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

// CRC-32 tables for slicing-by-4 (4 bytes per step).
const CRC_TABLES = (() => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++)
    for (let s = 1; s < 4; s++) t[256 * s + n] = t[(t[256 * (s - 1) + n] & 0xff)] ^ (t[256 * (s - 1) + n] >>> 8);
  return t;
})();

/** Continues a CRC-32 (start with crc = 0). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  const t = CRC_TABLES;
  const n = bytes.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t[768 + (c & 0xff)] ^ t[512 + ((c >>> 8) & 0xff)] ^ t[256 + ((c >>> 16) & 0xff)] ^ t[c >>> 24];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export interface GunzipOptions {
  /**
   * Called with the output so far (a prefix, at least `want` bytes or the whole stream) each
   * time more output arrives, until it returns a number: the total output size the caller
   * needs. It may throw (e.g. a DataError for a header asking for too many voxels) before
   * anything large is allocated. Return `Infinity` to take the whole stream.
   */
  sizeFromPrefix?: (prefix: Uint8Array) => number | undefined;
  /** Hard limit on the decompressed size, in bytes. */
  maxBytes?: number;
}

/**
 * Decompresses a (single- or multi-member) gzip stream. Fast path: inflate just enough to
 * learn the size the caller needs (sizeFromPrefix, which may refuse), then, when the gzip
 * trailer's ISIZE agrees, one-shot inflate into a buffer of that size and check the CRC;
 * anything odd (truncation, corruption, several members) falls back to the streaming path,
 * which checks the size limit while it inflates and reports precisely.
 */
export function gunzipChecked(bytes: Uint8Array, source: string, opts: GunzipOptions = {}): Uint8Array {
  if (bytes.length < 18) throw new DataError(source, 'gzip stream', `file too short for gzip (${bytes.length} bytes): truncated`);
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const wanted = opts.sizeFromPrefix ? probeSize(bytes, opts.sizeFromPrefix) : undefined;
  if (wanted !== undefined && Number.isFinite(wanted) && wanted < 2 ** 32 && wanted <= maxBytes) {
    const v = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 8, 8);
    const wantCrc = v.getUint32(0, true), isize = v.getUint32(4, true);
    if (isize >= wanted && isize - wanted <= 1 << 26 && isize <= maxBytes) {
      let out: Uint8Array | null = null;
      try {
        out = gunzipSync(bytes, { out: new Uint8Array(isize) });
      } catch {
        out = null;
      }
      if (out && out.length === isize && crc32(out) === wantCrc) return out.subarray(0, Math.min(wanted, isize));
    }
  }
  return gunzipStreaming(bytes, source, opts);
}

/** The first `minBytes` decompressed bytes (or fewer, if the stream is shorter), inflating no further. */
export function gunzipPrefix(bytes: Uint8Array, source: string, minBytes: number): Uint8Array {
  let prefix: Uint8Array | undefined;
  const got = probeSize(bytes, (p) => (p.length >= minBytes ? ((prefix = p), minBytes) : undefined));
  if (got !== undefined && prefix) return prefix;
  // Short or broken stream: the streaming path reports it (or returns the short output).
  return gunzipStreaming(bytes, source, {});
}

/** Inflates only until sizeFromPrefix answers (which may throw); undefined when the stream ends or breaks first. */
function probeSize(bytes: Uint8Array, sizeFromPrefix: (prefix: Uint8Array) => number | undefined): number | undefined {
  const chunks: Uint8Array[] = [];
  let len = 0;
  let wanted: number | undefined;
  const gz = new Gunzip((chunk: Uint8Array) => {
    if (wanted !== undefined) return;
    chunks.push(chunk.slice());
    len += chunk.length;
    const all = new Uint8Array(len);
    let o = 0;
    for (const c of chunks) all.set(c, o), (o += c.length);
    wanted = sizeFromPrefix(all);
  });
  const step = 1 << 14;
  try {
    for (let o = 0; o < bytes.length && wanted === undefined; o += step) gz.push(bytes.subarray(o, Math.min(o + step, bytes.length)), false);
  } catch (e) {
    if (e instanceof DataError) throw e;
    return undefined;
  }
  return wanted;
}

/**
 * Streaming decompression of a (single- or multi-member, e.g. bgzip) gzip stream. Checks each
 * member's CRC-32 and ISIZE against its trailer. Zero bytes after the last member (padding) are
 * skipped, as GNU gzip and Python's gzip module do; other trailing bytes are refused.
 * Errors are DataErrors naming `source` and the field 'gzip stream'.
 */
function gunzipStreaming(bytes: Uint8Array, source: string, opts: GunzipOptions = {}): Uint8Array {
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const fail = (detail: string): never => {
    throw new DataError(source, 'gzip stream', detail);
  };
  if (bytes.length < 18) fail(`file too short for gzip (${bytes.length} bytes): truncated`);

  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let wanted: number | undefined; // total bytes the caller needs, once known
  // Allocated once `wanted` is known and finite, and grown (doubling, up to `wanted`) as output
  // arrives: a header may ask for far more than the stream holds (truncated, lying header),
  // and that must be reported as such, not fail as one huge allocation up front.
  let out: Uint8Array | null = null;
  let outLen = 0;
  const trailerSize = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  const alloc = (n: number): Uint8Array => {
    try {
      return new Uint8Array(n);
    } catch {
      return fail(`needs ${wanted} bytes of output; cannot allocate ${n} bytes`);
    }
  };
  const reserve = (n: number) => {
    const o = out!;
    if (n <= o.length) return;
    const grown = alloc(Math.min(wanted!, Math.max(n, 2 * o.length)));
    grown.set(o.subarray(0, outLen));
    out = grown;
  };
  let total = 0; // all decompressed bytes seen
  // Per member: where it starts in `bytes`, and the CRC-32 and length of its output so far.
  const memberStarts = [0];
  let crc = 0;
  let memberLen = 0;
  const memberEnds: number[] = []; // checked trailers' end offsets

  /** The trailer of the member that starts at memberStarts[last] must end exactly at `end`. */
  const checkTrailer = (end: number) => {
    const v = new DataView(bytes.buffer, bytes.byteOffset + end - 8, 8);
    if (v.getUint32(4, true) !== memberLen >>> 0) fail(`length ${memberLen} does not match the gzip trailer (${v.getUint32(4, true)}) of the member at byte ${memberStarts[memberStarts.length - 1]}: truncated or corrupt`);
    if (v.getUint32(0, true) !== crc) fail('CRC-32 mismatch: corrupt data');
    memberEnds.push(end);
  };

  const takePending = (): Uint8Array => {
    if (pending.length === 1) return pending[0];
    const all = new Uint8Array(pendingLen);
    let o = 0;
    for (const p of pending) all.set(p, o), (o += p.length);
    pending = [all];
    return all;
  };

  const gz = new Gunzip((chunk: Uint8Array) => {
    total += chunk.length;
    memberLen += chunk.length;
    crc = crc32(chunk, crc);
    if (total > maxBytes) fail(`decompresses to more than the limit of ${maxBytes} bytes`);
    if (out) {
      const n = Math.min(chunk.length, wanted! - outLen);
      if (n > 0) {
        reserve(outLen + n);
        out!.set(chunk.subarray(0, n), outLen);
        outLen += n;
      }
      return;
    }
    pending.push(chunk.slice());
    pendingLen += chunk.length;
    if (wanted === undefined && opts.sizeFromPrefix) {
      wanted = opts.sizeFromPrefix(takePending());
      if (wanted !== undefined && Number.isFinite(wanted) && wanted > maxBytes) fail(`needs ${wanted} bytes, over the limit of ${maxBytes}`);
    }
    if (wanted !== undefined && Number.isFinite(wanted)) {
      const prefix = takePending();
      const n = Math.min(prefix.length, wanted);
      out = alloc(Math.min(wanted, Math.max(n, trailerSize, 1 << 24)));
      out.set(prefix.subarray(0, n));
      outLen = n;
      pending = [];
      pendingLen = 0;
    }
  });
  // fflate calls this when the next member's header has been read: the previous member's
  // output is complete and its trailer is the 8 bytes before `offset`.
  gz.onmember = (offset: number) => {
    checkTrailer(offset);
    memberStarts.push(offset);
    crc = 0;
    memberLen = 0;
  };
  const step = 1 << 20;
  // After a member, fflate takes any bytes that follow for another member's header: gzip's
  // trailing garbage (block or tape padding, mostly zeros) fails there, after the last
  // member's output is complete. Whether that is what happened is told below, from the trailer.
  let afterEnd: string | null = null;
  try {
    for (let o = 0; o < bytes.length; o += step) {
      const end = Math.min(o + step, bytes.length);
      gz.push(bytes.subarray(o, end), end === bytes.length);
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/invalid gzip data/i.test(msg) && memberLen > 0) afterEnd = msg;
    else fail(/unexpected EOF/i.test(msg) ? 'truncated (unexpected end of compressed data)' : `corrupt (${msg})`);
  }
  // The last member's trailer: at the end of the file, or followed by padding.
  const lastStart = memberStarts[memberStarts.length - 1]!;
  const v = (o: number) => new DataView(bytes.buffer, bytes.byteOffset + o, 8);
  const isTrailer = (end: number) => end - 8 >= lastStart + 10 && v(end - 8).getUint32(0, true) === crc && v(end - 8).getUint32(4, true) === memberLen >>> 0;
  if (afterEnd === null && isTrailer(bytes.length)) checkTrailer(bytes.length);
  else {
    // GNU gzip and Python's gzip module skip zero bytes after the last member (padding left by
    // tape and block copies); the trailer ends at most 8 bytes after the last non-zero byte.
    let lastNonZero = bytes.length - 1;
    while (lastNonZero >= lastStart && bytes[lastNonZero] === 0) lastNonZero--;
    let end = -1;
    for (let e = Math.min(bytes.length, lastNonZero + 9); e > lastNonZero && end < 0; e--) if (isTrailer(e)) end = e;
    if (end < 0) {
      // Not padding: find the trailer to tell trailing garbage from a corrupt stream.
      const t = new Uint8Array(8);
      new DataView(t.buffer).setUint32(0, crc, true);
      new DataView(t.buffer).setUint32(4, memberLen >>> 0, true);
      for (let o = lastStart + 10; o + 8 <= bytes.length && end < 0; o++) {
        let k = 0;
        while (k < 8 && bytes[o + k] === t[k]) k++;
        if (k === 8) end = o + 8;
      }
      if (end < 0) fail(`CRC-32 or length (${memberLen}) does not match the gzip trailer: corrupt or truncated data`);
      fail(`the ${bytes.length - end} bytes after the end of the gzip stream (byte ${end}) are not zero padding (gzip ignores them with a warning, nibabel refuses them); remove them or compress the file again`);
    }
    checkTrailer(end);
  }
  const done = out as Uint8Array | null; // assigned in the callback (TS cannot see that)
  if (done) return outLen < done.length ? done.subarray(0, outLen) : done;
  return takePending().subarray(0, pendingLen);
}

/** gzip with fflate (level 1..9, default 6). */
export function gzip(bytes: Uint8Array, level: number = 6): Uint8Array {
  return gzipSync(bytes, { level: Math.max(0, Math.min(9, level)) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 });
}
