import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { mineSnippets, primaryImage } from '../../src/data/snippets.ts';
import { depthBin, dropCounts, locateSnippets, resolveImage, resolveSnippet, seriesThickness } from '../../src/data/snippet-locate.ts';
import { scoreMiner, type ExpectedRef } from '../../src/data/snippet-score.ts';
import type { SeriesMeta } from '../../src/data/manifest.ts';
import { sampleCase } from '../../src/data/synthetic/index.ts';
import { writeReport } from '../../src/data/synthetic/report.ts';

const fixture = JSON.parse(readFileSync(join(repoRoot, 'test/data/fixtures/snippets.json'), 'utf8')) as {
  items: { text: string; refs: ExpectedRef[]; holdout?: boolean }[];
};

test('hand-written fixture: precision and recall >= 0.95', () => {
  assert.ok(fixture.items.length >= 40);
  const pairs = fixture.items.map((it) => ({ mined: mineSnippets(it.text), expected: it.refs }));
  const s = scoreMiner(pairs);
  console.log(`  miner on ${fixture.items.length} hand-written items: ${s.expected} references, precision ${s.precision.toFixed(3)}, recall ${s.recall.toFixed(3)}`);
  for (const fp of s.falsePositives) console.log('    false positive:', JSON.stringify(fp));
  for (const m of s.misses) console.log('    missed:', JSON.stringify(m));
  const h = scoreMiner(fixture.items.filter((it) => it.holdout).map((it) => ({ mined: mineSnippets(it.text), expected: it.refs })));
  console.log(`  of which held out (not used for tuning): ${h.expected} references, precision ${h.precision.toFixed(3)}, recall ${h.recall.toFixed(3)}`);
  assert.ok(s.precision >= 0.95, `precision ${s.precision}`);
  assert.ok(s.recall >= 0.95, `recall ${s.recall}`);
});

const kinds = JSON.parse(readFileSync(join(repoRoot, 'test/data/fixtures/snippets-kinds.json'), 'utf8')) as {
  items: { text: string; refs: ExpectedRef[] }[];
};

test('hand-written set for the kinds of issue 8 (US series:image notation, times and ratios, abbreviations, #, series named elsewhere): precision and recall >= 0.95', () => {
  assert.ok(kinds.items.length >= 40);
  assert.ok(kinds.items.some((it) => /[äöüß]/.test(it.text)) && kinds.items.some((it) => /\bthe\b/.test(it.text)), 'English and German');
  const s = scoreMiner(kinds.items.map((it) => ({ mined: mineSnippets(it.text), expected: it.refs })));
  console.log(`  miner on ${kinds.items.length} hand-written items for the new kinds: ${s.expected} references, precision ${s.precision.toFixed(3)}, recall ${s.recall.toFixed(3)}`);
  for (const fp of s.falsePositives) console.log('    false positive:', JSON.stringify(fp));
  for (const m of s.misses) console.log('    missed:', JSON.stringify(m));
  // Every item without references (times, ratios, lung segments, other studies) gives none.
  for (const it of kinds.items.filter((x) => x.refs.length === 0)) assert.equal(mineSnippets(it.text), [], it.text);
  assert.ok(s.precision >= 0.95, `precision ${s.precision}`);
  assert.ok(s.recall >= 0.95, `recall ${s.recall}`);
});

