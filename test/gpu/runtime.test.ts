// The device runtime: pool reuse and stats, batching, uniform caching, error reporting
// (WGSL compile errors with file and line, validation errors naming the op), the
// timestamp profiler, and use after destroy.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { SGD } from '../../src/optim/index.ts';
import { Gpu, bucketSize } from '../../src/gpu/runtime.ts';
import { StagingArena } from '../../src/gpu/staging.ts';
import { BufferPool } from '../../src/gpu/pool.ts';
import { describeHostCpu } from '../../src/gpu/device.ts';
import { readFileSync } from 'node:fs';
import { expandWgsl } from '../../src/gpu/wgsl.ts';
import { defineKernel, read, write } from '../../src/gpu/kernel.ts';

const t = suite('runtime');

t('describe(): a CPU adapter names the host CPU, its family and model and its SIMD extension (its kernels run at the CPU\'s speed)', async () => {
  const gpu = await testGpu();
  const line = gpu.describe();
  assert.match(line, /\[features: /);
  let flags = '';
  let fm = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(info)?.[1];
    const model = /^model\s*:\s*(\d+)$/m.exec(info)?.[1];
    if (family && model) fm = ` (family ${family}, model ${model})`;
  } catch {
    // no /proc: only the model can be named
  }
  const isa = / avx512f( |$)/.test(flags) ? 'AVX-512' : / avx2( |$)/.test(flags) ? 'AVX2' : null;
  if (gpu.isLavapipe) {
    assert.ok(line.includes(`; CPU ${gpu.hostCpu}, ${gpu.hostThreads} threads]`), line);
    if (isa) assert.ok(gpu.hostCpu.endsWith(`, ${isa}`), `${gpu.hostCpu} should end with ${isa}`);
  } else {
    assert.not.match(line, /; CPU /);
  }
  const named = await describeHostCpu('  Some   CPU  ');
  if (isa) assert.is(named, `Some CPU${fm}, ${isa}`);
  else assert.match(named, /^Some CPU( \(family \d+, model \d+\))?(, [A-Z0-9.]+)?$/);
});

t('buffer pool: released buffers are reused; stats add up', async () => {
  const gpu = await testGpu();
  const s0 = gpu.poolStats();
  const a = ops.zeros(gpu, [1000]);
  a.dispose();
  const s1 = gpu.poolStats();
  const b = ops.zeros(gpu, [990]); // same bucket
  const s2 = gpu.poolStats();
  assert.is(s2.allocations, s1.allocations, 'reused, not allocated');
  assert.is(s2.liveBytes - s0.liveBytes, bucketSize(990 * 4));
  b.dispose();
  assert.is(gpu.poolStats().liveBytes, s0.liveBytes);
  assert.ok(bucketSize(1000) >= 1000 && bucketSize(1000) <= 1250, 'buckets waste at most 25%');
});

t('a buffer released twice is refused (it would get two owners); optimizer dispose is idempotent', async () => {
  const gpu = await testGpu();
  const buf = gpu.acquire(64, 'twice');
  gpu.release(buf);
  assert.throws(() => gpu.release(buf), /release: buffer '[^']*' was already released/);
  const p = ops.parameter(gpu, [1, 2], [2], 'p');
  const opt = new SGD([p], { lr: 0.1 });
  const live = gpu.poolStats().liveBytes;
  opt.dispose();
  opt.dispose();
  assert.ok(gpu.poolStats().liveBytes < live);
  assert.throws(() => opt.step(), /step\(\) after dispose\(\)/);
});

t('many dispatches go in one submit', async () => {
  const gpu = await testGpu();
  await gpu.sync();
  const s0 = gpu.submitCount;
  let x = ops.tensor(gpu, [1, 2, 3], [3]);
  for (let i = 0; i < 50; i++) x = ops.addScalar(x, 1);
  await x.data();
  assert.is(gpu.submitCount - s0, 1);
  assert.equal([...(await x.floats())], [51, 52, 53]);
});

