// The inference commands through the built CLI (dist/cli.js) on a RadFinder weights folder
// written here (random weights at reduced sizes, the release's config.json layout): embed
// reproduces the float64 reference on the CT as the model prepares it; localize, classify
// and retrieve agree with those embeddings; weights inspect checks a file against a
// configuration; bad input gets one line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli as cli } from '../helpers/cli.ts';
import { assertClose } from '../helpers/check.ts';
import { writeTestDicom } from '../helpers/dicom-writer.ts';
import * as ref from '../reference/radfinder.ts';
import { rfConfig } from '../helpers/radfinder.ts';
import { paperConfig, toRadfinderJson, type RadFinderConfig } from '../../src/model/config.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import { readNiftiFile, writeNiftiFile } from '../../src/data/io/node.ts';
import { createVolume, affineFromRows } from '../../src/data/volume.ts';
import { prepareRadfinder } from '../../src/data/radfinder-prep.ts';
import { WordPieceTokenizer } from '../../src/data/tokenizer.ts';
import { PATHOLOGIES, ZERO_SHOT_TEMPLATES } from '../../src/model/tasks.ts';

const t = suite('inference cli');
const dir = mkdtempSync(join(tmpdir(), 'ctvlm-infer-'));

const cfg: RadFinderConfig = {
  ...paperConfig(),
  vision: {
    backbone: { embedDim: 24, depth: 1, heads: 2, mlpRatio: 2, ropeBase: 1000, layerScale: 1 },
    combiner: { depth: 1, heads: 2, mlpRatio: 2, ropeBase: 100, layerScale: 1 },
    patch: [8, 8, 4],
    window: [16, 24, 8],
  },
  text: { hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 8, intermediateSize: 24, vocabSize: 300, rmsNormEps: 1e-6, ropeTheta: 1e6, eosTokenId: 3 },
  head: { hidden: 12, bottleneck: 6, out: 8 },
  preprocessing: { pixdim: [3, 3, 6], huMin: -1000, huMax: 1000, dtype: 'float16' },
};
const rc = rfConfig(cfg);
const sd = ref.randomStateDict(rc, 11);
const W = join(dir, 'weights');
const ct = join(dir, 'cts', 'lps.nii.gz');

t.before(() => {
  mkdirSync(W, { recursive: true });
  writeFileSync(join(W, 'config.json'), JSON.stringify(toRadfinderJson(cfg, { maxTextTokens: 12 })));
  writeFileSync(join(W, 'model.safetensors'), encodeSafetensors(Object.fromEntries([...sd].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]))));
  // A tokenizer whose vocabulary holds the prompts' words; [SEP] (id 3) ends every text.
  const corpus = [...PATHOLOGIES.flatMap((p) => ZERO_SHOT_TEMPLATES.flatMap(([a, b]) => [a.replace('{a}', p), b.replace('{a}', p)])), 'nodule in the right upper lobe'];
  writeFileSync(join(W, 'tokenizer.json'), WordPieceTokenizer.train(corpus, { vocabSize: 300 }).serialize());
  // Two CTs in LPS order (as DICOM-derived NIfTI often are), oblique-free, 2.5 x 2.9 x 5 mm.
  const mk = (seed: number) => {
    const shape = [20, 30, 17];
    const data = Float32Array.from({ length: 20 * 30 * 17 }, (_, i) => 800 * Math.sin(0.3 * (i % 20) + seed) * Math.cos(0.2 * Math.floor(i / 600) - seed) - 200);
    return createVolume(shape, { data, affine: affineFromRows([[-2.5, 0, 0], [0, -2.9, 0], [0, 0, 5]], [40, 60, -80]) });
  };
  writeNiftiFile(ct, mk(0));
  writeNiftiFile(join(dir, 'cts', 'other.nii.gz'), mk(1.3));
  writeFileSync(join(dir, 'ids.json'), JSON.stringify([[5, 17, 42, 3], [3], [250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 261, 262, 3]]));
});
t.after(() => rmSync(dir, { recursive: true, force: true }));

const TOL = { rtol: 2e-4, atol: 2e-4 };