test('synthetic reports (en + de): precision and recall >= 0.95', () => {
  const pairs = [];
  for (const lang of ['en', 'de'] as const) {
    for (let i = 0; i < 150; i++) {
      // Reports only (no voxels): the same writer generateCase uses, with varied numbering.
      const { spec, rng, labels } = sampleCase(101, i, { lang });
      const g = spec.grid;
      const headFirst = i % 2 === 0;
      const first = i % 3 === 0 ? 1 : 17 + i;
      const instance = (k: number) => (headFirst ? first + g.nz - 1 - k : first + k);
      const rep = writeReport(spec.findings, labels, { seriesNumber: 3 + (i % 4), instance, zOf: (k) => g.oz + k * g.sz, nz: g.nz, sliceThickness: g.sz }, rng.fork('report'), { lang });
      pairs.push({ mined: mineSnippets(rep.text), expected: rep.references });
    }
  }
  const s = scoreMiner(pairs);
  console.log(`  miner on 300 synthetic reports: ${s.expected} references, precision ${s.precision.toFixed(3)}, recall ${s.recall.toFixed(3)}`);
  for (const fp of s.falsePositives.slice(0, 5)) console.log('    false positive:', JSON.stringify(fp));
  for (const m of s.misses.slice(0, 5)) console.log('    missed:', JSON.stringify(m));
  assert.ok(s.expected > 500);
  assert.ok(s.precision >= 0.95 && s.recall >= 0.95);
});

test('phrasings: series, images, kinds', () => {
  const one = (t: string) => {
    const m = mineSnippets(t);
    assert.is(m.length, 1, `${t} -> ${JSON.stringify(m)}`);
    return m[0]!;
  };
  let m = one('Nodule (series 3, image 45).');
  assert.equal([m.series, m.images, m.kind, m.image, m.sentence], [3, [45], 'single', 45, 'Nodule.']);
  m = one('Erguss (Se. 3/Bild 45).');
  assert.equal([m.series, m.images], [3, [45]]);
  m = one('Nodule, image 45 of series 3.');
  assert.equal([m.series, m.images, m.sentence], [3, [45], 'Nodule.']);
  m = one('Opacity (series 3, images 40-45).');
  assert.equal([m.kind, m.images, m.image], ['range', [40, 45], 42]);
  m = one('Opacity (se 3, im 40 to 45).');
  assert.equal([m.kind, m.image], ['range', 42]);
  m = one('Nodules (series 3, images 12 and 14).');
  assert.equal([m.kind, m.images, m.image], ['list', [12, 14], 12]);
  m = one('Nodules (series 3, images 12, 14, 16).');
  assert.equal([m.kind, m.images, m.image], ['list', [12, 14, 16], 14]);
  m = one('Effusion (se/im 4/77).');
  assert.equal([m.series, m.images], [4, [77]]);
  m = one('Erguss (Bild 45).');
  assert.equal([m.series, m.images], [null, [45]]);
  m = one('Rundherd (Serie 3, Bilder 12 und 14).');
  assert.equal([m.kind, m.images], ['list', [12, 14]]);
  m = one('Atelektase (Serie 3, Bild 40 bis 44).');
  assert.equal([m.kind, m.images], ['range', [40, 44]]);
  // The series' image count is part of the reference, not of the sentence.
  m = one('Nodule (series 4, image 56 of 240).');
  assert.equal([m.series, m.images, m.sentence], [4, [56], 'Nodule.']);
  m = one('Nodule, series 4, image 56 of 240, stable.');
  assert.equal([m.series, m.images, m.sentence], [4, [56], 'Nodule, stable.']);
  m = one('Nodule (image 56 of 240, series 4).');
  assert.equal([m.series, m.images, m.sentence], [4, [56], 'Nodule.']);
  m = one('Herd (Serie 4, Bild 56 von 240).');
  assert.equal([m.series, m.images, m.sentence], [4, [56], 'Herd.']);
  m = one('Nodule (se 4, im 56/240).');
  assert.equal([m.series, m.images, m.sentence], [4, [56], 'Nodule.']);
  m = one('Nodule (series 4, image 56 of 20 mm).');
  assert.equal([m.series, m.images], [4, [56]], 'a smaller number after "of" is no image count');
  // Connecting words and plane names.
  m = one('Nodule in series 3 on image 45.');
  assert.equal([m.series, m.images, m.sentence], [3, [45], 'Nodule.']);
  m = one('Nodules on axial images 45-50 of series 3.');
  assert.equal([m.series, m.images, m.sentence], [3, [45, 50], 'Nodules.']);
  m = one('Herd (Serie 3 im Bild 45).');
  assert.equal([m.series, m.images, m.sentence], [3, [45], 'Herd.']);
});

