// Runs the compiled test bundles (.build/test/**/*.test.js) in one process with uvu, so all
// test files share one GPU device, then destroys the device (dawn.node keeps a core busy
// and the process alive until then).
//
//   node test/run.mjs                 every test
//   node test/run.mjs ops/matmul data every test whose path contains one of the words
import { run } from 'uvu/run';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../.build/test/', import.meta.url).pathname;
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));

function walk(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = walk(root).filter((f) => filters.length === 0 || filters.some((w) => relative(root, f).includes(w)));
if (files.length === 0) {
  console.error(`test: no test files match ${filters.join(', ')}`);
  process.exit(1);
}
const t0 = Date.now();
await run(files.map((file) => ({ name: relative(root, file), file })), { bail: false });
await globalThis.__ctvlmTestTeardown?.();
console.log(`  Wall time: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(process.exitCode ?? 0);
