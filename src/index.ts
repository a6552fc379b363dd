// The Node library entry: everything the browser entry has, plus Node-only file I/O.
export * from './browser.ts';
export * as io from './data/io/node.ts';
export * as manifest from './data/manifest-api.ts';