test('numbers that are not references', () => {
  for (const t of [
    'Nodule measuring 5 mm in the right upper lobe.',
    '3 series of images were reviewed.',
    'Image quality is limited.',
    'Fracture of the T3 vertebra.',
    'Granuloma in segment 6.',
    'Prior CT from 12.03.2021 and 2020-01-05.',
    'Rundherd im 3. Segment rechts.',
    'Keine Befundänderung im Vergleich zur Voruntersuchung vom 01.02.2022.',
    'Slice thickness 1.25 mm, 120 kV, 2 series.',
    'im 4. ICR links.',
  ]) {
    assert.equal(mineSnippets(t), [], t);
  }
});

test('reports without references give zero snippets; empty text is fine', () => {
  assert.equal(mineSnippets(''), []);
  assert.equal(mineSnippets('Findings: No pleural effusion. No nodules.\n\nImpression: Normal.'), []);
});

test('a 1 MB report is mined in linear time (no catastrophic backtracking)', () => {
  const unit = 'Small nodule in the right upper lobe (series 3, image 45), measuring 5 mm, stable since 12.03.2021. No effusion. ';
  const big = unit.repeat(Math.ceil(1e6 / unit.length));
  const t0 = performance.now();
  const m = mineSnippets(big);
  const dt = performance.now() - t0;
  assert.is(m.length, Math.ceil(1e6 / unit.length));
  // Adversarial: long runs of separators, numbers and keywords without periods.
  const nasty = ('series series 3, , , , image image 1 and and 2 - - ' + ',;:'.repeat(50) + ' (((( [[[ ').repeat(4000);
  const t1 = performance.now();
  mineSnippets(nasty);
  mineSnippets('image '.repeat(150000) + '5'.repeat(20));
  mineSnippets(', '.repeat(400000) + '.');
  const dt2 = performance.now() - t1;
  console.log(`  1 MB report: ${dt.toFixed(0)} ms; adversarial inputs: ${dt2.toFixed(0)} ms`);
  assert.ok(dt < 3000 && dt2 < 6000);
});

const series: SeriesMeta = {
  seriesNumber: 3,
  // Head-first numbering starting at 101: instance 101 is the top slice (z = 95).
  slices: Array.from({ length: 20 }, (_, n) => ({ instanceNumber: 101 + n, z: 95 - 5 * n })),
};

test('image -> slice -> world z through the metadata', () => {
  assert.is(seriesThickness(series), 5);
  assert.equal(resolveImage(series, 101), { z: 95, thickness: 5 });
  assert.equal(resolveImage(series, 120), { z: 0, thickness: 5 });
  assert.is(resolveImage(series, 100), null);
  assert.is(seriesThickness({ ...series, sliceThickness: 2 }), 2);
});

test('world z -> depth bin of a prepared grid (largest overlap; outside -> null)', () => {
  // Prepared grid: 3 mm z spacing, 32 slices from z = 0 (k = 0) up; bins of 4 voxels = 12 mm.
  const affine = [0.75, 0, 0, 0, 0, 0.75, 0, 0, 0, 0, 3, 0, -50, -50, 0, 1];
  const grid = { affine, shape: [64, 64, 32] as [number, number, number] };
  // Bin b covers z in [12 b - 1.5, 12 b + 10.5).
  assert.is(depthBin(grid, 0, 0), 0);
  assert.is(depthBin(grid, 11, 0), 1);
  assert.is(depthBin(grid, 30, 5), 2);
  // A 5 mm slice at z = 10 covers [7.5, 12.5]: 3 mm in bin 0, 2 mm in bin 1 -> bin 0.
  assert.is(depthBin(grid, 10, 5), 0);
  assert.is(depthBin(grid, 11.5, 5), 1);
  assert.is(depthBin(grid, -10, 5), null);
  assert.is(depthBin(grid, 200, 5), null);
  assert.is(depthBin(grid, 94.4, 0), 7);
  assert.is(depthBin(grid, 94.5, 0), null);
  // Flipped k axis (k runs feet-wards): bins count from the top.
  const flipped = { affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -3, 0, 0, 0, 93, 1], shape: [8, 8, 32] as [number, number, number] };
  assert.is(depthBin(flipped, 93, 0), 0);
  assert.is(depthBin(flipped, 0, 0), 7);
});

