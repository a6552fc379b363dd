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
// decoded is then reported as truncated.
import { Decoder } from 'jpeg-lossless-decoder-js';
import { jpegProcessName, readJpegFrameHeader } from './headers.ts';
import type { DecodedFrame, FrameDecoder } from './types.ts';

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
  const dec = new Decoder();
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
