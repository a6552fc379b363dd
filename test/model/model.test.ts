// RadFinder's model (src/model) against the independent float64 reference written from
// RADFINDER-MODEL.md (test/reference/radfinder.ts): the checkpoint key table, a RadFinder-
// format file with random weights (every key, f16 and bf16 tensors mixed in) reproducing the
// reference's image, disease, per-depth, report and snippet embeddings, save/load round
// trips, refusals of wrong files; then the training objective: every parameter reached,
// directional derivatives against central differences, and a loss that falls.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose } from '../helpers/check.ts';
import { rng } from '../helpers/random.ts';
import * as ref from '../reference/radfinder.ts';
import { rfConfig } from '../helpers/radfinder.ts';
import * as ops from '../../src/ops/index.ts';
import { AdamW } from '../../src/optim/index.ts';
import { backward, noGrad } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { RadFinderModel, type Batch, type TextBatch } from '../../src/model/model.ts';
import { paperConfig, fromRadfinderJson, toRadfinderJson, type RadFinderConfig } from '../../src/model/config.ts';
import { checkpointKeys, countValues } from '../../src/model/keys.ts';
import { loadWeightsFromBytes, stateEntries, weightBytes } from '../../src/model/weights.ts';
import { textBatch } from '../../src/model/text.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import { withoutInit } from '../../src/nn/module.ts';
import { DataError } from '../../src/errors.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

const t = suite('model');

// Head widths 12 (F = 2 RoPE frequencies per axis) and a window of 3 x 2 x 4 tokens, so that
// RoPE's axes and the depth path are all exercised (see the reference's notes).
const cfg: RadFinderConfig = {
  ...paperConfig(),
  vision: {
    backbone: { embedDim: 24, depth: 2, heads: 2, mlpRatio: 2, ropeBase: 1000, layerScale: 1 },
    combiner: { depth: 1, heads: 2, mlpRatio: 3, ropeBase: 100, layerScale: 1 },
    patch: [4, 2, 2],
    window: [12, 4, 8],
  },
  text: { hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 6, intermediateSize: 20, vocabSize: 50, rmsNormEps: 1e-6, ropeTheta: 1e6, eosTokenId: 3 },
  head: { hidden: 10, bottleneck: 6, out: 5 },
  localization: { sigma: 2, tau: 0.1, weight: 1, target: 'radfinder', l1Weight: 0.01 },
};


// The reference gives the combiner the backbone's MLP ratio; use equal ratios where compared.
const cmpCfg: RadFinderConfig = { ...cfg, vision: { ...cfg.vision, combiner: { ...cfg.vision.combiner, mlpRatio: 2 } } };

t('the key table: modules, the pure table and the reference agree; the paper preset has 1.025 B values', async () => {
  const gpu = await testGpu();
  const model = new RadFinderModel(gpu, cmpCfg, 1);
  const fromModules = stateEntries(model).map((e) => `${e.key} ${e.shape}`).sort();
  const table = checkpointKeys(cmpCfg).map((k) => `${k.key} ${k.shape}`).sort();
  const reference = ref.radfinderKeys(rfConfig(cmpCfg)).map((k) => `${k.key} ${k.shape}`).sort();
  assert.equal(fromModules, table);
  assert.equal(table, reference);
  model.dispose();
  const paper = checkpointKeys(paperConfig());
  // 1030 keys in the release, of which 224 are LoRA's (4 projections x 2 x 28 layers).
  assert.is(paper.length, 1030 - 224);
  assert.is(countValues(paper), ref.radfinderKeys(ref.RELEASED_CONFIG).reduce((s, k) => s + ref.numel(k.shape), 0));
  assert.is(countValues(paper), 1_025_215_160);
});

