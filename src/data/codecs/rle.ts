// DICOM RLE Lossless (transfer syntax 1.2.840.10008.1.2.5), DICOM PS3.5 Annex G. Written
// here (no dependency): the format is a 64-byte header and PackBits-coded byte planes.
//
// A frame: header = number of segments (uint32 LE, 1..15) and 15 segment offsets (uint32 LE,
// from the start of the header; unused ones 0). One segment per byte of each sample, most
// significant byte first (a 16-bit grayscale image has 2: the high bytes, then the low bytes),
// each decoding to rows x columns bytes. PackBits: a header byte n = 0..127 is followed by n + 1
// literal bytes; n = -1..-127 (129..255) by one byte repeated 1 - n times; -128 (128) is a no-op.

/**
 * Decodes one RLE frame of single-sample pixels into little-endian samples of
 * bitsAllocated / 8 bytes each. Throws an Error saying what is wrong (wrong segment count,
 * offsets out of range, a segment that decodes to too few bytes, or to a whole row or more
 * too many). Fewer extra bytes (some encoders pad segments) are ignored.
 */
export function decodeRleFrame(frame: Uint8Array, rows: number, columns: number, bitsAllocated: number): Uint8Array {
  const bytesPer = bitsAllocated / 8;
  if (![1, 2, 4].includes(bytesPer)) throw new Error(`RLE with BitsAllocated ${bitsAllocated} is not supported`);
  if (frame.length < 64) throw new Error(`RLE frame of ${frame.length} bytes is shorter than its 64-byte header`);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const nseg = dv.getUint32(0, true);
  if (nseg !== bytesPer)
    throw new Error(`RLE header says ${nseg} segments; ${bitsAllocated}-bit single-sample pixels need ${bytesPer}`);
  const offsets: number[] = [];
  for (let s = 0; s < nseg; s++) offsets.push(dv.getUint32(4 + 4 * s, true));
  for (let s = 0; s < nseg; s++) {
    if (offsets[s] < 64 || offsets[s] > frame.length)
      throw new Error(`RLE segment ${s + 1} offset ${offsets[s]} is outside the frame (64..${frame.length})`);
    if (s > 0 && offsets[s] < offsets[s - 1]) throw new Error(`RLE segment offsets out of order (${offsets.join(', ')})`);
  }
  const n = rows * columns;
  const out = new Uint8Array(n * bytesPer);
  for (let s = 0; s < nseg; s++) {
    const end = s + 1 < nseg ? offsets[s + 1] : frame.length;
    // Segment s holds byte (bytesPer - 1 - s) of each little-endian sample.
    const byteIndex = bytesPer - 1 - s;
    let i = offsets[s];
    let o = 0; // bytes decoded (may run past n: padding)
    while (i < end) {
      const h = frame[i++];
      if (h < 128) {
        const count = h + 1;
        if (i + count > end) throw new Error(`RLE segment ${s + 1}: a literal run of ${count} bytes runs past the segment end (truncated?)`);
        const m = Math.max(0, Math.min(count, n - o));
        for (let k = 0; k < m; k++) out[(o + k) * bytesPer + byteIndex] = frame[i + k];
        i += count;
        o += count;
      } else if (h > 128) {
        if (i >= end) {
          if (o >= n) break; // a dangling header byte as padding
          throw new Error(`RLE segment ${s + 1}: a repeat run has no byte to repeat (truncated?)`);
        }
        const v = frame[i++];
        const count = 257 - h;
        const m = Math.max(0, Math.min(count, n - o));
        for (let k = 0; k < m; k++) out[(o + k) * bytesPer + byteIndex] = v;
        o += count;
      }
    }
    if (o < n) throw new Error(`RLE segment ${s + 1} decodes to ${o} bytes; the image needs ${n} (truncated?)`);
    // A few bytes of padding are common; a whole row or more means the size is wrong.
    if (o - n >= columns) throw new Error(`RLE segment ${s + 1} decodes to ${o} bytes; the image (${columns}x${rows}) needs ${n}: Rows or Columns is wrong`);
  }
  return out;
}
