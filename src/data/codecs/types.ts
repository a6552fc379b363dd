// The interface every compressed-pixel decoder of the DICOM reader implements (JPEG 2000,
// JPEG-LS, JPEG baseline, JPEG Lossless). Pure types: no dependency.

/** One decoded frame. */
export interface DecodedFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  /** Whether the samples are signed (two's complement); codecs that only know unsigned samples say false. */
  isSigned: boolean;
  /** Samples, little-endian: 1 byte each for bitsPerSample <= 8, else 2. */
  pixels: Uint8Array;
}

/**
 * Decodes one codestream (as found in a DICOM pixel-data frame). Synchronous; throws on bad
 * input (the DICOM reader turns the throw into a DataError naming the file and transfer syntax).
 */
export interface FrameDecoder {
  decode(encoded: Uint8Array): DecodedFrame;
}