t('config.json round trip, and the reduced example configuration of the shared folder', () => {
  assert.equal(fromRadfinderJson(toRadfinderJson(cfg)), cfg);
  const withReportPrompts = { ...cfg, reportPromptWeight: 0.75 };
  assert.equal(fromRadfinderJson(toRadfinderJson(withReportPrompts)), withReportPrompts);
  const example = fromRadfinderJson({
    model_type: 'radfinder',
    radfinder_model_config: { feature_comb_embed_dim: 36, feature_comb_num_layers: 1, feature_comb_num_heads: 3, projection_dim: 16, text_hidden_size: 32, backbone_kwargs: { sliding_window_size: [32, 48, 16], patch_size: [16, 16, 4], half_patch_embed: false, embed_dim: 36, depth: 2, num_heads: 2, mlp_ratio: 4, rope_kwargs: { base: 1000 }, init_values: 1 }, feature_combiner_kwargs: { rope_kwargs: { base: 100 } }, head_hidden_dim: 48, head_bottleneck_dim: 20 },
    image_preprocessing: { pixdim: [0.75, 0.75, 3], dtype: 'float16' },
    text_config: { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, intermediate_size: 80, vocab_size: 300, eos_token_id: 256 },
  });
  assert.equal(example.vision.window, [32, 48, 16]);
  assert.equal(example.vision.patch, [16, 16, 4]);
  assert.is(example.text.eosTokenId, 256);
  // The release: half_patch_embed folds a 16x16x8 SPECTRE kernel to 16x16x4.
  assert.equal(fromRadfinderJson({ radfinder_model_config: { backbone_kwargs: { patch_size: [16, 16, 8], half_patch_embed: true } } }).vision.patch, [16, 16, 4]);
  assert.throws(() => fromRadfinderJson({ model_type: 'bert' }, 'c.json'), /c\.json: model_type: 'bert' is not a RadFinder model/);
  // Preprocessing and snippet-alignment settings of another model than the release's: refused by name.
  assert.throws(() => fromRadfinderJson({ image_preprocessing: { orientation_axcodes: 'LPS' } }, 'c.json'), /^c\.json image_preprocessing: orientation_axcodes: 'LPS' is not supported/);
  assert.throws(() => fromRadfinderJson({ image_preprocessing: { intensity_b_max: 255 } }, 'c.json'), /^c\.json image_preprocessing: intensity_b_max: 255 is not supported/);
  assert.throws(() => fromRadfinderJson({ do_snippet_alignment: { enabled: false } }, 'c.json'), /^c\.json do_snippet_alignment: enabled: false is not supported/);
  assert.throws(() => fromRadfinderJson({ do_snippet_alignment: { rope_mode: 'index' } }, 'c.json'), /rope_mode: "index" is not supported/);
  assert.throws(() => fromRadfinderJson({ radfinder_model_config: { backbone_kwargs: { min_area_for_padding: 0.5 } } }, 'c.json'), /backbone_kwargs: min_area_for_padding: 0\.5 is not supported/);
  // null is absent, as for every other field.
  assert.not.throws(() => fromRadfinderJson({ image_preprocessing: { orientation_axcodes: null, intensity_b_min: null }, do_snippet_alignment: { enabled: null } }));
  // The shared example (RADFINDER-MODEL.md, section 8) states the release's values: accepted.
  assert.not.throws(() => fromRadfinderJson({ image_preprocessing: { orientation_axcodes: 'RAS', intensity_b_min: 0.0, intensity_b_max: 1.0, min_area_for_padding: 0.0 }, do_snippet_alignment: { enabled: true, projector_mode_image: 'copy', projector_mode_text: 'copy', snippet_mode: 'axis_localization', rope_mode: 'physical' } }));
  assert.throws(() => fromRadfinderJson({ radfinder_model_config: { backbone_kwargs: { embed_dim: 40, num_heads: 2 } } }, 'c.json'), /head width divisible by 6/);
  // The two copies of the window and voxel size: either one, and disagreeing copies refused.
  const twice = (bk: object, ip: object) => fromRadfinderJson({ radfinder_model_config: { backbone_kwargs: bk }, image_preprocessing: ip }, 'c.json');
  assert.equal(twice({}, { sliding_window_size: [64, 64, 32] }).vision.window, [64, 64, 32]);
  assert.equal(twice({ pixdim: [1, 1, 2] }, {}).preprocessing.pixdim, [1, 1, 2]);
  assert.throws(() => twice({ sliding_window_size: [128, 128, 32] }, { sliding_window_size: [64, 64, 32] }), /c\.json radfinder_model_config\.backbone_kwargs: sliding_window_size: \[128, 128, 32\] differs from c\.json image_preprocessing\.sliding_window_size \[64, 64, 32\]: the two copies must agree/);
  assert.throws(() => twice({ pixdim: [1, 1, 2] }, { pixdim: [0.75, 0.75, 3] }), /pixdim: \[1, 1, 2\] differs from/);
});

