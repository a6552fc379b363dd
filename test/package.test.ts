// The package as others get it: build a private copy of the repository (node build.mjs),
// `npm pack` it, install the tarball into an empty folder, then run examples/node-example.mjs
// there (both entries, a matmul and its backward, checked against float64) and type-check
// examples/node-example.ts and examples/browser-example.ts against the installed .d.ts files.
//
// Offline by construction: `npm install --offline` with an empty cache, and every package the
// tarball depends on (the closure of its `dependencies`, read from this checkout's node_modules)
// declared in the folder's package.json as a `file:` link to the copy in node_modules. npm
// satisfies the tarball's version ranges from those links, so it asks no registry and needs no
// cache (--offline turns any attempt into an immediate ENOTCACHED instead of a network wait),
// and links copy nothing (webgpu's dawn.node binaries are 130 MB). Nothing under node_modules
// is written: links are not reified into, and --ignore-scripts runs no install scripts.
// Skips (with a message) only where npm itself cannot be run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import * as esbuild from 'esbuild';
import { repoRoot } from './helpers/paths.ts';

interface Ran {
  code: number;
  stdout: string;
  /** stdout then stderr, for messages. */
  out: string;
}

function run(cmd: string, args: string[], cwd: string, timeout = 180_000): Promise<Ran> {
  return new Promise((resolve) => {
    // npm_config_* from an enclosing `npm test` (e.g. npm_config_offline, a workspace's prefix)
    // must not steer the inner npm; the flags below say what it needs.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    execFile(cmd, args, { cwd, timeout, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
      resolve({ code: e ? (e.killed ? -1 : typeof e.code === 'number' ? e.code : -2) : 0, stdout, out: `${stdout}${stderr}` });
    });
  });
}

/** The command's stdout; fails the test with the end of its output unless it exited with 0. */
function must(r: Ran, what: string): string {
  assert.is(r.code, 0, `${what} failed (exit ${r.code}):\n${r.out.slice(-4000)}`);
  return r.stdout;
}

// Left out of the private copy: installed or built things, and local scratch.
const notCopied = new Set(['node_modules', '.git', 'dist', 'runs', 'scratch-local', join('bench', 'results')]);

/** The packages `name` needs at run time: it and its `dependencies`, transitively, as installed here. */
function dependencyClosure(names: string[]): string[] {
  const seen = new Set<string>();
  const todo = [...names];
  while (todo.length) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    const manifest = join(repoRoot, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) throw new Error(`package test: dependency '${name}' is not installed in node_modules (run npm install)`);
    seen.add(name);
    todo.push(...Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).dependencies ?? {}));
  }
  return [...seen].sort();
}

/** sum(tanh(A B)) and its gradient with respect to A in float64, from the f32-rounded inputs. */
function reference(M: number, K: number, N: number, a32: number[], b32: number[]): { loss: number; gradA: number[] } {
  const a = a32.map(Math.fround);
  const b = b32.map(Math.fround);
  let loss = 0;
  const gradA = new Array<number>(M * K).fill(0);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let z = 0;
      for (let k = 0; k < K; k++) z += a[i * K + k]! * b[k * N + j]!;
      const t = Math.tanh(z);
      loss += t;
      for (let k = 0; k < K; k++) gradA[i * K + k]! += (1 - t * t) * b[k * N + j]!;
    }
  return { loss, gradA };
}

