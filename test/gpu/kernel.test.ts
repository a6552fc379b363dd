// Kernel declarations (src/gpu/kernel.ts): the generated parameter struct and bindings run
// (a kernel that reads every parameter type and an optional buffer gives the float64
// answer), and every way a declaration or a launch can disagree with the kernel is an error
// naming the kernel and the field, never numbers read from the wrong slot.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { defineKernel, read, uniform, write } from '../../src/gpu/kernel.ts';
import { CHOICE_TUNING, NULLABLE_TUNING, defaultTuning, setTuning } from '../../src/gpu/tuning.ts';
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

// y[i] = sum of U[(i * 3 + j) % L].x for j < 4: lane-divergent reads of a uniform array whose
// length L the launch sets ({L}), bound as a range of a larger buffer.
const gatherKernel = defineKernel({
  file: 'test-uniform.wgsl',
  source: `
@compute @workgroup_size(8)
fn gather(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var j = 0u; j < 4u; j++) { s += U[(i * 3u + j) % p.len].x; }
  Y[i] = s;
}
@compute @workgroup_size(1)
fn other() { Y[0] = 1.0; }
`,
  params: { n: 'u32', len: 'u32' },
  buffers: { U: uniform('vec4f', '{L}'), Y: write() },
  entries: { gather: ['U', 'Y'], other: ['Y'] },
});

t('uniform arrays: a length set by the launch, ranges of a buffer at aligned offsets; bad ranges and declarations name the binding', async () => {
  const gpu = await testGpu();
  const align = gpu.limits.minUniformBufferOffsetAlignment;
  const total = (2 * align) / 4 + 64; // floats: room for a range at offset 2 * align
  const host = Float32Array.from({ length: total }, (_, i) => (i % 13) - 6 + i / 1024);
  const u = ops.tensor(gpu, host, [total]);
  const n = 21;
  const y = ops.zeros(gpu, [n]);
  for (const [offset, L] of [[0, 16], [align, 9], [2 * align, 1]]) {
    gpu.launch(gatherKernel.gather, { params: { n, len: L }, consts: { L }, buffers: { U: { buffer: u.buffer, offset, size: L * 16 }, Y: y.buffer }, workgroups: [Math.ceil(n / 8)], label: `gather L=${L}` });
    const got = await y.floats();
    for (let i = 0; i < n; i++) {
      let want = 0;
      for (let j = 0; j < 4; j++) want += host[offset / 4 + ((i * 3 + j) % L) * 4];
      assert.ok(Math.abs(got[i] - want) <= 1e-6 * (1 + Math.abs(want)), `offset ${offset} L=${L}: y[${i}] = ${got[i]}, expected ${want}`);
    }
  }
  // The other entry point does not bind U and needs no {L}.
  gpu.launch(gatherKernel.other, { params: { n, len: 1 }, buffers: { Y: y.buffer }, workgroups: [1], label: 'other' });
  assert.is((await y.floats())[0], 1);
  const bad = (range: { offset: number; size: number }, re: RegExp) =>
    assert.throws(
      () => gpu.launch(gatherKernel.gather, { params: { n, len: 1 }, consts: { L: 1 }, buffers: { U: { buffer: u.buffer, ...range }, Y: y.buffer }, workgroups: [1], label: 'bad range' }),
      (e: Error) => e instanceof GpuError && re.test(e.message) && e.message.includes('test-uniform.wgsl:gather @binding(1)'),
    );
  if (align > 4) bad({ offset: 4, size: 16 }, new RegExp(`offset is not a multiple of ${align} bytes`));
  bad({ offset: 0, size: total * 4 + 16 }, /are not inside its \d+-byte buffer/);
  const big = ops.zeros(gpu, [gpu.limits.maxUniformBufferBindingSize / 4 + 4]);
  bad0(() => gpu.launch(gatherKernel.gather, { params: { n, len: 1 }, consts: { L: 1 }, buffers: { U: { buffer: big.buffer, offset: 0, size: gpu.limits.maxUniformBufferBindingSize + 16 }, Y: y.buffer }, workgroups: [1], label: 'too big' }), /more than one uniform binding holds here/);
  bad0(() => gpu.launch(gatherKernel.gather, { params: { n, len: 1 }, consts: { L: 1 }, buffers: { U: big.buffer, Y: y.buffer }, workgroups: [1], label: 'whole' }), /binds a \d+-byte buffer as uniform @binding\(1\).*bind a range/);
  bad0(() => gpu.launch(gatherKernel.gather, { params: { n, len: 1 }, buffers: { U: { buffer: u.buffer, offset: 0, size: 16 }, Y: y.buffer }, workgroups: [1], label: 'no L' }), /uniform array has length \{L\}, a constant this launch does not set/);
  bad0(() => gpu.launch(gatherKernel.gather, { params: { n, len: 4 }, consts: { L: 4 }, buffers: { U: { buffer: u.buffer, offset: 0, size: 32 }, Y: y.buffer }, workgroups: [1], label: 'short' }), /binds 32 bytes at uniform @binding\(1\), whose array needs 64/);
  // A fixed length and the vec4<f32> spelling compile too.
  const fixed = defineKernel({
    file: 'test-uniform-fixed.wgsl',
    source: '@compute @workgroup_size(1)\nfn first() { Y[0] = U[1].y; }\n',
    params: {},
    buffers: { U: uniform('vec4<f32>', 2), Y: write() },
    entries: { first: ['U', 'Y'] },
  });
  gpu.launch(fixed.first, { params: {}, buffers: { U: { buffer: u.buffer, offset: 0, size: 32 }, Y: y.buffer }, workgroups: [1], label: 'fixed' });
  assert.is((await y.floats())[0], host[5]);
  bad0(() => gpu.launch(fixed.first, { params: {}, buffers: { U: { buffer: u.buffer, offset: 0, size: 16 }, Y: y.buffer }, workgroups: [1], label: 'short' }), /binds 16 bytes at uniform @binding\(1\), whose array needs 32/);
  const decl = (U: ReturnType<typeof uniform>) => () => defineKernel({ file: 'bad-uniform.wgsl', source: 'fn gather() {}', params: {}, buffers: { U }, entries: { gather: ['U'] } });
  bad0(decl(uniform('f32', 4)), /uniform buffer 'U' has element type f32; uniform arrays need a 16-byte element/);
  bad0(decl(uniform('vec4f', 'N')), /uniform buffer 'U' has length 'N'; give a number or a launch constant in braces/);
  for (const x of [u, y, big]) x.dispose();
});

