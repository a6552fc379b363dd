// The same kernels in a real browser: Debian's Chromium, headless, WebGPU on its
// SwiftShader adapter, driven by playwright-core. The page (test/browser/page.ts) runs
// matmul, softmax, layerNorm, a gradient and a short training run on navigator.gpu, then
// every matmul variant (subgroup with and without B in uniform bindings, tiled, tiled-wg,
// f16) and every attention variant (subgroup, plain, tiled; forward and the gradients of q,
// k and v) that the adapter runs, softmax, layerNorm, their input gradients, sum and max in both
// row layouts (one invocation, one workgroup per row), permute and expand in each layout of the strided copy
// (runs, elements, tiles); the results are compared here with the float64
// references: f32 matmuls and attention at TOL, f16 within matmulErrorBound (its operands'
// rounding), gradients against central differences of the float64 attention at GRAD; and the
// fused epilogues (mlpGelu with LayerScale and residual, output and gradients) bit for bit
// against the separate ops.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, extname } from 'node:path';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { repoRoot } from '../helpers/paths.ts';
import { GRAD, assertClose } from '../helpers/check.ts';
import { matmulErrorBound } from '../../src/launch/matmul.ts';
import * as ref from '../reference/cpu.ts';
import type { BrowserChecks, VariantAttention, VariantChecks, VariantMatmul } from './page.ts';

const t = suite('browser');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
// SwiftShader's f32 math is not bit-identical to lavapipe's; the bound is the same kind
// of f32-vs-float64 tolerance as the Node tests (test/helpers/check.ts), a little wider.
const TOL = { rtol: 1e-4, atol: 1e-5 };

/** A variant's matmul against float64: f32 kinds at TOL; f16 entry by entry within matmulErrorBound. */
function checkVariantMatmul(m: VariantMatmul): void {
  const { M, K, N, transA, transB } = m;
  const expect = ref.matmul(ref.f64(m.a), ref.f64(m.b), M, K, N, transA, transB, m.bias ? ref.f64(m.bias) : undefined);
  const what = `browser matmul ${m.variant} ${M}x${K}x${N}${transA ? ' transA' : ''}${transB ? ' transB' : ''}${m.bias ? ' bias' : ''}`;
  if (m.kind !== 'f16') return assertClose(m.c, expect, TOL, what);
  const as = new Float64Array(K), bs = new Float64Array(K);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      for (let k = 0; k < K; k++) {
        as[k] = m.a[transA ? k * M + i : i * K + k];
        bs[k] = m.b[transB ? j * K + k : k * N + j];
      }
      // The bias is added in f32 (not rounded to f16): its share of the sum's roundings, as test/ops/matmul.test.ts bounds it.
      const bound = matmulErrorBound('f16', as, bs) + (m.bias ? (K + 2) * 2 ** -24 * Math.abs(m.bias[j]) : 0);
      const err = Math.abs(m.c[i * N + j] - expect[i * N + j]);
      assert.ok(err <= bound, `${what}: C[${i}, ${j}] = ${m.c[i * N + j]}, float64 ${expect[i * N + j]} (error ${err.toExponential(2)} > bound ${bound.toExponential(2)})`);
    }
}

/** Softmax, logSoftmax, softmax's input gradient, sum and max of one layout against float64 at
 * TOL; layerNorm and its input gradient at layerNorm's tolerance in the Node test. */
function checkRowOps(r: VariantChecks['rows'][number]): void {
  const x = ref.f64(r.x);
  const y = ref.softmax(x, r.n);
  const what = `browser ${r.variant} layout [${r.rows}, ${r.n}]`;
  assertClose(r.softmax, y, TOL, `${what}: softmax`);
  assertClose(r.logSoftmax, ref.softmax(x, r.n, true), TOL, `${what}: logSoftmax`);
  // d/dx of sum(y * g): y * (g - sum_j g_j y_j) per row.
  const dx = y.map((v, i) => {
    const row = Math.floor(i / r.n) * r.n;
    let s = 0;
    for (let j = 0; j < r.n; j++) s += r.g[row + j] * y[row + j];
    return v * (r.g[i] - s);
  });
  assertClose(r.dx, dx, TOL, `${what}: softmax gradient`);
  const rowsOf = (f: (a: number[]) => number) => Array.from({ length: r.rows }, (_, i) => f(r.x.slice(i * r.n, (i + 1) * r.n)));
  assertClose(r.sum, rowsOf((a) => a.reduce((p, v) => p + v, 0)), TOL, `${what}: sum`);
  assert.equal(r.max, rowsOf((a) => Math.max(...a)), `${what}: max (exact)`);
  const ln = ref.layerNorm(x, ref.f64(r.gamma), new Float64Array(r.n), r.n, 1e-5);
  assertClose(r.layerNorm, ln, { rtol: 2e-4, atol: 2e-5 }, `${what}: layerNorm`);
  // dx = rstd (gg - mean(gg) - xhat mean(gg xhat)), gg = g gamma, per row.
  const lnDx = new Float64Array(x.length);
  for (let row = 0; row < r.rows; row++) {
    const xs = x.subarray(row * r.n, (row + 1) * r.n);
    const mean = xs.reduce((p, v) => p + v, 0) / r.n;
    const rstd = 1 / Math.sqrt(xs.reduce((p, v) => p + (v - mean) ** 2, 0) / r.n + 1e-5);
    const gg = Array.from(xs, (_, j) => r.g[row * r.n + j] * r.gamma[j]);
    const xhat = Array.from(xs, (v) => (v - mean) * rstd);
    const mg = gg.reduce((p, v) => p + v, 0) / r.n;
    const mgx = gg.reduce((p, v, j) => p + v * xhat[j], 0) / r.n;
    for (let j = 0; j < r.n; j++) lnDx[row * r.n + j] = rstd * (gg[j] - mg - xhat[j] * mgx);
  }
  assertClose(r.layerNormDx, lnDx, { rtol: 2e-4, atol: 2e-5 }, `${what}: layerNorm input gradient`);
}

