// Types for the parts of jpeg-lossless-decoder-js (pure JavaScript; its package names a
// declaration file it does not ship) that codecs/jpeg-lossless.ts uses.
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    constructor(buffer?: ArrayBuffer | null, numBytes?: number);
    /** Decodes the JPEG Lossless codestream at buffer[offset, offset + length); 1 or 2 bytes per sample (platform order). */
    decode(buffer?: ArrayBuffer, offset?: number, length?: number, numBytes?: number): Uint8Array | Uint16Array;
    frame: { dimX: number; dimY: number; numComp: number; precision: number };
    xDim: number;
    yDim: number;
    xLoc: number;
    yLoc: number;
    markerIndex: number;
    restarting: boolean;
    getPreviousX(compOffset?: number): number;
    getPreviousY(compOffset?: number): number;
    getPreviousXY(compOffset?: number): number;
    select7(compOffset?: number): number;
  }
}
