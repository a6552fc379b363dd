// A minimal DICOM Part 10 writer for tests: one uncompressed CT slice per file, explicit VR
// little endian (or implicit VR little endian), only the tags the series reader uses.
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
  sliceThickness?: number;
  seriesDescription?: string;
  /** Transfer syntax written in the meta header (pixels stay uncompressed). */
  transferSyntax?: string;
  implicit?: boolean;
  noPixelData?: boolean;
}

const enc = new TextEncoder();

function pad(bytes: Uint8Array, padByte: number): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = padByte;
  return out;
}

type El = { group: number; element: number; vr: string; value: Uint8Array };

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

function encodeElements(els: El[], implicit: boolean): Uint8Array {
  els.sort((a, b) => a.group - b.group || a.element - b.element);
  const parts: Uint8Array[] = [];
  for (const e of els) {
    const long = LONG_VR.has(e.vr);
    const head = new Uint8Array(implicit ? 8 : long ? 12 : 8);
    const dv = new DataView(head.buffer);
    dv.setUint16(0, e.group, true);
    dv.setUint16(2, e.element, true);
    if (implicit) dv.setUint32(4, e.value.length, true);
    else {
      head[4] = e.vr.charCodeAt(0);
      head[5] = e.vr.charCodeAt(1);
      if (long) dv.setUint32(8, e.value.length, true);
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

/** One slice as a DICOM Part 10 file. */
export function writeTestDicom(s: TestSlice): Uint8Array {
  const ts = s.transferSyntax ?? (s.implicit ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1');
  const sop = `1.2.826.0.1.3680043.2.1125.${s.instanceNumber ?? 0}.${Math.floor(Math.random() * 1e9)}`;
  const meta = encodeElements(
    [
      { group: 2, element: 1, vr: 'OB', value: new Uint8Array([0, 1]) },
      text(2, 2, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
      text(2, 3, 'UI', sop),
      text(2, 0x10, 'UI', ts),
      text(2, 0x12, 'UI', '1.2.826.0.1.3680043.2.1125.1'),
    ],
    false,
  );
  const groupLength = encodeElements([ul(2, 0, meta.length)], false);
  const els: El[] = [
    text(8, 0x16, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
    text(8, 0x18, 'UI', sop),
    text(8, 0x60, 'CS', 'CT'),
    text(0x20, 0x0d, 'UI', '1.2.826.0.1.3680043.2.1125.99'),
    text(0x28, 4, 'CS', 'MONOCHROME2'),
    us(0x28, 2, 1),
    us(0x28, 0x10, s.rows),
    us(0x28, 0x11, s.columns),
    us(0x28, 0x100, 16),
    us(0x28, 0x101, s.bitsStored ?? 16),
    us(0x28, 0x102, (s.bitsStored ?? 16) - 1),
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
  if (!s.noPixelData) {
    const px = new Uint8Array(s.rows * s.columns * 2);
    const dv = new DataView(px.buffer);
    for (let i = 0; i < s.rows * s.columns; i++) {
      if ((s.pixelRepresentation ?? 1) === 1) dv.setInt16(2 * i, s.pixels[i], true);
      else dv.setUint16(2 * i, s.pixels[i], true);
    }
    els.push({ group: 0x7fe0, element: 0x10, vr: 'OW', value: px });
  }
  const body = encodeElements(els, s.implicit ?? false);
  const out = new Uint8Array(132 + groupLength.length + meta.length + body.length);
  out.set(enc.encode('DICM'), 128);
  out.set(groupLength, 132);
  out.set(meta, 132 + groupLength.length);
  out.set(body, 132 + groupLength.length + meta.length);
  return out;
}
