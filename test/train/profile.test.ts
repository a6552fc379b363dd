// The step profile (src/train/profile.ts): grouping of dispatch records by family, op and
// shape (every record counted once, per-step figures), and a real profile of the tiny preset's
// training step on the device: the counts add up to the timestamp records, every dispatch has
// a named family and a phase, and the runtime is left as it was. No timing is asserted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { preset } from '../../src/train/config.ts';
import {
  PHASES, UNMAPPED, groupRecords, matmulFlops, opFamily, paperWidths, profileTrainingStep, scaleWidths, withDepth,
  type PhasedRecord, type StepProfile,
} from '../../src/train/profile.ts';
import { formatProfile } from '../../src/train/profile-format.ts';

const t = suite('step profile');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-profile-test-'));
const data = join(dir, 'data');

t.before(async () => {
  await writeSyntheticDataset({ out: data, n: 8, seed: 5, size: [64, 64], slices: [24, 32], gzipLevel: 0, splits: { val: 0, test: 0 } });
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

t('groupRecords: per-step figures, every record in one family, op and shape row', () => {
  const rec = (kernel: string, label: string, ms: number, phase: PhasedRecord['phase']): PhasedRecord => ({ kernel, label, ms, phase });
  const records = [
    rec('matmul.wgsl:matmul_sg', 'matmul [4x8]@[8x2]', 3, 'forward'),
    rec('elementwise.wgsl:binary', 'add [4x2],[4x2]', 1, 'forward'),
    rec('matmul.wgsl:matmul_sg', 'matmul [4x2]@[8x2]ᵀ', 2, 'backward'),
    rec('optim.wgsl:adamw', 'adamw w', 0.5, 'optimizer'),
    rec('newop.wgsl:fused', 'fused [4x2]', 1.5, 'forward'),
    // the second step
    rec('matmul.wgsl:matmul_sg', 'matmul [4x8]@[8x2]', 3, 'forward'),
    rec('elementwise.wgsl:binary', 'add [4x2],[4x2]', 1, 'forward'),
    rec('matmul.wgsl:matmul_sg', 'matmul [4x2]@[8x2]ᵀ', 2, 'backward'),
    rec('optim.wgsl:adamw', 'adamw w', 0.5, 'optimizer'),
    rec('newop.wgsl:fused', 'fused [4x2]', 1.5, 'forward'),
  ];
  const g = groupRecords(records, 2);
  assert.is(g.gpuMs, 8);
  assert.is(g.dispatches, 5);
  assert.equal(g.phaseMs, { forward: 5.5, backward: 2, optimizer: 0.5 });
  assert.equal(g.phaseDispatches, { forward: 3, backward: 1, optimizer: 1 });
  assert.equal(g.families.map((f) => f.family), ['matmul', `newop${UNMAPPED}`, 'elementwise', 'optimizer']);
  const mm = g.families[0];
  assert.is(mm.ms, 5);
  assert.is(mm.share, 5 / 8);
  assert.is(mm.dispatches, 2);
  assert.equal(mm.phaseMs, { forward: 3, backward: 2, optimizer: 0 });
  assert.equal(mm.kernels, ['matmul.wgsl:matmul_sg']);
  for (const rows of [g.families, g.ops, g.shapes]) {
    assert.is(sum(rows.map((r) => r.dispatches)), 5);
    assert.ok(Math.abs(sum(rows.map((r) => r.share)) - 1) < 1e-12);
  }
  assert.is(g.ops.length, 4, 'both matmuls are one op (matmul.wgsl:matmul_sg matmul)');
  assert.is(g.shapes.length, 5);
  assert.throws(() => groupRecords(records, 0), /steps must be a positive integer/);
  // 2 * 4 * 8 * 2 flops for each matmul, twice per step.
  assert.equal(g.matmul, { gflop: 256e-9, ms: 5, unparsed: 0 });
});

t('op families by kernel file (variants by prefix); matmul flops from labels', () => {
  assert.is(opFamily('matmul.wgsl:matmul_sg'), 'matmul');
  assert.is(opFamily('matmul_f16.wgsl:tiled'), 'matmul', 'a variant file by its prefix');
  assert.is(opFamily('layernorm.wgsl:layernorm'), 'norms');
  assert.is(opFamily('layout.wgsl:gather'), 'layout copies');
  assert.is(opFamily('fused.wgsl:bias_gelu'), `fused${UNMAPPED}`);
  assert.is(matmulFlops('matmul [8x129x96]@[384x96]ᵀ+bias'), 2 * 8 * 129 * 96 * 384);
  assert.is(matmulFlops('matmul [4128x96]ᵀ@[4128x384]'), 2 * 96 * 4128 * 384);
  assert.is(matmulFlops('matmul [3x5x7]@[2x3x7x4]'), 2 * 6 * 5 * 7 * 4, 'batch broadcast');
  assert.is(matmulFlops('matmul [4x8]@[9x2]'), null, 'operands that do not chain');
  assert.is(matmulFlops('linear [4x8]'), null);
  // A slab of columns (the uniform-B path's dispatches) counts its columns only.
  assert.is(matmulFlops('matmul [8x129x96]@[384x96]ᵀ+bias columns 128-255'), 2 * 8 * 129 * 96 * 128);
  assert.is(matmulFlops('matmul [8x129x96]@[384x96]ᵀ columns 256-383'), 2 * 8 * 129 * 96 * 128);
  assert.is(matmulFlops('matmul [8x129x96]@[384x96]ᵀ columns 300-400'), null, 'columns past N');
});

t('model sizes: width scale, the paper widths, depth', () => {
  const m = preset('small').model;
  const x4 = scaleWidths(m, 4);
  assert.is(x4.vision.backbone.embedDim, 4 * m.vision.backbone.embedDim);
  assert.is(x4.text.hiddenSize, 4 * m.text.hiddenSize);
  assert.is(x4.vision.backbone.depth, m.vision.backbone.depth);
  assert.throws(() => scaleWidths(m, 1.5), /--width-scale must be a positive integer/);
  const p = withDepth(paperWidths(m), 1);
  assert.is(p.vision.backbone.embedDim, 1080);
  assert.is(p.vision.backbone.embedDim / p.vision.backbone.heads % 6, 0, '3D RoPE needs head widths divisible by 6');
  assert.is(p.text.hiddenSize, 1024);
  assert.equal([p.vision.backbone.depth, p.vision.combiner.depth, p.text.numHiddenLayers], [1, 1, 1]);
  assert.equal(p.vision.window, m.vision.window, 'the preset window geometry is kept');
});

t('the tiny step on the device: counts add up to the records; every dispatch has a family and a phase', async () => {
  const gpu = await testGpu();
  const steps = 2;
  const p: StepProfile = await profileTrainingStep(gpu, { data, config: preset('tiny'), workDir: join(dir, 'work'), warmup: 1, steps });
  const n = p.records.length;
  assert.ok(n > 100, `${n} records`);
  assert.is(p.profiled.dispatches * steps, n, 'one timestamp record per counted dispatch');
  // The same cases run with and without profiling: the same dispatches.
  assert.is(p.plain.dispatches, p.profiled.dispatches);
  assert.is(p.dispatches * steps, n);
  for (const rows of [p.families, p.ops, p.shapes]) assert.is(Math.round(sum(rows.map((r) => r.dispatches)) * steps), n);
  assert.is(Math.round(sum(PHASES.map((k) => p.phaseDispatches[k])) * steps), n);
  const total = sum(p.records.map((r) => r.ms)) / steps;
  assert.ok(Math.abs(sum(p.families.map((f) => f.ms)) - total) <= 1e-9 * Math.max(1, total));
  assert.ok(Math.abs(p.gpuMs - total) <= 1e-9 * Math.max(1, total));
  // Every kernel the step ran belongs to a named family, and its family row lists it.
  const byFamily = new Map(p.families.map((f) => [f.family, f]));
  for (const r of p.records) {
    const f = opFamily(r.kernel);
    assert.not.ok(f.endsWith(UNMAPPED), `${r.kernel} has no family in src/train/profile.ts FAMILIES`);
    assert.ok(byFamily.get(f)?.kernels.includes(r.kernel), r.kernel);
  }
  for (const f of ['matmul', 'attention', 'elementwise', 'layout copies', 'norms', 'patch embed', 'optimizer', 'losses', 'embedding'])
    assert.ok(byFamily.has(f), `family ${f}`);
  // Phases follow the step's order: the patch embedding's forward runs before the loss, the
  // attention backward and the embedding scatter after it, AdamW in the optimizer.
  const phaseOf = (kernel: string) => new Set(p.records.filter((r) => r.kernel === kernel).map((r) => r.phase));
  assert.equal([...phaseOf('patch3d.wgsl:patch_forward')], ['forward']);
  assert.equal([...phaseOf('attention.wgsl:attention_backward_kv')], ['backward']);
  assert.equal([...phaseOf('embedding.wgsl:scatter_sorted')], ['backward']);
  assert.equal([...phaseOf('optim.wgsl:adamw')], ['optimizer']);
  for (const k of PHASES) assert.ok(p.phaseDispatches[k] > 0, k);
  assert.is(p.matmul.unparsed, 0, 'every matmul label gives its flops');
  assert.ok(p.matmul.gflop > 0);
  assert.ok(p.plain.submits >= 1 && p.profiled.submits >= 1);
  assert.ok(p.plain.wallMs > 0 && p.plain.encodeMs > 0);
  // The wrapped runtime methods are gone again: the instance uses the class's own.
  for (const name of ['dispatch', 'copy', 'clear', 'flush']) assert.not.ok(Object.hasOwn(gpu, name), name);
  const text = formatProfile(p, 'preset tiny', 5);
  assert.match(text, /one compute pass with two timestamp writes per dispatch, which costs/);
  assert.match(text, /dispatches, \d+(\.\d)? submit/);
  for (const f of p.families) assert.ok(text.includes(f.family), f.family);
});

t('a device step profile refuses a split smaller than a batch', async () => {
  const gpu = await testGpu();
  await profileTrainingStep(gpu, { data, config: { ...preset('tiny'), batch: 9 }, workDir: join(dir, 'w2') }).then(
    () => assert.unreachable(),
    (e) => assert.match((e as Error).message, /8 training case\(s\); a batch of 9 needs at least 9/),
  );
});

t.run();
