// CtDataset on a tiny synthetic dataset written to a temp folder: shapes and value range,
// determinism, flips and snippet bins, eval crops, padding masks, stats, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtDataset, type PreparedCase } from '../../src/data/dataset.ts';
import { checkConfig, cropAndFlip, cropSize, huToUnitInPlace, type DatasetConfig } from '../../src/data/crop.ts';
import { posWeights } from '../../src/data/dataset-cases.ts';
import { readCaseVolume } from '../../src/data/dataset-volumes.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { parseManifest, type ManifestEntry } from '../../src/data/manifest.ts';
import { entrySplit } from '../../src/data/splits.ts';
import { readNiftiFile, writeNiftiFile } from '../../src/data/io/node.ts';
import { cropOrPad, extractRegion, flipAxes, huToUnit, reorientToRas, resample } from '../../src/data/prep.ts';
import { sentenceKey } from '../../src/data/snippet-score.ts';
import { createVolume, voxelToWorld } from '../../src/data/volume.ts';
import { DataError } from '../../src/errors.ts';
import { NUM_LABELS } from '../../src/data/labels.ts';
import { Rng } from '../../src/rng.ts';

// 64 x 64 x 40 voxels at ~6-7 mm: ~400 mm in-plane, ~260 mm deep.
const SMALL = { size: [64, 64] as [number, number], slices: [40, 40] as [number, number], thickness: [6, 7] as [number, number] };
// A: the crop (16 x 16 x 32 voxels = 128 x 128 x 96 mm) is smaller than the scan on every axis.
const A: DatasetConfig = { spacing: [8, 8, 3], window: [8, 8, 16], grid: [2, 2, 2], patch: [4, 4, 4] };
// B: the crop is 384 mm deep, deeper than the scan: z is padded, bins past the scan invalid.
const B: DatasetConfig = { spacing: [8, 8, 3], window: [8, 8, 32], grid: [1, 1, 4], patch: [4, 4, 4] };

let dir = '';
let manifestPath = '';
let entries: ManifestEntry[] = [];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctvlm-dataset-'));
  const res = await writeSyntheticDataset({ out: dir, n: 8, seed: 5, ...SMALL, prevalence: 0.45 });
  manifestPath = res.manifestPath;
  entries = parseManifest(readFileSync(manifestPath, 'utf8'), manifestPath);
});

test.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const same = (a: PreparedCase, b: PreparedCase) => {
  assert.is(a.id, b.id);
  assert.equal(a.shape, b.shape);
  assert.equal(a.crop, b.crop);
  assert.ok(Buffer.from(a.volume.buffer, a.volume.byteOffset, a.volume.byteLength).equals(Buffer.from(b.volume.buffer, b.volume.byteOffset, b.volume.byteLength)), `${a.id}: volumes differ`);
  assert.equal(Array.from(a.binValid), Array.from(b.binValid));
  assert.equal(a.snippets, b.snippets);
  assert.equal(Array.from(a.affine), Array.from(b.affine));
};

function checkCase(p: PreparedCase, cfg: DatasetConfig, e: ManifestEntry, mode: 'train' | 'eval') {
  const [X, Y, Z] = cropSize(cfg);
  assert.equal(p.shape, [Z, Y, X]);
  assert.is(p.volume.length, X * Y * Z);
  let lo = Infinity, hi = -Infinity;
  for (const x of p.volume) (lo = Math.min(lo, x)), (hi = Math.max(hi, x));
  assert.ok(lo >= 0 && hi <= 1, `${p.id}: values in [${lo}, ${hi}]`);
  // A centred crop holds the mediastinum: soft tissue (0 HU = 0.5) and bone above it.
  if (mode === 'eval') assert.ok(hi > 0.5, `${p.id}: some tissue (max ${hi})`);
  assert.is(p.bins, Z / cfg.patch[2]);
  assert.is(p.binValid.length, p.bins);
  assert.is(p.validBins, p.binValid.reduce((s, b) => s + b, 0));
  assert.ok(p.validBins >= 1);
  assert.instance(p.labels, Int8Array);
  assert.equal(Array.from(p.labels), e.labels);
  assert.is(p.report, e.report);
  for (const s of p.snippets) {
    assert.ok(Number.isInteger(s.bin) && s.bin >= 0 && s.bin < p.bins, `${p.id}: bin ${s.bin}`);
    assert.is(p.binValid[s.bin], 1, `${p.id}: snippet in an invalid bin`);
    assert.ok(Math.abs(s.zMm - (s.bin + 0.5) * cfg.patch[2] * cfg.spacing[2]) < 1e-9);
    assert.ok(s.text.length > 0 && !/series|image \d/i.test(s.text), `reference left in '${s.text}'`);
  }
}

