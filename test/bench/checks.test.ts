// The bench judges its correctness checks: a row whose output differs from the peer's or the
// float64 reference by more than its tolerance is marked wrong (and the bench exits 1), a NaN
// is never hidden, and the attention rows' float64 reference tells a right output from a
// wrong one in both layouts. scripts/bench-compare.mjs names a bad file in one line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { testGpu } from '../helpers/gpu.ts';
import { repoRoot } from '../helpers/paths.ts';
import { checkRow, hostRandn } from '../../bench/lib/case.ts';
import { newRow } from '../../bench/lib/row.ts';
import { render } from '../../bench/lib/report.ts';
import { attentionRefDiff } from '../../bench/suites/attention.ts';
import { tensor } from '../../src/ops/creation.ts';
import { mulScalar } from '../../src/ops/elementwise.ts';
import { attention } from '../../src/ops/attention.ts';

const row = (variant = 'subgroup') => newRow({ section: 'elementwise', op: 'scale', shape: '1000', variant, metric: 'GB/s', work: 8000 });

test('checkRow: within the tolerance passes, a wrong output or a NaN is marked wrong', async () => {
  const gpu = await testGpu();
  const h = hostRandn(1000, 5);
  const x = tensor(gpu, h, [1000], 'x');
  const twice = Float32Array.from(h, (v) => 2 * v);

  const ok = row();
  await checkRow(ok, () => mulScalar(x, 2), twice, (out) => Math.max(...out.map((v, i) => Math.abs(v - 2 * h[i]))));
  assert.is(ok.wrong, null, ok.check);
  assert.is(ok.maxAbsDiffPeer, 0);

  // 1.5x instead of 2x: off by about 0.5 x |x| (up to ~1.7), far over 1e-4 x max|out|.
  const bad = row();
  await checkRow(bad, () => mulScalar(x, 1.5), twice);
  assert.ok(bad.wrong?.startsWith('max|diff| tfjs'), `${bad.wrong}`);
  assert.match(render([{ ...bad, ours: { clock: 'wall', ms: 1, tsMs: null, wallMs: 1, tsSamples: [], wallSamples: [1], wallIters: 1 } }]), /WRONG: max\|diff\| tfjs/);

  // A difference just over / under the tolerance: max|out| = s, tolerance 1e-4 s.
  const s = Math.max(...twice.map(Math.abs));
  for (const [delta, wrong] of [[0.5e-4 * s, false], [2e-4 * s, true]] as const) {
    const r = row();
    const peer = twice.slice();
    peer[17] += delta;
    await checkRow(r, () => mulScalar(x, 2), peer);
    assert.is(r.wrong !== null, wrong, `delta ${delta}: ${r.wrong}`);
  }
  // The f16 variants get 1e-2: the same 2e-4 difference passes there.
  const f16 = row('f16');
  const peer = twice.slice();
  peer[17] += 2e-4 * s;
  await checkRow(f16, () => mulScalar(x, 2), peer);
  assert.is(f16.wrong, null);

  // A NaN anywhere (here the first element, followed by exact ones) is the difference.
  const nan = row();
  const withNan = twice.slice();
  withNan[0] = NaN;
  await checkRow(nan, () => mulScalar(x, 2), withNan);
  assert.ok(Number.isNaN(nan.maxAbsDiffPeer), `${nan.maxAbsDiffPeer}`);
  assert.match(nan.wrong ?? '', /tfjs NaN/);

  // An infinity in our output is wrong whatever the differences say (it would make a scale
  // taken from our output infinite).
  const inf = row();
  const big = tensor(gpu, Float32Array.from(h, (v, i) => (i === 3 ? 3e38 : v)), [1000]);
  await checkRow(inf, () => mulScalar(big, 2), null, () => 0);
  assert.match(inf.wrong ?? '', /our output holds Infinity at element 3/);
  big.dispose();
  // The tolerance is at the expected output's own scale: outputs of 1e-3 (a softmax's) are not
  // judged against 1e-4 absolute.
  const small = tensor(gpu, Float32Array.from(h, (v) => 1e-3 * v), [1000]);
  const smallOut = Float32Array.from(h, (v) => 1e-3 * v);
  smallOut[5] += 5e-6; // 1.5e-3 of the largest entry: far over 1e-4 of it
  const tiny = row();
  await checkRow(tiny, () => mulScalar(small, 1), smallOut);
  assert.match(tiny.wrong ?? '', /tfjs/, `${tiny.check}`);
  small.dispose();

  // A reference that returns NaN is wrong too.
  const nanRef = row();
  await checkRow(nanRef, () => mulScalar(x, 2), null, () => NaN);
  assert.match(nanRef.wrong ?? '', /f64 NaN/);
  x.dispose();
});

