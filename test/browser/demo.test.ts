// The browser demo end to end in headless Chromium (test/browser/viewer-fixture.ts builds the
// run, the CTs and Node's answers): the page served by `ctvlm web`'s server loads the weights and
// one CT from the server, a DICOM folder and a .nii.gz through its pickers; on its own WebGPU
// device (in the page's worker) it localizes a typed sentence, scores the 18 findings, ranks the
// three CTs for a report and localizes the report's referenced sentences, and each answer is
// compared with Node's for the same weights and inputs. Bad inputs give a message and leave
// what was loaded; the viewer's orientation, strip and window controls are checked; the page's
// screenshot is saved (to $CTVLM_SCREENSHOT when set: docs/demo.png is made this way).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { testGpu } from '../helpers/gpu.ts';
import { startDemoServer } from '../../src/cli/web.ts';
import { encodeNifti } from '../../src/data/nifti.ts';
import { createVolume } from '../../src/data/volume.ts';
import { binZRange, canonicalOf, DepthAxis } from '../../web/geometry.ts';
import type { DemoState } from '../../web/main.ts';
import { buildFixture, truncated, type Expected } from './viewer-fixture.ts';

const t = suite('browser demo');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The page's answers come from the same code on another WebGPU implementation (SwiftShader
// in Chromium, lavapipe in Node): f32 sums in another order. 1e-4 on probabilities, scores and
// cosines in [-1, 1] is the f32-versus-f32 bound the kernel tests use, a little wider.
const TOL = 1e-4;
const webDir = process.env.CTVLM_WEB_DIR ?? join(repoRoot, 'dist/web');

/** The page's argmax is Node's, or a bin whose Node probability is within 2 TOL of the top (an f32 tie). */
const sameBin = (bin: number, nodeBin: number, nodeProbs: number[], what: string) =>
  assert.ok(bin === nodeBin || Math.abs(nodeProbs[bin] - nodeProbs[nodeBin]) < 2 * TOL, `${what}: browser bin ${bin}, node bin ${nodeBin}`);

const close = (a: number[], b: number[], what: string) => {
  assert.is(a.length, b.length, `${what}: length`);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < TOL, `${what}[${i}]: browser ${x} vs node ${b[i]}`));
};