/** A variant's attention: the output at TOL, dq, dk, dv against central differences of the float64 attention. */
function checkVariantAttention(r: VariantAttention): void {
  const { B, H, Lq, Lk, D } = r;
  const [q, k, v, g] = [r.q, r.k, r.v, r.g].map(ref.f64);
  const what = `browser attention ${r.variant} B${B} H${H} ${Lq}x${Lk}x${D} masked`;
  assertClose(r.out, ref.attention(q, k, v, B, H, Lq, Lk, D, r.mask), TOL, what);
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
    const o = ref.attention(qq, kk, vv, B, H, Lq, Lk, D, r.mask);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * g[i];
    return s;
  };
  assertClose(r.dq, ref.numericGrad((x) => loss(x, k, v), q), GRAD, `${what}: dq`);
  assertClose(r.dk, ref.numericGrad((x) => loss(q, x, v), k), GRAD, `${what}: dk`);
  assertClose(r.dv, ref.numericGrad((x) => loss(q, k, x), v), GRAD, `${what}: dv`);
}

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
    const vr = (await page.evaluate('runVariantChecks()')) as VariantChecks;
    const ran = (xs: { variant: string }[]) => [...new Set(xs.map((x) => x.variant))];
    console.log(`  browser variants: matmul ${ran(vr.matmul).join(', ')}; attention ${ran(vr.attention).join(', ')}${vr.skipped.length ? `; not on this adapter: ${vr.skipped.join('; ')}` : ''}`);
    // The portable variants run on every WebGPU adapter; the others are listed as skipped with a reason.
    for (const name of ['tiled', 'tiled-wg']) assert.ok(ran(vr.matmul).includes(name), `matmul ${name} ran in the browser`);
    for (const name of ['plain', 'tiled']) assert.ok(ran(vr.attention).includes(name), `attention ${name} ran in the browser`);
    // The variant asked for is the kernel that ran (where the adapter has timestamp queries to record it).
    const entry = { subgroup: 'matmul_sg', tiled: 'matmul_tiled', 'tiled-wg': 'matmul_wg', f16: 'matmul_wg' } as const;
    for (const m of vr.matmul) {
      const want = m.variant.includes('uniform') ? 'matmul.wgsl:matmul_sg_ub' : `matmul.wgsl:${entry[m.kind]}`;
      if (m.kernels) assert.equal(m.kernels, [want], `browser matmul ${m.variant} ${m.M}x${m.K}x${m.N}: kernels that ran`);
      checkVariantMatmul(m);
    }
    for (const a of vr.attention) checkVariantAttention(a);
    assert.equal(vr.rows.map((r) => r.variant), ['row', 'workgroup'], 'softmax and reduce layouts ran in the browser');
    for (const r of vr.rows) checkRowOps(r);
    assert.equal(vr.layouts.map((r) => r.variant), ['run', 'element', 'tiled'], 'strided-copy layouts ran in the browser');
    for (const l of vr.layouts) {
      assert.equal(l.permuted, [...ref.permute(ref.f64(l.x), [3, 33, 40], [0, 2, 1])], `browser permute (${l.variant} layout), exact`);
      assert.equal(l.expanded, Array.from({ length: 240 }, (_, i) => l.e[Math.floor(i / 3) % 40]), `browser expand (${l.variant} layout), exact`);
    }
    // The fused epilogues give the separate ops' bits in this browser's compiler too.
    const [plain] = vr.epilogues.filter((e) => e.name === 'separate ops');
    for (const e of vr.epilogues) e.values.forEach((v, i) => assert.equal(v, plain.values[i], `browser mlpGelu ${e.name}: ${['output', 'dx', 'dfc1', 'dfc2', 'dscale'][i]} against separate ops`));
    assert.equal(errors, [], 'no page errors');
  } finally {
    await browser.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

t.run();
