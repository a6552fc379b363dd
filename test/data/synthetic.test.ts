import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABELS } from '../../src/data/labels.ts';
import { parseManifest } from '../../src/data/manifest.ts';
import { mineSnippets } from '../../src/data/snippets.ts';
import { locateSnippets, resolveImage } from '../../src/data/snippet-locate.ts';
import { generateCase, renderVolume, sampleCase, storedVolume, type SynthOptions } from '../../src/data/synthetic/index.ts';
import { prepareVolume, reorientToRas } from '../../src/data/prep.ts';
import { orientationCodes, sampleWorld, voxelToWorld } from '../../src/data/volume.ts';
import { T } from '../../src/data/synthetic/paint.ts';
import { Rng, hashString } from '../../src/rng.ts';
import { writeSyntheticDataset } from '../../src/data/synthetic/node.ts';
import { readNiftiFile } from '../../src/data/io/node.ts';
import { DataError } from '../../src/errors.ts';

// Small volumes keep the tests fast: 64 x 64 x 40 at ~6.25 x 6.25 x 6-7 mm.
const SMALL: SynthOptions = { size: [64, 64], slices: [40, 40], thickness: [6, 7] };

const sha = (a: ArrayBufferView) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

test('rng: deterministic, uniform-ish, forks independent', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.equal(xs, Array.from({ length: 1000 }, () => b.next()));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const n = Array.from({ length: 4000 }, () => a.normal());
  const m = n.reduce((s, x) => s + x, 0) / n.length;
  const sd = Math.sqrt(n.reduce((s, x) => s + (x - m) ** 2, 0) / n.length);
  assert.ok(Math.abs(m) < 0.06 && Math.abs(sd - 1) < 0.06);
  assert.is.not(new Rng(1).u32(), new Rng(2).u32());
  assert.is(hashString('abc'), hashString('abc'));
});

test('same seed -> same bytes and report; other seed -> different', () => {
  const a = generateCase(7, 3, SMALL);
  const b = generateCase(7, 3, SMALL);
  assert.is(sha(a.volume.data), sha(b.volume.data));
  assert.is(a.report, b.report);
  assert.equal(a.labels, b.labels);
  assert.equal(a.series, b.series);
  const c = generateCase(8, 3, SMALL);
  assert.is.not(sha(c.volume.data), sha(a.volume.data));
  assert.is.not(c.report, a.report);
  assert.is.not(sha(generateCase(7, 4, SMALL).volume.data), sha(a.volume.data));
});

test('volume: shape, RAS affine, whole HU values in the int16 CT range', () => {
  const c = generateCase(1, 0, SMALL);
  const v = c.volume;
  assert.equal(v.shape, [64, 64, 40]);
  assert.is(v.data.length, 64 * 64 * 40);
  const m = v.affine;
  assert.ok(m[0]! > 0 && m[5]! > 0 && m[10]! > 0, 'RAS: positive diagonal');
  assert.equal([m[1], m[2], m[4], m[6], m[8], m[9]], [0, 0, 0, 0, 0, 0]);
  assert.equal(v.spacing, [m[0], m[5], m[10]]);
  for (let i = 0; i < v.data.length; i += 97) {
    const x = v.data[i]!;
    assert.ok(Number.isInteger(x) && x >= -1024 && x <= 3071);
  }
});

test('tissues have plausible HU (default size)', () => {
  const c = generateCase(2, 1, { labels: [] });
  const med = (cls: number) => {
    const vals: number[] = [];
    for (let i = 0; i < c.tissue.length; i++) if (c.tissue[i] === cls) vals.push(c.volume.data[i]!);
    vals.sort((a, b) => a - b);
    return vals[vals.length >> 1]!;
  };
  const expect: [string, number, number, number][] = [
    ['air', T.AIR, -1010, -990],
    ['lung', T.LUNG_R, -890, -810],
    ['lung', T.LUNG_L, -890, -810],
    ['fat', T.FAT, -120, -80],
    ['muscle', T.MUSCLE, 35, 65],
    ['heart (blood)', T.HEART, 30, 55],
    ['great vessels', T.VESSEL, 30, 50],
    ['airway lumen', T.AIRWAY, -1010, -950],
    ['bone', T.BONE, 250, 1000],
    ['liver / abdomen', T.ABDOMEN, 20, 70],
  ];
  for (const [name, cls, lo, hi] of expect) {
    const m = med(cls);
    assert.ok(m >= lo && m <= hi, `${name}: median ${m} HU not in [${lo}, ${hi}]`);
  }
  // Bone reaches cortical values somewhere.
  let maxBone = -Infinity;
  for (let i = 0; i < c.tissue.length; i++) if (c.tissue[i] === T.BONE) maxBone = Math.max(maxBone, c.volume.data[i]!);
  assert.ok(maxBone > 700);
});

