// A standalone harness for matmul kernel experiments on dawn.node (issue 11; the README's
// "Why matmul stays at 26-41% of the FMA roof on lavapipe"): compiles each configuration of a
// generator module, checks 256 sampled outputs against float64 (maxdiff), and times the
// configurations in interleaved rounds (the VM's speed drifts; medians of 5).
// usage, from the repository root after the README's set-up (node scripts/setup.mjs):
//   node scripts/issue11/matmul-harness.mjs 1024 1024 1024 matmul-sg-gen.mjs 'matmul-sg-gen.mjs:NOLOAD=ab' \
//     'matmul-sg-gen.mjs:ONE=1' 'matmul-sg-gen.mjs:ROWS=64,CV=2' 'matmul-sg-gen.mjs:TEX=ab'
// (options in matmul-sg-gen.mjs; NOLOAD and ONE configurations compute wrong products on
// purpose: they time the kernel without some of its loads.)
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
// dawn.node polls from setImmediate while a promise is pending, spinning a core that lavapipe
// needs (src/gpu/polling.ts): poll from a 1 ms timer instead.
globalThis.setImmediate = (fn, ...a) => setTimeout(fn, 1, ...a);
const [M, N, K] = process.argv.slice(2, 5).map(Number);
const cfgs = process.argv.slice(5);
const gpu = create([]); globalThis.__keep = gpu;
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredFeatures: ['subgroups', 'timestamp-query'] });
const rnd = (n) => { const a = new Float32Array(n); let s = 12345; for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; a[i] = (s / 2 ** 32) * 2 - 1; } return a; };
const a = rnd(M * K), b = rnd(K * N);
const mk = (data, usage) => { const buf = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST }); device.queue.writeBuffer(buf, 0, data); return buf; };
const Ab = mk(a, GPUBufferUsage.STORAGE), Bb = mk(b, GPUBufferUsage.STORAGE | (K * N * 4 <= 65536 ? GPUBufferUsage.UNIFORM : 0));
const Cb = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
const R = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const texA = device.createTexture({ size: [K / 4, M], format: 'rgba32float', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST });
device.queue.writeTexture({ texture: texA }, a, { bytesPerRow: K * 4 }, [K / 4, M]);
const texB = device.createTexture({ size: [N / 4, K], format: 'rgba32float', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST });
device.queue.writeTexture({ texture: texB }, b, { bytesPerRow: N * 4 }, [N / 4, K]);
const runs = [];
for (const cfg of cfgs) {
  const [file, kv = ''] = cfg.split(':');
  const opts = Object.fromEntries(kv.split(',').filter(Boolean).map((s) => s.split('=')));
  const gen = (await import(new URL(file, import.meta.url).href)).default;
  const { code, entry, dispatch, params, withBias, constants, textures, uniformB } = gen(M, N, K, opts);
  const mod = device.createShaderModule({ code });
  const info = await mod.getCompilationInfo();
  for (const m of info.messages) console.log(cfg, m.type, m.lineNum, m.message);
  const cIdx = withBias ? 4 : 3;
  const ents = [0, 1, 2, cIdx].map((binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: binding === 0 || (binding === 2 && uniformB) ? 'uniform' : binding === cIdx ? 'storage' : 'read-only-storage' } }));
  if (textures) ents.push({ binding: 5, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float' } }, { binding: 6, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float' } });
  const bgl = device.createBindGroupLayout({ entries: ents });
  const pipe = device.createComputePipeline({ layout: device.createPipelineLayout({ bindGroupLayouts: [bgl] }), compute: { module: mod, entryPoint: entry, constants: constants ?? {} } });
  const U = mk(params ?? new Uint32Array([M, N, K, 0]), GPUBufferUsage.UNIFORM);
  const entries = [U, Ab, Bb, Cb].map((buffer, i) => ({ binding: withBias && i === 3 ? 4 : i, resource: { buffer } }));
  if (textures) entries.push({ binding: 5, resource: texA.createView() }, { binding: 6, resource: texB.createView() });
  const bg = device.createBindGroup({ layout: bgl, entries });
  runs.push({ cfg, pipe, bg, dispatch, times: [] });
}
const run = (r, n) => { const enc = device.createCommandEncoder(); enc.clearBuffer(Cb); for (let i = 0; i < n; i++) { const p = enc.beginComputePass(); p.setPipeline(r.pipe); p.setBindGroup(0, r.bg); p.dispatchWorkgroups(...r.dispatch); p.end(); } device.queue.submit([enc.finish()]); return device.queue.onSubmittedWorkDone(); };
const iters = Math.max(1, Math.round(3e8 / (M * N * K / 64)));
for (const r of runs) {
  await run(r, 1);
  const enc = device.createCommandEncoder(); enc.copyBufferToBuffer(Cb, 0, R, 0, M * N * 4); device.queue.submit([enc.finish()]);
  await R.mapAsync(GPUMapMode.READ); const c = new Float32Array(R.getMappedRange().slice(0)); R.unmap();
  let maxd = 0; let s = 7;
  for (let t = 0; t < 256; t++) { s = (s * 1103515245 + 12345) >>> 0; const i = s % M; s = (s * 1103515245 + 12345) >>> 0; const j = s % N; let ref = 0; for (let k = 0; k < K; k++) ref += a[i * K + k] * b[k * N + j]; maxd = Math.max(maxd, Math.abs(ref - c[i * N + j])); }
  r.maxd = maxd;
}
for (let round = 0; round < 5; round++) for (const r of runs) { const t0 = performance.now(); await run(r, iters); r.times.push((performance.now() - t0) / iters); }
for (const r of runs) { r.times.sort((x, y) => x - y); const med = r.times[2]; console.log(`${r.cfg.padEnd(40)} ${M}x${N}x${K}: ${med.toFixed(2)} ms  ${(2 * M * N * K / med / 1e6).toFixed(1)} GFLOP/s (best ${(2 * M * N * K / r.times[0] / 1e6).toFixed(1)})  maxdiff ${r.maxd.toExponential(1)}`); }
device.destroy(); process.exit(0);