test('npm pack: the tarball installs offline in an empty folder, runs its example, and its types check', async () => {
  const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  if (npm.error || npm.status !== 0) {
    console.log(`  skip: npm cannot be run here (${npm.error?.message ?? `exit ${npm.status}`}); the package test needs it`);
    return;
  }
  const t0 = Date.now();
  const lap: string[] = [];
  const mark = (what: string) => lap.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-package-'));
  try {
    // 1. A private build (dist/ of the checkout is shared and may be stale).
    const repo = join(dir, 'repo');
    cpSync(repoRoot, repo, {
      recursive: true,
      filter: (src) => {
        const rel = relative(repoRoot, src);
        return !(notCopied.has(rel) || rel.split(sep).some((part) => part.startsWith('.')));
      },
    });
    symlinkSync(join(repoRoot, 'node_modules'), join(repo, 'node_modules'), 'dir');
    must(await run(process.execPath, ['build.mjs', '--quiet'], repo), 'node build.mjs');
    mark('build');

    // 2. The tarball. npm pack lists what it packed; the package's `files` decide.
    const packed = JSON.parse(must(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], repo), 'npm pack'));
    const info = packed[0] as { filename: string; files: { path: string }[] };
    const paths = info.files.map((f) => f.path);
    for (const p of ['package.json', 'README.md', 'dist/cli.js', 'dist/index.js', 'dist/framework.js', 'dist/browser/ctvlm.js', 'dist/browser/framework.js', 'dist/types/index.d.ts', 'dist/types/browser.d.ts', 'dist/types/framework.d.ts', 'dist/web/index.html'])
      assert.ok(paths.includes(p), `the tarball lacks ${p}`);
    const strays = paths.filter((p) => /^(src|test|bench|kernels|scripts|node_modules)\//.test(p) || p.endsWith('.ts') && !p.endsWith('.d.ts'));
    assert.equal(strays, [], 'the tarball ships sources or tests');
    mark('pack');

    // 3. An empty folder, the tarball installed with its dependencies linked (see the top).
    const app = join(dir, 'app');
    mkdirSync(app);
    const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
    const dependencies: Record<string, string> = { [manifest.name]: `file:${join(dir, info.filename)}` };
    for (const name of dependencyClosure(Object.keys(manifest.dependencies ?? {}))) dependencies[name] = `file:${join(repoRoot, 'node_modules', name)}`;
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ctvlm-package-test', private: true, type: 'module', dependencies }, null, 2));
    const installArgs = ['install', '--offline', '--cache', join(dir, 'npm-cache'), '--ignore-scripts', '--install-links=false', '--no-audit', '--no-fund'];
    must(await run('npm', installArgs, app), 'npm install of the tarball');
    const installed = join(app, 'node_modules', manifest.name);
    assert.ok(existsSync(join(installed, 'dist/types/framework.d.ts')), 'installed package has its types');
    assert.not.ok(existsSync(join(installed, 'src')), 'installed package has no sources');
    cpSync(join(repoRoot, 'examples'), join(app, 'examples'), { recursive: true });
    mark('install');

    // 4. The examples: run the Node one, type-check the TypeScript ones, concurrently.
    const tsc = createRequire(join(repoRoot, 'package.json')).resolve('typescript/bin/tsc');
    const ex = join(app, 'examples');
    const [node, tsNode, tsBrowser, bin] = await Promise.all([
      run(process.execPath, ['node-example.mjs'], ex),
      run(process.execPath, [tsc, '-p', 'tsconfig.node.json'], ex),
      run(process.execPath, [tsc, '-p', 'tsconfig.browser.json'], ex),
      run(join(app, 'node_modules', '.bin', 'ctvlm'), ['--help'], app),
    ]);
    mark('examples');
    // A browser bundler consuming the installed package: the `browser` condition, and nothing
    // Node-only (dawn.node, node:*) pulled in; esbuild throws on what it cannot resolve.
    const web = await esbuild.build({
      entryPoints: [join(ex, 'browser-example.ts')],
      absWorkingDir: app,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      splitting: true,
      outdir: join(dir, 'web-bundle'),
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const webInputs = Object.keys(web.metafile.inputs);
    assert.ok(webInputs.some((p) => p.includes(`${manifest.name}/dist/browser/`)), `the browser bundle uses the browser build: ${webInputs.join(', ')}`);
    assert.not.ok(webInputs.some((p) => /(^|\/)(webgpu|node_modules\/webgpu)\//.test(p) || p.startsWith('node:')), `the browser bundle pulls in Node-only modules: ${webInputs.join(', ')}`);
    mark('browser bundle');
    must(tsNode, 'tsc -p examples/tsconfig.node.json (Node resolution of the installed types)');
    must(tsBrowser, 'tsc -p examples/tsconfig.browser.json (the browser condition of the installed types)');
    assert.match(must(bin, 'the ctvlm bin'), /usage: ctvlm/);
    // The JSON line; Dawn prints its own notes (limits it lowered) on stdout too.
    const line = must(node, 'node examples/node-example.mjs').split('\n').filter((l) => l.startsWith('{')).pop();
    assert.ok(line, `no JSON line from the example:\n${node.out}`);
    const r = JSON.parse(line!) as { M: number; K: number; N: number; a: number[]; b: number[]; loss: number; gradA: number[]; sharedTensorClass: boolean; labels: number };
    assert.ok(r.sharedTensorClass, "a tensor from 'ct-vlm-webgpu/framework' is a Tensor of 'ct-vlm-webgpu' (one framework copy)");
    assert.is(r.labels, 18);
    // Expected error: f32 rounding in 5-term dot products and the tanh kernel's few ulp, about
    // 2e-7 on lavapipe; 1e-5 (relative, floor 1) leaves 50x for other adapters, while a wrong
    // op, transpose or gradient rule is off by 1e-2 or more.
    const ref = reference(r.M, r.K, r.N, r.a, r.b);
    const close = (got: number, want: number) => Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want));
    assert.ok(close(r.loss, ref.loss), `loss ${r.loss} vs float64 ${ref.loss}`);
    assert.is(r.gradA.length, ref.gradA.length);
    r.gradA.forEach((g, i) => assert.ok(close(g, ref.gradA[i]!), `dloss/dA[${i}] ${g} vs float64 ${ref.gradA[i]}`));
    console.log(`  package: ${info.filename}, ${paths.length} files; ${lap.join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