t('the patch histogram (not RadFinder\'s): its keys in the table, config.json round trip, one-line errors', async () => {
  const gpu = await testGpu();
  const hcfg: RadFinderConfig = { ...cmpCfg, vision: { ...cmpCfg.vision, patchHistogram: [-1000, -500, 0, 40, 1000] } };
  const model = new RadFinderModel(gpu, hcfg, 1);
  const fromModules = stateEntries(model).map((e) => `${e.key} ${e.shape}`).sort();
  assert.equal(fromModules, checkpointKeys(hcfg).map((k) => `${k.key} ${k.shape}`).sort());
  assert.ok(fromModules.includes('model.backbone_image.patch_embed.hist_proj.weight 24,5'), fromModules.filter((k) => k.includes('patch_embed')).join('; '));
  // The centres are stored in the crop's 0..1 units of the HU window.
  const centres = await model.backbone_image.patch_embed.hist_centres!.floats();
  assert.equal(Array.from(centres), [0, 0.25, 0.5, 0.52, 1].map((v) => Math.fround(v)));
  // From a checkpoint: through the entry, checked, and the host copy follows the device's.
  const entry = stateEntries(model).find((e) => e.key.endsWith('patch_embed.hist_centres'))!;
  entry.set(Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5]));
  assert.equal(Array.from(await model.backbone_image.patch_embed.hist_centres!.floats()), [0.1, 0.2, 0.3, 0.4, 0.5].map(Math.fround));
  assert.equal(Array.from(model.backbone_image.patch_embed.centres!), [0.1, 0.2, 0.3, 0.4, 0.5].map(Math.fround));
  assert.throws(() => entry.set(Float32Array.from([0.1, 0.3, 0.2, 0.4, 0.5])), /patch_embed\.hist_centres: centres must be strictly ascending \(centre 2/);
  model.dispose();
  assert.throws(() => new RadFinderModel(gpu, { ...hcfg, preprocessing: { ...hcfg.preprocessing, huMin: 100, huMax: 100 } }, 1), /HU window 100\.\.100 is empty/);
  assert.equal(fromRadfinderJson(toRadfinderJson(hcfg)), hcfg);
  const bad = (v: unknown) => fromRadfinderJson({ radfinder_model_config: { patch_histogram_hu: v } }, 'c.json');
  assert.throws(() => bad([0, 10, 5]), /c\.json radfinder_model_config: patch_histogram_hu: centres must be strictly ascending \(5 follows 10\)/);
  assert.throws(() => bad([1]), /patch_histogram_hu: expected 2 to 32 finite numbers/);
  assert.throws(() => bad('x'), /patch_histogram_hu: expected 2 to 32 finite numbers/);
});