test('attentionRefDiff: our attention within float32 rounding in both layouts; a wrong output is told apart', async () => {
  const gpu = await testGpu();
  // 3 heads of 37 tokens of width 5 (nothing a multiple of a tile), and 1 x 1 x 1.
  for (const [B, H, L, D] of [[2, 3, 37, 5], [1, 1, 1, 1]]) {
    const n = B * H * L * D;
    const [hq, hk, hv] = [1, 2, 3].map((seed) => hostRandn(n, seed));
    for (const layout of ['bhld', 'blhd'] as const) {
      const shape = layout === 'bhld' ? [B, H, L, D] : [B, L, H, D];
      const [q, k, v] = [hq, hk, hv].map((h) => tensor(gpu, h, shape));
      const y = layout === 'bhld' ? attention(q, k, v) : attention(q, k, v, { layout: 'blhd' });
      const out = await y.floats();
      for (const t of [q, k, v, y]) t.dispose();
      const d = attentionRefDiff(hq, hk, hv, out, B, H, L, D, layout);
      // Outputs are convex combinations of v (|v| < ~4): float32 rounding stays near 1e-6.
      assert.ok(d < 1e-5, `${layout} ${[B, H, L, D]}: ${d}`);
      if (L > 1) {
        // The other layout's reading of the same output is wrong by O(1).
        const other = layout === 'bhld' ? 'blhd' : 'bhld';
        assert.ok(attentionRefDiff(hq, hk, hv, out, B, H, L, D, other) > 0.1, `${layout} read as ${other}`);
      }
      // Only sampled rows are read; the first sampled row is head 0's token 0 in both layouts.
      out[0] = NaN;
      assert.ok(Number.isNaN(attentionRefDiff(hq, hk, hv, out, B, H, L, D, layout)), `${layout} ${[B, H, L, D]}: a NaN shows`);
    }
  }
});

test('bench-compare: a missing or malformed file is one line naming it (exit 2); two files compare by row', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-compare-'));
  const script = join(repoRoot, 'scripts/bench-compare.mjs');
  const run = (...files: string[]) => spawnSync(process.execPath, [script, ...files], { encoding: 'utf8' });
  const missing = run(join(dir, 'none.json'), join(dir, 'none.json'));
  assert.is(missing.status, 2);
  assert.is(missing.stderr.trim(), `bench-compare: ${join(dir, 'none.json')}: no such file`);
  writeFileSync(join(dir, 'empty.json'), '{}');
  const empty = run(join(dir, 'empty.json'), join(dir, 'empty.json'));
  assert.is(empty.status, 2);
  assert.match(empty.stderr.trim(), /^bench-compare: \S+empty\.json: rows: missing/);
  writeFileSync(join(dir, 'broken.json'), '{"rows": [');
  assert.match(run(join(dir, 'broken.json'), join(dir, 'empty.json')).stderr.trim(), /^bench-compare: \S+broken\.json: not valid JSON/);

  const r = (shape: string, ms: number, section = 'matmul', work = 100) => ({ section, op: 'op', shape, variant: 'v', metric: 'GFLOP/s', work, rate: work / ms, ours: { ms } });
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ rows: [r('1', 2), r('2', 4), r('256k x 150', 1, 'roofline', 150)] }));
  // The roofline row did 296 units of work in 2 ms against 150 in 1: its rate barely moved.
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ rows: [r('1', 3), r('3', 1), r('256k x 296', 2, 'roofline', 296)] }));
  const both = run(join(dir, 'a.json'), join(dir, 'b.json'));
  assert.is(both.status, 0, both.stderr);
  // Row '1' (x1.5), and the roofline row, whose budget-sized shape is not part of its key,
  // compared by rate since its work differs (150 -> 148 per ms: x1.014, not the times' x2).
  assert.match(both.stdout, /matmul \| op \| 1 \| v \| GFLOP\/s\s+2\.000\s+3\.000\s+x1\.500\n/);
  assert.match(both.stdout, /roofline \| op \| v \| GFLOP\/s\s+1\.000\s+2\.000\s+x1\.014 \(by rate: 150 -> 148 GFLOP\/s, other work\)/);
  assert.match(both.stdout, /2 rows; after \/ before \(above 1: after is slower\): median 1\.500/);
  assert.match(both.stdout, /only in before \(1\): matmul \| op \| 2/);
  assert.match(both.stdout, /only in after \(1\): matmul \| op \| 3/);
});

test.run();
