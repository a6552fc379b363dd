// The code base's structure, checked: no import cycle and no import against the layer order
// (scripts/check-imports.mjs --strict), the framework entry free of the CT application, and
// no source file over 500 lines outside the data format parsers (issue 9's targets).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as esbuild from 'esbuild';

const root = new URL('../', import.meta.url).pathname.replace(/\/\.build\/$/, '/').replace(/\/\.build-only\/[^/]+\/$/, '/');

test('imports: no cycles, nothing against the layer order (scripts/check-imports.mjs --strict)', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/check-imports.mjs'), '--strict'], { encoding: 'utf8' });
  assert.is(r.status, 0, `check-imports --strict failed:\n${r.stdout}${r.stderr}`);
});

test('src/framework.ts bundles without the CT application (data, model, losses, train, eval, cli)', async () => {
  const out = await esbuild.build({
    entryPoints: [join(root, 'src/framework.ts')],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'browser',
    external: ['webgpu', 'node:*'],
    loader: { '.wgsl': 'text' },
    logLevel: 'silent',
  });
  const inputs = Object.keys(out.metafile!.inputs).map((p) => relative(root, join(process.cwd(), p)).replaceAll('\\', '/'));
  const app = inputs.filter((p) => /(^|\/)src\/(data|model|losses|train|eval|cli)\/|src\/(cli|browser|index|app-errors)\.ts$/.test(p));
  assert.equal(app, [], `the framework bundle pulls in: ${app.join(', ')}`);
  assert.ok(inputs.some((p) => p.endsWith('src/ops/matmul.ts')), 'sanity: the bundle has the ops');
});

test('no source file over 500 lines (src, kernels, bench, scripts) except the DICOM and NIfTI parsers', () => {
  const allowed = new Set(['src/data/dicom.ts', 'src/data/nifti.ts']);
  const long: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      const rel = `${dir}/${name}`;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (/\.(ts|wgsl|mjs)$/.test(name) && !allowed.has(rel)) {
        const n = readFileSync(join(root, rel), 'utf8').split('\n').length;
        if (n > 500) long.push(`${rel} (${n})`);
      }
    }
  };
  for (const d of ['src', 'kernels', 'bench', 'scripts']) walk(d);
  assert.equal(long, [], `files over 500 lines: ${long.join(', ')}`);
});

test.run();
