// The training step under two kernel choices (gpu.tuning fields, as `ctvlm profile --tuning`
// takes them) in alternating steps of one process on the same batch, so that both see the same
// machine load: the bench's step at width K (default 1), N pairs (default 8) after two warm-up
// pairs, medians. A and B are comma-separated FIELD=VALUE lists (empty: the defaults).
//   K=4 N=8 A=matmul.rows=32 B=matmul.rows=64 node scripts/test-only.mjs scripts/issue11/tuning-step.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { scaledConfig } from '../../bench/suites/step.ts';
import { hostBatch, StepSides } from '../../bench/peers/radfinder-step.ts';
import { defaultTuning, setTuning, type Tuning } from '../../src/gpu/tuning.ts';

function tuningOf(spec: string): Tuning {
  const t = defaultTuning();
  for (const kv of spec.split(',').filter(Boolean)) setTuning(t, kv);
  return t;
}

test('one step, two kernel choices, alternating', async () => {
  const gpu = await testGpu();
  const k = Number(process.env.K ?? 1);
  const specs = [process.env.A ?? '', process.env.B ?? ''];
  const tunings = specs.map(tuningOf);
  const s = await StepSides.open(gpu, scaledConfig(k), hostBatch(scaledConfig(k), 0x57e9), { peer: false, threads: 1 });
  const times: number[][] = [[], []];
  const n = Number(process.env.N ?? 8);
  for (let i = -2; i < n; i++)
    for (const side of i % 2 ? [1, 0] : [0, 1]) {
      Object.assign(gpu.tuning, structuredClone(tunings[side]));
      const ms = await s.ourStep();
      if (i >= 0) times[side].push(ms);
    }
  Object.assign(gpu.tuning, defaultTuning());
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [a, b] = times.map(med);
  console.log(`\nx${k}, ${n} steps each, alternating: A (${specs[0] || 'defaults'}) ${a.toFixed(0)} ms, B (${specs[1] || 'defaults'}) ${b.toFixed(0)} ms a step (medians; A / B = ${(a / b).toFixed(3)})`);
  console.log(`  A [${times[0].map((x) => x.toFixed(0)).join(', ')}]\n  B [${times[1].map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`  device: ${gpu.describe()}`);
  s.close();
});
test.run();
