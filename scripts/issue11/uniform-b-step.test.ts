// The training step with the subgroup matmul reading B through uniform bindings and from
// storage (gpu.tuning.matmul.uniformB ON / false, kernels/matmul.wgsl UB; ON=true, the
// default here, forces uniform B; ON=null is the framework's default choice, uniform B only on
// lavapipe on AVX2 CPUs), in alternating
// steps of one process on the same batch, so that the two see the same machine load: the
// bench's step at width K (default 1), N pairs (default 12) after warm-up, medians.
//   K=1 N=12 ON=true node scripts/test-only.mjs scripts/issue11/uniform-b-step.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { scaledConfig } from '../../bench/suites/step.ts';
import { hostBatch, StepSides } from '../../bench/peers/radfinder-step.ts';

test('uniform B against storage B, the whole step', async () => {
  const gpu = await testGpu();
  const k = Number(process.env.K ?? 1);
  const s = await StepSides.open(gpu, scaledConfig(k), hostBatch(scaledConfig(k), 0x57e9), { peer: false, threads: 1 });
  const times: Record<string, number[]> = { uniform: [], storage: [] };
  const n = Number(process.env.N ?? 12);
  const onValue = (process.env.ON ?? 'true') === 'null' ? null : true;
  for (let i = -2; i < n; i++)
    for (const [name, on] of (i % 2 ? [['uniform', onValue], ['storage', false]] : [['storage', false], ['uniform', onValue]]) as [string, boolean | null][]) {
      gpu.tuning.matmul.uniformB = on;
      const ms = await s.ourStep();
      if (i >= 0) times[name].push(ms);
    }
  gpu.tuning.matmul.uniformB = null;
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [u, st] = [med(times.uniform), med(times.storage)];
  console.log(`\nx${k}, ${n} steps each, alternating: uniform B (uniformB = ${onValue}) ${u.toFixed(0)} ms, storage B ${st.toFixed(0)} ms a step (medians; storage / uniform = ${(st / u).toFixed(3)})`);
  console.log(`  uniform [${times.uniform.map((x) => x.toFixed(0)).join(', ')}]\n  storage [${times.storage.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`  device: ${gpu.describe()}`);
  s.close();
});
test.run();
