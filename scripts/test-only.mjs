// Builds only the named test files into a private folder and runs them, so that several
// people (or agents) can work on different ops at once without sharing .build/:
//
//   node scripts/test-only.mjs test/ops/attention.test.ts [more.test.ts ...]
//
// The folder is $CTVLM_TEST_OUT or a fresh one under .build-only/ (the browser tests' page goes to
// .build/browser, where the tests serve it from, as with npm test).
import * as esbuild from 'esbuild';
import { copyFileSync, mkdtempSync, mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'uvu/run';

const root = new URL('..', import.meta.url).pathname;
const files = process.argv.slice(2).map((f) => resolve(f));
if (files.length === 0) {
  console.error('usage: node scripts/test-only.mjs test/<path>.test.ts ...');
  process.exit(2);
}
// Inside the repository, so that the bundles resolve node_modules.
mkdirSync(join(root, '.build-only'), { recursive: true });
const out = process.env.CTVLM_TEST_OUT ?? mkdtempSync(join(root, '.build-only', 'run-'));
mkdirSync(out, { recursive: true });
await esbuild.build({
  bundle: true,
  format: 'esm',
  sourcemap: 'linked',
  loader: { '.wgsl': 'text' },
  logLevel: 'warning',
  target: 'es2022',
  platform: 'node',
  packages: 'external',
  entryPoints: files,
  outdir: out,
  outbase: root,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});
// The browser tests serve the page bundle from .build/browser (build.mjs --tests builds it):
// built here too, so that they never load a missing or stale page.
if (files.some((f) => relative(root, f).startsWith('test/browser/'))) {
  await esbuild.build({
    bundle: true, format: 'esm', sourcemap: 'linked', loader: { '.wgsl': 'text' }, logLevel: 'warning', target: 'es2022',
    platform: 'browser', external: ['webgpu', 'node:*'],
    entryPoints: { page: join(root, 'test/browser/page.ts') },
    outdir: join(root, '.build/browser'),
  });
  copyFileSync(join(root, 'test/browser/index.html'), join(root, '.build/browser/index.html'));
}
const built = files.map((f) => join(out, relative(root, f)).replace(/\.ts$/, '.js'));
const t0 = Date.now();
await run(built.map((file) => ({ name: relative(out, file), file })), { bail: false });
await globalThis.__ctvlmTestTeardown?.();
console.log(`  Wall time: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(process.exitCode ?? 0);