/** Bytes of an f32 value as f16 / bf16 (round to nearest even) and back. */
function toF16(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return 0;
  const e = Math.max(-14, Math.floor(Math.log2(a)));
  const q = 2 ** (e - 10);
  const r = x / q;
  const n = Math.round(r);
  return (Math.abs(r % 1) === 0.5 && n % 2 ? n - Math.sign(r) : n) * q;
}
function f16Bits(x: number): number {
  const v = toF16(x);
  if (v === 0) return 0;
  const s = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  if (e < -14) return s | Math.round(a / 2 ** -24);
  return s | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A RadFinder-format file of the reference's random weights: every third tensor f16, every fifth bf16; returns the values as stored. */
function writeFile(sd: ref.StateDict, extra: Record<string, { shape: number[]; data: Float64Array }> = {}): { bytes: Uint8Array; stored: ref.StateDict } {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  const stored: ref.StateDict = new Map();
  let off = 0;
  let i = 0;
  for (const [key, v] of [...sd, ...Object.entries(extra)]) {
    const kind = i % 5 === 4 ? 'BF16' : i % 3 === 2 ? 'F16' : 'F32';
    i++;
    let bytes: Uint8Array;
    let values: Float64Array;
    if (kind === 'F32') {
      const a = Float32Array.from(v.data);
      bytes = new Uint8Array(a.buffer);
      values = Float64Array.from(a);
    } else {
      const u = Uint16Array.from(v.data, (x) => (kind === 'F16' ? f16Bits(x) : bf16Bits(x)));
      bytes = new Uint8Array(u.buffer);
      values = Float64Array.from(u, (h) => {
        if (kind === 'BF16') {
          u32[0] = h << 16;
          return f32[0];
        }
        const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
        return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
      });
    }
    header[key] = { dtype: kind, shape: v.shape, data_offsets: [off, off + bytes.length] };
    off += bytes.length;
    parts.push(bytes);
    stored.set(key, { shape: v.shape, data: values });
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { bytes: out, stored };
}

/** A crop [X, Y, Z] of `grid` windows (depth fastest) with structure, and the reference's windows (N, 1, w0, w1, w2). */
function crop(c: RadFinderConfig, grid: [number, number, number], seed: number): { data: Float32Array; shape: [number, number, number]; windows: Float64Array } {
  const [w0, w1, w2] = c.vision.window;
  const [X, Y, Z] = [grid[0] * w0, grid[1] * w1, grid[2] * w2];
  const r = rng(seed);
  const data = Float32Array.from({ length: X * Y * Z }, (_, i) => {
    const z = i % Z, y = Math.floor(i / Z) % Y, x = Math.floor(i / (Y * Z));
    return 0.5 + 0.3 * Math.sin(0.7 * x + 0.3 * y * y - 0.5 * z) + 0.2 * r();
  });
  const windows = new Float64Array(X * Y * Z);
  let o = 0;
  for (let ih = 0; ih < grid[0]; ih++)
    for (let iw = 0; iw < grid[1]; iw++)
      for (let id = 0; id < grid[2]; id++)
        for (let a = 0; a < w0; a++)
          for (let b = 0; b < w1; b++)
            for (let d = 0; d < w2; d++) windows[o++] = data[((ih * w0 + a) * Y + iw * w1 + b) * Z + id * w2 + d];
  return { data, shape: [X, Y, Z], windows };
}

// f32 kernels against float64 through ~10 layers of reduced width: errors compound to ~1e-5
// relative; 2e-4 of the largest magnitude catches any wiring or convention error (those are O(1)).
const TOL = { rtol: 2e-4, atol: 2e-4 };

async function gpuEmbeddings(model: RadFinderModel, data: Float32Array, shape: [number, number, number], ids: number[][]) {
  const gpu = model.gpu;
  const img = noGrad(() => model.encodeImage(ops.tensor(gpu, data, [1, 1, ...shape])));
  const text = noGrad(() => {
    const tb = textBatch(gpu, ids, 64);
    const s = model.textState(tb);
    return { state: s, report: model.projection_text.forward(s), snippet: model.projection_text_copy.forward(s) };
  });
  return {
    image: await img.image.floats(), disease: await img.disease.floats(), depth: await img.depth.floats(),
    state: await text.state.floats(), report: await text.report.floats(), snippet: await text.snippet.floats(),
  };
}

t('a RadFinder-format file (f32, f16, bf16; LoRA and weight_g/weight_v aliases) reproduces the float64 reference', async () => {
  const gpu = await testGpu();
  const rc = rfConfig(cmpCfg);
  const sd = ref.randomStateDict(rc, 7);
  // Aliases and LoRA tensors as a trained release would carry them.
  const renamed: ref.StateDict = new Map();
  for (const [k, v] of sd) renamed.set(k.replace('projection_text_copy.last_layer.parametrizations.weight.original0', 'projection_text_copy.last_layer.weight_g').replace('projection_text_copy.last_layer.parametrizations.weight.original1', 'projection_text_copy.last_layer.weight_v'), v);
  const lora = { 'model.backbone_text.layers.0.self_attn.q_proj.lora_A': { shape: [2, 16], data: new Float64Array(32).fill(9) }, 'model.backbone_text.layers.0.self_attn.q_proj.lora_B': { shape: [24, 2], data: new Float64Array(48).fill(9) } };
  const { bytes, stored } = writeFile(renamed, lora);
  const model = withoutInit(() => new RadFinderModel(gpu, cmpCfg));
  const report = await loadWeightsFromBytes(model, bytes, 'random.safetensors');
  assert.is(report.ignored, 2);
  assert.ok(report.dtypes.F16 > 10 && report.dtypes.BF16 > 10 && report.dtypes.F32 > 10, JSON.stringify(report.dtypes));
  // The reference reads the values as stored, under the canonical names.
  const canon: ref.StateDict = new Map();
  for (const [k, v] of stored) canon.set(k.replace('.weight_g', '.parametrizations.weight.original0').replace('.weight_v', '.parametrizations.weight.original1'), v);
  for (const k of Object.keys(lora)) canon.delete(k);

  const grid: [number, number, number] = [2, 1, 2];
  const c = crop(cmpCfg, grid, 3);
  const ids = [[5, 9, 17, 3], [3], [40, 41, 42, 43, 44, 45, 46, 2, 3]];
  const got = await gpuEmbeddings(model, c.data, c.shape, ids);
  const want = ref.imageForward(rc, canon, Float64Array.from(Float32Array.from(c.windows)), grid);
  assertClose(got.image, want.image, TOL, 'image embedding (projection_image)');
  assertClose(got.disease, want.disease, TOL, 'disease embedding (projection_image_copy)');
  const D2 = want.depth.length;
  assert.is(got.depth.length, D2 * cmpCfg.head.out, 'depth bins');
  assertClose(got.depth, Float64Array.from(want.depth.flatMap((d) => [...d])), TOL, 'per-depth embeddings');
  ids.forEach((row, i) => {
    const w = ref.textForward(rc, canon, row);
    const H = cmpCfg.text.hiddenSize, E = cmpCfg.head.out;
    assertClose(got.state.subarray(i * H, (i + 1) * H), w.state, TOL, `text ${i}: EOS state`);
    assertClose(got.report.subarray(i * E, (i + 1) * E), w.report, TOL, `text ${i}: report (projection_text)`);
    assertClose(got.snippet.subarray(i * E, (i + 1) * E), w.snippet, TOL, `text ${i}: snippet (projection_text_copy)`);
  });

  // Saved as our checkpoint (F32, canonical names) and loaded again: identical outputs.
  const saved = await weightBytes(model);
  const again = withoutInit(() => new RadFinderModel(gpu, cmpCfg));
  await loadWeightsFromBytes(again, saved, 'saved.safetensors');
  const got2 = await gpuEmbeddings(again, c.data, c.shape, ids);
  for (const k of Object.keys(got) as (keyof typeof got)[]) assert.equal([...got2[k]], [...got[k]], `save/load: ${k} identical`);
  model.dispose();
  again.dispose();
});

t('wrong files are refused with the file, the key and both shapes', async () => {
  const gpu = await testGpu();
  const model = withoutInit(() => new RadFinderModel(gpu, cmpCfg));
  const sd = ref.randomStateDict(rfConfig(cmpCfg), 1);
  const file = (m: ref.StateDict) => encodeSafetensors(Object.fromEntries([...m].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }])));
  const refuse = async (bytes: Uint8Array, re: RegExp, what: string) => {
    try {
      await loadWeightsFromBytes(model, bytes, 'w.safetensors');
    } catch (e) {
      assert.ok(e instanceof DataError && re.test((e as Error).message), `${what}: ${(e as Error).message}`);
      return;
    }
    assert.unreachable(`${what}: loaded`);
  };
  const missing = new Map(sd);
  missing.delete('model.feature_comb_image.axis_patch_proj.bias');
  await refuse(file(missing), /w\.safetensors: model\.feature_comb_image\.axis_patch_proj\.bias: missing \(24,\)/, 'missing key');
  const extra = new Map(sd).set('model.backbone_image.blocks.9.norm1.weight', { shape: [24], data: new Float64Array(24) });
  await refuse(file(extra), /model\.backbone_image\.blocks\.9\.norm1\.weight: unexpected key/, 'extra key');
  const bad = new Map(sd).set('model.backbone_image.patch_embed.proj.weight', { shape: [24, 1, 4, 2, 4], data: new Float64Array(24 * 32) });
  await refuse(file(bad), /patch_embed\.proj\.weight: shape \(24, 1, 4, 2, 4\) in the file, \(24, 1, 4, 2, 2\) in the model/, 'shape');
  const whole = file(sd);
  await refuse(whole.slice(0, whole.length - 100), /data_offsets .* fall outside the file \(truncated\?\)/, 'truncated');
  await refuse(new TextEncoder().encode('{"not": "safetensors"}'), /w\.safetensors: header: header length/, 'not safetensors');
  const nullEntry = new TextEncoder().encode('{"model.criterion.t": null}');
  const withNull = new Uint8Array(8 + nullEntry.length);
  new DataView(withNull.buffer).setBigUint64(0, BigInt(nullEntry.length), true);
  withNull.set(nullEntry, 8);
  await refuse(withNull, /w\.safetensors: model\.criterion\.t: header entry is null/, 'null entry');
  model.dispose();
});

