// Autotuning (src/gpu/autotune.ts with matmulTuner): every candidate is checked against
// float64 and timed, the fastest correct one is chosen and followed by 'auto' launches, the
// times are written to and read back from a cache file (a temporary folder here), a corrupt
// file is ignored with a message, f16 is chosen only when allowed, an incorrect or failing
// variant is excluded. Times are not asserted (the machine is shared); only which variant
// wins where one is made far slower than the others.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { autotune, autotuneEnabled, autotuneSeen, cachePath, choice, forgetAutotune, type Tuner } from '../../src/gpu/autotune.ts';
import { MATMUL_DEFAULT_TILE, matmulChoiceName, uniformBByDefault, matmul as launchMatmul, matmulTuner, parseMatmulChoice, type MatmulShape } from '../../src/launch/matmul.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { tensor } from '../../src/ops/creation.ts';

const t = suite('autotune');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-autotune-'));
const shape: MatmulShape = { M: 64, N: 64, K: 64, batch: 1, transA: false, transB: false };

function reset(gpu: Gpu): void {
  forgetAutotune(gpu);
  gpu.tuning.autotune = null;
  gpu.tuning.matmul.allowF16 = false;
  gpu.tuning.matmul.variant = 'auto';
}

/** The entry point of the one matmul dispatch `fn` encodes. */
async function kernelOf(gpu: Gpu, fn: () => void): Promise<string> {
  gpu.startProfile();
  fn();
  const recs = await gpu.endProfile();
  assert.is(recs.length, 1);
  return recs[0].kernel;
}

// The subgroup kernel's entry is matmul_sg_ub where B goes through uniform bindings (by
// default on lavapipe on an AVX2 CPU: uniformBByDefault), matmul_sg otherwise.
const sgEntry = (gpu: Gpu) => (gpu.tuning.matmul.uniformB ?? uniformBByDefault(gpu) ? 'matmul_sg_ub' : 'matmul_sg');
const entryOf = (gpu: Gpu, variant: string) => {
  const k = parseMatmulChoice(variant)!.kind;
  return k === 'subgroup' ? sgEntry(gpu) : k === 'tiled' ? 'matmul_tiled' : 'matmul_wg';
};

t('defaults: off on this CPU adapter unless asked, on elsewhere', async () => {
  const gpu = await testGpu();
  reset(gpu);
  assert.is(autotuneEnabled(gpu), !gpu.isLavapipe);
  gpu.tuning.autotune = true;
  assert.ok(autotuneEnabled(gpu));
  reset(gpu);
});

t('matmul: every candidate checked and timed, the fastest correct one chosen and followed by auto launches, the cache written', async () => {
  const gpu = await testGpu();
  reset(gpu);
  const logs: string[] = [];
  try {
    const [r] = await autotune(gpu, matmulTuner, [shape], { cacheDir: dir, log: (m) => logs.push(m) });
    assert.equal(logs, []);
    assert.ok(r.measured);
    assert.is(r.key, 'M64 N64 K64 b1 AB v111');
    const cands = matmulTuner.candidates(gpu, shape);
    assert.ok(cands.includes(matmulChoiceName({ kind: 'tiled-wg', tile: MATMUL_DEFAULT_TILE })), 'tiled-wg is a candidate');
    assert.not.ok(cands.some((c) => c.startsWith('f16')), 'f16 is no candidate unless allowed');
    assert.equal(Object.keys(r.times).sort(), [...cands].sort());
    for (const [v, ms] of Object.entries(r.times)) assert.type(ms, 'number', `${v} was excluded: ${ms}`);
    const best = Object.entries(r.times).sort((a, b) => (a[1] as number) - (b[1] as number))[0][0];
    assert.is(r.choice, best);
    assert.is(r.clock, gpu.canProfile ? 'timestamp' : 'wall');

    // A launch of the same class follows the choice once autotuning is on, not before (off
    // explicitly: on a GPU it is on by default, and the H200 run launched the choice here).
    const M = 60, K = 64, N = 64;
    const a = randomValues(M * K, 1), b = randomValues(K * N, 2);
    const at = tensor(gpu, Float32Array.from(a), [M, K]), bt = tensor(gpu, Float32Array.from(b), [K, N]);
    gpu.tuning.autotune = false;
    assert.is(await kernelOf(gpu, () => launchMatmul(at, bt)), `matmul.wgsl:${gpu.subgroupMinSize >= 4 ? sgEntry(gpu) : 'matmul_tiled'}`);
    gpu.tuning.autotune = true;
    let c = launchMatmul(at, bt);
    assert.is(await kernelOf(gpu, () => (c = launchMatmul(at, bt))), `matmul.wgsl:${entryOf(gpu, r.choice!)}`);
    assertClose(await c.floats(), ref.matmul(Float64Array.from(Float32Array.from(a)), Float64Array.from(Float32Array.from(b)), M, K, N), { rtol: 1e-4, atol: 2e-5 }, `tuned ${r.choice}`);

    const path = (await cachePath(gpu, dir))!;
    const file = JSON.parse(readFileSync(path, 'utf8'));
    assert.is(file.format, 2);
    assert.equal(file.families.matmul.classes[r.key].times, r.times);
    assert.is(file.families.matmul.version, matmulTuner.version);
  } finally {
    reset(gpu);
  }
});