test('config checks', () => {
  checkConfig(A);
  assert.throws(() => checkConfig({ ...A, patch: [4, 4, 5] }), (e: unknown) => e instanceof DataError && /whole number of patches/.test((e as Error).message));
  const isData = (e: unknown) => e instanceof DataError;
  assert.throws(() => checkConfig({ ...A, grid: [0, 1, 1] }), isData);
  assert.throws(() => checkConfig({ ...A, spacing: [3, 3] as unknown as [number, number, number] }), isData);
  assert.equal(cropSize(A), [16, 16, 32]);
  assert.equal(posWeights([2, 0, 1, 5], [10, 7, 100, 0]), [5, 1, 20, 1]);
});

test('open: splits, ids, reports, labels', async () => {
  const all = await CtDataset.open(manifestPath, { config: A });
  assert.is(all.size, entries.length);
  assert.equal(all.ids, entries.map((e) => e.id));
  assert.equal(all.reports(), entries.map((e) => e.report));
  let total = 0;
  for (const split of ['train', 'val', 'test'] as const) {
    const ds = await CtDataset.open(manifestPath, { config: A, split });
    assert.equal(ds.ids, entries.filter((e) => entrySplit(e) === split).map((e) => e.id));
    assert.equal(ds.reports(), entries.filter((e) => entrySplit(e) === split).map((e) => e.report));
    total += ds.size;
  }
  assert.is(total, all.size);
  assert.equal(Array.from(all.labels(3)), entries[3]!.labels);
  assert.throws(() => all.labels(99), RangeError);
});

test('resampled volume = huToUnit -> reorientToRas -> resample of the file; eval crop = centred cropOrPad', async () => {
  const ds = await CtDataset.open(manifestPath, { config: A, cache: true });
  for (const i of [0, 1, 2]) {
    const e = entries[i]!;
    const ref = resample(reorientToRas(huToUnit(readNiftiFile(join(dir, e.volume)))), { spacing: A.spacing });
    const v = await ds.resampled(i);
    assert.equal(v.shape, ref.shape);
    assert.equal(Array.from(v.affine), Array.from(ref.affine));
    assert.ok(v.data.every((x, k) => x === ref.data[k]), `${e.id}: resampled voxels differ`);
    assert.is(await ds.resampled(i), v, 'cached: the same object');
    const p = await ds.prepare(i, 'eval', 0);
    const c = cropOrPad(ref, cropSize(A));
    assert.ok(p.volume.every((x, k) => x === c.data[k]));
    assert.equal(Array.from(p.affine), Array.from(c.affine));
    assert.equal(p.crop.flip, [false, false, false]);
  }
  const d = new Float32Array([-3000, -1000, 0, 500, 1000, 4000, NaN]);
  const want = huToUnit(createVolume([7, 1, 1], { data: d.slice() })).data;
  huToUnitInPlace(d);
  assert.equal(Array.from(d.subarray(0, 6)), Array.from(want.subarray(0, 6)));
  assert.ok(Number.isNaN(d[6]!));
});

test('huToUnitInPlace (branch-free clamp) = huToUnit bit for bit: random float32 bit patterns, CT values, edges, other bounds', () => {
  const rng = new Rng(11);
  const n = 200_000;
  const bits = new Uint32Array(n);
  const d = new Float32Array(bits.buffer);
  for (let i = 0; i < n; i++) {
    // A third any bit pattern (NaN, infinities, subnormals, huge), a third CT-like HU values,
    // a third magnitudes 2^-30 .. 2^-10, around the exactness threshold (2^-17 for 1000).
    const r = i % 3;
    if (r === 0) bits[i] = rng.int(0, 0xffffffff);
    else if (r === 1) d[i] = rng.uniform(-1300, 1300);
    else d[i] = (rng.uniform(-1, 1) * 2 ** rng.int(-30, -10));
  }
  const edges = [-1000, 1000, -0, 0, NaN, Infinity, -Infinity, 2 ** 50, -(2 ** 50), 2 ** 51, 3.4e38, -3.4e38, 1e-45, -1e-45, 2 ** -17, 2 ** -18, -(2 ** -17), 999.99994, -999.99994, 1000.0001, -1000.0001];
  d.set(edges);
  // lo = 0 is the pair where an error in the clamp survives the final rounding (small x, -0).
  for (const [lo, hi] of [[-1000, 1000], [-1024, 3071], [-160, 240], [0, 1000], [0, 1], [-1000.5, 999.5], [-(2 ** 21), 2 ** 21]]) {
    const want = huToUnit(createVolume([n, 1, 1], { data: d.slice() }), { min: lo, max: hi }).data;
    const got = d.slice();
    huToUnitInPlace(got, lo, hi);
    for (let i = 0; i < n; i++)
      if (!Object.is(got[i], want[i])) {
        const f = (x: number) => (Object.is(x, -0) ? '-0' : String(x));
        assert.unreachable(`[${lo}, ${hi}]: x = ${f(d[i]!)} (bits ${bits[i]!.toString(16)}) gave ${f(got[i]!)}, huToUnit ${f(want[i]!)}`);
      }
  }
});