test('every abnormality changes voxels inside its z-extent (and hardly outside)', () => {
  const lines: string[] = [];
  for (let l = 0; l < LABELS.length; l++) {
    const { spec } = sampleCase(300 + l, 0, { ...SMALL, labels: [l] });
    const fs = spec.findings.filter((f) => f.label === l);
    assert.ok(fs.length > 0, `${LABELS[l]}: not placed`);
    const withIt = renderVolume(spec).volume;
    const without = renderVolume(spec, [l]).volume;
    const g = spec.grid;
    const plane = g.nx * g.ny;
    let inside = 0;
    let strong = 0;
    let outside = 0;
    let sumAbs = 0;
    for (let i = 0; i < withIt.data.length; i++) {
      const d = Math.abs(withIt.data[i]! - without.data[i]!);
      if (d === 0) continue;
      const z = g.oz + Math.floor(i / plane) * g.sz;
      const inExt = fs.some((f) => z >= f.zExtent[0] - g.sz && z <= f.zExtent[1] + g.sz);
      if (inExt) {
        inside++;
        sumAbs += d;
        if (d > 50) strong++;
      } else outside++;
    }
    lines.push(`${LABELS[l]}: ${inside} voxels changed (${strong} by > 50 HU, mean ${(sumAbs / Math.max(1, inside)).toFixed(0)} HU), ${outside} outside`);
    assert.ok(strong >= 4, `${LABELS[l]}: only ${strong} voxels changed by > 50 HU`);
    assert.ok(outside <= 0.02 * inside, `${LABELS[l]}: ${outside} changed voxels outside the z-extent (${inside} inside)`);
    // The referenced point lies inside the extent.
    for (const f of fs) assert.ok(f.refZ >= f.zExtent[0] && f.refZ <= f.zExtent[1]);
  }
  console.log(`  ${lines.join('\n  ')}`);
});

test('references resolve through the slice metadata to a z inside the finding', () => {
  let refs = 0;
  let headFirst = 0;
  let offset = 0;
  for (let i = 0; i < 24; i++) {
    const c = generateCase(11, i, { ...SMALL, lang: i % 2 ? 'de' : 'en', prevalence: 0.35 });
    const s = c.series;
    assert.is(s.slices.length, c.volume.shape[2]);
    const first = s.slices[0]!;
    if (first.z > s.slices[s.slices.length - 1]!.z) headFirst++;
    if (Math.min(...s.slices.map((x) => x.instanceNumber)) !== 1) offset++;
    for (const r of c.references) {
      refs++;
      const loc = resolveImage(s, r.image);
      assert.ok(loc, `image ${r.image} is not in the series`);
      assert.ok(Math.abs(loc!.z - r.z) < 1e-6);
      assert.ok(r.z >= r.zExtent[0] - 1e-6 && r.z <= r.zExtent[1] + 1e-6, `${r.label}: z ${r.z} outside [${r.zExtent}]`);
      if (r.series !== null) assert.is(r.series, s.seriesNumber);
    }
    // The miner finds the same images in the report text.
    const mined = mineSnippets(c.report).map((m) => `${m.series}:${m.image}`).sort();
    assert.equal(mined, c.references.map((r) => `${r.series}:${r.image}`).sort());
    // Labels agree with the findings; every positive label is mentioned.
    for (let l = 0; l < 18; l++) assert.is(c.labels[l], c.spec.findings.some((f) => f.label === l) ? 1 : 0);
  }
  assert.ok(refs > 30, `${refs} references`);
  assert.ok(headFirst > 0 && headFirst < 24, 'numbering direction varies between cases');
  assert.ok(offset > 0, 'instance numbers sometimes start at an offset');
});

