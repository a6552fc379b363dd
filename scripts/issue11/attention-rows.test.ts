// The subgroup attention kernels with 1..4 rows per lane (gpu.tuning.attention.layout.rows):
// device time of forward, backward q and backward k/v at the shapes the small preset's step
// runs (timestamps, medians of N calls after a warm-up), and a check that every count gives
// the same bits as one row per lane.
//   N=9 ROWS=1,2,3,4 node scripts/test-only.mjs scripts/issue11/attention-rows.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { tensor } from '../../src/ops/creation.ts';
import { attentionForward, attentionBackward, type AttentionOptions } from '../../src/launch/attention.ts';
import { defaultTuning } from '../../src/gpu/tuning.ts';

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const u = (s + 0.5) / 4294967296;
    s = (s * 1664525 + 1013904223) >>> 0;
    const v = (s + 0.5) / 4294967296;
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

test('rows per lane: same bits, device time', async () => {
  const gpu = await testGpu();
  const n = Number(process.env.N ?? 9);
  // 0: the automatic choice.
  const rowsList = (process.env.ROWS ?? '1,2,3,4,0').split(',').map((x) => (x === 'auto' ? 0 : Number(x)));
  // [B, Lq, H, Hkv, D, options]
  let cases: [string, number, number, number, number, number, AttentionOptions][] = [
    ['vit window 32x129x4x24 blhd', 32, 129, 4, 4, 24, { layout: 'blhd' }],
    ['vit x4 window 32x129x4x96 blhd', 32, 129, 4, 4, 96, { layout: 'blhd' }],
    ['combiner 8x33x4x24 blhd', 8, 33, 4, 4, 24, { layout: 'blhd' }],
    ['text 8x192x4/2x16 causal blhd', 8, 192, 4, 2, 16, { layout: 'blhd', causal: true }],
    ['RadFinder vision head 2x256x4x90', 2, 256, 4, 4, 90, {}],
    ['RadFinder text head 1x256x8/2x128 causal', 1, 256, 8, 2, 128, { causal: true }],
  ].filter(([name]) => !process.env.ONLY || new RegExp(process.env.ONLY).test(name as string)) as typeof cases;
  for (const [name, B, L, H, Hkv, D, opts] of cases) {
    const shape = (h: number) => (opts.layout === 'blhd' ? [B, L, h, D] : [B, h, L, D]);
    const q = tensor(gpu, randn(B * L * H * D, 1), shape(H));
    const k = tensor(gpu, randn(B * L * Hkv * D, 2), shape(Hkv));
    const v = tensor(gpu, randn(B * L * Hkv * D, 3), shape(Hkv));
    const g = tensor(gpu, randn(B * L * H * D, 4), shape(H));
    // Rounds alternate the row counts, so that a change in the machine's load meets all alike.
    const times = rowsList.map(() => ({} as Record<string, number[]>));
    const outs: Float32Array[][] = [];
    for (let it = -1; it < n; it++) {
      for (let r = 0; r < rowsList.length; r++) {
        Object.assign(gpu.tuning, defaultTuning());
        gpu.tuning.attention.layout = rowsList[r] ? { rows: rowsList[r] } : null;
        await gpu.sync();
        gpu.startProfile(64);
        const { o, saved } = attentionForward(q, k, v, opts, true);
        const grads = attentionBackward(saved!, g);
        const recs = await gpu.endProfile();
        if (it >= 0) for (const rec of recs) (times[r][rec.kernel] ??= []).push(rec.ms);
        if (it === n - 1) outs[r] = [await o.floats(), ...(await Promise.all(grads.map((t) => t.floats())))];
        o.dispose();
        for (const t of grads) t.dispose();
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    for (let r = 0; r < rowsList.length; r++) {
      const parts = Object.entries(times[r]).map(([kname, xs]) => `${kname.replace(/^attention\.wgsl:/, '')} ${med(xs).toFixed(2)}`);
      const total = Object.values(times[r]).reduce((a, xs) => a + med(xs), 0);
      const bad = outs[r].map((x, i) => x.findIndex((y, j) => !Object.is(y, outs[0][i][j])));
      const same = r === 0 ? 'reference' : bad.every((b) => b < 0) ? 'same bits' : `DIFFERS at ${bad.join(', ')}`;
      console.log(`${name}: rows ${rowsList[r] || 'auto'}: ${total.toFixed(2)} ms (${parts.join(', ')}) ${same}`);
    }
    for (const t of [q, k, v, g]) t.dispose();
  }
  Object.assign(gpu.tuning, defaultTuning());
});
test.run();
