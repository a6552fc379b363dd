// Kernel declarations (src/gpu/kernel.ts): the generated parameter struct and bindings run
// (a kernel that reads every parameter type and an optional buffer gives the float64
// answer), and every way a declaration or a launch can disagree with the kernel is an error
// naming the kernel and the field, never numbers read from the wrong slot.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { defineKernel, read, write } from '../../src/gpu/kernel.ts';
import { GpuError } from '../../src/errors.ts';

const t = suite('kernel declarations');

// y[i] = x[i] * scale + offset + dims[i % 8] (+ bias[i] when HAS_BIAS), for i < n.
const source = `
@compute @workgroup_size(64)
fn affine(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
  var v = X[i] * p.scale + f32(p.offset) + f32(p.dims[(i % 8u) / 4u][i % 4u]);
//#if HAS_BIAS
  v += bias[i];
//#endif
  Y[i] = v;
}
`;

const affineKernel = defineKernel({
  file: 'test-affine.wgsl',
  source,
  params: { n: 'u32', scale: 'f32', offset: 'i32', dims: 'u32[8]' },
  buffers: { X: read(), bias: read('f32', { optional: true }), Y: write() },
  entries: { affine: ['X', 'bias', 'Y'] },
});

t('generated declarations: every parameter type, an optional buffer bound or left out', async () => {
  const gpu = await testGpu();
  const n = 21;
  const xs = Array.from({ length: n }, (_, i) => i * 0.5 - 3);
  const bs = Array.from({ length: n }, (_, i) => (i % 3) - 1);
  const dims = [1, 2, 3, 4, 5, 6, 7, 8];
  const x = ops.tensor(gpu, xs, [n]);
  const b = ops.tensor(gpu, bs, [n]);
  for (const withBias of [false, true]) {
    const y = ops.zeros(gpu, [n]);
    gpu.launch(affineKernel.affine, {
      flags: { HAS_BIAS: withBias },
      params: { n, scale: -1.5, offset: -7, dims },
      buffers: { X: x.buffer, bias: withBias ? b.buffer : null, Y: y.buffer },
      workgroups: [1],
      label: 'affine',
    });
    const got = await y.floats();
    xs.forEach((v, i) => assert.is(got[i], Math.fround(v * -1.5 - 7 + dims[i % 8] + (withBias ? bs[i] : 0)), `y[${i}]`));
    y.dispose();
  }
  x.dispose();
  b.dispose();
});

t('launch errors name the kernel and the parameter or buffer', async () => {
  const gpu = await testGpu();
  const x = ops.zeros(gpu, [4]);
  const base = { params: { n: 4, scale: 1, offset: 0, dims: [] as number[] }, buffers: { X: x.buffer, bias: null, Y: x.buffer }, workgroups: [1] as [number], label: 'affine' };
  const bad = (args: unknown, re: RegExp) =>
    assert.throws(() => gpu.launch(affineKernel.affine, args as typeof base), (e: Error) => e instanceof GpuError && re.test(e.message) && e.message.includes('test-affine.wgsl:affine'));
  bad({ ...base, params: { scale: 1, offset: 0, dims: [] } }, /parameter 'n' \(u32\) is missing/);
  bad({ ...base, params: { ...base.params, n: -1 } }, /parameter 'n' = -1 is not an integer in \[0, 4294967295\]/);
  bad({ ...base, params: { ...base.params, offset: 0.5 } }, /parameter 'offset' = 0.5 is not an integer/);
  bad({ ...base, params: { ...base.params, scale: NaN } }, /parameter 'scale' is NaN/);
  bad({ ...base, params: { ...base.params, dims: [1, 2, 3, 4, 5, 6, 7, 8, 9] } }, /parameter 'dims' must be an array of at most 8/);
  bad({ ...base, params: { ...base.params, extra: 1 } }, /unknown parameter 'extra'/);
  bad({ ...base, buffers: { X: x.buffer, bias: null } }, /needs buffer 'Y'/);
  bad({ ...base, buffers: { X: null, bias: null, Y: x.buffer } }, /needs buffer 'X'/);
  bad({ ...base, buffers: { ...base.buffers, Z: x.buffer } }, /has no buffer 'Z'/);
  x.dispose();
});

t('declaration errors: own bindings, a missing entry point, an unused buffer, a bad parameter type', () => {
  const decl = (over: Record<string, unknown>) => () =>
    defineKernel({ file: 'bad.wgsl', source, params: { n: 'u32' }, buffers: { X: read(), Y: write() }, entries: { affine: ['X', 'Y'] }, ...over } as Parameters<typeof defineKernel>[0]);
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof GpuError && re.test(e.message) && e.message.includes('kernels/bad.wgsl'));
  bad(decl({ source: `@group(0) @binding(1) var<storage, read> X: array<f32>;\n${source}` }), /declares its own @binding or struct Params/);
  bad(decl({ entries: { affine: ['X', 'Y'], other: ['X'] } }), /entry point 'other' is declared but the file has no fn other/);
  bad(decl({ buffers: { X: read(), Y: write(), W: read() } }), /buffer 'W' is declared but no entry point uses it/);
  bad(decl({ entries: { affine: ['X', 'Q'] } }), /uses buffer 'Q', which is not declared/);
  bad(decl({ params: { dims: 'u32[6]' } }), /'dims' is u32\[6\]; the length must be a positive multiple of 4/);
});

t('a WGSL error in the generated declarations is reported as such, one in the file by its line', async () => {
  const gpu = await testGpu();
  const k = defineKernel({ file: 'typo.wgsl', source: source.replace('Y[i] = v;', 'Y[i] = v + undefinedName;'), params: { n: 'u32', scale: 'f32', offset: 'i32', dims: 'u32[8]' }, buffers: { X: read(), bias: read(), Y: write() }, entries: { affine: ['X', 'bias', 'Y'] } });
  const x = ops.zeros(gpu, [4]);
  gpu.launch(k.affine, { params: { n: 4, scale: 1, offset: 0, dims: [] }, buffers: { X: x.buffer, bias: x.buffer, Y: x.buffer }, workgroups: [1], label: 'typo' });
  const line = source.split('\n').findIndex((l) => l.includes('Y[i] = v;')) + 1;
  await gpu.sync().then(
    () => assert.unreachable('no compile error'),
    (e: Error) => assert.match(e.message, new RegExp(`kernels/typo\\.wgsl:${line}:`)),
  );
  x.dispose();
});

t('a WGSL error in an included file names that file and line; two declarations of one file name do not share pipelines', async () => {
  const gpu = await testGpu();
  const src = '@compute @workgroup_size(1) fn main() {\n  Y[0] = helper();\n}\n';
  const lib = { file: 'lib/fake.wgsl', source: 'fn helper() -> f32 {\n  return undefinedThing;\n}\n' };
  const k = defineKernel({ file: 'uses-lib.wgsl', source: src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [lib] });
  await gpu.compile(k.main).then(
    () => assert.unreachable('compiled'),
    (e: Error) => assert.match(e.message, /kernels\/lib\/fake\.wgsl:2:/),
  );
  const good = defineKernel({ file: 'uses-lib.wgsl', source: src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [{ file: 'lib/fake.wgsl', source: 'fn helper() -> f32 { return 7.0; }\n' }] });
  const y = ops.zeros(gpu, [1]);
  gpu.launch(good.main, { params: {}, buffers: { Y: y.buffer }, workgroups: [1], label: 'good' });
  assert.equal([...(await y.floats())], [7]);
  y.dispose();
});

t.run();
