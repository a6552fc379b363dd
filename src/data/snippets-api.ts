// The library's `snippets` namespace (src/browser.ts): mining report snippets (snippets.ts),
// placing them in the prepared volume (snippet-locate.ts) and scoring the miner
// (snippet-score.ts), one import away for library users. Code in this repository imports from
// those files directly.
export * from './snippets.ts';
export * from './snippet-locate.ts';
export * from './snippet-score.ts';
