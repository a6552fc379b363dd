// The same kernels in a real browser: Debian's Chromium, headless, WebGPU on its
// SwiftShader adapter, driven by playwright-core. The page (test/browser/page.ts) runs
// matmul, softmax, layerNorm, a gradient and a short training run on navigator.gpu; the
// results are compared here with the float64 references.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, extname } from 'node:path';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { repoRoot } from '../helpers/paths.ts';
import { assertClose } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import type { BrowserChecks } from './page.ts';

const t = suite('browser');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
// SwiftShader's f32 math is not bit-identical to lavapipe's; the bound is the same kind
// of f32-vs-float64 tolerance as the Node tests (test/helpers/check.ts), a little wider.
const TOL = { rtol: 1e-4, atol: 1e-5 };

function serve(dir: string): Promise<Server> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const path = join(dir, (req.url ?? '/').split('?')[0].replace(/^\/$/, '/index.html'));
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

t('kernels, gradients and training agree with float64 in headless Chromium', async () => {
  if (!existsSync(chromium)) {
    console.log(`  skip: no Chromium at ${chromium} (npm run setup installs Debian's chromium as root; or set CHROMIUM)`);
    return;
  }
  const { chromium: pw } = await import('playwright-core');
  const server = await serve(join(repoRoot, '.build/browser'));
  const profile = mkdtempSync(join(tmpdir(), 'ctvlm-chromium-'));
  const browser = await pw.launchPersistentContext(profile, {
    executablePath: chromium,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-features=Vulkan'],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`);
    await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 60_000 });
    const r = (await page.evaluate('runChecks()')) as BrowserChecks;
    console.log(`  browser device: ${r.device}; matmul kernel: ${r.matmulVariant}`);
    for (const m of r.matmul)
      assertClose(m.c, ref.matmul(ref.f64(m.a), ref.f64(m.b), m.M, m.K, m.N), TOL, `browser matmul ${m.M}x${m.K}x${m.N}`);
    assertClose(r.softmax.y, ref.softmax(ref.f64(r.softmax.x), 10), TOL, 'browser softmax');
    assertClose(r.layerNorm.y, ref.layerNorm(ref.f64(r.layerNorm.x), new Float64Array(8).fill(1), new Float64Array(8), 8, 1e-5), { rtol: 2e-4, atol: 2e-5 }, 'browser layerNorm');
    assertClose(r.grad.g, r.grad.x.map((x) => Math.tanh(x) + x * (1 - Math.tanh(x) ** 2)), TOL, 'browser gradient');
    assert.ok(r.lossLast < r.lossFirst / 5, `browser training: loss ${r.lossFirst} -> ${r.lossLast}`);
    assert.equal(errors, [], 'no page errors');
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

t.run();
