// Per-lane vec4 loads from a storage buffer against the same loads from a uniform buffer (issue
// 11): same kernel, same lane-divergent addresses inside a loop, same 64 KiB window (the largest
// uniform binding lavapipe allows), sums checked equal. Mesa 25.0.7 compiles a divergent
// storage load as a run-time loop over the lanes (lp_bld_nir_soa.c emit_load_mem) and a
// divergent uniform load as straight-line gathers (emit_load_ubo, build_gather).
// The storage half is the bench's roofline load4 (kernels/roofline.wgsl, the "load rate" rows)
// written out by hand. The bench's roofline section now has the same loads from a uniform
// buffer as rows of their own (kernels/roofline.wgsl load4u, on the kernel declarations'
// uniform arrays); this script differs in its window, 64 KiB (beyond a 48 KiB first-level
// cache) against the roofline's 32 KiB, and on the family-26 AVX-512 EPYC it read uniform loads
// 1.35-1.5x faster where the roofline rows read no difference.
// usage, from the repository root after the README's set-up:
//   node scripts/issue11/ubo-loads.mjs            (PER=8 loads a round, ITERS=256 rounds)
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
globalThis.setImmediate = (fn, ...a) => setTimeout(fn, 1, ...a);
const gpu = create([]); globalThis.__keep = gpu;
const adapter = await gpu.requestAdapter();
console.log('maxUniformBufferBindingSize', adapter.limits.maxUniformBufferBindingSize);
const device = await adapter.requestDevice({ requiredLimits: { maxUniformBufferBindingSize: adapter.limits.maxUniformBufferBindingSize } });
const W = 4096; // vec4s = 64 KiB
const PER = +(process.env.PER ?? 8), ITERS = +(process.env.ITERS ?? 256), INV = 1 << 16;
const code = (kind) => `
struct U { v: array<vec4f, ${W}> }
${kind === 'uniform' ? `@group(0) @binding(0) var<uniform> X: U;` : `@group(0) @binding(0) var<storage, read> X: U;`}
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let base = i * 3u;
${Array.from({ length: PER }, (_, k) => `  var s${k} = vec4f(0.0);`).join('\n')}
  for (var it = 0u; it < ${ITERS}u; it++) {
    let at = base + it * ${PER}u;
${Array.from({ length: PER }, (_, k) => `    s${k} += X.v[(at + ${k}u) & ${W - 1}u];`).join('\n')}
  }
  var s = vec4f(0.0);
${Array.from({ length: PER }, (_, k) => `  s += s${k};`).join('\n')}
  Y[i] = s.x + s.y + s.z + s.w;
}`;
const host = new Float32Array(W * 4); for (let i = 0; i < host.length; i++) host[i] = (i % 7) - 3;
const runs = [];
for (const kind of ['storage', 'uniform']) {
  const X = device.createBuffer({ size: host.byteLength, usage: (kind === 'uniform' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(X, 0, host);
  const Y = device.createBuffer({ size: INV * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: code(kind) }), entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: X } }, { binding: 1, resource: { buffer: Y } }] });
  runs.push({ kind, pipe, bg, Y, t: [] });
}
const run = async (r) => { const e = device.createCommandEncoder(); const p = e.beginComputePass(); p.setPipeline(r.pipe); p.setBindGroup(0, r.bg); p.dispatchWorkgroups(INV / 64); p.end(); device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone(); };
for (const r of runs) await run(r);
// check: both give the same sums
const read = async (buf) => { const R = device.createBuffer({ size: INV * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }); const e = device.createCommandEncoder(); e.copyBufferToBuffer(buf, 0, R, 0, INV * 4); device.queue.submit([e.finish()]); await R.mapAsync(GPUMapMode.READ); return new Float32Array(R.getMappedRange().slice(0)); };
const a = await read(runs[0].Y), b = await read(runs[1].Y);
let bad = 0; for (let i = 0; i < INV; i++) if (a[i] !== b[i]) bad++;
console.log('mismatches', bad);
for (let round = 0; round < 5; round++) for (const r of runs) { const t0 = performance.now(); await run(r); r.t.push(performance.now() - t0); }
const bytes = INV * ITERS * PER * 16;
for (const r of runs) { const m = r.t.sort((x, y) => x - y)[2]; console.log(r.kind.padEnd(8), m.toFixed(1), 'ms', (bytes / m / 1e6).toFixed(2), 'GB/s of lane loads'); }