// ---------------------------------------------------------------- training objective

function text(gpu: Gpu, n: number, seed: number, maxLen: number): TextBatch {
  const r = rng(seed);
  const rows = Array.from({ length: n }, () => [...Array.from({ length: 1 + Math.floor(r() * (maxLen - 1)) }, () => 5 + Math.floor(r() * 40)), 3]);
  return textBatch(gpu, rows, maxLen + 1);
}

function batch(gpu: Gpu): Batch {
  const r = rng(5);
  const B = 3, Q = 4, S = 4;
  const [w0, w1, w2] = cfg.vision.window;
  const bins = (2 * w2) / cfg.vision.patch[2];
  return {
    volume: ops.tensor(gpu, Float32Array.from({ length: B * w0 * w1 * 2 * w2 }, () => r()), [B, 1, w0, w1, 2 * w2], 'volume'),
    report: text(gpu, B, 1, 7),
    reportValid: ops.tensor(gpu, [1, 1, 1], [B]),
    labels: ops.tensor(gpu, Array.from({ length: B * Q }, (_, i) => [1, 0, -1][i % 3]), [B, Q]),
    prompts: text(gpu, 2 * Q, 2, 4),
    posWeight: ops.tensor(gpu, [1, 2, 1, 3], [Q]),
    snippets: {
      text: text(gpu, S, 3, 5),
      case: ops.fromInts(gpu, [0, 0, 1, 2], [S]),
      target: ops.fromInts(gpu, [1, 3, 0, 6], [S]),
      validBins: ops.tensor(gpu, Array.from({ length: S * bins }, (_, i) => (i % bins === bins - 1 && i >= 2 * bins ? 0 : 1)), [S, bins]),
      targetMm: ops.tensor(gpu, [9, 21, 3, 39], [S, 1]),
    },
  };
}

