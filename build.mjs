// Builds everything with esbuild. WGSL kernels are imported as text, so the Node bundle,
// the browser bundle and the test bundles all carry the same kernel strings.
//
//   node build.mjs            dist/ (CLI, Node library, browser library, their type declarations, web demo)
//   node build.mjs --tests    also .build/ (tests and benchmarks, for `npm test` / `npm run bench`)
//   node build.mjs --watch    rebuild dist/ on change
import * as esbuild from 'esbuild';
import { readdirSync, statSync, mkdirSync, copyFileSync, existsSync, rmSync, readFileSync, writeFileSync, renameSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

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

// A module that throws when loaded, in place of a Node-only one: a browser never loads it, and
// code that does (the browser build run under Node) gets a message naming the module.
const nodeOnlyStubs = {
  name: 'node-only-stubs',
  setup(build) {
    build.onResolve({ filter: /^(webgpu|node:.*)$/ }, (args) => ({ path: args.path, namespace: 'node-only' }));
    build.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`'${args.path}' is Node-only: the browser build of ct-vlm-webgpu cannot load it`)});\nexport {};\n`,
      loader: 'js',
    }));
  },
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
  // Chunk names carry content hashes: without this, chunks of earlier builds would pile up
  // (and be packed by `npm pack`).
  for (const dir of ['dist/chunks', 'dist/browser/chunks']) rmSync(join(root, dir), { recursive: true, force: true });
  const builds = [
    esbuild.build({
      ...nodeOptions,
      // synth-worker: the worker threads of writeSyntheticDataset (src/data/synthetic/node.ts).
      entryPoints: { cli: join(root, 'src/cli.ts'), 'synth-worker': join(root, 'src/data/synthetic/worker.ts') },
      outdir: join(root, 'dist'),
      banner: { js: '' },
    }),
    // The library entries share one copy of the framework (dist/chunks/): a program that
    // imports both 'ct-vlm-webgpu' and 'ct-vlm-webgpu/framework' gets one Tensor class, one
    // autograd tape and one scope stack, so tensors pass from one to the other.
    esbuild.build({
      ...nodeOptions,
      entryPoints: { index: join(root, 'src/index.ts'), framework: join(root, 'src/framework.ts') },
      outdir: join(root, 'dist'),
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
    }),
    // The browser library (package export condition `browser`): `webgpu` (dawn.node) and
    // node:* are imported lazily and on Node only, and become stubs here rather than bare
    // imports, which a consumer's bundler (Vite, esbuild, webpack) would try to bundle for the
    // browser and fail on.
    esbuild.build({
      ...common,
      platform: 'browser',
      plugins: [nodeOnlyStubs],
      entryPoints: { ctvlm: join(root, 'src/browser.ts'), framework: join(root, 'src/framework.ts') },
      outdir: join(root, 'dist/browser'),
      splitting: true, // one framework for both entries, as in Node
      chunkNames: 'chunks/[name]-[hash]',
    }),
  ];
  if (existsSync(join(root, 'web/main.ts'))) {
    builds.push(
      esbuild.build({
        ...common,
        platform: 'browser',
        external: ['webgpu', 'node:*'],
        // playground: the kernel bench's sections on the page's adapter (web/playground.ts).
        entryPoints: { main: join(root, 'web/main.ts'), playground: join(root, 'web/playground.ts') },
        outdir: join(root, 'dist/web'),
      }),
    );
  }
  builds.push(buildTypes());
  await Promise.all(builds);
  if (existsSync(join(root, 'web/index.html'))) {
    mkdirSync(join(root, 'dist/web'), { recursive: true });
    copyFileSync(join(root, 'web/index.html'), join(root, 'dist/web/index.html'));
    copyFileSync(join(root, 'web/playground.html'), join(root, 'dist/web/playground.html'));
  }
}

// The library entries' type declarations (package.json `types` and `exports`), written by tsc
// from tsconfig.types.json into dist/types/. tsc runs in its own process beside esbuild with
// `noCheck` (emit only, about 4 s of CPU; `npm test` and `npm run typecheck` check the types),
// and is skipped when nothing it reads changed since dist/types/ was written: editing a file
// changes its mtime, adding, removing or renaming one its folder's.
const typesInputs = ['src', 'kernels.d.ts', 'tsconfig.json', 'tsconfig.types.json', 'build.mjs', 'node_modules/typescript/package.json'];

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const name of readdirSync(path)) t = Math.max(t, newestMtime(join(path, name)));
  return t;
}

async function buildTypes() {
  const out = join(root, 'dist/types');
  const done = join(out, 'index.d.ts');
  if (existsSync(done) && statSync(done).mtimeMs > Math.max(...typesInputs.map((p) => newestMtime(join(root, p))))) return;
  // Written to a side folder and renamed at the end, so an interrupted build leaves no
  // half-processed dist/types/ that the check above would take as done.
  const tmp = join(root, 'dist/.types-tmp');
  rmSync(tmp, { recursive: true, force: true });
  const started = new Date();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const { code, text } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', join(root, 'tsconfig.types.json'), '--outDir', tmp], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
  if (code !== 0) throw new Error(`build: tsc -p tsconfig.types.json failed (exit ${code}):\n${text.trimEnd()}`);
  // The sources import each other as './x.ts'; published declarations say './x.js', which
  // every TypeScript version and moduleResolution (node16, nodenext, bundler) maps to x.d.ts.
  // The entries name WebGPU types (GPUDevice, GPUBuffer, ...): globals from @webgpu/types,
  // which tsconfig.json's `types` brings in here but a consumer's build would not.
  const entries = new Set(['index.d.ts', 'browser.d.ts', 'framework.d.ts']);
  for (const file of walk(tmp, /\.d\.ts$/)) {
    let text = readFileSync(file, 'utf8').replace(/((?:from |import\()['"]\.{1,2}\/[^'"]*)\.ts(['"])/g, '$1.js$2');
    if (entries.has(relative(tmp, file))) text = `/// <reference types="@webgpu/types" />\n${text}`;
    writeFileSync(file, text);
  }
  // Dated from the start, so a source edited while tsc ran is newer and rebuilds next time.
  utimesSync(join(tmp, 'index.d.ts'), started, started);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
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