t('embed: every embedding equals the float64 reference on the prepared CT and the token ids', () => {
  const r = cli('embed', '--weights', W, '--ct', ct, '--ids', join(dir, 'ids.json'));
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /text 3: 14 tokens, truncated to the model's limit of 12/);
  const out = JSON.parse(r.stdout);
  // The CT as the model prepares it (tested in test/data/radfinder-prep.test.ts), cut into windows for the reference.
  const prep = prepareRadfinder(readNiftiFile(ct), { pixdim: cfg.preprocessing.pixdim, window: cfg.vision.window, patchDepth: 4, huMin: -1000, huMax: 1000, dtype: 'float16' });
  assert.equal(out.image.grid, prep.grid);
  const [X, Y, Z] = prep.shape;
  const [w0, w1, w2] = cfg.vision.window;
  const windows = new Float64Array(X * Y * Z);
  let o = 0;
  for (let a = 0; a < prep.grid[0]; a++) for (let b = 0; b < prep.grid[1]; b++) for (let c = 0; c < prep.grid[2]; c++)
    for (let x = 0; x < w0; x++) for (let y = 0; y < w1; y++) for (let z = 0; z < w2; z++) windows[o++] = prep.data[((a * w0 + x) * Y + b * w1 + y) * Z + c * w2 + z];
  const want = ref.imageForward(rc, sd, windows, prep.grid);
  assertClose(out.image.image.raw, want.image, TOL, 'image');
  assertClose(out.image.disease.raw, want.disease, TOL, 'disease');
  assertClose(out.image.depth.raw.flat(), Float64Array.from(want.depth.flatMap((d) => [...d])), TOL, 'depth');
  assert.equal(out.image.depth.valid, want.valid);
  assertClose(out.image.image.normalized, ref.l2normalize(want.image), TOL, 'image normalised');
  const ids = JSON.parse(readFileSync(join(dir, 'ids.json'), 'utf8')) as number[][];
  ids.forEach((row, i) => {
    const cut = row.length > 12 ? [...row.slice(0, 11), row[row.length - 1]] : row;
    const w = ref.textForward(rc, sd, cut);
    assertClose(out.texts[i].report.raw, w.report, TOL, `report ${i}`);
    assertClose(out.texts[i].snippet.raw, w.snippet, TOL, `snippet ${i}`);
  });
});

t('localize, classify and retrieve: consistent with the embeddings', () => {
  const e = JSON.parse(cli('embed', '--weights', W, '--ct', ct, '--text', 'nodule in the right upper lobe').stdout);
  const l = cli('localize', '--weights', W, '--ct', ct, '--text', 'nodule in the right upper lobe', '--json');
  assert.is(l.status, 0, l.stderr);
  const loc = JSON.parse(l.stdout).localize[0];
  const want = ref.localizationProbs(e.image.depth.normalized.map((d: number[]) => Float64Array.from(d)), Float64Array.from(e.texts[0].snippet.normalized), e.image.depth.valid, 0.1);
  assert.is(loc.bin, want.bin);
  assertClose(loc.probabilities, want.probs, { rtol: 1e-5, atol: 1e-7 }, 'probabilities');
  assert.ok(Number.isInteger(loc.slice) && loc.slice >= 0 && loc.slice < 17, `slice ${loc.slice}`);
  const table = cli('localize', '--weights', W, '--ct', ct, '--text', 'nodule in the right upper lobe');
  assert.match(table.stdout, /bin \d+ \([\d.]+ mm, slice \d+\)/);
  // A DICOM series whose InstanceNumbers run against its positions: the slice is also named by
  // the InstanceNumber of the file at that position.
  const dcm = join(dir, 'dicom');
  mkdirSync(dcm, { recursive: true });
  for (let k = 0; k < 17; k++) {
    const pixels = Int16Array.from({ length: 30 * 20 }, (_, i) => Math.round(800 * Math.sin(0.3 * (i % 20)) * Math.cos(0.2 * k) - 200));
    writeFileSync(join(dcm, `f${k}.dcm`), writeTestDicom({ rows: 30, columns: 20, pixels, position: [0, 0, 5 * k], pixelSpacing: [2.9, 2.5], instanceNumber: 100 - k, seriesNumber: 3 }));
  }
  const d = cli('localize', '--weights', W, '--ct', dcm, '--text', 'nodule in the right upper lobe', '--json');
  assert.is(d.status, 0, d.stderr);
  const dl = JSON.parse(d.stdout).localize[0];
  assert.is(dl.instanceNumber, 100 - dl.slice, `slice ${dl.slice}, InstanceNumber ${dl.instanceNumber}`);
  // Inside the scan: the bin's centre between the first and last slice's planes (z 0 .. 80 mm) and half a slice.
  assert.is(dl.insideScan, dl.world[2] >= -2.5 && dl.world[2] <= 82.5, `world z ${dl.world[2]}`);
  assert.match(cli('localize', '--weights', W, '--ct', dcm, '--text', 'nodule in the right upper lobe').stdout, new RegExp(`slice ${dl.slice}, InstanceNumber ${100 - dl.slice}\\)`));

  const c = cli('classify', '--weights', W, '--ct', ct, '--json');
  assert.is(c.status, 0, c.stderr);
  const scores = JSON.parse(c.stdout).scores;
  assert.is(scores.length, 18);
  assert.ok(scores.every((s: { score: number }) => s.score > 0 && s.score < 1));

  const r = cli('retrieve', '--weights', W, '--cts', join(dir, 'cts'), '--text', 'nodule in the right upper lobe', '--json');
  assert.is(r.status, 0, r.stderr);
  const ranking = JSON.parse(r.stdout).ranking;
  assert.equal(ranking.map((x: { id: string }) => x.id).sort(), ['lps', 'other']);
  const lps = ranking.find((x: { id: string }) => x.id === 'lps');
  const cos = e.image.image.normalized.reduce((s: number, v: number, i: number) => s + v * e.texts[0].report.normalized[i], 0);
  assertClose([lps.cosine], [cos], { rtol: 1e-5, atol: 1e-6 }, 'retrieval cosine');
  assert.ok(ranking[0].cosine >= ranking[1].cosine);
});