t('the cache is read back: a fresh process state measures nothing and makes the same choice', async () => {
  const gpu = await testGpu();
  reset(gpu);
  const path = (await cachePath(gpu, dir))!;
  const before = JSON.parse(readFileSync(path, 'utf8')).families.matmul.classes['M64 N64 K64 b1 AB v111'];
  // Another shape of the same class.
  const [r] = await autotune(gpu, matmulTuner, [{ ...shape, M: 50, N: 36 }], { cacheDir: dir });
  assert.not.ok(r.measured);
  assert.is(r.clock, 'cache');
  assert.equal(r.times, before.times);
  assert.is(choice(gpu, matmulTuner, r.key), r.choice);
  reset(gpu);
});

t('a corrupt or foreign cache file is ignored with one message and rewritten', async () => {
  const gpu = await testGpu();
  const path = (await cachePath(gpu, dir))!;
  for (const [content, why] of [['{"format": 2, "families": {"matmul": {"ver', /not JSON/], ['{"format": 7, "families": {}}', /not an autotune cache of format 2/], ['{"format": 2, "families": {"matmul": {"version": "x", "classes": {"k": {"times": {"tiled": "fast"}}}}}}', null], ['{"format": 2, "families": {"matmul": {"version": "x", "classes": {"k": {"times": {"tiled": -3}}}}}}', /class 'k' of 'matmul' is malformed/]] as [string, RegExp | null][]) {
    reset(gpu);
    writeFileSync(path, content);
    const logs: string[] = [];
    const [r] = await autotune(gpu, matmulTuner, [shape], { cacheDir: dir, log: (m) => logs.push(m) });
    if (why) {
      assert.is(logs.length, 1, `one message for ${content}`);
      assert.match(logs[0], `autotune: ignoring the cache file ${path}`);
      assert.match(logs[0], why);
    } else assert.equal(logs, [], 'a well-formed file of another version is dropped silently');
    assert.ok(r.measured);
    assert.ok(r.choice);
    assert.is(JSON.parse(readFileSync(path, 'utf8')).families.matmul.version, matmulTuner.version, 'rewritten');
  }
  reset(gpu);
});