test('reports: English and German, findings and impression, negations', () => {
  const en = generateCase(3, 2, { ...SMALL, labels: [9, 12] });
  assert.match(en.report, /findings/i);
  assert.match(en.report, /impression|conclusion/i);
  assert.match(en.report, /nodul/i);
  assert.match(en.report, /effusion/i);
  const de = generateCase(3, 2, { ...SMALL, lang: 'de', labels: [9, 12] });
  assert.match(de.report, /Befund/i);
  assert.match(de.report, /Beurteilung/i);
  assert.match(de.report, /Rundherd/);
  assert.match(de.report, /Pleuraerguss/);
  let negations = 0;
  for (let i = 0; i < 10; i++) if (/\bNo\b/.test(generateCase(4, i, { ...SMALL, labels: [] }).report)) negations++;
  assert.ok(negations >= 8);
});

test('writes volumes (.nii.gz, int16) and a manifest that reads back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-synth-'));
  try {
    const t0 = performance.now();
    const res = await writeSyntheticDataset({ out: dir, n: 3, seed: 5, ...SMALL });
    const dt = performance.now() - t0;
    const entries = parseManifest(readFileSync(res.manifestPath, 'utf8'), res.manifestPath);
    assert.is(entries.length, 3);
    const c = generateCase(5, 1, SMALL);
    const e = entries[1]!;
    assert.is(e.id, c.id);
    assert.is(e.report, c.report);
    assert.equal(e.references, c.references);
    assert.equal(e.meta, { storedOrientation: c.storage });
    const v = readNiftiFile(join(dir, e.volume));
    const stored = storedVolume(c);
    assert.equal(v.shape, stored.shape);
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(v.affine[i]! - stored.affine[i]!) < 1e-3);
    assert.is(sha(v.data), sha(stored.data));
    // Whatever the storage, reorientation gives back the RAS volume exactly.
    const ras = reorientToRas(v);
    assert.is(sha(ras.data), sha(c.volume.data));
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(ras.affine[i]! - c.volume.affine[i]!) < 1e-3);
    console.log(`  3 small cases written in ${dt.toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The worker script is dist/synth-worker.js (npm test builds dist/ first); a test bundle cannot
// find it from its own folder, so the test names it.
const WORKER = join(process.cwd(), 'dist', 'synth-worker.js');

test('worker threads write the same files, byte for byte, as one thread', async () => {
  if (!existsSync(WORKER)) return void console.log(`  skipped: ${WORKER} not built (npm run build)`);
  const one = mkdtempSync(join(tmpdir(), 'ctvlm-synth1-'));
  const three = mkdtempSync(join(tmpdir(), 'ctvlm-synth3-'));
  try {
    // 5 cases over 3 workers: strides that do not divide the count.
    const a = await writeSyntheticDataset({ out: one, n: 5, seed: 8, ...SMALL, workers: 1 });
    const seen: string[] = [];
    const b = await writeSyntheticDataset({ out: three, n: 5, seed: 8, ...SMALL, workers: 3, workerScript: WORKER, onProgress: (_d, _n, id) => seen.push(id) });
    assert.is(a.workers, 1);
    assert.is(b.workers, 3, 'written by the worker threads');
    assert.is(seen.length, 5);
    assert.equal([...seen].sort(), a.entries.map((e) => e.id).sort());
    assert.is(readFileSync(b.manifestPath, 'utf8'), readFileSync(a.manifestPath, 'utf8'));
    assert.is(readFileSync(join(three, 'synth.json'), 'utf8'), readFileSync(join(one, 'synth.json'), 'utf8'));
    for (const e of a.entries) assert.is(sha(readFileSync(join(three, e.volume))), sha(readFileSync(join(one, e.volume))), e.volume);
    assert.is(b.bytes, a.bytes);
  } finally {
    rmSync(one, { recursive: true, force: true });
    rmSync(three, { recursive: true, force: true });
  }
});

test('a volume a worker cannot write: one DataError line naming the file', async () => {
  if (!existsSync(WORKER)) return void console.log(`  skipped: ${WORKER} not built (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-synthbad-'));
  try {
    const id = generateCase(8, 2, SMALL).id;
    mkdirSync(join(dir, 'volumes', `${id}.nii.gz`), { recursive: true }); // a folder where the file goes
    const err = await writeSyntheticDataset({ out: dir, n: 4, seed: 8, ...SMALL, workers: 2, workerScript: WORKER }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err instanceof DataError, String(err));
    assert.match(err.message, `volumes/${id}.nii.gz: file: cannot write`);
    assert.not.match(err.message, '\n');
    assert.not.ok(existsSync(join(dir, 'manifest.jsonl')), 'no manifest for a failed set');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('storage orientation varies: LPS cases hold the same HU at every world point', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const c = generateCase(21, i, SMALL);
    const st = storedVolume(c);
    assert.is(orientationCodes(st), c.storage);
    seen.add(c.storage);
    if (c.storage === 'LPS') {
      assert.ok(st.affine[0]! < 0 && st.affine[5]! < 0 && st.affine[10]! > 0);
      for (const ijk of [[0, 0, 0], [5, 60, 7], [63, 1, 39], [31, 32, 20]]) {
        const w = voxelToWorld(c.volume, ijk);
        assert.is(sampleWorld(st, w), sampleWorld(c.volume, w));
      }
    }
  }
  assert.equal([...seen].sort(), ['LPS', 'RAS']);
  assert.is(generateCase(21, 0, { ...SMALL, lpsRate: 1 }).storage, 'LPS');
  assert.is(generateCase(21, 0, { ...SMALL, lpsRate: 0 }).storage, 'RAS');
});

test('end to end: written RAS and LPS volumes -> prepare -> referenced slices land in the finding', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctvlm-synth-e2e-'));
  try {
    const res = await writeSyntheticDataset({ out: dir, n: 6, seed: 12, ...SMALL, prevalence: 0.4 });
    const entries = parseManifest(readFileSync(res.manifestPath, 'utf8'), res.manifestPath);
    const orientations = new Set<string>();
    let located = 0;
    for (const e of entries) {
      const v = readNiftiFile(join(dir, e.volume));
      orientations.add(orientationCodes(v));
      assert.is(orientationCodes(v), (e.meta as { storedOrientation: string }).storedOrientation);
      // A coarse grid keeps this fast: 4 mm voxels, windows of 16 x 16 x 8, depth bins of 2 voxels.
      const p = prepareVolume(v, { spacing: [4, 4, 4], window: [16, 16, 8] });
      assert.is(orientationCodes(p), 'RAS');
      const binDepth = 2;
      const loc = locateSnippets(mineSnippets(e.report), e.series, p, binDepth);
      for (const s of loc.located) {
        const ref = e.references!.find((r) => r.image === s.image && r.sentence === s.sentence)!;
        assert.ok(ref, `no ground truth for ${s.ref}`);
        // The bin's world z range overlaps the finding's z extent (within one slice).
        const zA = voxelToWorld(p, [0, 0, s.bin * binDepth - 0.5])[2];
        const zB = voxelToWorld(p, [0, 0, (s.bin + 1) * binDepth - 0.5])[2];
        const t = e.series!.sliceThickness ?? 0;
        assert.ok(Math.max(zA, zB) >= ref.zExtent[0] - t && Math.min(zA, zB) <= ref.zExtent[1] + t, `${e.id} ${s.ref}: bin ${s.bin} [${zA}, ${zB}] vs extent ${ref.zExtent}`);
        located++;
      }
      for (const d of loc.dropped) assert.is(d.reason, 'outside-crop', `${e.id}: ${d.reason} ${d.detail}`);
    }
    assert.equal([...orientations].sort(), ['LPS', 'RAS']);
    assert.ok(located >= 5, `${located} located references`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