t('buffer pool: a bucket hands out its oldest free buffer first, whatever order they were released in', async () => {
  const gpu = await testGpu();
  const pool = new BufferPool(gpu.device, 2 ** 20, 2 ** 30, () => {});
  const made = Array.from({ length: 9 }, (_, i) => pool.acquire(64, `b${i}`));
  const other = pool.acquire(4096, 'another bucket');
  for (const i of [4, 0, 8, 2, 7, 1, 5, 3, 6]) pool.release(made[i], true);
  pool.release(other, true);
  const again = Array.from({ length: 9 }, () => pool.acquire(64, 'again'));
  assert.equal(again.map((b) => made.indexOf(b)), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.is(pool.acquire(4096, 'another bucket'), other);
  // Released newest first, the older of two still comes out first.
  pool.release(again[5], true);
  pool.release(again[2], true);
  assert.is(pool.acquire(64, 'x'), made[2]);
  assert.is(pool.acquire(64, 'x'), made[5]);
  pool.destroyFree();
  for (const b of [...made, other]) b.destroy();
});

t('bind groups: a repeated step reuses them; after a trim (buffers destroyed) none is reused and results stay right', async () => {
  const gpu = await testGpu();
  const step = async (k: number): Promise<number[]> => {
    const a = ops.tensor(gpu, [1, 2, 3, 4, 5], [5]);
    const b = ops.tensor(gpu, [k, k, k, k, k], [5]);
    const sum = ops.add(a, b);
    const c = ops.mul(sum, b);
    const out = [...(await c.floats())];
    for (const x of [c, sum, b, a]) x.dispose(); // released in reverse, so the next step's acquisitions meet the same buffers in the same order
    return out;
  };
  await step(1);
  await step(1); // the pool now hands out the same buffers in the same order
  const s0 = gpu.bindGroupStats();
  assert.equal(await step(2), [6, 8, 10, 12, 14]);
  const s1 = gpu.bindGroupStats();
  assert.is(s1.created, s0.created, 'no bind group created for a repeated step');
  assert.ok(s1.reused >= s0.reused + 2, 'its dispatches reused cached groups');
  gpu.trim();
  assert.is(gpu.bindGroupStats().cached, 0, 'trim destroys free buffers, so their groups are forgotten');
  assert.equal(await step(3), [12, 15, 18, 21, 24]);
  assert.ok(gpu.bindGroupStats().created > s1.created, 'new buffers, new groups');
  await gpu.sync(); // no validation error from a group holding a destroyed buffer
});

t('uploads into a buffer that the open batch uses wait for it (no reordering), without a submit', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2], [2]);
  const y = ops.mulScalar(x, 10); // reads x, not yet submitted
  const s0 = gpu.submitCount;
  gpu.upload(x.buffer, new Float32Array([5, 6])); // must not overtake the multiply
  const z = ops.mulScalar(x, 10); // must see the upload
  gpu.upload(x.buffer, new Float32Array([7]), 4); // a second staged upload in the same batch, at an offset
  const w = ops.mulScalar(x, 10);
  assert.is(gpu.submitCount, s0, 'the uploads went through the batch (staging and a copy), not a submit');
  assert.equal([...(await y.floats())], [10, 20]);
  assert.equal([...(await z.floats())], [50, 60]);
  assert.equal([...(await w.floats())], [50, 70]);
  assert.equal([...(await x.floats())], [5, 7]);
});

/** The value every element of `t` holds, or NaN where they differ (whole-array checks without a giant diff). */
async function constantOf(t: { floats(): Promise<Float32Array> }): Promise<number> {
  const v = await t.floats();
  return v.every((x) => x === v[0]) ? v[0] : NaN;
}

t('many staged uploads in one batch (past one staging chunk, and one larger than a chunk) keep their data', async () => {
  const gpu = await testGpu();
  const n = Math.floor(StagingArena.CHUNK / 4 / 3.5); // each region a bit over 2/7 of a chunk: three fit, the fourth starts the next
  const x = ops.tensor(gpu, new Float32Array(n), [n]);
  const outs = [];
  for (let i = 0; i < 6; i++) {
    outs.push(ops.mulScalar(x, 1)); // uses x in the open batch
    gpu.upload(x.buffer, new Float32Array(n).fill(i + 1));
  }
  const big = StagingArena.CHUNK / 4 + 1024; // past a chunk: a staging buffer of its own
  const y = ops.tensor(gpu, new Float32Array(big), [big]);
  const before = ops.mulScalar(y, 1);
  gpu.upload(y.buffer, new Float32Array(big).fill(3));
  const after = ops.mulScalar(y, 1);
  assert.equal(await Promise.all(outs.map(constantOf)), [0, 1, 2, 3, 4, 5]);
  assert.is(await constantOf(before), 0);
  assert.is(await constantOf(after), 3);
  assert.ok(gpu.poolStats().stagingBytes >= 2 * StagingArena.CHUNK, 'two staging chunks held until trim');
  for (const t of [x, y, before, after, ...outs]) t.dispose();
  gpu.trim();
  assert.is(gpu.poolStats().stagingBytes, 0, 'trim releases the staging buffers');
});