t('f16: measured only when allowed, and never chosen while not allowed however fast', async () => {
  const gpu = await testGpu();
  reset(gpu);
  if (!gpu.features.has('shader-f16')) {
    console.log('  skip: no shader-f16 on this device');
    return;
  }
  const sub = join(dir, 'f16');
  mkdirSync(sub, { recursive: true });
  const path = (await cachePath(gpu, sub))!;
  const f16 = matmulChoiceName({ kind: 'f16', tile: MATMUL_DEFAULT_TILE });
  const key = matmulTuner.classOf(shape);
  // A cache in which f16 is by far the fastest and every f32 candidate is present.
  const times: Record<string, number> = {};
  for (const v of matmulTuner.candidates(gpu, shape)) times[v] = v === 'tiled' ? 2 : 5;
  times[f16] = 0.1;
  writeFileSync(path, JSON.stringify({ format: 2, adapter: '', families: { matmul: { version: matmulTuner.version, classes: { [key]: { shape, times, clock: 'wall', at: '' } } } } }));
  try {
    const [r] = await autotune(gpu, matmulTuner, [shape], { cacheDir: sub });
    assert.not.ok(r.measured, 'nothing left to measure while f16 is not allowed');
    assert.is(r.choice, 'tiled');
    assert.is(choice(gpu, matmulTuner, key), 'tiled');
    gpu.tuning.matmul.allowF16 = true;
    assert.is(choice(gpu, matmulTuner, key), f16);
    // Allowed, a class not yet measured gets its f16 candidates measured and checked.
    // (the load paths of the 64^3 case, so that the f32 pipelines compiled for it serve)
    const small: MatmulShape = { M: 24, N: 20, K: 36, batch: 1, transA: false, transB: false };
    const [r2] = await autotune(gpu, matmulTuner, [small], { cacheDir: sub });
    const f16s = Object.keys(r2.times).filter((v) => v.startsWith('f16'));
    assert.ok(f16s.length >= 1);
    for (const v of f16s) assert.type(r2.times[v], 'number', `${v}: ${r2.times[v]}`);
  } finally {
    reset(gpu);
  }
});

t('an incorrect or failing variant is excluded with its reason; the fastest correct one wins (memory only)', async () => {
  const gpu = await testGpu();
  reset(gpu);
  const sizes: Record<string, number> = { fast: 8, slow: 256, wrong: 8 };
  const tensors = Object.fromEntries(Object.entries(sizes).map(([v, n]) => [v, tensor(gpu, new Float32Array(n * n).fill(1), [n, n])]));
  const fake: Tuner<{ n: number }> = {
    family: 'fake',
    version: '1',
    classOf: (s) => `n${s.n}`,
    candidates: () => ['slow', 'fast', 'wrong', 'broken'],
    usable: () => true,
    trial: () => ({
      run: (v) => {
        if (v === 'broken') throw new Error('cannot compile here\nsecond line');
        launchMatmul(tensors[v], tensors[v]).dispose();
      },
      check: async (v) => (v === 'wrong' ? 'incorrect: C[0] = 1, float64 2' : null),
      dispose: () => {},
    }),
  };
  const [r] = await autotune(gpu, fake, [{ n: 1 }], { cacheDir: null });
  assert.is(r.times.wrong, 'incorrect: C[0] = 1, float64 2');
  assert.is(r.times.broken, 'failed: cannot compile here');
  assert.type(r.times.fast, 'number');
  assert.ok((r.times.slow as number) > (r.times.fast as number), `256^3 (${r.times.slow} ms) slower than 8^3 (${r.times.fast} ms)`);
  assert.is(r.choice, 'fast');
  for (const x of Object.values(tensors)) x.dispose();
  reset(gpu);
});

t('autotuneSeen measures exactly the classes that auto launches met without a choice', async () => {
  const gpu = await testGpu();
  reset(gpu);
  gpu.tuning.autotune = true;
  try {
    const a = tensor(gpu, new Float32Array(2 * 20 * 36), [2, 20, 36]);
    const b = tensor(gpu, new Float32Array(36 * 12), [36, 12]);
    ops.matmul(a, b).dispose(); // shared B: folded into one 40 x 36 @ 36 x 12
    ops.matmul(a, b).dispose();
    const res = await autotuneSeen(gpu, matmulTuner, { cacheDir: join(dir, 'seen') });
    assert.equal(res.map((x) => x.key), [matmulTuner.classOf({ M: 40, N: 12, K: 36, batch: 1, transA: false, transB: false })]);
    assert.ok(res[0].measured && res[0].choice);
    assert.equal(await autotuneSeen(gpu, matmulTuner, { cacheDir: join(dir, 'seen') }), []);
    ops.matmul(a, b).dispose(); // now tuned: not noted again
    assert.equal(await autotuneSeen(gpu, matmulTuner, { cacheDir: join(dir, 'seen') }), []);
    assert.ok(existsSync((await cachePath(gpu, join(dir, 'seen')))!));
  } finally {
    reset(gpu);
  }
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t.run();
