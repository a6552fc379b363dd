// The bench's roof kernels (kernels/roofline.wgsl, bench/suites/roofline.ts) compute what
// they claim, in every configuration the bench times: fma_peak's sums against the float64
// closed form of its chains, copy4 exactly, at sizes that are not multiples of the
// workgroup or of the vec4s per invocation, and size 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { COPY_CONFIGS, FMA_CONFIGS, LOAD_CONFIGS, LOAD_WINDOW, fmaRef, launchCopy, launchFma, launchLoad, loadRef } from '../../bench/suites/roofline.ts';
import { loadBounds } from '../../bench/lib/report.ts';
import { newRow } from '../../bench/lib/row.ts';

test('fma_peak: every configuration against the float64 closed form', async () => {
  const gpu = await testGpu();
  for (const c of FMA_CONFIGS)
    for (const [inv, iters] of [[1, 1], [1000, 3], [300, 40]]) {
      const out = gpu.acquire(4 * (inv + 4), 'fma out');
      gpu.upload(out, new Float32Array(inv + 4).fill(-7));
      launchFma(gpu, c, out, inv, iters);
      const y = new Float32Array(await gpu.read(out, 4 * (inv + 4)));
      gpu.release(out);
      // Each chain is a <- a m + c, m = 1 - 2^-12, over at most 320 steps: rounding (2^-24
      // per step, damped by m) stays below 320 * 6e-8 = 2e-5 relative, as does the sum of
      // up to 32 positive terms; 1e-4 leaves room and still tells a missing step (1e-4 of
      // the distance to the limit) apart.
      const steps = iters * c.unroll;
      for (let i = 0; i < inv; i++) {
        const ref = fmaRef(i, c.acc, steps);
        assert.ok(Math.abs(y[i] - ref) <= 1e-4 * Math.abs(ref), `acc ${c.acc} wg ${c.wg} inv ${i}/${inv} iters ${iters}: ${y[i]} vs ${ref}`);
      }
      for (let i = inv; i < inv + 4; i++) assert.is(y[i], -7, `acc ${c.acc}: wrote past n at ${i}`);
    }
});

test('fma_peak: one step fewer is told apart (the check the bench applies is not vacuous)', () => {
  const a = fmaRef(5, 16, 64);
  const b = fmaRef(5, 16, 63);
  assert.ok(Math.abs(a - b) > 1e-4 * Math.abs(a), `${a} vs ${b}`);
});

test('copy4: every configuration copies exactly and stops at n', async () => {
  const gpu = await testGpu();
  for (const c of COPY_CONFIGS)
    for (const n4 of [1, 1000, 4097]) {
      const x = Float32Array.from({ length: 4 * n4 }, (_, i) => (i % 1013) - 506.25);
      const bx = gpu.acquire(4 * x.length, 'copy x');
      const by = gpu.acquire(4 * (x.length + 8), 'copy y');
      gpu.upload(bx, x);
      gpu.upload(by, new Float32Array(x.length + 8).fill(-7));
      launchCopy(gpu, c, bx, by, n4);
      const y = new Float32Array(await gpu.read(by, 4 * (x.length + 8)));
      gpu.release(bx);
      gpu.release(by);
      for (let i = 0; i < x.length; i++) if (y[i] !== x[i]) assert.unreachable(`${c.per} vec4/inv wg ${c.wg} n4 ${n4}: y[${i}] = ${y[i]}, x = ${x[i]}`);
      for (let i = x.length; i < x.length + 8; i++) assert.is(y[i], -7, `${c.per} vec4/inv: wrote past n at ${i}`);
    }
});

test('load4 and load4u: every configuration sums the vec4s each invocation loads, exactly, and stops at n', async () => {
  const gpu = await testGpu();
  // The reference adds in the kernel's f32 order, so the comparison is equality; a skipped,
  // repeated or misplaced load changes the sum. The extreme window (1e38 and -1e38 in one vec4:
  // they meet only in the last additions) runs only the short cases: an accumulator that took
  // the pair four times would overflow, and one that holds 1e38 rounds its other terms away.
  const plain = Float32Array.from({ length: 4 * LOAD_WINDOW }, (_, k) => ((k * 7919) % 13) - 6);
  const extreme = plain.slice();
  extreme[8] = 1e38;
  extreme[9] = -1e38;
  // load4u: the same loads from a uniform buffer.
  for (const x of [plain, extreme])
  for (const [c, fromUniform] of LOAD_CONFIGS.flatMap((c) => [[c, false], [c, true]] as const))
    for (const [inv, iters] of x === plain ? [[1, 1], [1000, 3], [300, 700]] : [[1, 1], [1000, 3]]) {
      const bx = gpu.acquire(x.byteLength, 'load window');
      gpu.upload(bx, x);
      const out = gpu.acquire(4 * (inv + 4), 'load out');
      gpu.upload(out, new Float32Array(inv + 4).fill(-7));
      // The entry point that ran, from the profiler where the device has timestamp queries.
      if (gpu.canProfile) gpu.startProfile(8);
      launchLoad(gpu, c, bx, out, inv, iters, fromUniform);
      if (gpu.canProfile) assert.equal((await gpu.endProfile()).map((r) => r.kernel), [fromUniform ? 'roofline.wgsl:load4u' : 'roofline.wgsl:load4']);
      const y = new Float32Array(await gpu.read(out, 4 * (inv + 4)));
      gpu.release(out);
      gpu.release(bx);
      for (let i = 0; i < inv; i++) if (y[i] !== loadRef(x, i, c.per, iters)) assert.unreachable(`${fromUniform ? 'uniform ' : ''}${c.per} vec4/round wg ${c.wg} inv ${i}/${inv} iters ${iters}: ${y[i]} vs ${loadRef(x, i, c.per, iters)}`);
      for (let i = inv; i < inv + 4; i++) assert.is(y[i], -7, `${c.per} vec4/round: wrote past n at ${i}`);
    }
});

test('load bounds: overlapped = min(FMA peak, load rate / bytes per FLOP), serial = the harmonic sum', () => {
  const roof = (op: string, rate: number) => ({ ...newRow({ section: 'roofline', op, shape: '', variant: '', metric: 'GB/s', work: 1 }), rate, ours: {} as never });
  const rows = [roof('f32 FMA peak', 100), roof('load rate (per-lane vec4)', 10), roof('load rate (per-lane vec4)', 8)];
  const mm = { ...newRow({ section: 'matmul', op: 'matmul', shape: '', variant: 'subgroup', metric: 'GFLOP/s', work: 1 }), loadBytesPerFlop: 0.125 };
  const b = loadBounds(rows, mm)!;
  assert.ok(Math.abs(b.overlapped - 80) < 1e-9, `${b.overlapped}`);
  assert.ok(Math.abs(b.serial - 1 / (0.125 / 10 + 1 / 100)) < 1e-9, `${b.serial}`);
  assert.is(loadBounds(rows, { ...mm, loadBytesPerFlop: null }), null);
});

test.run();
