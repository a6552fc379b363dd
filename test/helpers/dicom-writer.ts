// A minimal DICOM writer for tests: one CT slice per file, explicit VR little endian (or
// implicit VR little endian), only the tags the series reader uses; as a Part 10 file, or
// without the preamble (a bare meta group, or a bare dataset as older planning systems
// export). Pixel data is native (samples placed at HighBit, as legacy files do, when asked),
// or encapsulated (fragments, with an empty or a one-entry basic offset table) for the
// compressed transfer syntaxes; encoders for two of them are below (RLE Lossless and JPEG
// Lossless process 14), written independently of the decoders they test. Enhanced CT
// (multi-frame, geometry in functional group sequences): writeTestEnhancedDicom.
export interface TestSlice {
  rows: number;
  columns: number;
  /** Stored values, row-major (columns fastest), rows * columns of them. */
  pixels: ArrayLike<number>;
  position?: [number, number, number] | null;
  orientation?: number[] | null;
  pixelSpacing?: [number, number] | null;
  seriesUID?: string | null;
  seriesNumber?: number | null;
  instanceNumber?: number | null;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  /** 0 unsigned (default 1 signed). */
  pixelRepresentation?: 0 | 1;
  bitsStored?: number;
  /** 16 (default) or 8. */
  bitsAllocated?: 8 | 16;
  sliceThickness?: number;
  seriesDescription?: string;
  /** Transfer syntax written in the meta header (pixels stay as given: native unless `encapsulated`). */
  transferSyntax?: string;
  /** The single frame's compressed bytes, as fragments (see `fragments`); `pixels` is then not written. */
  encapsulated?: Uint8Array[];
  /** Write a basic offset table with the frame's offset (0) instead of an empty one. */
  basicOffsetTable?: boolean;
  implicit?: boolean;
  noPixelData?: boolean;
  /** 'part10' (default): preamble, "DICM", meta header; 'bare-meta': meta header without the preamble; 'bare': the dataset alone. */
  layout?: 'part10' | 'bare-meta' | 'bare';
  /** HighBit (default BitsStored - 1): native 16-bit samples are shifted up to end at this bit. */
  highBit?: number;
  /** Set the bits of each native 16-bit word outside the stored bits to 1 (what a reader must ignore). */
  fillUnusedBits?: boolean;
  /** SOPClassUID (default CT Image Storage). */
  sopClassUID?: string;
  /** ImageType, e.g. 'DERIVED\\SECONDARY\\OTHER'. */
  imageType?: string;
}

const enc = new TextEncoder();

function pad(bytes: Uint8Array, padByte: number): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = padByte;
  return out;
}

/** `undefinedLength`: the value is already a sequence of items ending in a delimiter (encapsulated pixel data). */
type El = { group: number; element: number; vr: string; value: Uint8Array; undefinedLength?: boolean };

function text(group: number, element: number, vr: string, s: string): El {
  return { group, element, vr, value: pad(enc.encode(s), vr === 'UI' ? 0 : 0x20) };
}
function us(group: number, element: number, v: number): El {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return { group, element, vr: 'US', value: b };
}
function ul(group: number, element: number, v: number): El {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return { group, element, vr: 'UL', value: b };
}

const LONG_VR = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

/** A sequence of items, each a list of elements (defined lengths). */
function sq(group: number, element: number, items: El[][], implicit: boolean): El {
  const parts = items.map((els) => item(0xe000, encodeElements(els, implicit)));
  const value = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) value.set(p, o), (o += p.length);
  return { group, element, vr: 'SQ', value };
}