test('locateSnippets: drops with reasons, never throws', () => {
  const affine = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1];
  const grid = { affine, shape: [8, 8, 24] as [number, number, number] }; // z 0..69, 6 bins
  const report =
    'Nodule (series 3, image 110). Effusion (series 3, image 150). Opacity (series 7, image 110). Atelectasis (image 120). Hernia (series 3, image 102).';
  const mined = mineSnippets(report);
  assert.is(mined.length, 5);
  const r = locateSnippets(mined, series, grid);
  // image 110 -> z = 50 -> bin 4; image 120 -> z = 0 -> bin 0; image 102 -> z = 90 -> outside.
  assert.equal(
    r.located.map((l) => [l.sentence, l.z, l.bin]),
    [
      ['Nodule.', 50, 4],
      ['Atelectasis.', 0, 0],
    ],
  );
  const c = dropCounts(r.dropped);
  assert.equal(c, { 'no-series-metadata': 0, 'other-series': 1, 'unknown-series': 0, 'ambiguous-series': 0, 'image-not-in-series': 1, 'outside-crop': 1 });
  assert.ok(r.dropped.every((d) => d.detail.length > 0));
  assert.is(locateSnippets(mined, undefined, grid).dropped.length, 5);
  // Unknown SeriesNumber (anonymised DICOM): references naming a series are dropped unless accepted;
  // "image 120" (no series) resolves either way.
  const anon: SeriesMeta = { ...series, seriesNumber: null };
  const u = locateSnippets(mined, anon, grid);
  assert.equal(u.located.map((l) => l.sentence), ['Atelectasis.']);
  assert.equal(dropCounts(u.dropped)['unknown-series'], 4);
  assert.match(u.dropped[0]!.detail, /SeriesNumber is unknown/);
  const acc = locateSnippets(mined, anon, grid, 4, { unknownSeries: 'accept' });
  assert.equal(acc.located.map((l) => [l.sentence, l.bin]), [['Nodule.', 4], ['Opacity.', 4], ['Atelectasis.', 0]]);
  assert.equal(dropCounts(acc.dropped), { 'no-series-metadata': 0, 'other-series': 0, 'unknown-series': 0, 'ambiguous-series': 0, 'image-not-in-series': 1, 'outside-crop': 1 });
});