test('cropAndFlip = extractRegion then flipAxes (voxels and affine)', async () => {
  const ds = await CtDataset.open(manifestPath, { config: A });
  const v = await ds.resampled(0);
  const rng = new Rng(3);
  for (let t = 0; t < 12; t++) {
    const size: [number, number, number] = [rng.int(1, 70), rng.int(1, 70), rng.int(1, 120)];
    const start: [number, number, number] = [rng.int(-30, 60), rng.int(-30, 60), rng.int(-40, 100)];
    const flip: [boolean, boolean, boolean] = [rng.chance(0.5), rng.chance(0.5), rng.chance(0.5)];
    const a = cropAndFlip(v, { start, size, flip });
    const b = flipAxes(extractRegion(v, start, size, 0), flip);
    assert.equal(a.shape, b.shape);
    assert.ok(a.data.every((x, k) => x === b.data[k]), `crop ${start} ${size} ${flip}`);
    for (let k = 0; k < 16; k++) assert.ok(Math.abs(a.affine[k]! - b.affine[k]!) < 1e-9);
  }
});

test('shapes, value range, fixed eval shape, deterministic for (index, seed)', async () => {
  for (const cfg of [A, B]) {
    const ds = await CtDataset.open(manifestPath, { config: cfg, cache: true });
    const fresh = await CtDataset.open(manifestPath, { config: cfg });
    let differs = 0;
    for (let i = 0; i < ds.size; i++) {
      const e = entries[i]!;
      const ev = await ds.prepare(i, 'eval', 1);
      checkCase(ev, cfg, e, 'eval');
      same(ev, await fresh.prepare(i, 'eval', 99)); // eval ignores the seed
      for (const seed of [1, 2]) {
        const tr = await ds.prepare(i, 'train', seed);
        checkCase(tr, cfg, e, 'train');
        same(tr, await fresh.prepare(i, 'train', seed)); // cached or not
        same(tr, await ds.prepare(i, 'train', seed));
        const other = await ds.prepare(i, 'train', seed + 10);
        if (JSON.stringify(other.crop) !== JSON.stringify(tr.crop)) differs++;
      }
    }
    assert.ok(differs >= ds.size, `other seeds give other crops (${differs})`);
  }
});

test('padding: bins past the scan are invalid; eval pads symmetrically; fit mode', async () => {
  const ds = await CtDataset.open(manifestPath, { config: B });
  for (let i = 0; i < 3; i++) {
    const v = await ds.resampled(i);
    const p = await ds.prepare(i, 'eval', 0);
    const nz = v.shape[2];
    assert.ok(nz < 128);
    const start = Math.floor((nz - 128) / 2);
    for (let b = 0; b < p.bins; b++) {
      const holds = [0, 1, 2, 3].some((k) => start + 4 * b + k >= 0 && start + 4 * b + k < nz);
      assert.is(p.binValid[b], holds ? 1 : 0, `bin ${b}`);
      // an all-padding bin holds only zeros (-1000 HU)
      if (!holds) for (let k = 4 * b; k < 4 * b + 4; k++) for (let j = 0; j < 64; j++) assert.is(p.volume[k * 64 + j], 0);
    }
    assert.ok(p.binValid[0] === 0 && p.binValid[p.bins - 1] === 0);
    // Training crops slide the scan inside the crop; the mask follows (and flips).
    const t = await ds.prepare(i, 'train', 7);
    assert.ok(t.validBins >= Math.floor(nz / 4) && t.validBins <= Math.ceil(nz / 4) + 1);
  }
  const fit = await CtDataset.open(manifestPath, { config: B, evalCrop: 'fit' });
  const p = await fit.prepare(0, 'eval', 0);
  const v = await fit.resampled(0);
  // z: floor(nz / 32) windows (<= 4); x, y: capped at grid 1.
  assert.equal(p.shape, [Math.min(4, Math.max(1, Math.floor(v.shape[2] / 32))) * 32, 8, 8]);
});

