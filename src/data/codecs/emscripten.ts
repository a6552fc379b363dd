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

function wrap(name: string, m: EmscriptenCodecModule, make: () => WasmDecoderObject): WasmFrameDecoder {
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
        dec.getEncodedBuffer(encoded.length).set(encoded);
        dec.decode();
        const fi = dec.getFrameInfo();
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
  return wrap('CharLS', m, () => new m.JpegLSDecoder());
}

/** 8-bit JPEG baseline / extended (libjpeg-turbo). */
export function libJpegTurboDecoder(m: LibJpegTurboModule): WasmFrameDecoder {
  return wrap('libjpeg-turbo', m, () => new m.JPEGDecoder());
}
