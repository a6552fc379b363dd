// Builds everything with esbuild. WGSL kernels are imported as text, so the Node bundle,
// the browser bundle and the test bundles all carry the same kernel strings.
//
//   node build.mjs            dist/ (CLI, Node library, browser library, web demo)
//   node build.mjs --tests    also .build/ (tests and benchmarks, for `npm test` / `npm run bench`)
//   node build.mjs --watch    rebuild dist/ on change
import * as esbuild from 'esbuild';
import { readdirSync, statSync, mkdirSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = new Set(process.argv.slice(2));
const root = new URL('.', import.meta.url).pathname;

const common = {
  bundle: true,
  format: 'esm',
  sourcemap: 'linked',
  loader: { '.wgsl': 'text' },
  logLevel: 'warning',
  target: 'es2022',
};

// Node bundles keep npm packages external: dawn.node is a native addon and must be loaded
// from node_modules, and the rest are resolved there the same way.
const nodeOptions = {
  ...common,
  platform: 'node',
  packages: 'external',
};

function walk(dir, pattern, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, pattern, out);
    else if (pattern.test(name)) out.push(path);
  }
  return out;
}

async function buildDist() {
  const builds = [
    esbuild.build({
      ...nodeOptions,
      entryPoints: { cli: join(root, 'src/cli.ts'), index: join(root, 'src/index.ts'), framework: join(root, 'src/framework.ts') },
      outdir: join(root, 'dist'),
      banner: { js: '' },
    }),
    // The browser bundle has no Node built-ins; `webgpu` (dawn.node) is only imported
    // lazily on Node, so it is left external and never fetched by a browser.
    esbuild.build({
      ...common,
      platform: 'browser',
      external: ['webgpu', 'node:*'],
      entryPoints: { ctvlm: join(root, 'src/browser.ts'), framework: join(root, 'src/framework.ts') },
      outdir: join(root, 'dist/browser'),
    }),
  ];
  if (existsSync(join(root, 'web/main.ts'))) {
    builds.push(
      esbuild.build({
        ...common,
        platform: 'browser',
        external: ['webgpu', 'node:*'],
        entryPoints: { main: join(root, 'web/main.ts') },
        outdir: join(root, 'dist/web'),
      }),
    );
  }
  await Promise.all(builds);
  if (existsSync(join(root, 'web/index.html'))) {
    mkdirSync(join(root, 'dist/web'), { recursive: true });
    copyFileSync(join(root, 'web/index.html'), join(root, 'dist/web/index.html'));
  }
}

async function buildTests() {
  const entries = [
    ...walk(join(root, 'test'), /\.test\.ts$/),
    ...walk(join(root, 'bench'), /\.ts$/),
  ];
  rmSync(join(root, '.build'), { recursive: true, force: true });
  // One splitting build: shared modules (the device runtime above all) become shared
  // chunks, so every test file in the one test process sees the same GPU device.
  await esbuild.build({
    ...nodeOptions,
    entryPoints: entries,
    outdir: join(root, '.build'),
    outbase: root,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
  });
  // The browser test page: the same sources bundled for the browser.
  await esbuild.build({
    ...common,
    platform: 'browser',
    external: ['webgpu', 'node:*'],
    entryPoints: { page: join(root, 'test/browser/page.ts') },
    outdir: join(root, '.build/browser'),
  });
  copyFileSync(join(root, 'test/browser/index.html'), join(root, '.build/browser/index.html'));
  return entries.map((e) => relative(root, e));
}

const t0 = Date.now();
if (args.has('--watch')) {
  const ctx = await esbuild.context({ ...nodeOptions, entryPoints: { cli: 'src/cli.ts' }, outdir: 'dist' });
  await ctx.watch();
  console.log('watching src/ and kernels/ ...');
} else {
  await buildDist();
  if (args.has('--tests')) await buildTests();
  if (!args.has('--quiet')) console.log(`build: done in ${Date.now() - t0} ms`);
}
