// The training step of the bench's model (width K, default 1) with and without the fused
// epilogues (gpu.tuning.fuseEpilogues): the loss, SigLIP loss and gradient norm of three steps
// from the same initial weights, bit for bit.
//   K=1 node scripts/test-only.mjs scripts/issue11/epilogue-bits.test.ts
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../../test/helpers/gpu.ts';
import { scaledConfig } from '../../bench/suites/step.ts';
import { hostBatch, StepSides } from '../../bench/peers/radfinder-step.ts';
import { optimizeBatch, disposeLosses } from '../../src/train/step.ts';

test('fused vs separate: the step bit for bit', async () => {
  const gpu = await testGpu();
  const k = Number(process.env.K ?? 1);
  const out: number[][] = [];
  for (const fuse of [true, false]) {
    gpu.tuning.fuseEpilogues = fuse;
    const s = await StepSides.open(gpu, scaledConfig(k), hostBatch(scaledConfig(k), 0x57e9), { peer: false, threads: 1 });
    const v: number[] = [];
    for (let i = 0; i < 3; i++) {
      const p = optimizeBatch(s.model, s.opt, s.batch);
      v.push(await p.total.item(), await p.siglip.item(), await s.opt.lastGradNorm());
      disposeLosses(p);
    }
    out.push(v);
    s.close();
  }
  gpu.tuning.fuseEpilogues = true;
  const fmt = (v: number[]) => [0, 1, 2].map((i) => `step ${i + 1}: loss ${v[3 * i]}, siglip ${v[3 * i + 1]}, |g| ${v[3 * i + 2]}`).join('; ');
  console.log(`fused:    ${fmt(out[0])}`);
  console.log(`separate: ${fmt(out[1])}`);
  assert.equal(out[0], out[1]);
});
test.run();