test('flips: z maps bin b to bins-1-b, x and y leave bins alone; the volume follows', async () => {
  const ds = await CtDataset.open(manifestPath, { config: A, cache: true });
  let checked = 0;
  for (let i = 0; i < ds.size; i++) {
    const base = await ds.cropSpec(i, 'train', 3);
    const plain = await ds.prepareCrop(i, { ...base, flip: [false, false, false] });
    const fz = await ds.prepareCrop(i, { ...base, flip: [false, false, true] });
    const fxy = await ds.prepareCrop(i, { ...base, flip: [true, true, false] });
    const [Z, Y, X] = plain.shape;
    const plane = X * Y;
    for (let z = 0; z < Z; z += 7) for (let k = 0; k < plane; k += 37) assert.is(fz.volume[z * plane + k], plain.volume[(Z - 1 - z) * plane + k]);
    for (let y = 0; y < Y; y += 5) for (let x = 0; x < X; x += 3) assert.is(fxy.volume[(2 * plane) + y * X + x], plain.volume[2 * plane + (Y - 1 - y) * X + (X - 1 - x)]);
    assert.equal(Array.from(fz.binValid), Array.from(plain.binValid).reverse());
    assert.equal(fz.snippets.map((s) => [s.text, plain.bins - 1 - s.bin]), plain.snippets.map((s) => [s.text, s.bin]));
    assert.equal(fxy.snippets.map((s) => [s.text, s.bin]), plain.snippets.map((s) => [s.text, s.bin]));
    checked += plain.snippets.length;
  }
  assert.ok(checked >= 3, `${checked} snippets compared`);
});

test('located snippets lie within their finding (ground truth z extent +- 1 bin), flips included', async () => {
  let located = 0;
  for (const cfg of [A, B]) {
    const ds = await CtDataset.open(manifestPath, { config: cfg, cache: true });
    const binMm = cfg.patch[2] * cfg.spacing[2];
    for (let i = 0; i < ds.size; i++) {
      const e = entries[i]!;
      const preps = [await ds.prepare(i, 'eval', 0), ...(await Promise.all([1, 2, 3, 4].map((s) => ds.prepare(i, 'train', s))))];
      for (const p of preps) {
        for (const s of p.snippets) {
          const ref = e.references!.find((r) => sentenceKey(r.sentence) === sentenceKey(s.text) && Math.abs(r.z - s.z) < 1e-3);
          assert.ok(ref, `${e.id}: no ground truth for '${s.text}' at z ${s.z}`);
          // World z range of the bin in the prepared (maybe flipped) crop.
          const zA = voxelToWorld(p.affine, [0, 0, s.bin * cfg.patch[2] - 0.5])[2];
          const zB = voxelToWorld(p.affine, [0, 0, (s.bin + 1) * cfg.patch[2] - 0.5])[2];
          const [lo, hi] = [Math.min(zA, zB), Math.max(zA, zB)];
          assert.ok(hi >= ref!.zExtent[0] - binMm && lo <= ref!.zExtent[1] + binMm, `${e.id} '${s.text}': bin ${s.bin} [${lo}, ${hi}] vs extent ${ref!.zExtent}`);
          // ... and holds the referenced slice (up to half a slice).
          const t = e.series!.sliceThickness ?? 0;
          assert.ok(ref!.z >= lo - t / 2 - 1e-6 && ref!.z <= hi + t / 2 + 1e-6, `${e.id}: slice ${ref!.z} outside bin [${lo}, ${hi}]`);
          located++;
        }
        // Nothing was dropped for a reason other than the crop (the synthetic references all resolve).
        for (const [k, v] of Object.entries(p.dropped)) if (k !== 'outside-crop') assert.is(v, 0, `${p.id}: ${k}`);
      }
    }
  }
  assert.ok(located >= 20, `${located} located snippets`);
});