function encodeElements(els: El[], implicit: boolean): Uint8Array {
  els.sort((a, b) => a.group - b.group || a.element - b.element);
  const parts: Uint8Array[] = [];
  for (const e of els) {
    const long = LONG_VR.has(e.vr);
    const head = new Uint8Array(implicit ? 8 : long ? 12 : 8);
    const dv = new DataView(head.buffer);
    dv.setUint16(0, e.group, true);
    dv.setUint16(2, e.element, true);
    if (implicit) dv.setUint32(4, e.undefinedLength ? 0xffffffff : e.value.length, true);
    else {
      head[4] = e.vr.charCodeAt(0);
      head[5] = e.vr.charCodeAt(1);
      if (long) dv.setUint32(8, e.undefinedLength ? 0xffffffff : e.value.length, true);
      else dv.setUint16(6, e.value.length, true);
    }
    parts.push(head, e.value);
  }
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

const fmt = (v: number[]): string => v.map((x) => String(x)).join('\\');

/** The file: preamble + "DICM" + meta header + dataset, or less of it for the bare layouts. */
function assemble(body: Uint8Array, ts: string, sopClass: string, sop: string, layout: TestSlice['layout'] = 'part10'): Uint8Array {
  if (layout === 'bare') return body;
  const meta = encodeElements(
    [
      { group: 2, element: 1, vr: 'OB', value: new Uint8Array([0, 1]) },
      text(2, 2, 'UI', sopClass),
      text(2, 3, 'UI', sop),
      text(2, 0x10, 'UI', ts),
      text(2, 0x12, 'UI', '1.2.826.0.1.3680043.2.1125.1'),
    ],
    false,
  );
  const groupLength = encodeElements([ul(2, 0, meta.length)], false);
  const pre = layout === 'part10' ? 132 : 0;
  const out = new Uint8Array(pre + groupLength.length + meta.length + body.length);
  if (pre) out.set(enc.encode('DICM'), 128);
  out.set(groupLength, pre);
  out.set(meta, pre + groupLength.length);
  out.set(body, pre + groupLength.length + meta.length);
  return out;
}

/** One slice as a DICOM file (Part 10 unless `layout` says otherwise). */
export function writeTestDicom(s: TestSlice): Uint8Array {
  const ts = s.transferSyntax ?? (s.implicit ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1');
  const sop = `1.2.826.0.1.3680043.2.1125.${s.instanceNumber ?? 0}.${Math.floor(Math.random() * 1e9)}`;
  const sopClass = s.sopClassUID ?? '1.2.840.10008.5.1.4.1.1.2';
  const bitsStored = s.bitsStored ?? s.bitsAllocated ?? 16;
  const highBit = s.highBit ?? bitsStored - 1;
  const els: El[] = [
    text(8, 0x16, 'UI', sopClass),
    text(8, 0x18, 'UI', sop),
    text(8, 0x60, 'CS', 'CT'),
    text(0x20, 0x0d, 'UI', '1.2.826.0.1.3680043.2.1125.99'),
    text(0x28, 4, 'CS', 'MONOCHROME2'),
    us(0x28, 2, 1),
    us(0x28, 0x10, s.rows),
    us(0x28, 0x11, s.columns),
    us(0x28, 0x100, s.bitsAllocated ?? 16),
    us(0x28, 0x101, bitsStored),
    us(0x28, 0x102, highBit),
    us(0x28, 0x103, s.pixelRepresentation ?? 1),
    text(0x28, 0x1052, 'DS', String(s.rescaleIntercept ?? 0)),
    text(0x28, 0x1053, 'DS', String(s.rescaleSlope ?? 1)),
  ];
  if (s.seriesUID !== null) els.push(text(0x20, 0x0e, 'UI', s.seriesUID ?? '1.2.826.0.1.3680043.2.1125.7'));
  if (s.seriesNumber !== null) els.push(text(0x20, 0x11, 'IS', String(s.seriesNumber ?? 1)));
  if (s.instanceNumber !== null && s.instanceNumber !== undefined) els.push(text(0x20, 0x13, 'IS', String(s.instanceNumber)));
  if (s.position !== null) els.push(text(0x20, 0x32, 'DS', fmt(s.position ?? [0, 0, 0])));
  if (s.orientation !== null) els.push(text(0x20, 0x37, 'DS', fmt(s.orientation ?? [1, 0, 0, 0, 1, 0])));
  if (s.pixelSpacing !== null) els.push(text(0x28, 0x30, 'DS', fmt(s.pixelSpacing ?? [1, 1])));
  if (s.sliceThickness !== undefined) els.push(text(0x18, 0x50, 'DS', String(s.sliceThickness)));
  if (s.seriesDescription !== undefined) els.push(text(8, 0x103e, 'LO', s.seriesDescription));
  if (s.imageType !== undefined) els.push(text(8, 0x08, 'CS', s.imageType));
  if (s.encapsulated) els.push({ group: 0x7fe0, element: 0x10, vr: 'OB', value: encapsulate(s.encapsulated, s.basicOffsetTable ?? false), undefinedLength: true });
  else if (!s.noPixelData) {
    const eight = s.bitsAllocated === 8;
    const px = new Uint8Array(s.rows * s.columns * (eight ? 1 : 2));
    const dv = new DataView(px.buffer);
    const shift = highBit + 1 - bitsStored;
    const storedMask = (2 ** bitsStored - 1) * 2 ** shift;
    for (let i = 0; i < s.rows * s.columns; i++) {
      if (eight) px[i] = s.pixels[i] & 0xff;
      else if (shift > 0 || s.fillUnusedBits) {
        // The stored bits (two's complement for signed data) placed at HighBit.
        let w = ((s.pixels[i] & (2 ** bitsStored - 1)) * 2 ** shift) & 0xffff;
        if (s.fillUnusedBits) w |= ~storedMask & 0xffff;
        dv.setUint16(2 * i, w, true);
      } else if ((s.pixelRepresentation ?? 1) === 1) dv.setInt16(2 * i, s.pixels[i], true);
      else dv.setUint16(2 * i, s.pixels[i], true);
    }
    els.push({ group: 0x7fe0, element: 0x10, vr: eight ? 'OB' : 'OW', value: px });
  }
  return assemble(encodeElements(els, s.implicit ?? false), ts, sopClass, sop, s.layout);
}

/** An Enhanced CT file: several frames, geometry in the functional group sequences. */
export interface TestEnhanced {
  rows: number;
  columns: number;
  /** Per frame: its ImagePositionPatient and stored values (rows * columns); `pixels` unused with `encapsulated`. */
  frames: { position: [number, number, number]; pixels: ArrayLike<number>; rescaleIntercept?: number; orientation?: number[] }[];
  orientation?: number[];
  pixelSpacing?: [number, number];
  sliceThickness?: number;
  rescaleIntercept?: number;
  rescaleSlope?: number;
  seriesUID?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  pixelRepresentation?: 0 | 1;
  implicit?: boolean;
  /** Leave out PerFrameFunctionalGroupsSequence (then the frames cannot be placed). */
  noPerFrameGroups?: boolean;
  /** Write NumberOfFrames as this instead of frames.length. */
  numberOfFrames?: number;
  transferSyntax?: string;
  /** Per frame, its compressed fragments. */
  encapsulated?: Uint8Array[][];
  /** Write a basic offset table with each frame's offset. */
  basicOffsetTable?: boolean;
}

/**
 * An Enhanced CT Image Storage file (PS3.3 A.38): PixelMeasuresSequence, PlaneOrientationSequence
 * and PixelValueTransformationSequence in SharedFunctionalGroupsSequence, PlanePositionSequence
 * (and a per-frame rescale or orientation, where a frame gives one) in
 * PerFrameFunctionalGroupsSequence; no geometry at the top level.
 */
export function writeTestEnhancedDicom(e: TestEnhanced): Uint8Array {
  const implicit = e.implicit ?? false;
  const ts = e.transferSyntax ?? (implicit ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1');
  const sopClass = '1.2.840.10008.5.1.4.1.1.2.1';
  const sop = `1.2.826.0.1.3680043.2.1125.${e.instanceNumber ?? 1}.${Math.floor(Math.random() * 1e9)}`;
  const n = e.rows * e.columns;
  const shared: El[] = [
    sq(0x28, 0x9110, [[text(0x28, 0x30, 'DS', fmt(e.pixelSpacing ?? [0.7, 0.7])), text(0x18, 0x50, 'DS', String(e.sliceThickness ?? 2.5))]], implicit),
    sq(0x28, 0x9145, [[text(0x28, 0x1052, 'DS', String(e.rescaleIntercept ?? -1024)), text(0x28, 0x1053, 'DS', String(e.rescaleSlope ?? 1)), text(0x28, 0x1054, 'LO', 'HU')]], implicit),
  ];
  if (e.orientation !== undefined || !e.frames.some((f) => f.orientation))
    shared.push(sq(0x20, 0x9116, [[text(0x20, 0x37, 'DS', fmt(e.orientation ?? [1, 0, 0, 0, 1, 0]))]], implicit));
  const perFrame = e.frames.map((f) => {
    const els: El[] = [sq(0x20, 0x9113, [[text(0x20, 0x32, 'DS', fmt(f.position))]], implicit)];
    if (f.rescaleIntercept !== undefined)
      els.push(sq(0x28, 0x9145, [[text(0x28, 0x1052, 'DS', String(f.rescaleIntercept)), text(0x28, 0x1053, 'DS', String(e.rescaleSlope ?? 1))]], implicit));
    if (f.orientation) els.push(sq(0x20, 0x9116, [[text(0x20, 0x37, 'DS', fmt(f.orientation))]], implicit));
    return els;
  });
  const els: El[] = [
    text(8, 0x16, 'UI', sopClass),
    text(8, 0x18, 'UI', sop),
    text(8, 0x60, 'CS', 'CT'),
    text(8, 0x08, 'CS', 'ORIGINAL\\PRIMARY\\AXIAL'),
    text(0x20, 0x0d, 'UI', '1.2.826.0.1.3680043.2.1125.99'),
    text(0x20, 0x0e, 'UI', e.seriesUID ?? '1.2.826.0.1.3680043.2.1125.8'),
    text(0x20, 0x11, 'IS', String(e.seriesNumber ?? 5)),
    text(0x20, 0x13, 'IS', String(e.instanceNumber ?? 1)),
    text(0x28, 4, 'CS', 'MONOCHROME2'),
    us(0x28, 2, 1),
    text(0x28, 8, 'IS', String(e.numberOfFrames ?? e.frames.length)),
    us(0x28, 0x10, e.rows),
    us(0x28, 0x11, e.columns),
    us(0x28, 0x100, 16),
    us(0x28, 0x101, 16),
    us(0x28, 0x102, 15),
    us(0x28, 0x103, e.pixelRepresentation ?? 1),
    sq(0x5200, 0x9229, [shared], implicit),
  ];
  if (!e.noPerFrameGroups) els.push(sq(0x5200, 0x9230, perFrame, implicit));
  if (e.encapsulated) els.push({ group: 0x7fe0, element: 0x10, vr: 'OB', value: encapsulateFrames(e.encapsulated, e.basicOffsetTable ?? false), undefinedLength: true });
  else {
    const px = new Uint8Array(2 * n * e.frames.length);
    const dv = new DataView(px.buffer);
    e.frames.forEach((f, k) => {
      for (let i = 0; i < n; i++) {
        if ((e.pixelRepresentation ?? 1) === 1) dv.setInt16(2 * (k * n + i), f.pixels[i]!, true);
        else dv.setUint16(2 * (k * n + i), f.pixels[i]!, true);
      }
    });
    els.push({ group: 0x7fe0, element: 0x10, vr: 'OW', value: px });
  }
  return assemble(encodeElements(els, implicit), ts, sopClass, sop);
}

// ---------------------------------------------------------------------------------------
// Encapsulated pixel data (DICOM PS3.5 A.4)

function item(tagElement: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + value.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 0xfffe, true);
  dv.setUint16(2, tagElement, true);
  dv.setUint32(4, value.length, true);
  out.set(value, 8);
  return out;
}

/** Items: the basic offset table (empty, or the single frame at offset 0), the fragments, the sequence delimiter. */
function encapsulate(fragments: Uint8Array[], offsetTable: boolean): Uint8Array {
  const parts = [item(0xe000, offsetTable ? new Uint8Array(4) : new Uint8Array(0)), ...fragments.map((f) => item(0xe000, pad(f, 0))), item(0xe0dd, new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

/** Several frames, each its own fragments; the offset table, when asked for, lists where each frame's first fragment starts. */
function encapsulateFrames(frames: Uint8Array[][], offsetTable: boolean): Uint8Array {
  const fragmentItems = frames.map((fr) => fr.map((f) => item(0xe000, pad(f, 0))));
  let bot = new Uint8Array(0);
  if (offsetTable) {
    bot = new Uint8Array(4 * frames.length);
    const dv = new DataView(bot.buffer);
    let o = 0;
    fragmentItems.forEach((items, k) => {
      dv.setUint32(4 * k, o, true);
      for (const it of items) o += it.length;
    });
  }
  const parts = [item(0xe000, bot), ...fragmentItems.flat(), item(0xe0dd, new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

/** A frame split into fragments of at most `size` bytes (the last one padded to even length when written). */
export function fragments(frame: Uint8Array, size = Infinity): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < frame.length; o += size) out.push(frame.subarray(o, Math.min(frame.length, o + size)));
  return out;
}

// ---------------------------------------------------------------------------------------
// RLE Lossless encoder (DICOM PS3.5 Annex G)

/** PackBits: replicate runs of 2..128 equal bytes, literal runs of 1..128; never across the end of `row`. */
function packBits(row: Uint8Array, out: number[]): void {
  let i = 0;
  while (i < row.length) {
    let run = 1;
    while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
    if (run >= 2) {
      out.push(257 - run, row[i]);
      i += run;
      continue;
    }
    let lit = 1;
    while (i + lit < row.length && lit < 128 && !(i + lit + 1 < row.length && row[i + lit] === row[i + lit + 1])) lit++;
    out.push(lit - 1, ...row.subarray(i, i + lit));
    i += lit;
  }
}

/**
 * One RLE frame of single-sample pixels (stored values as two's-complement bit patterns of
 * bitsAllocated bits): one segment per byte, most significant first, each row coded separately.
 */
export function encodeRle(pixels: ArrayLike<number>, rows: number, columns: number, bitsAllocated: 8 | 16 | 32): Uint8Array {
  const bytesPer = bitsAllocated / 8;
  const segments: number[][] = [];
  const row = new Uint8Array(columns);
  for (let s = 0; s < bytesPer; s++) {
    const shift = 8 * (bytesPer - 1 - s);
    const seg: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) row[c] = (pixels[r * columns + c] >>> shift) & 0xff;
      packBits(row, seg);
    }
    if (seg.length % 2) seg.push(0x80); // pad to even length with a no-op
    segments.push(seg);
  }
  const out = new Uint8Array(64 + segments.reduce((n, s) => n + s.length, 0));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, bytesPer, true);
  let o = 64;
  segments.forEach((seg, s) => {
    dv.setUint32(4 + 4 * s, o, true);
    out.set(seg, o);
    o += seg.length;
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// JPEG Lossless encoder (ITU-T T.81 process 14: SOF3, Huffman, one component)

// Code lengths for the difference categories SSSS = 0..16: short codes for small differences,
// and codes longer than 8 bits for large ones (so a decoder's two-level tables are exercised).
// Kraft sum < 1, so no code is all ones.
const HUFF_LENGTHS = [2, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

class BitWriter {
  bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, len: number): void {
    for (let b = len - 1; b >= 0; b--) {
      this.acc = (this.acc << 1) | ((value >>> b) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0x00); // byte stuffing
    this.acc = 0;
    this.n = 0;
  }
  /** Pads the last byte with 1-bits. */
  align(): void {
    while (this.n !== 0) this.write(1, 1);
  }
}

/**
 * Encodes unsigned samples (0 <= v < 2^precision; signed data as its bit pattern) as a JPEG
 * Lossless codestream with the given predictor (1..7; 1 = "SV1", DICOM .70). restartInterval,
 * if given, is in samples and must be a whole number of rows.
 */
export function encodeJpegLossless(
  pixels: ArrayLike<number>,
  rows: number,
  columns: number,
  opts: { precision: number; predictor?: number; restartInterval?: number },
): Uint8Array {
  const P = opts.precision, sel = opts.predictor ?? 1, ri = opts.restartInterval ?? 0;
  if (ri % columns !== 0) throw new Error('restart interval must be whole rows');
  // Canonical Huffman codes (T.81 Annex C) for the table above.
  const order = HUFF_LENGTHS.map((l, sym) => ({ l, sym })).sort((a, b) => a.l - b.l || a.sym - b.sym);
  const code = new Array<number>(17), len = new Array<number>(17);
  const bitsCount = new Array<number>(16).fill(0);
  let c = 0, prevLen = order[0].l;
  for (const { l, sym } of order) {
    c <<= l - prevLen;
    prevLen = l;
    code[sym] = c++;
    len[sym] = l;
    bitsCount[l - 1]++;
  }
  const bw = new BitWriter();
  const x = (r: number, col: number) => pixels[r * columns + col];
  let intervalStartRow = 0, rst = 0;
  for (let r = 0; r < rows; r++) {
    if (ri > 0 && r > 0 && (r * columns) % ri === 0) {
      bw.align();
      bw.bytes.push(0xff, 0xd0 + (rst++ % 8));
      intervalStartRow = r;
    }
    for (let col = 0; col < columns; col++) {
      let px: number;
      if (r === intervalStartRow) px = col === 0 ? 1 << (P - 1) : x(r, col - 1);
      else if (col === 0) px = x(r - 1, col);
      else {
        const ra = x(r, col - 1), rb = x(r - 1, col), rc = x(r - 1, col - 1);
        px = [0, ra, rb, rc, ra + rb - rc, ra + ((rb - rc) >> 1), rb + ((ra - rc) >> 1), (ra + rb) >> 1][sel];
      }
      let d = (x(r, col) - px) & 0xffff;
      if (d >= 0x8000) d -= 0x10000;
      const ssss = d === 0 ? 0 : d === -0x8000 ? 16 : 32 - Math.clz32(Math.abs(d));
      bw.write(code[ssss], len[ssss]);
      if (ssss > 0 && ssss < 16) bw.write(d > 0 ? d : d + (1 << ssss) - 1, ssss);
    }
  }
  bw.align();
  const seg = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const out = [
    0xff, 0xd8,
    ...seg(0xc3, [P, rows >> 8, rows & 0xff, columns >> 8, columns & 0xff, 1, 1, 0x11, 0]),
    ...seg(0xc4, [0x00, ...bitsCount, ...order.map((o) => o.sym)]),
    ...(ri > 0 ? seg(0xdd, [ri >> 8, ri & 0xff]) : []),
    ...seg(0xda, [1, 1, 0x00, sel, 0, 0]),
    ...bw.bytes,
    0xff, 0xd9,
  ];
  return new Uint8Array(out);
}