// A kernel whose launch aliases one buffer as X (read) and Y (read_write): a validation error
// that surfaces at the next sync.
const copyKernel = defineKernel({
  file: 'test-copy.wgsl',
  source: '@compute @workgroup_size(1) fn main() {\n  Y[0] = X[0] + f32(p.n);\n}\n',
  params: { n: 'u32' },
  buffers: { X: read(), Y: write() },
  entries: { main: ['X', 'Y'] },
});

t('staged uploads past the batch budget submit the batch instead, and keep the order', async () => {
  const gpu = await testGpu();
  const n = StagingArena.CHUNK / 4; // one chunk each
  const count = StagingArena.MAX_PER_BATCH / StagingArena.CHUNK + 4; // the budget runs out once
  const x = ops.tensor(gpu, new Float32Array(n), [n]);
  const s0 = gpu.submitCount;
  const outs = [];
  for (let i = 0; i < count; i++) {
    outs.push(ops.mulScalar(x, 1));
    gpu.upload(x.buffer, new Float32Array(n).fill(i + 1));
  }
  assert.is(gpu.submitCount - s0, 1, 'one submit when the budget ran out');
  assert.ok(gpu.poolStats().stagingBytes <= StagingArena.MAX_PER_BATCH, 'staging held within the budget');
  assert.equal(await Promise.all(outs.map(constantOf)), Array.from({ length: count }, (_, i) => i));
  for (const t of [x, ...outs]) t.dispose();
  gpu.trim();
});

t('a WGSL compile error names the kernel file and line', async () => {
  const gpu = await testGpu();
  const k = defineKernel({ file: 'broken.wgsl', source: '@compute @workgroup_size(1) fn main() {\n\n  let x: f32 = p.n;\n}\n', params: { n: 'u32' }, buffers: {}, entries: { main: [] } });
  try {
    await gpu.compile(k.main);
    assert.unreachable('compiled');
  } catch (e) {
    assert.match((e as Error).message, /kernels\/broken\.wgsl:3:/);
  }
});

t('a failed compile is reported again on the next try', async () => {
  const gpu = await testGpu();
  const k = defineKernel({ file: 'again.wgsl', source: '@compute @workgroup_size(1) fn main() {\n  let x: f32 = 1u;\n}\n', params: {}, buffers: {}, entries: { main: [] } });
  for (let i = 0; i < 2; i++) {
    try {
      await gpu.compile(k.main);
      assert.unreachable(`compile ${i} passed`);
    } catch (e) {
      assert.match((e as Error).message, /kernels\/again\.wgsl:2:/);
    }
  }
  // A template error must not leave an error scope open: later errors still surface.
  const bad = defineKernel({ file: 'bad.wgsl', source: '//#if X\n@compute @workgroup_size(1) fn main() {}\n', params: {}, buffers: {}, entries: { main: [] } });
  try {
    await gpu.compile(bad.main);
  } catch (e) {
    assert.match((e as Error).message, /never closed/);
  }
  const x = ops.zeros(gpu, [4]);
  gpu.launch(copyKernel.main, { params: { n: 1 }, buffers: { X: x.buffer, Y: x.buffer }, workgroups: [1], label: 'after-template-error' });
  try {
    await gpu.sync();
    assert.unreachable('error swallowed');
  } catch (e) {
    assert.match((e as Error).message, /after-template-error/);
  }
  x.dispose();
});

