// A CPU profile of the host side of steady training steps (optimizeBatch: autograd, launches,
// encoding; the device's time is idle in it): the bench's step at width K (default 1), N
// profiled steps (default 10) after warm-up, the profile written to OUT (a .cpuprofile for
// Chrome's DevTools or a script). Prints the mean encoding ms per step (the sampling profiler
// itself slows it).
//   K=1 N=10 OUT=/tmp/host.cpuprofile node scripts/test-only.mjs scripts/issue11/hostprof.test.ts
import { test } from 'uvu';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { testGpu } from '../../test/helpers/gpu.ts';
import { scaledConfig } from '../../bench/suites/step.ts';
import { hostBatch, StepSides } from '../../bench/peers/radfinder-step.ts';
import { optimizeBatch, disposeLosses } from '../../src/train/step.ts';

test('hostprof', async () => {
  const gpu = await testGpu();
  const cfg = scaledConfig(Number(process.env.K ?? 1));
  const s = await StepSides.open(gpu, cfg, hostBatch(cfg, 0x57e9), { peer: false, threads: 1 });
  await s.check();
  for (let i = 0; i < 2; i++) await s.ourStep();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  let enc = 0;
  const n = Number(process.env.N ?? 10);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const p = optimizeBatch(s.model, s.opt, s.batch);
    enc += performance.now() - t0;
    await gpu.sync();
    disposeLosses(p);
  }
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(process.env.OUT ?? '/tmp/host.cpuprofile', JSON.stringify(profile));
  console.log(`encoding ${(enc / n).toFixed(1)} ms/step`);
  s.close();
});
test.run();
