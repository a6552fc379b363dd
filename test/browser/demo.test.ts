// The browser demo end to end in headless Chromium: a tiny run trained here, a synthetic CT,
// the page served by `ctvlm web`'s server; the page localizes a report sentence on its own
// WebGPU device, and its answer is compared with the same computation in Node.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { testGpu } from '../helpers/gpu.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import { train } from '../../src/train/trainer.ts';
import { startDemoServer } from '../../src/cli/web.ts';
import { openWeightsFolder } from '../../src/model/folder.ts';
import { readNiftiFile } from '../../src/data/io/node.ts';
import { prepareRadfinder } from '../../src/data/radfinder-prep.ts';
import { binMm } from '../../src/model/config.ts';
import { embedScan, embedTexts, localizeSnippet } from '../../src/model/tasks.ts';
import type { LocalizeResult } from '../../web/main.ts';

const t = suite('browser demo');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

t('a sentence localized in the page matches Node on the same run and CT', async () => {
  if (!existsSync(chromium)) {
    console.log(`  skip: no Chromium at ${chromium} (npm run setup installs Debian's chromium as root; or set CHROMIUM)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-demo-'));
  const gpu = await testGpu();
  try {
    await writeSyntheticDataset({ out: join(dir, 'data'), n: 12, seed: 9, size: [64, 64], slices: [24, 32], gzipLevel: 1 });
    const cfg = { ...preset('tiny'), steps: 4 };
    await train(gpu, { data: join(dir, 'data'), out: join(dir, 'run'), config: cfg });
    const ct = join(dir, 'data', 'volumes', readFileSync(join(dir, 'data', 'manifest.jsonl'), 'utf8').split('\n')[0].match(/"volume":"volumes\/([^"]+)"/)![1]);
    const sentence = 'Small pleural effusion at the left lung base.';

    // Node's answer, from the run's latest checkpoint as a weights folder.
    const run = join(dir, 'run');
    const w = await openWeightsFolder(gpu, run);
    const c = w.config;
    const prepared = prepareRadfinder(readNiftiFile(ct), { pixdim: c.preprocessing.pixdim, window: c.vision.window, patchDepth: c.vision.patch[2], huMin: c.preprocessing.huMin, huMax: c.preprocessing.huMax, dtype: c.preprocessing.dtype });
    const scan = await embedScan(w.model, prepared.data, prepared.shape);
    const [snippet] = await embedTexts(w.model, w.tokenizer!, [sentence], w.maxTextTokens, { which: 'snippet' });
    const node = localizeSnippet(scan.depth.normalized, scan.depth.valid, snippet.snippet.normalized, c.localization.tau, binMm(c));
    w.model.dispose();

    const { server, url } = await startDemoServer({ run, ct, port: 0, webDir: join(repoRoot, 'dist/web') });
    const { chromium: pw } = await import('playwright-core');
    const profile = mkdtempSync(join(tmpdir(), 'ctvlm-chromium-'));
    const browser = await pw.launchPersistentContext(profile, {
      executablePath: chromium,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${url}&q=${encodeURIComponent(sentence)}`);
      await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 120_000 });
      const status = await page.textContent('#status');
      assert.equal(errors, [], `page errors (status: ${status})`);
      assert.is(await page.evaluate(() => document.body.dataset.state), 'localized', `not localized; status: ${status}`);
      const r = (await page.evaluate('window.lastResult')) as LocalizeResult;
      assert.match((await page.textContent('#result')) ?? '', /Most likely depth: bin \d+/);
      if (process.env.CTVLM_SCREENSHOT) await page.screenshot({ path: process.env.CTVLM_SCREENSHOT });

      // The same answer as in Node (same code, different WebGPU drivers and f32 rounding).
      assert.is(r.probabilities.length, node.probabilities.length);
      r.probabilities.forEach((p, b) => assert.ok(Math.abs(p - node.probabilities[b]) < 1e-4, `bin ${b}: browser ${p} vs node ${node.probabilities[b]}`));
      assert.is(r.bin, node.bin);
      assert.ok(Math.abs(r.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    } finally {
      await browser.close();
      server.close();
      rmSync(profile, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
