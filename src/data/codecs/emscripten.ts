// FrameDecoders around the WebAssembly codec modules of Cornerstone's codec packages. Each is a
// C library compiled with Emscripten; its npm package ships the JavaScript glue and the .wasm
// (nothing is built or downloaded at install or run time; no install script):
//
// - @cornerstonejs/codec-openjpeg (MIT): OpenJPEG, JPEG 2000 (1.2.840.10008.1.2.4.90 / .91).
// - @cornerstonejs/codec-charls (MIT): CharLS, JPEG-LS lossless and near-lossless
//   (1.2.840.10008.1.2.4.80 / .81).
// - @cornerstonejs/codec-libjpeg-turbo-8bit (ISC): libjpeg-turbo, 8-bit JPEG baseline and
//   extended (1.2.840.10008.1.2.4.50, and .51 when its samples are 8-bit).
//
// This file only wraps a module that is already instantiated, and imports none of them, so it
// is as pure as dicom.ts: how the module is loaded differs by platform.
// - Node: io/wasm-codecs.ts requires each package's "./decodewasmjs" entry (the Emscripten
//   factory, CommonJS) with createRequire and hands it the bytes of "./decodewasm" read with fs
//   (the `wasmBinary` module option), so nothing is fetched.
// - Browser (not built yet): import the same "./decodewasmjs" entry with the bundler (its Node
//   branch requires "fs" and "path", which must be marked external or stubbed; they are never
//   reached in a browser), and give the factory the .wasm either as `wasmBinary` (bytes the app
//   fetched) or through `locateFile: () => URL` (the bundler copies "./decodewasm" as an
//   asset). Then pass e.g. `charlsDecoder(module)` as the DICOM reader's options.jpegLs.
//
// The decoders are used the packages' way: copy the codestream into the module's memory,
// decode, copy the pixels out, delete the decoder object. A C++ exception reaches JavaScript
// as a number (a pointer); it becomes an Error with the library's message where the module
// exports getExceptionMessage (CharLS does). After a WebAssembly trap (RuntimeError) the
// module's memory may be inconsistent, so the wrapper refuses further work (`broken`) and the
// Node loader instantiates a fresh module on the next load.
//
// CharLS (this build) can take many seconds to reject a codestream that simply stops (a cut
// file; 8 to 16 s for a 7 kB one, depending on where the cut falls: it seems to read on past
// the end of its buffer). Given the same bytes followed by an EOI marker it fails at once. So a JPEG-LS codestream that does not
// end in EOI (trailing zero padding aside) gets one appended before it is decoded.
import type { DecodedFrame, FrameDecoder } from './types.ts';

/** The parts of an Emscripten module these wrappers use. */
export interface EmscriptenCodecModule {
  getExceptionMessage?: (e: number) => string | string[];
}

/** A codec's decoder object (embind class instance), as all three packages shape it. */
export interface WasmDecoderObject {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

export interface OpenJpegModule extends EmscriptenCodecModule {
  J2KDecoder: new () => WasmDecoderObject;
}
export interface CharlsModule extends EmscriptenCodecModule {
  JpegLSDecoder: new () => WasmDecoderObject;
}
export interface LibJpegTurboModule extends EmscriptenCodecModule {
  JPEGDecoder: new () => WasmDecoderObject;
}

/** A FrameDecoder that can tell whether a WebAssembly trap has made its module unusable. */
export interface WasmFrameDecoder extends FrameDecoder {
  readonly broken: boolean;
}

function exceptionMessage(m: EmscriptenCodecModule, e: number): string {
  try {
    const r = m.getExceptionMessage?.(e);
    if (Array.isArray(r)) return r.filter(Boolean).join(': ') || `C++ exception ${e}`;
    if (typeof r === 'string' && r) return r;
  } catch {
    // fall through
  }
  return 'the codestream was rejected (C++ exception)';
}

/** The codestream, or a copy with an EOI marker (FF D9) appended when it does not end in one (zero padding aside). */
export function withEoi(b: Uint8Array): Uint8Array {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  if (end >= 2 && b[end - 2] === 0xff && b[end - 1] === 0xd9) return b;
  const out = new Uint8Array(b.length + 2);
  out.set(b);
  out.set([0xff, 0xd9], b.length);
  return out;
}

function wrap(name: string, m: EmscriptenCodecModule, make: () => WasmDecoderObject, prepare = (b: Uint8Array) => b): WasmFrameDecoder {
  let broken: string | null = null;
  return {
    get broken() {
      return broken !== null;
    },
    decode(encoded: Uint8Array): DecodedFrame {
      if (broken !== null) throw new Error(`${name} is unusable after an earlier failure (${broken}); load it again`);
      let dec: WasmDecoderObject | undefined;
      try {
        dec = make();
        const input = prepare(encoded);
        dec.getEncodedBuffer(input.length).set(input);
        dec.decode();
        const fi = dec.getFrameInfo();
        // OpenJPEG returns from a failed decode without an exception, with an empty frame.
        if (!(fi.width > 0 && fi.height > 0)) throw new Error(`${name} produced no image (corrupt or truncated codestream?)`);
        const pixels = dec.getDecodedBuffer().slice(); // copy out of the wasm heap
        return {
          width: fi.width,
          height: fi.height,
          bitsPerSample: fi.bitsPerSample,
          componentCount: fi.componentCount,
          isSigned: fi.isSigned ?? false,
          pixels,
        };
      } catch (e) {
        if (typeof e === 'number') throw new Error(`${name}: ${exceptionMessage(m, e)}`);
        if (e instanceof WebAssembly.RuntimeError) broken = e.message;
        throw e;
      } finally {
        try {
          dec?.delete();
        } catch {
          // a trapped module may fail here too; the error above is the one to report
        }
      }
    },
  };
}

/** JPEG 2000 (OpenJPEG). */
export function openJpegDecoder(m: OpenJpegModule): WasmFrameDecoder {
  return wrap('OpenJPEG', m, () => new m.J2KDecoder());
}

/** JPEG-LS (CharLS). */
export function charlsDecoder(m: CharlsModule): WasmFrameDecoder {
  return wrap('CharLS', m, () => new m.JpegLSDecoder(), withEoi);
}

/** 8-bit JPEG baseline / extended (libjpeg-turbo). */
export function libJpegTurboDecoder(m: LibJpegTurboModule): WasmFrameDecoder {
  return wrap('libjpeg-turbo', m, () => new m.JPEGDecoder());
}
