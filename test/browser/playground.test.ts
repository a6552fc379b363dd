// The kernel playground (web/playground.html) in headless Chromium on its SwiftShader WebGPU
// adapter, served by `ctvlm web`'s server: a small subset of the bench (the roofline and the
// elementwise section, --quick sizes, 2 samples a case) runs in the page; the table, the
// adapter line, the roof fractions and the downloaded JSON report are checked. No timing is
// asserted beyond "a rate was measured": the numbers are SwiftShader's on a shared machine.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { repoRoot } from '../helpers/paths.ts';
import { startDemoServer } from '../../src/cli/web.ts';
import type { Row } from '../../bench/lib/row.ts';
import type { PlaygroundState } from '../../web/playground.ts';

const t = suite('kernel playground');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

t('the playground runs bench sections in the page and offers the JSON report', async () => {
  if (!existsSync(chromium)) {
    console.log(`  skip: no Chromium at ${chromium} (npm run setup installs Debian's chromium as root; or set CHROMIUM)`);
    return;
  }
  // Built here with build.mjs's options for dist/web, so the test does not depend on (or write) dist/.
  const webDir = mkdtempSync(join(tmpdir(), 'ctvlm-playground-'));
  await esbuild.build({
    bundle: true, format: 'esm', loader: { '.wgsl': 'text' }, logLevel: 'warning', target: 'es2022',
    platform: 'browser', external: ['webgpu', 'node:*'],
    entryPoints: { playground: join(repoRoot, 'web/playground.ts') }, outdir: webDir,
  });
  copyFileSync(join(repoRoot, 'web/playground.html'), join(webDir, 'playground.html'));
  const { server, url } = await startDemoServer({ port: 0, webDir });
  const { chromium: pw } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'ctvlm-chromium-'));
  const browser = await pw.launchPersistentContext(profile, {
    executablePath: chromium,
    headless: true,
    acceptDownloads: true,
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${url.split('?')[0]}playground.html?sections=roofline,elementwise&iters=2&run=1`);
    // Polled from here: the page's Content-Security-Policy forbids waitForFunction's string evaluation.
    const end = Date.now() + 300_000;
    let s: PlaygroundState;
    for (;;) {
      s = (await page.evaluate('window.playground()')) as PlaygroundState;
      if (s.done) break;
      if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify({ ...s, report: undefined })}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.is(s.error, null, `run error: ${s.error}`);
    assert.equal(errors, [], 'page errors');
    assert.match(s.adapter, /\[features: /, 'adapter line (Gpu.describe())');
    assert.match(await page.textContent('#adapter') ?? '', s.adapter);
    const table = (await page.textContent('#table')) ?? '';
    assert.match(table, /^roofline \(/, 'the roofline line above the table');
    if (process.env.CTVLM_PLAYGROUND_PRINT) console.log(`${s.adapter}\n${table}`);
    assert.match(table, /f32 FMA peak/);
    assert.match(table, /load rate \(per-lane vec4\)/);
    assert.match(table, /of roof/);
    assert.match(table, /\d GB\/s/);
    assert.match(table, /\d GFLOP\/s/);

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.match(dl.suggestedFilename(), /^playground-.*\.json$/);
    const report = JSON.parse(readFileSync((await dl.path())!, 'utf8')) as { rows: Row[]; device: string; options: { only: string[]; quick: boolean } };
    assert.is(report.device, s.adapter);
    assert.equal(report.options.only, ['roofline', 'elementwise']);
    assert.ok(report.options.quick);
    const rows = report.rows;
    assert.ok(rows.length >= 9 + 3, `${rows.length} rows: 9 roofline, at least 3 elementwise`);
    for (const r of rows) {
      assert.is(r.error, null, `${r.op} ${r.shape}: ${r.error}`);
      for (const k of ['section', 'op', 'shape', 'variant', 'metric', 'work', 'ours', 'rate', 'kernels', 'roof', 'roofFraction', 'check'] as const) assert.ok(k in r, `row field ${k}`);
      assert.ok(r.rate! > 0, `${r.op} ${r.shape}: rate ${r.rate}`);
    }
    assert.ok(rows.some((r) => r.metric === 'GFLOP/s') && rows.some((r) => r.metric === 'GB/s'));
    // Kernel rows get a fraction of their roof (the best roofline row is 1); copy commands none.
    for (const r of rows.filter((r) => r.section === 'roofline')) assert.ok(r.roofFraction! > 0 && r.roofFraction! <= 1, `${r.op} ${r.variant}: roofFraction ${r.roofFraction}`);
    assert.ok(rows.filter((r) => r.section === 'elementwise' && r.variant !== 'command').every((r) => r.roof === 'copy' && r.roofFraction! > 0));
    assert.ok(rows.filter((r) => r.variant === 'command').every((r) => r.roof === null && r.roofFraction === null));
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(webDir, { recursive: true, force: true });
  }
});

t.run();