test('a reference is never placed on a series other than the one it names', () => {
  // Series 3, images 1..60, as a DICOM folder of one series gives it.
  const s3: SeriesMeta = { seriesNumber: 3, slices: Array.from({ length: 60 }, (_, k) => ({ instanceNumber: k + 1, z: -25 - 2.5 * k })) };
  const report = 'A 4 mm nodule on image 406 of series 7 which is unchanged. A 5 mm nodule on image 52 of series 4 is new. Effusion (7:20). Nodule on image 12.';
  const mined = mineSnippets(report);
  assert.equal(mined.map((m) => [m.series, m.images]), [[7, [406]], [4, [52]], [7, [20]], [null, [12]]]);
  assert.equal(mined.map((m) => m.sentence), ['A 4 mm nodule which is unchanged.', 'A 5 mm nodule is new.', 'Effusion.', 'Nodule.']);
  const r = mined.map((m) => resolveSnippet(m, s3));
  assert.equal(r.slice(0, 3).map((x) => (x as { reason: string }).reason), ['other-series', 'other-series', 'other-series']);
  assert.equal(r[3], { z: -25 - 2.5 * 11, thickness: 2.5 });
  // "image 12" alone names no series: with several series in the study it could be any of them.
  const several = resolveSnippet(mined[3]!, { ...s3, seriesCount: 2 });
  assert.equal((several as { reason: string }).reason, 'ambiguous-series');
  assert.match((several as { detail: string }).detail, /image 12 names no series, and the study has 2 image series/);
  // A series named but unreadable after "of series" gives no reference, not a series-less one.
  assert.equal(mineSnippets('Nodule on image 52 of series 4.5 mm.'), []);
  // Two different series named in the sentence: the series-less image is dropped.
  assert.equal(mineSnippets('Compared with series 3 and series 5, the nodule on image 52 is larger.'), []);
  // "S6" is a lung segment unless an abbreviated image word follows.
  assert.equal(mineSnippets('Rundherd im S6 (Bild 45).').map((x) => [x.series, x.images]), [[null, [45]]]);
  assert.equal(mineSnippets('Herd in S6, Bild 45.').map((x) => [x.series, x.images]), [[null, [45]]]);
  assert.equal(mineSnippets('Herd (S6/B45).').map((x) => [x.series, x.images]), [[6, [45]]]);
    // One series named elsewhere in the sentence: taken, and removed from the sentence.
  const m = mineSnippets('On series 4, the nodule on image 52 is new.');
  assert.equal(m.map((x) => [x.series, x.images, x.sentence]), [[4, [52], 'the nodule is new.']]);
});

test('US series:image notation: lists, ranges, several series, and the contexts that are not references', () => {
  const one = (t: string) => mineSnippets(t).map((m) => [m.series, m.images, m.kind]);
  assert.equal(one('Nodule (7:200).'), [[7, [200], 'single']]);
  assert.equal(one('Nodules (7:87 and 7:209).'), [[7, [87, 209], 'list']]);
  assert.equal(one('Nodules (203:587, 557).'), [[203, [587, 557], 'list']]);
  assert.equal(one('Nodules (4:86 through 4:120).'), [[4, [86, 120], 'range']]);
  assert.equal(one('Nodules (4:86-120).'), [[4, [86, 120], 'range']]);
  assert.equal(one('Plugs (5:250 and 6:98).'), [[5, [250], 'single'], [6, [98], 'single']]);
  assert.equal(one('Nodule (S7: 311) is stable.'), [[7, [311], 'single']]);
  assert.equal(one('Nodule (see 7:200).'), [[7, [200], 'single']]);
  assert.equal(one('Adrenal nodule on 4:573.'), [[4, [573], 'single']]);
  assert.equal(one('Right upper lobe, 3:23, and left upper lobe, 3:30.'), [[3, [23], 'single'], [3, [30], 'single']]);
  const m = mineSnippets('Nodules (5:250 and 6:98) are stable.');
  assert.equal(m.map((x) => x.sentence), ['Nodules are stable.', 'Nodules are stable.']);
  for (const t of [
    'Scanned at 10:30.',
    'Scanned at 10:30 am, nodule stable.',
    'Contrast at 07:45 (bolus tracking).',
    '(10:30) Contrast given.',
    'Ratio 2:1.',
    'The cardiothoracic ratio (1:2) is normal.',
    'Diluted 1:10 (1:10).',
    'Time 10:30:15, nodule (stable).',
    'Um 8:15 Uhr wurde untersucht.',
    'Nodule (7:200 mm).',
    'Value (3:0).',
    'Measured 10:30, then repeated.',
  ])
    assert.equal(mineSnippets(t).filter((x) => /:/.test(x.ref)), [], t);
});

test('primaryImage', () => {
  assert.is(primaryImage([40, 45], 'range'), 42);
  assert.is(primaryImage([45, 40], 'range'), 42);
  assert.is(primaryImage([14, 12], 'list'), 12);
  assert.is(primaryImage([7], 'single'), 7);
});

test.run();
