// Reads the frame header of a JPEG (ITU-T T.81, and JPEG-LS T.87) or JPEG 2000 codestream
// without decoding it, so the DICOM reader can check the image size and coding process
// against the DICOM header before handing the bytes to a decoder (a corrupt or hostile size
// field must not make a decoder allocate gigabytes). Pure code, no dependency.

export interface JpegFrameHeader {
  /** The SOF marker's low byte: 0xC0 baseline, 0xC1 extended, 0xC3 lossless, 0xF7 JPEG-LS, ... */
  sof: number;
  /** The coding process in words, for messages. */
  process: string;
  precision: number;
  rows: number;
  columns: number;
  components: number;
  /** From the first SOS segment: Ss (the predictor of lossless JPEG; NEAR of JPEG-LS) and Al (point transform). */
  ss: number;
  al: number;
}

const SOF_NAME: Record<number, string> = {
  0xc0: 'baseline (SOF0)',
  0xc1: 'extended sequential (SOF1)',
  0xc2: 'progressive (SOF2)',
  0xc3: 'lossless (SOF3)',
  0xc5: 'hierarchical sequential (SOF5)',
  0xc6: 'hierarchical progressive (SOF6)',
  0xc7: 'hierarchical lossless (SOF7)',
  0xc9: 'arithmetic-coded extended (SOF9)',
  0xca: 'arithmetic-coded progressive (SOF10)',
  0xcb: 'arithmetic-coded lossless (SOF11)',
  0xcd: 'arithmetic-coded hierarchical (SOF13)',
  0xce: 'arithmetic-coded hierarchical progressive (SOF14)',
  0xcf: 'arithmetic-coded hierarchical lossless (SOF15)',
  0xf7: 'JPEG-LS (SOF55)',
};

export function jpegProcessName(sof: number): string {
  return SOF_NAME[sof] ?? `SOF marker FF${sof.toString(16).toUpperCase()}`;
}

/** Walks the marker segments from SOI to the first SOS. Throws an Error saying what is wrong. */
export function readJpegFrameHeader(b: Uint8Array): JpegFrameHeader {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw new Error('not a JPEG codestream (no SOI marker at the start)');
  let pos = 2;
  let frame: Omit<JpegFrameHeader, 'ss' | 'al'> | null = null;
  for (;;) {
    if (pos >= b.length) throw new Error('codestream ends before the start of scan (truncated?)');
    if (b[pos] !== 0xff) throw new Error(`expected a marker at byte ${pos}, found 0x${b[pos].toString(16).padStart(2, '0')}`);
    while (pos < b.length && b[pos] === 0xff) pos++; // fill bytes
    if (pos >= b.length) throw new Error('codestream ends before the start of scan (truncated?)');
    const m = b[pos++];
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // TEM, RSTn: no length
    if (m === 0xd9) throw new Error('end of image before any scan');
    if (m === 0xd8 || m === 0x00) throw new Error(`unexpected marker FF${m.toString(16).padStart(2, '0').toUpperCase()} at byte ${pos - 2}`);
    if (pos + 2 > b.length) throw new Error('codestream ends inside a marker segment (truncated?)');
    const len = (b[pos] << 8) | b[pos + 1];
    if (len < 2 || pos + len > b.length) throw new Error(`marker segment FF${m.toString(16).toUpperCase()} of length ${len} runs past the end (truncated?)`);
    const seg = b.subarray(pos + 2, pos + len);
    if (SOF_NAME[m] !== undefined) {
      if (frame) throw new Error('more than one frame header (hierarchical JPEG is not supported)');
      if (seg.length < 6) throw new Error('frame header too short');
      frame = {
        sof: m,
        process: SOF_NAME[m],
        precision: seg[0],
        rows: (seg[1] << 8) | seg[2],
        columns: (seg[3] << 8) | seg[4],
        components: seg[5],
      };
      if (seg.length < 6 + 3 * frame.components) throw new Error('frame header too short for its components');
    } else if (m === 0xda) {
      if (!frame) throw new Error('start of scan before any frame header');
      const ns = seg[0] ?? 0;
      if (seg.length < 1 + 2 * ns + 3) throw new Error('scan header too short');
      return { ...frame, ss: seg[1 + 2 * ns], al: seg[3 + 2 * ns] & 0x0f };
    }
    pos += len;
  }
}

export interface J2kSize {
  width: number;
  height: number;
  components: number;
  precision: number;
  signed: boolean;
}

/**
 * The image size from a raw JPEG 2000 codestream's SIZ segment (it follows SOC at byte 2).
 * Null for other layouts (e.g. a JP2 file wrapper), which are left to the decoder.
 */
export function readJ2kSize(b: Uint8Array): J2kSize | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0x4f || b[2] !== 0xff || b[3] !== 0x51) return null;
  if (b.length < 4 + 38 + 3) throw new Error('codestream ends inside the SIZ segment (truncated?)');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const xsiz = dv.getUint32(8), ysiz = dv.getUint32(12), xo = dv.getUint32(16), yo = dv.getUint32(20);
  const csiz = dv.getUint16(40);
  const ssiz = b[42];
  return { width: xsiz - xo, height: ysiz - yo, components: csiz, precision: (ssiz & 0x7f) + 1, signed: (ssiz & 0x80) !== 0 };
}