t('weights inspect: the folder checks out; against another preset it lists the problems', () => {
  const ok = cli('weights', 'inspect', W);
  assert.is(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /ok: every key present with its shape/);
  const bad = cli('weights', 'inspect', join(W, 'model.safetensors'), '--preset', 'tiny');
  assert.is(bad.status, 1);
  assert.match(bad.stdout, /shape: model\.backbone_image\.patch_embed\.proj\.weight is \[24, 1, 8, 8, 4\], expected/);
});

t('bad input: one line naming the file and the field', () => {
  const bad = join(dir, 'bad');
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(bad, 'config.json'), JSON.stringify(toRadfinderJson({ ...cfg, head: { ...cfg.head, out: 16 } })));
  writeFileSync(join(bad, 'model.safetensors'), readFileSync(join(W, 'model.safetensors')));
  const trunc = join(dir, 'trunc');
  mkdirSync(trunc, { recursive: true });
  writeFileSync(join(trunc, 'config.json'), readFileSync(join(W, 'config.json')));
  writeFileSync(join(trunc, 'model.safetensors'), readFileSync(join(W, 'model.safetensors')).subarray(0, 5000));
  const shards = join(dir, 'shards');
  mkdirSync(shards, { recursive: true });
  writeFileSync(join(shards, 'config.json'), readFileSync(join(W, 'config.json')));
  writeFileSync(join(shards, 'model.safetensors.index.json'), '{"weight_map": {}}');
  const notok = join(dir, 'notok');
  mkdirSync(notok, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) writeFileSync(join(notok, f), readFileSync(join(W, f)));
  // A config.json that states no sizes (the release's are assumed): the mismatch says so.
  const bare = join(dir, 'bare');
  mkdirSync(bare, { recursive: true });
  writeFileSync(join(bare, 'config.json'), '{"model_type": "radfinder"}');
  writeFileSync(join(bare, 'model.safetensors'), readFileSync(join(W, 'model.safetensors')));
  const broken = join(dir, 'broken');
  mkdirSync(broken, { recursive: true });
  writeFileSync(join(broken, 'config.json'), '{"radfinder_model_config": ');
  writeFileSync(join(broken, 'model.safetensors'), readFileSync(join(W, 'model.safetensors')));
  const flat = join(dir, 'flat.nii.gz');
  writeNiftiFile(flat, createVolume([40, 40, 1], { spacing: [1, 1, 1] }));
  // Finite weights whose activations overflow float32 (a diverged checkpoint): the text head's
  // linear layers scaled by 1e25.
  const huge = join(dir, 'huge');
  mkdirSync(huge, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json']) writeFileSync(join(huge, f), readFileSync(join(W, f)));
  const scaled = (k: string) => k.startsWith('model.projection_text.') && k.endsWith('.weight') && !k.includes('parametrizations');
  writeFileSync(join(huge, 'model.safetensors'), encodeSafetensors(Object.fromEntries([...sd].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data, (x) => (scaled(k) ? x * 1e25 : x)) }]))));
  for (const [args, msg] of [
    [['embed', '--weights', bad, '--ids', join(dir, 'ids.json')], /bad\/model\.safetensors: model\.projection_image\.last_layer\.parametrizations\.weight\.original0: shape \(8, 1\) in the file, \(16, 1\) in the model/],
    [['embed', '--weights', trunc, '--ids', join(dir, 'ids.json')], /trunc\/model\.safetensors: .*(truncated|does not fit)/],
    [['embed', '--weights', bare, '--ids', join(dir, 'ids.json')], /bare\/model\.safetensors: .*in the model built from the configuration \(config\.json states no radfinder_model_config and no text_config, so the released model's sizes were assumed\)\n?$/],
    [['embed', '--weights', join(dir, 'cts'), '--ids', join(dir, 'ids.json')], /config\.json: missing/],
    [['embed', '--weights', W, '--ct', flat], /flat\.nii\.gz: shape: z is 1 voxel\(s\) after resampling/],
    [['embed', '--weights', W, '--ids', ct], /lps\.nii\.gz: ids: not a JSON list/],
    [['localize', '--weights', W, '--ct', ct], /give --text or --ids/],
    [['localize', '--weights', W, '--ct', ct, '--text', '  '], /--text is empty: give a sentence\n?$/],
    // Letters of scripts the vocabulary never saw: every token [UNK], as the browser demo refuses.
    [['localize', '--weights', W, '--ct', ct, '--text', 'ႠႡႢ ᏣᏤᏥ'], /--text: no word of "ႠႡႢ ᏣᏤᏥ" is in the model's vocabulary \(every token is \[UNK\]\)/],
    [['weights', 'inspect', broken], /broken\/config\.json: config: not valid JSON .*\(to list the weights file anyway, check it against a preset: --preset paper\|small\|tiny\)\n?$/],
    [['classify', '--weights', W, '--ct', join(dir, 'nope.nii.gz')], /nope\.nii\.gz: file: no such file or folder \(--ct takes/],
    [['localize', '--weights', W, '--ct', ct, '--text', '?!... ;; -- ,,,'], /--text has no word, only punctuation or symbols: give a sentence\n?$/],
    [['classify', '--weights', notok, '--ct', ct], /notok: tokenizer\.json: missing: zero-shot classification embeds prompt texts\n?$/],
    [['localize', '--weights', notok, '--ct', ct, '--text', 'nodule'], /notok: tokenizer\.json: missing: this weights folder has no tokenizer; pass token ids with --ids FILE\n?$/],
    [['embed', '--weights', shards, '--ids', join(dir, 'ids.json')], /shards: model\.safetensors: missing: the folder holds a sharded checkpoint \(model\.safetensors\.index\.json\), which is not read here/],
    [['embed', '--weights', huge, '--ids', join(dir, 'ids.json')], /the report embedding \(projection_text\) of text 1-3 has non-finite values .*the weights overflow float32/],
    [['embed', '--weights', W, '--ids', join(dir, 'ids.json'), '--out', join(dir, 'nowhere', 'e.json')], /--out: the folder of .*nowhere\/e\.json does not exist/],
  ] as [string[], RegExp][]) {
    const r = cli(...args);
    assert.ok(r.status === 1 || r.status === 2, `${args.join(' ')}: exit ${r.status}`);
    assert.match(r.stderr, msg);
    assert.not.match(r.stderr, /at .*(file:\/\/|\.js:\d)/, 'no JavaScript stack trace');
    // Faults of the inputs themselves are found before the weights load (minutes for the release's).
    if (args.includes(notok) || /no such file or folder \(--ct|--text (is empty|has no word)/.test(r.stderr))
      assert.not.match(r.stderr, /trainable parameters/, `${args.join(' ')}: refused before the weights are loaded`);
  }
});

t.run();