t('the viewer and the three tasks in the page match Node on the same run and CTs', async () => {
  if (!existsSync(chromium)) {
    console.log(`  skip: no Chromium at ${chromium} (npm run setup installs Debian's chromium as root; or set CHROMIUM)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-demo-'));
  const gpu = await testGpu();
  let x: Expected;
  try {
    x = await buildFixture(gpu, dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const main = x.cts[x.main];
  const [dicom, picked] = [1, 2].map((k) => x.cts[(x.main + k) % 3]);
  const { server, url } = await startDemoServer({ run: x.run, ct: main.path, manifest: x.manifest, port: 0, webDir });
  const { chromium: pw } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'ctvlm-chromium-'));
  const browser = await pw.launchPersistentContext(profile, {
    executablePath: chromium,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const offsite: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('request', (r) => !r.url().startsWith(url.split('?')[0]) && !r.url().startsWith('data:') && offsite.push(r.url()));
    const demo = () => page.evaluate('window.demo()') as Promise<DemoState>;
    // Polled from here: the page's Content-Security-Policy forbids the string evaluation
    // Playwright's waitForFunction would do in it.
    const settled = async (pred: (d: DemoState) => boolean = () => true, timeout = 240_000): Promise<DemoState> => {
      const end = Date.now() + timeout;
      for (;;) {
        const d = await demo();
        if (d.busy === 0 && pred(d)) return d;
        if (Date.now() > end) throw new Error(`timed out; page state: ${JSON.stringify({ ...d, scores: undefined, report: undefined })}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };

    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 240_000 });
    await settled();
    let d = await demo();
    assert.equal(errors, [], `page errors (messages: ${JSON.stringify(d.messages)})`);
    assert.ok(d.device, `WebGPU in the worker: ${JSON.stringify(d.messages)}`);
    assert.ok(d.model, 'the model from the URL');
    assert.match((await page.textContent('#modelInfo')) ?? '', /^[^/\s]+\/ckpt-\d+: /, 'named as its folder (run/checkpoint), not by the URL');
    assert.equal(d.scans.map((s) => [s.name, s.state, s.series]), [[main.name, 'ready', true]], 'the CT from the URL, with the manifest\'s slice metadata');
    assert.equal(d.scans[0].shape, [...main.volume.shape], 'shown at its own resolution');

    // A DICOM folder through the folder picker, a .nii.gz through the file picker.
    await page.setInputFiles('#ctFolder', dicom.path);
    await page.setInputFiles('#ctFiles', picked.path);
    await settled((d) => d.scans.length === 3 && d.scans.every((s) => s.state === 'ready') && d.scores !== null);
    d = await demo();
    assert.equal(d.scans.map((s) => [s.name, s.series]), [[main.name, true], [dicom.name, true], [picked.name, true]]);
    assert.is(d.active, picked.name, 'the last CT loaded is shown');
    assert.is(d.viewer.stripBins, picked.prepared.bins, "once embedded, the strip shows the model's crop");

    // Bad inputs: a message each, nothing loaded lost.
    const bad = async (input: string, file: { name: string; mimeType: string; buffer: Buffer }, message: RegExp) => {
      const before = (await demo()).messages.length;
      await page.setInputFiles(input, file);
      await settled((d) => d.messages.length > before);
      const after = await demo();
      const last = after.messages[after.messages.length - 1];
      assert.ok(last.error && message.test(last.text), `${file.name}: message '${last.text}' should match ${message}`);
      assert.not.ok(last.text.startsWith(`${file.name}: ${file.name}:`), `${file.name}: named once: '${last.text}'`);
      assert.is(after.scans.length, 3, `${file.name}: the loaded CTs stay`);
      assert.ok(after.model, `${file.name}: the model stays`);
    };
    await bad('#ctFiles', { name: 'cut.nii.gz', mimeType: 'application/gzip', buffer: truncated(main.path) }, /cut\.nii\.gz.*(truncated|ends|unexpected|corrupt)/i);
    await bad('#ctFiles', { name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]) }, /photo\.png.*a PNG image/);
    await bad('#ctFiles', { name: 'slice.nii', mimeType: 'application/octet-stream', buffer: Buffer.from(encodeNifti(createVolume([40, 30, 1]))) }, /slice\.nii.*2D image/);
    const huge = Buffer.from(encodeNifti(createVolume([8, 8, 8])));
    for (const k of [1, 2, 3]) huge.writeInt16LE(2048, 40 + 2 * k); // dim[1..3]: a header that claims 2^33 voxels
    await bad('#ctFiles', { name: 'huge.nii', mimeType: 'application/octet-stream', buffer: huge }, /huge\.nii.*2048x2048x2048 voxels.*more than this page holds/);
    await bad('#weightsFiles', { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from('{}') }, /model\.safetensors.*missing/);

    // The main CT, picked in the list: its zero-shot scores.
    await page.click(`#scans li:nth-child(1)`);
    await settled((d) => d.active === main.name && d.scores !== null);
    d = await demo();
    close(d.scores!.map((s) => s.score), x.scores.map((s) => s.score), 'zero-shot scores');
    assert.equal(d.scores!.map((s) => s.label), x.scores.map((s) => s.label));
    const shown = await page.$$eval('#scores .label', (els) => els.map((e) => e.textContent));
    assert.equal(shown, [...x.scores].sort((a, b) => b.score - a.score).map((s) => s.label), 'the bar list is sorted by score');

    // A typed sentence: its localization; the axial view moves to the predicted bin.
    await page.fill('#sentence', x.sentence);
    await page.click('#localize');
    await settled((d) => d.localization?.sentence === x.sentence);
    d = await demo();
    close(d.localization!.probabilities, x.localization.probabilities, 'localization probabilities');
    sameBin(d.localization!.bin, x.localization.bin, x.localization.probabilities, 'localization');
    assert.match((await page.textContent('#result')) ?? '', /Most likely depth: bin \d+/);
    assert.is(await page.textContent('#result .answered q'), x.sentence.length > 90 ? `${x.sentence.slice(0, 87)}...` : x.sentence, 'the answer names its sentence');
    const vol = main.volume;
    const depth = new DepthAxis(vol, canonicalOf(vol));
    const geometry = { affine: Array.from(main.prepared.affine), shape: main.prepared.shape, bins: main.prepared.bins, patchDepth: x.patchDepth, binMm: 0 };
    const sliceOfBin = (b: number) => depth.sliceOfZ(binZRange(geometry, b).reduce((a, z) => a + z / 2, 0));
    assert.is(d.viewer.cursor[2], sliceOfBin(d.localization!.bin), 'the axial view at the predicted bin');
    assert.is(d.viewer.band, d.localization!.bin, 'the band at the predicted bin');

    // The viewer: orientation letters, the strip (a click on a bin's height, in world
    // coordinates, moves the axial view there), the keys and the window presets.
    for (const [plane, marks] of [['axial', 'RLAP'], ['coronal', 'RLSI'], ['sagittal', 'APSI']] as const) {
      const m = await page.$$eval(`#view-${plane} .mark`, (els) => els.map((e) => e.textContent).join(''));
      assert.is(m, marks, `${plane} orientation letters (left, right, top, bottom)`);
    }
    const other = (d.localization!.bin + Math.floor(main.prepared.bins / 2)) % main.prepared.bins;
    const box = (await page.locator('#view-coronal canvas.ovl').boundingBox())!;
    const c = canonicalOf(vol);
    const [lo, hi] = binZRange(geometry, other);
    const yOf = (z: number) => ((c.n[2] - 0.5 - depth.sOfZ(z)) * box.height) / c.n[2];
    await page.mouse.click(box.x + box.width - 8, box.y + (yOf(lo) + yOf(hi)) / 2);
    await settled((d) => d.viewer.cursor[2] === sliceOfBin(other), 10_000);
    await page.hover('#view-axial canvas.ovl');
    await page.keyboard.press('ArrowUp');
    await settled((d) => d.viewer.cursor[2] === Math.min(c.n[2] - 1, sliceOfBin(other) + 1), 10_000);
    await page.click('[data-preset=lung]');
    assert.equal((await demo()).viewer.window, { width: 1500, level: -600 });

    // A sentence with no word the tokenizer knows: a message, the last answer kept.
    if (!x.unknownIsUnk) console.log(`  note: the tokenizer knows a piece of ${x.unknownWords}; the no-known-word message is not checked`);
    else {
      const before = (await demo()).messages.length;
      await page.fill('#sentence', x.unknownWords);
      await page.click('#localize');
      await settled((d) => d.messages.length > before);
      d = await demo();
      assert.match(d.messages[d.messages.length - 1].text, /vocabulary/);
      assert.is(d.localization!.sentence, x.sentence);
    }
    // Only punctuation: refused too (it tokenizes, but says nothing).
    const before = (await demo()).messages.length;
    await page.fill('#sentence', '?!... ;; -- ,,,');
    await page.click('#localize');
    await settled((d) => d.messages.length > before);
    d = await demo();
    assert.match(d.messages[d.messages.length - 1].text, /^localize: the text box has no word, only punctuation or symbols/);
    assert.is(d.localization!.sentence, x.sentence, 'the last answer kept');

    // The main CT's report: the three CTs ranked for it, and its referenced sentences.
    await page.fill('#sentence', main.entry.report);
    await page.click('#retrieve');
    await settled((d) => d.ranking !== null);
    d = await demo();
    const ranks = new Map(d.ranking!.map((r, rank) => [r.name, { ...r, rank }]));
    assert.equal([...ranks.keys()].sort(), x.cts.map((ct) => ct.name).sort(), 'every CT ranked');
    close(x.cts.map((ct) => ranks.get(ct.name)!.cosine), x.cosines, 'retrieval cosines');
    assert.ok(d.ranking!.every((r, i) => i === 0 || d.ranking![i - 1].cosine >= r.cosine), 'ranked by cosine');
    // The order is Node's wherever Node's cosines differ by more than the two sides' f32
    // differences could swap (2 TOL); closer pairs may come in either order.
    console.log(`  retrieval cosines (node): ${x.cts.map((ct, i) => `${ct.name} ${x.cosines[i].toFixed(5)}`).join(', ')}`);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++)
        if (x.cosines[i] - x.cosines[j] > 2 * TOL) assert.ok(ranks.get(x.cts[i].name)!.rank < ranks.get(x.cts[j].name)!.rank, `${x.cts[i].name} ranks above ${x.cts[j].name}`);
    await page.click('#report');
    await settled((d) => d.report !== null);
    d = await demo();
    assert.equal(d.report!.map((s) => s.sentence), x.snippets.map((s) => s.sentence), 'mined sentences');
    d.report!.forEach((s, i) => {
      close(s.predicted.probabilities, x.snippets[i].probabilities, `snippet ${i} probabilities`);
      sameBin(s.predicted.bin, x.snippets[i].bin, x.snippets[i].probabilities, `snippet ${i}`);
      assert.is('bin' in s.referenced ? s.referenced.bin : null, x.snippets[i].referencedBin, `snippet ${i}: the referenced slice's bin`);
    });
    assert.ok(x.snippets.some((s) => s.referencedBin !== null), 'sanity: some reference is placed through the manifest');
    assert.is(await page.locator('.snippet .thumbs canvas').count(), x.snippets.reduce((n, s) => n + (s.referencedBin !== null ? 2 : 1), 0), 'referenced and predicted slices side by side');

    assert.equal(errors, [], 'no page errors');
    assert.equal(offsite, [], 'every request stays on the demo server');
    // An 800-pixel window: one column, nothing wider than the window.
    await page.setViewportSize({ width: 800, height: 800 });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 800, 'no horizontal scrolling at 800 px');
    // The screenshot at a smaller size (the README shows it), the lung window, the first
    // referenced sentence picked.
    await page.setViewportSize({ width: 1180, height: 800 });
    await page.click('.snippet');
    await new Promise((r) => setTimeout(r, 500));
    const shot = process.env.CTVLM_SCREENSHOT ?? join(dir, 'demo.png');
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 10_000, 'a screenshot');
    await page.close();

    // Without WebGPU (Chromium without --enable-unsafe-webgpu offers no adapter here): a message
    // naming it, and the viewer still shows the CT.
    const plain = await pw.launchPersistentContext(mkdtempSync(join(profile, 'plain-')), { executablePath: chromium, headless: true, args: ['--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--no-first-run', '--disable-background-networking'] });
    try {
      const p = await plain.newPage();
      await p.goto(url);
      await p.waitForFunction(() => document.body.dataset.ready === 'true', undefined, { timeout: 120_000 });
      const s = (await p.evaluate('window.demo()')) as DemoState;
      if (s.device) console.log('  note: this Chromium offers WebGPU without the flag; the no-WebGPU message is not checked');
      else {
        assert.match(s.messages[0].text, /^no WebGPU adapter: this browser does not offer WebGPU .*The viewer works without it/);
        assert.not.match(s.messages[0].text, /npm|Node|Vulkan/, "a browser's message gives a browser's fix");
        assert.equal(s.scans.map((c) => [c.name, c.state]), [[main.name, 'viewing']], 'the CT is shown without the model');
        assert.is(s.model, null);
        assert.ok(await p.isDisabled('#localize'));
      }
    } finally {
      await plain.close();
    }
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
