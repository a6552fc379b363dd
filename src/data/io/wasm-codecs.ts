// Node loaders for the WebAssembly pixel-data decoders of the DICOM reader.
//
// Dependencies (each the C library compiled to WebAssembly with Emscripten; the npm package
// ships the JavaScript glue and the .wasm, has no install script and fetches nothing):
// - @cornerstonejs/codec-openjpeg: OpenJPEG, JPEG 2000 (JPEG 2000 lossless is common for CT).
// - @cornerstonejs/codec-charls: CharLS, JPEG-LS lossless / near-lossless.
// - @cornerstonejs/codec-libjpeg-turbo-8bit: libjpeg-turbo, 8-bit JPEG baseline / extended
//   (non-diagnostic images: screenshots, scouts, secondary captures).
// Each package's "./decodewasmjs" entry is a CommonJS Emscripten factory: it is loaded with
// createRequire and given the bytes of its "./decodewasm" file read with fs (the `wasmBinary`
// module option), so nothing is fetched; the decode-only builds are used (no encoders). Their
// informational prints are silenced. codecs/emscripten.ts wraps the modules as FrameDecoders
// (and says how a browser would load them). JPEG Lossless and RLE need no loading.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { codecOfTransferSyntax, type DicomDecoderOptions } from '../dicom.ts';
import {
  charlsDecoder,
  libJpegTurboDecoder,
  openJpegDecoder,
  type CharlsModule,
  type LibJpegTurboModule,
  type OpenJpegModule,
  type WasmFrameDecoder,
} from '../codecs/emscripten.ts';

async function instantiate<M>(pkg: string): Promise<M> {
  const require = createRequire(import.meta.url);
  const factory = require(`${pkg}/decodewasmjs`) as (m: object) => Promise<M>;
  const wasmBinary = readFileSync(require.resolve(`${pkg}/decodewasm`));
  return factory({ wasmBinary, print: () => {}, printErr: () => {} });
}

/** One cached decoder per package; loaded again after a failed load or a WebAssembly trap. */
function cachedLoader<M>(pkg: string, wrap: (m: M) => WasmFrameDecoder): () => Promise<WasmFrameDecoder> {
  let cached: Promise<WasmFrameDecoder> | null = null;
  let current: WasmFrameDecoder | null = null;
  return () => {
    if (!cached || current?.broken) {
      current = null;
      const p = instantiate<M>(pkg).then((m) => (current = wrap(m)));
      p.catch(() => {
        if (cached === p) cached = null;
      });
      cached = p;
    }
    return cached;
  };
}

/** JPEG 2000 decoder (OpenJPEG), loaded once from node_modules (no network). */
export const loadOpenJpegNode: () => Promise<WasmFrameDecoder> = cachedLoader<OpenJpegModule>('@cornerstonejs/codec-openjpeg', openJpegDecoder);

/** JPEG-LS decoder (CharLS), loaded once from node_modules (no network). */
export const loadCharlsNode: () => Promise<WasmFrameDecoder> = cachedLoader<CharlsModule>('@cornerstonejs/codec-charls', charlsDecoder);

/** 8-bit JPEG baseline / extended decoder (libjpeg-turbo), loaded once from node_modules (no network). */
export const loadLibJpegTurboNode: () => Promise<WasmFrameDecoder> = cachedLoader<LibJpegTurboModule>(
  '@cornerstonejs/codec-libjpeg-turbo-8bit',
  libJpegTurboDecoder,
);

/**
 * The decoders these transfer syntaxes need, as DICOM reader options: those given in `given`
 * are kept, the missing WebAssembly ones are loaded. Syntaxes nobody decodes are left for the
 * reader to report.
 */
export async function loadDicomDecodersNode(transferSyntaxes: Iterable<string>, given: DicomDecoderOptions = {}): Promise<DicomDecoderOptions> {
  const out: DicomDecoderOptions = { ...given };
  const loads: Promise<void>[] = [];
  const need = new Set<string>();
  for (const ts of transferSyntaxes) {
    const c = codecOfTransferSyntax(ts);
    if (c) need.add(c);
  }
  if (need.has('jpeg2000') && !out.jpeg2000) loads.push(loadOpenJpegNode().then((d) => void (out.jpeg2000 = d)));
  if (need.has('jpegLs') && !out.jpegLs) loads.push(loadCharlsNode().then((d) => void (out.jpegLs = d)));
  if (need.has('jpegBaseline') && !out.jpegBaseline) loads.push(loadLibJpegTurboNode().then((d) => void (out.jpegBaseline = d)));
  await Promise.all(loads);
  return out;
}