t('the objective: finite parts, every trainable parameter reached', async () => {
  const gpu = await testGpu();
  const model = new RadFinderModel(gpu, cfg, 1);
  const b = batch(gpu);
  const parts = scope(() => {
    const p = model.loss(b);
    backward(p.total);
    return p;
  });
  for (const [name, x] of Object.entries({ total: parts.total, siglip: parts.siglip, prompts: parts.prompts, localization: parts.localization! }))
    assert.ok(Number.isFinite(await x.item()), `${name} is finite`);
  assert.equal([...parts.depthHead!.shape], [4, 3]);
  const missing = model.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
  assert.equal(missing, [], 'parameters without a gradient');
  for (const [name, p] of model.namedParameters()) assert.ok((await p.grad!.floats()).every(Number.isFinite), `${name}: finite gradient`);
  model.dispose();
});

t('the fused epilogues (gpu.tuning.fuseEpilogues; ViT blocks and Qwen3 layers) give the separate ops\' loss and every gradient bit for bit', async () => {
  const gpu = await testGpu();
  const run = async (fuse: boolean) => {
    gpu.tuning.fuseEpilogues = fuse;
    const model = new RadFinderModel(gpu, cfg, 1);
    const b = batch(gpu);
    gpu.startProfile();
    const parts = scope(() => {
      const p = model.loss(b);
      backward(p.total);
      return p;
    });
    const fusedLaunches = (await gpu.endProfile()).filter((r) => / (gelu|residual)$/.test(r.label)).length;
    assert.ok(fuse ? fusedLaunches > 0 : fusedLaunches === 0, `fuseEpilogues=${fuse}: ${fusedLaunches} matmuls with an epilogue`);
    const out: [string, Float32Array][] = [['loss', Float32Array.of(await parts.total.item())]];
    for (const [n, x] of model.namedParameters()) out.push([n, await x.grad!.floats()]);
    model.dispose();
    return out;
  };
  const [fused, plain] = [await run(true), await run(false)];
  gpu.tuning.fuseEpilogues = true;
  const differ = fused.filter(([n, f], i) => {
    const [p, q] = [new Uint32Array(f.buffer), new Uint32Array(plain[i][1].buffer)];
    return plain[i][0] !== n || p.some((x, j) => x !== q[j]);
  });
  assert.equal(differ.map(([n]) => n), [], 'loss or gradients that differ between fused and separate ops');
});

t('the report-side prompt loss: BCE of exp(t) cos(report, p_pos - p_neg) on the report labels, added with its weight', async () => {
  const gpu = await testGpu();
  const w = 0.75;
  const model = new RadFinderModel(gpu, { ...cfg, reportPromptWeight: w }, 3);
  const b = batch(gpu);
  const Q = 4;
  // Row 2 stands for an empty report: all unknown.
  const y = [1, 0, -1, 1, 0, 1, 1, -1, -1, -1, -1, -1];
  b.reportLabels = ops.tensor(gpu, y, [3, Q]);
  const parts = noGrad(() => model.loss(b));
  const unit = async (x: ReturnType<RadFinderModel['encodeText']>, rows: number) => {
    const v = Array.from(await x.floats());
    x.dispose();
    const E = v.length / rows;
    return Array.from({ length: rows }, (_, i) => {
      const r = v.slice(i * E, (i + 1) * E);
      const n = Math.hypot(...r);
      return r.map((a) => a / n);
    });
  };
  const rep = await unit(noGrad(() => model.encodeText(b.report)), 3);
  const pr = await unit(noGrad(() => model.encodeText(b.prompts)), 2 * Q);
  const scale = Math.exp((await model.criterion.t.floats())[0]);
  const pw = [1, 2, 1, 3];
  const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  let sum = 0, known = 0;
  for (let i = 0; i < 3; i++)
    for (let q = 0; q < Q; q++) {
      const yi = y[i * Q + q];
      if (yi < 0) continue;
      const x = scale * rep[i].reduce((s, a, e) => s + a * (pr[q][e] - pr[Q + q][e]), 0);
      sum += pw[q] * yi * softplus(-x) + (1 - yi) * softplus(x);
      known++;
    }
  const rp = await parts.reportPrompts!.item();
  // f32 embeddings and a sum over 6 known entries: relative error ~1e-6; 1e-4 leaves margin.
  assertClose([rp], [sum / known], { rtol: 1e-4, atol: 1e-5 }, 'report-prompt loss');
  const [total, siglip, prompts, loc] = await Promise.all([parts.total, parts.siglip, parts.prompts, parts.localization!].map((x) => x.item()));
  assertClose([total], [siglip + cfg.promptWeight * prompts + w * rp + cfg.localization.weight * loc], { rtol: 1e-5, atol: 1e-6 }, 'total');
  for (const x of [parts.total, parts.siglip, parts.prompts, parts.reportPrompts!, parts.localization!, parts.depthHead!]) x.dispose();
  model.dispose();
});