const bad0 = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof GpuError && re.test(e.message));

t('setTuning: a field set from FIELD=VALUE text; unknown fields and values of the wrong type are refused by name', () => {
  const tn = defaultTuning();
  setTuning(tn, 'matmul.uniformB=false');
  setTuning(tn, 'matmul.rows=64');
  setTuning(tn, 'attention.variant=tiled');
  setTuning(tn, 'matmul.group=4');
  assert.equal([tn.matmul.uniformB, tn.matmul.rows, tn.attention.variant, tn.matmul.group], [false, 64, 'tiled', 4]);
  setTuning(tn, 'matmul.group=null');
  assert.is(tn.matmul.group, null);
  assert.throws(() => setTuning(tn, 'matmul.nope=1'), /no field matmul\.nope \(fields: matmul\.variant/);
  assert.throws(() => setTuning(tn, 'nope.x=1'), /no field nope/);
  // A group spelled in another case (the bench section is 'layernorm') is pointed to.
  assert.throws(() => setTuning(tn, 'layernorm.variant=row'), /no field layernorm \(did you mean layerNorm\?\) \(groups: matmul, .*layerNorm.*; fields: fuseEpilogues/);
  assert.throws(() => setTuning(tn, 'matmul.rows=x'), /matmul\.rows takes number, got string/);
  assert.throws(() => setTuning(tn, 'matmul.rows=null'), /matmul\.rows takes number, got null/);
  assert.throws(() => setTuning(tn, 'matmul.rows'), /expected FIELD=VALUE/);
  assert.throws(() => setTuning(tn, 'attention.variant=bogus'), /attention\.variant is one of auto, subgroup, plain, tiled, tiled-f16/);
  assert.throws(() => setTuning(tn, 'matmul.variant=tiled-f16'), /matmul\.variant is one of auto, subgroup, tiled, tiled-wg, f16/);
  // Fields whose default is null take their own type, not anything.
  assert.throws(() => setTuning(tn, 'matmul.uniformB=False'), /matmul\.uniformB takes boolean or null, got string \(true and false are lower case\)/);
  assert.throws(() => setTuning(tn, 'matmul.uniformB=1'), /matmul\.uniformB takes boolean or null, got number/);
  assert.throws(() => setTuning(tn, 'matmul.group=abc'), /matmul\.group takes number or null, got string/);
  assert.throws(() => setTuning(tn, 'matmul={}'), /matmul is a group of fields; set one of them \(matmul\.variant/);
  assert.throws(() => setTuning(tn, 'matmul.constructor=1'), /no field matmul\.constructor/);
  assert.throws(() => setTuning(tn, '__proto__.x=1'), /no field __proto__/);
  setTuning(tn, 'matmul.tile={"bm":32,"bn":32,"bk":16,"tm":4,"tn":4}');
  assert.equal(tn.matmul.tile, { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 });
  assert.is(tn.matmul.uniformB, false, 'refused values leave the field as it was');
  // The attention layout override is checked field by field before any device work.
  setTuning(tn, 'attention.layout={"rows":3,"parts":2}');
  assert.equal(tn.attention.layout, { rows: 3, parts: 2 });
  assert.throws(() => setTuning(tn, 'attention.layout={"rows":5}'), /attention\.layout\.rows = 5 is not 1, 2, 3 or 4/);
  assert.throws(() => setTuning(tn, 'attention.layout={"parts":3}'), /attention\.layout\.parts = 3 is not 1, 2, 4 or 8/);
  assert.throws(() => setTuning(tn, 'attention.layout={"chunk":0}'), /attention\.layout\.chunk = 0 is not a positive integer/);
  assert.throws(() => setTuning(tn, 'attention.layout={"row":2}'), /attention\.layout has no field row \(parts, chunk, rows\)/);
  assert.equal(tn.attention.layout, { rows: 3, parts: 2 }, 'refused layouts leave the field as it was');
  // Every field whose default is null has its type in the table.
  const walk = (o: Record<string, unknown>, at: string[]): string[] =>
    Object.entries(o).flatMap(([k, v]) => (v !== null && typeof v === 'object' ? walk(v as Record<string, unknown>, [...at, k]) : v === null ? [[...at, k].join('.')] : []));
  assert.equal(walk(defaultTuning() as unknown as Record<string, unknown>, []).sort(), Object.keys(NULLABLE_TUNING).sort());
  // Every string field has its names in CHOICE_TUNING.
  const strings = (o: Record<string, unknown>, at: string[]): string[] =>
    Object.entries(o).flatMap(([k, v]) => (v !== null && typeof v === 'object' ? strings(v as Record<string, unknown>, [...at, k]) : typeof v === 'string' ? [[...at, k].join('.')] : []));
  assert.equal(strings(defaultTuning() as unknown as Record<string, unknown>, []).sort(), Object.keys(CHOICE_TUNING).sort());
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

t('an expanded include takes the file\'s flags and constants; its errors name its line, the file\'s errors theirs', async () => {
  const gpu = await testGpu();
  const lib = { file: 'lib/flagged.wgsl', source: 'fn helper() -> f32 {\n//#if TWICE\n  return 2.0 * {BASE}.0;\n//#else\n  return {BASE}.0;\n//#endif\n}\n', expand: true };
  const src = '@compute @workgroup_size(1) fn main() {\n  Y[0] = helper();\n}\n';
  const k = defineKernel({ file: 'uses-flagged.wgsl', source: src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [lib] });
  const y = ops.zeros(gpu, [1]);
  for (const [twice, want] of [[false, 3], [true, 6]] as const) {
    gpu.launch(k.main, { params: {}, buffers: { Y: y.buffer }, workgroups: [1], label: 'flagged', flags: { TWICE: twice }, consts: { BASE: 3 } });
    assert.equal([...(await y.floats())], [want], `TWICE=${twice}`);
  }
  y.dispose();
  const badLib = defineKernel({ file: 'uses-flagged.wgsl', source: src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [{ ...lib, source: lib.source.replace('2.0 *', 'oops *') }] });
  await gpu.compile(badLib.main, { flags: { TWICE: true }, consts: { BASE: 1 } }).then(
    () => assert.unreachable('compiled'),
    (e: Error) => assert.match(e.message, /kernels\/lib\/flagged\.wgsl:3:/),
  );
  // The preprocessor's own errors name the lib's line or the file's, not the joined text's.
  const unclosedLib = defineKernel({ file: 'uses-flagged.wgsl', source: src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [{ ...lib, source: lib.source.replace('//#endif\n', '') }] });
  assert.throws(() => gpu.launch(unclosedLib.main, { params: {}, buffers: { Y: null as unknown as GPUBuffer }, workgroups: [1], label: 'x', flags: { TWICE: true }, consts: { BASE: 1 } }), (e: Error) => /^lib\/flagged\.wgsl:2: \/\/#if is never closed/.test(e.message));
  const unclosedFile = defineKernel({ file: 'uses-flagged.wgsl', source: '//#if TWICE\n' + src, params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [lib] });
  assert.throws(() => gpu.launch(unclosedFile.main, { params: {}, buffers: { Y: null as unknown as GPUBuffer }, workgroups: [1], label: 'x', flags: { TWICE: true }, consts: { BASE: 1 } }), (e: Error) => /^uses-flagged\.wgsl:1: \/\/#if is never closed/.test(e.message));
  const badFile = defineKernel({ file: 'uses-flagged.wgsl', source: src.replace('helper()', 'helper() + nope'), params: {}, buffers: { Y: write() }, entries: { main: ['Y'] }, includes: [lib] });
  await gpu.compile(badFile.main, { flags: { TWICE: false }, consts: { BASE: 1 } }).then(
    () => assert.unreachable('compiled'),
    (e: Error) => assert.match(e.message, /kernels\/uses-flagged\.wgsl:2:/),
  );
});

t.run();