t('template lines map back to source lines', () => {
  const src = 'a\n//#unroll I 3\nx{I} = {I * 2};\n//#end\n//#if F\nyes\n//#else\nno\n//#endif\nend';
  const on = expandWgsl(src, { F: true });
  assert.is(on.code, 'a\nx0 = 0;\nx1 = 2;\nx2 = 4;\nyes\nend');
  assert.equal(on.lineMap, [1, 3, 3, 3, 6, 10]);
  assert.is(expandWgsl(src, {}).code.split('\n')[4], 'no');
  assert.throws(() => expandWgsl('//#if X\n', {}, {}, 'f.wgsl'), /f\.wgsl:1: \/\/#if is never closed/);
});

t('macros: defined per flag, arguments by whole word, then unrolled arithmetic', () => {
  const src = '//#if V\n//#define AT(a, i) a[{i * 2}]\n//#else\n//#define AT(a, i) f(a, {i})\n//#endif\n//#unroll i 2\nx = AT(buf, i) + AT(b(1, 2), i);\n//#end';
  assert.is(expandWgsl(src, { V: true }).code, 'x = buf[0] + b(1, 2)[0];\nx = buf[2] + b(1, 2)[2];');
  assert.is(expandWgsl(src, {}).code, 'x = f(buf, 0) + f(b(1, 2), 0);\nx = f(buf, 1) + f(b(1, 2), 1);');
  assert.throws(() => expandWgsl('//#define F(a) a\nF(1, 2)', {}, {}, 'm.wgsl'), /m\.wgsl:2: macro F takes 1 arguments, got 2/);
});

t('a validation error surfaces at the next sync, naming the op', async () => {
  const gpu = await testGpu();
  const x = ops.zeros(gpu, [4]);
  gpu.launch(copyKernel.main, { params: { n: 1 }, buffers: { X: x.buffer, Y: x.buffer }, workgroups: [1], label: 'my-op [3x4]' });
  try {
    await gpu.sync();
    assert.unreachable('no error');
  } catch (e) {
    assert.match((e as Error).message, /my-op \[3x4\]/);
  }
  // The runtime keeps working afterwards.
  assert.equal([...(await ops.addScalar(ops.tensor(gpu, [1], [1]), 1).floats())], [2]);
});

t('out-of-memory is refused before allocating, naming the tensor', async () => {
  const gpu = await testGpu();
  const limit = gpu.memoryLimit;
  gpu.memoryLimit = gpu.poolStats().liveBytes + 1024;
  try {
    assert.throws(() => ops.zeros(gpu, [1000, 1000], 'big'), /out of GPU memory: big \[1000x1000\] needs 3\.8 MiB/);
  } finally {
    gpu.memoryLimit = limit;
  }
});

t('profiler: one record per dispatch with a positive time', async () => {
  const gpu = await testGpu();
  if (!gpu.canProfile) {
    console.log('  skip: no timestamp-query on this adapter');
    return;
  }
  const x = ops.zeros(gpu, [256, 256]);
  gpu.startProfile();
  ops.matmul(x, x);
  ops.exp(x);
  const recs = await gpu.endProfile();
  assert.is(recs.length, 2);
  assert.match(recs[0].label, /^matmul \[256x256\]@\[256x256\]/);
  assert.ok(recs.every((r) => r.ms >= 0));
});

// Dawn rounds timestamps down to multiples of 65.536 us unless its timestamp_quantization
// toggle is off (DEFAULT_DAWN_FLAGS): every dispatch then read 0, 65.5 or 131 us. With the
// real clock, 40 small dispatches cannot all land on multiples of 2^16 ns by chance.
t('profiler: timestamps are not quantized to 65.536 us', async () => {
  const gpu = await testGpu();
  if (!gpu.canProfile) {
    console.log('  skip: no timestamp-query on this adapter');
    return;
  }
  const x = ops.zeros(gpu, [64, 64]);
  gpu.startProfile();
  for (let i = 0; i < 40; i++) ops.exp(x).dispose();
  const recs = await gpu.endProfile();
  x.dispose();
  const onGrid = recs.filter((r) => Math.abs(r.ms / 0.065536 - Math.round(r.ms / 0.065536)) < 1e-6).length;
  assert.ok(onGrid < recs.length, `all ${recs.length} dispatch times are multiples of 65.536 us: ${recs.slice(0, 6).map((r) => r.ms).join(', ')}`);
});

t('a destroyed device refuses work with a clear message', async () => {
  const gpu = await Gpu.create();
  const x = ops.zeros(gpu, [4]);
  gpu.destroy();
  assert.throws(() => ops.exp(x), /the GPU device was destroyed/);
});

t('device loss is reported, not swallowed', async () => {
  const gpu = await Gpu.create();
  const x = ops.zeros(gpu, [4]);
  gpu.device.destroy(); // lost behind the runtime's back
  await gpu.device.lost;
  assert.throws(() => ops.exp(x), /the GPU device was lost \(destroyed/);
  gpu.destroy();
});

t('with no Vulkan driver, the error names the fix', async () => {
  const { spawnSync } = await import('node:child_process');
  const { repoRoot } = await import('../helpers/paths.ts');
  const r = spawnSync(process.execPath, [`${repoRoot}/dist/cli.js`, 'demo', '--steps', '1'], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 1);
  assert.match(r.stderr, /ctvlm: no WebGPU adapter: Node needs a Vulkan driver; run `npm run setup`/);
  // (Dawn itself logs a C++ source location; what must not appear is a JavaScript stack.)
  assert.not.match(r.stderr, /at .*(file:\/\/|\.js:\d)/, 'no JavaScript stack trace');
});

t.run();