test('stats: counts, label counts, pos weights, drops by reason', async () => {
  const ds = await CtDataset.open(manifestPath, { config: A });
  const s0 = ds.stats();
  assert.is(s0.cases, entries.length);
  const refs = entries.reduce((n, e) => n + (e.references?.length ?? 0), 0);
  assert.is(s0.snippets, refs);
  assert.is(s0.resolved, refs);
  const pos = new Array(NUM_LABELS).fill(0), neg = new Array(NUM_LABELS).fill(0);
  for (const e of entries) e.labels.forEach((v, l) => (v === 1 ? pos[l]++ : v === 0 ? neg[l]++ : 0));
  assert.equal(s0.positives, pos);
  assert.equal(s0.negatives, neg);
  assert.equal(s0.labelCounts, pos.map((p, l) => p + neg[l]));
  assert.equal(s0.posWeight, pos.map((p, l) => (p > 0 && neg[l] > 0 ? Math.min(neg[l] / p, 20) : 1)));
  assert.equal(s0.prepared, { crops: 0, located: 0, outsideCrop: 0 });
  assert.is(s0.snippetsDropped['outside-crop'], 0);
  let outside = 0, located = 0;
  for (let i = 0; i < ds.size; i++) {
    const p = await ds.prepare(i, 'train', 1);
    outside += p.dropped['outside-crop']!;
    located += p.snippets.length;
  }
  const s1 = ds.stats();
  assert.equal(s1.prepared, { crops: ds.size, located, outsideCrop: outside });
  assert.is(s1.snippetsDropped['outside-crop'], outside);
  assert.ok(outside > 0, 'a 96 mm deep crop of a ~260 mm scan drops some');

  // Unresolvable references: no slice metadata, another series, an image the series lacks.
  const e0 = entries.find((e) => (e.references?.length ?? 0) >= 1)!;
  const bad: ManifestEntry[] = [
    { ...e0, id: 'no-meta', series: undefined },
    { ...e0, id: 'other', series: { ...e0.series!, seriesNumber: 9999 } },
    { ...e0, id: 'short', series: { ...e0.series!, slices: e0.series!.slices.slice(0, 1) }, labels: e0.labels.map(() => -1) },
  ];
  const m2 = join(dir, 'bad.jsonl');
  writeFileSync(m2, bad.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const d2 = await CtDataset.open(m2, { config: A });
  const s2 = d2.stats();
  const n = e0.references!.length;
  const named = e0.references!.filter((r) => r.series !== null).length; // "(image 45)" names no series
  assert.is(s2.snippets, 3 * n);
  assert.is(s2.snippetsDropped['no-series-metadata'], n);
  assert.is(s2.snippetsDropped['other-series'], named);
  assert.ok(s2.snippetsDropped['image-not-in-series']! >= n - 1);
  assert.is(s2.resolved + s2.snippetsDropped['no-series-metadata']! + s2.snippetsDropped['other-series']! + s2.snippetsDropped['image-not-in-series']!, 3 * n);
  assert.equal(s2.labelCounts, e0.labels.map(() => 2)); // the third case's labels are all unknown
  const p = await d2.prepare(0, 'eval', 0);
  assert.is(p.snippets.length, 0);
  assert.is(p.dropped['no-series-metadata'], n);
});

test('errors: missing volume file is a DataError naming it; bad index', async () => {
  const e0 = entries[0]!;
  const m3 = join(dir, 'missing.jsonl');
  writeFileSync(m3, JSON.stringify({ ...e0, volume: 'volumes/nope.nii.gz' }) + '\n');
  const ds = await CtDataset.open(m3, { config: A, cache: true });
  try {
    await ds.prepare(0, 'train', 0);
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, DataError);
    assert.match((err as Error).message, /nope\.nii\.gz/);
  }
  await assert.not.throws(() => ds.stats());
  // maxVoxels: refused from the header, a DataError naming the file.
  const small = await CtDataset.open(manifestPath, { config: A, maxVoxels: 1000 });
  try {
    await small.prepare(0, 'eval', 0);
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, DataError);
    assert.match((err as Error).message, new RegExp(`${entries[0]!.id}.*voxels|voxels.*${entries[0]!.id}`, 's'));
  }
  try {
    await ds.prepare(5, 'eval', 0);
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, RangeError);
  }
});

test('readCaseVolume: CT-RATE rescale metadata is applied; .nii (not gzipped) is read too', async () => {
  const stored = createVolume([4, 4, 3], { spacing: [1, 1, 2] });
  stored.data.fill(1024); // stored 1024 -> 0 HU with intercept -1024
  stored.data[0] = 0; // -> -1024 HU
  const p = join(dir, 'ctrate.nii');
  writeNiftiFile(p, stored, { datatype: 'int16' });
  const v = await readCaseVolume(p, { meta: { RescaleSlope: 1, RescaleIntercept: -1024, XYSpacing: '[0.5, 0.5]', ZSpacing: 3 } });
  assert.is(v.data[1], 0);
  assert.is(v.data[0], -1024);
  assert.equal(v.spacing.map((s) => +s.toFixed(6)), [0.5, 0.5, 3]);
  const plain = await readCaseVolume(p, {});
  assert.is(plain.data[1], 1024);
});

test.run();
