// JPEG Lossless (ITU-T T.81 process 14, Huffman-coded, SOF3): DICOM transfer syntaxes
// 1.2.840.10008.1.2.4.57 (any predictor) and 1.2.840.10008.1.2.4.70 (predictor 1, "SV1", the
// most common compressed syntax of hospital CT).
//
// Dependency: jpeg-lossless-decoder-js (MIT; pure JavaScript, no WebAssembly and no install
// step; the decoder Cornerstone's DICOM image loader uses for these two syntaxes). Being plain
// JavaScript it works unchanged in Node and in the browser bundle, so the DICOM reader uses it
// by default (options.jpegLossless can replace it).
//
// Around the package: the frame header is checked first (process, size, point transform), a
// fresh Decoder is made per frame (it keeps tables and the restart interval between calls),
// and an EOI marker is appended to a copy of the codestream so that a truncated one stops the
// decoder at that marker instead of reading past the end; a frame whose rows were not all
// decoded is then reported as truncated. Three faults of the package (2.1.2) are corrected in
// a subclass (test/data/dicom-codecs.test.ts finds each, against an encoder of its own):
// - Its marker check is off by one: a Huffman code, or a difference's extra bits, that ends
//   exactly where the entropy-coded data ends (before EOI or an RSTn marker) is taken for one
//   that runs into the marker. That sample is then lost (the image's last pixel stays 0) or
//   set to its prediction (the last one of a restart interval). The decoder compares the bits
//   left with `markerIndex`, which it sets to 9 on reading a marker; 8 (the marker's own FF
//   byte) is right, so the subclass stores 8 when 9 is set. (The package's `isLastPixel`
//   exception in getn covers one case of this.)
// - Predictor 7 is computed as (Ra + Rb) / 2 with its fraction kept; T.81 says
//   (Ra + Rb) >> 1, and the fraction makes a difference across the modulo-2^16 wrap.
// - After a restart marker only the first sample's prediction is reset; T.81 H.1.2.1 (and
//   libjpeg) predict the whole first row of each restart interval from the left (Ra), as for
//   the first row of the scan. So predictors 2..7 with restart intervals went wrong from the
//   second sample on (predictor 1, the DICOM .70 case, was unaffected). The subclass notes the
//   row where each interval starts and answers Rb and Rc there with Ra, as the package itself
//   does on row 0.
import { Decoder } from 'jpeg-lossless-decoder-js';
import { jpegProcessName, readJpegFrameHeader } from './headers.ts';
import type { DecodedFrame, FrameDecoder } from './types.ts';

class CorrectedDecoder extends Decoder {
  /** The row where the current restart interval began (0 without restart intervals). */
  private intervalRow = 0;
  constructor() {
    super();
    let markerIndex = 0;
    let restarting = false;
    Object.defineProperties(this, {
      markerIndex: {
        get: () => markerIndex,
        set: (v: number) => void (markerIndex = v === 9 ? 8 : v),
      },
      restarting: {
        get: () => restarting,
        set: (v: boolean) => {
          restarting = v;
          if (v) this.intervalRow = this.yLoc;
        },
      },
    });
  }
  override getPreviousY(compOffset = 0): number {
    return this.yLoc === this.intervalRow && this.xLoc > 0 ? super.getPreviousX(compOffset) : super.getPreviousY(compOffset);
  }
  override getPreviousXY(compOffset = 0): number {
    return this.yLoc === this.intervalRow && this.xLoc > 0 ? super.getPreviousX(compOffset) : super.getPreviousXY(compOffset);
  }
  override select7(): number {
    return (this.getPreviousX() + this.getPreviousY()) >> 1;
  }
}

export function decodeJpegLossless(encoded: Uint8Array): DecodedFrame {
  const h = readJpegFrameHeader(encoded);
  if (h.sof !== 0xc3) throw new Error(`the codestream is ${jpegProcessName(h.sof)}, not lossless (SOF3)`);
  if (h.components !== 1) throw new Error(`${h.components} components; only single-component (grayscale) images are supported`);
  if (h.precision < 2 || h.precision > 16) throw new Error(`sample precision ${h.precision} is outside 2..16`);
  if (h.ss < 1 || h.ss > 7) throw new Error(`predictor ${h.ss} is outside 1..7`);
  if (h.al !== 0) throw new Error(`point transform ${h.al} is not supported`);
  const buf = new Uint8Array(encoded.length + 4);
  buf.set(encoded);
  buf.set([0xff, 0xd9, 0xff, 0xd9], encoded.length);
  const dec = new CorrectedDecoder();
  const out = dec.decode(buf.buffer, 0, buf.length);
  if (dec.xDim !== h.columns || dec.yDim !== h.rows || out.length < h.columns * h.rows)
    throw new Error(`decoder returned ${dec.xDim}x${dec.yDim}, frame header says ${h.columns}x${h.rows}`);
  if (dec.yLoc < dec.yDim)
    throw new Error(`codestream ends after ${dec.yLoc * dec.xDim + dec.xLoc} of ${h.columns * h.rows} pixels (truncated?)`);
  return {
    width: h.columns,
    height: h.rows,
    bitsPerSample: h.precision,
    componentCount: 1,
    isSigned: false,
    pixels: new Uint8Array(out.buffer, out.byteOffset, out.byteLength),
  };
}

/** The default JPEG Lossless decoder (pure JavaScript). */
export const jpegLosslessDecoder: FrameDecoder = { decode: decodeJpegLossless };
