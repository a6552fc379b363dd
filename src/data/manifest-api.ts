// The library's `manifest` namespace (src/index.ts): the manifest format (manifest.ts), its
// splits (splits.ts) and the CT-RATE import (ctrate.ts, csv.ts), one import away for library
// users. Code in this repository imports from those files directly.
export * from './manifest.ts';
export * from './splits.ts';
export * from './csv.ts';
export * from './ctrate.ts';