t('negative reports: SigLIP over B images x N texts (float64 from the embeddings); the report-side prompt loss reads the own reports only', async () => {
  const gpu = await testGpu();
  const model = new RadFinderModel(gpu, { ...cfg, reportPromptWeight: 1 }, 4);
  const b = batch(gpu);
  const B = 3, N = 6, Q = 4;
  // Rows 3..5 are other cases' reports; row 4 is empty (masked).
  for (const x of [b.report.ids, b.report.mask, b.reportValid]) x.dispose();
  b.report = text(gpu, N, 1, 7);
  b.reportValid = ops.tensor(gpu, [1, 1, 1, 1, 0, 1], [N]);
  const parts = noGrad(() => model.loss(b));
  const rows = async (x: ReturnType<RadFinderModel['encodeText']>) => {
    const v = Array.from(await x.floats());
    const n = x.shape[0], E = x.shape[1];
    x.dispose();
    return Array.from({ length: n }, (_, i) => {
      const r = v.slice(i * E, (i + 1) * E);
      const len = Math.hypot(...r);
      return r.map((a) => a / len);
    });
  };
  const img = await rows(noGrad(() => scope(() => model.encodeImage(b.volume, { depth: false }).image)));
  const rep = await rows(noGrad(() => model.encodeText(b.report)));
  const pr = await rows(noGrad(() => model.encodeText(b.prompts)));
  const tt = (await model.criterion.t.floats())[0], bb = (await model.criterion.b.floats())[0];
  const valid = [1, 1, 1, 1, 0, 1];
  const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  let sig = 0;
  for (let i = 0; i < B; i++)
    for (let j = 0; j < N; j++) {
      const z = i === j ? 1 : -1;
      const l = Math.exp(tt) * img[i].reduce((a, x, e) => a + x * rep[j][e], 0) + bb;
      sig += valid[i] * valid[j] * softplus(-z * l);
    }
  // f32 embeddings, 18 pair terms: ~1e-6 relative; 1e-4 leaves margin.
  assertClose([await parts.siglip.item()], [sig / B], { rtol: 1e-4, atol: 1e-5 }, 'SigLIP with 3 negative reports');
  const y = await b.labels.floats();
  const pw = [1, 2, 1, 3];
  let sum = 0, known = 0;
  for (let i = 0; i < B; i++)
    for (let q = 0; q < Q; q++) {
      const yi = y[i * Q + q];
      if (yi < 0) continue;
      const x = Math.exp(tt) * rep[i].reduce((a, v, e) => a + v * (pr[q][e] - pr[Q + q][e]), 0);
      sum += pw[q] * yi * softplus(-x) + (1 - yi) * softplus(x);
      known++;
    }
  assertClose([await parts.reportPrompts!.item()], [sum / known], { rtol: 1e-4, atol: 1e-5 }, 'report-prompt loss over the 3 own reports');
  for (const x of [parts.total, parts.siglip, parts.prompts, parts.reportPrompts!, parts.localization!, parts.depthHead!]) x.dispose();
  model.dispose();
});

t('directional derivatives of the loss match central differences', async () => {
  const gpu = await testGpu();
  const model = new RadFinderModel(gpu, cfg, 2);
  const b = batch(gpu);
  const lossAt = async () => {
    const l = noGrad(() => scope(() => model.loss(b).total));
    const v = await l.item();
    l.dispose();
    return v;
  };
  scope(() => backward(model.loss(b).total));
  const named = Object.fromEntries(model.namedParameters());
  for (const name of [
    'backbone_image.patch_embed.proj.weight', 'backbone_image.blocks.0.attn.kv.weight', 'backbone_image.blocks.1.ls2.gamma', 'backbone_image.cls_token',
    'feature_comb_image.axis_patch_proj.weight', 'feature_comb_image.blocks.0.attn.q.bias', 'projection_image_copy.last_layer.parametrizations.weight.original1',
    'backbone_text.embed_tokens.weight', 'backbone_text.layers.1.self_attn.k_norm.weight', 'backbone_text.layers.0.mlp.gate_proj.weight', 'criterion.t', 'criterion.b',
  ]) {
    const p = named[name];
    assert.ok(p, name);
    const r = rng(name.length);
    const dir = Float32Array.from({ length: p.size }, () => r() - 0.5);
    const base = await p.floats();
    const grad = await p.grad!.floats();
    let analytic = 0;
    for (let i = 0; i < p.size; i++) analytic += grad[i] * dir[i];
    // A step of 0.5% of the parameter's own scale (0.01 for zero-initialised biases): the loss
    // is strongly curved in small-scale tensors (a CLS token of scale 0.02 enters a LayerNorm,
    // which divides by its scale), and a five-point stencil keeps the curvature's error at
    // O(h^4) while the step stays large against f32 roundoff of the loss (~3e-7).
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const h = (rms(base) > 0 ? 5e-3 * rms(base) : 1e-2) / rms(dir);
    const at = async (k: number) => {
      gpu.upload(p.buffer, base.map((v, i) => v + k * h * dir[i]));
      return lossAt();
    };
    const [p1, m1, p2, m2] = [await at(1), await at(-1), await at(2), await at(-2)];
    gpu.upload(p.buffer, base);
    const numeric = (8 * (p1 - m1) - (p2 - m2)) / (12 * h);
    // f32 forward passes: each objective's part agrees to ~1%, but the parts can cancel (the CLS
    // token's: -0.51 SigLIP, +0.37 prompts, -0.58 localization), so the error is measured
    // against |g| |d|, the largest the directional derivative could be, as well.
    const scale = Math.sqrt(grad.reduce((s, v) => s + v * v, 0) * dir.reduce((s, v) => s + v * v, 0));
    assert.ok(Math.abs(numeric - analytic) <= 3e-2 * Math.abs(analytic) + 3e-3 * scale + 3e-4, `${name}: numeric ${numeric} vs analytic ${analytic} (|g||d| ${scale})`);
  }
  model.dispose();
});

t('an all-air batch: the patch embedding\'s bias init keeps LayerNorm from amplifying its gradient by 1/sqrt(eps) per layer', async () => {
  const gpu = await testGpu();
  const norms: number[] = [];
  for (const zeroBias of [true, false]) {
    const model = new RadFinderModel(gpu, cfg, 4);
    const bias = model.backbone_image.patch_embed.proj.bias;
    if (zeroBias) gpu.upload(bias.buffer, new Float32Array(bias.size));
    const b = batch(gpu);
    gpu.upload(b.volume.buffer, new Float32Array(b.volume.size)); // air: exactly 0 after scaling
    scope(() => backward(model.loss(b).total));
    // The weight's gradient is 0 on air (its input is 0): the bias carries what reaches the stem.
    const g = await bias.grad!.floats();
    norms.push(Math.sqrt(g.reduce((s, v) => s + v * v, 0)));
    assert.ok(Number.isFinite(norms.at(-1)!), 'finite');
    model.dispose();
  }
  // With a zero bias every token of an air window is the zero vector: its LayerNorm backward
  // multiplies by 1/sqrt(1e-6) = 1000 (measured here: 4.6e5 against 18.5).
  assert.ok(norms[1] < 0.01 * norms[0], `gradient norms: zero bias ${norms[0]}, default init ${norms[1]}`);
});

t('a few AdamW steps on one batch lower the loss', async () => {
  const gpu = await testGpu();
  const model = new RadFinderModel(gpu, cfg, 3);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, clipNorm: 1 });
  const b = batch(gpu);
  const losses: number[] = [];
  for (let i = 0; i < 25; i++) {
    const l = scope(() => {
      const p = model.loss(b);
      backward(p.total);
      opt.step();
      opt.zeroGrad();
      return p.total;
    });
    if (i === 0 || i === 24) losses.push(await l.item());
    l.dispose();
  }
  assert.ok(losses[1] < losses[0] * 0.8, `loss ${losses[0]} -> ${losses[1]}`);
  opt.dispose();
  model.dispose();
});

t.run();
