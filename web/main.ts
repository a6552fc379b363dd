// The browser demo: load a trained run and a CT, type a report sentence, and see which depth
// band of the scan the model points at. Every tensor op runs on this page's WebGPU device
// through the same kernels as training in Node.
//
// Files come from the page's file inputs, or from URLs for scripted use:
//   ?weights=<folder URL with config.json, tokenizer.json, model.safetensors> (a RadFinder
//   weights folder, or a checkpoint of a run: `ctvlm web` serves either)
//   &ct=<NIfTI URL>&q=<sentence>   (q runs the localization once both are loaded)
import { Gpu } from '../src/gpu/runtime.ts';
import { RadFinderModel } from '../src/model/model.ts';
import { loadWeightsFromBytes } from '../src/model/weights.ts';
import { fromRadfinderJson, binMm as binMmOf, type RadFinderConfig } from '../src/model/config.ts';
import { loadTokenizer, type TextTokenizer } from '../src/model/text.ts';
import { withoutInit } from '../src/nn/module.ts';
import { decodeNifti } from '../src/data/nifti.ts';
import { prepareRadfinder, type RadfinderInput } from '../src/data/radfinder-prep.ts';
import { voxelToWorld, type Volume } from '../src/data/volume.ts';
import { embedScan, embedTexts, localizeSnippet, type ScanEmbeddings } from '../src/model/tasks.ts';

interface Loaded {
  cfg: RadFinderConfig;
  model: RadFinderModel;
  tok: TextTokenizer;
  maxTokens: number;
}

interface Scan {
  name: string;
  prepared: RadfinderInput;
  embeddings: ScanEmbeddings;
}

export interface LocalizeResult {
  sentence: string;
  probabilities: number[];
  bin: number;
  expectedMm: number;
  worldZ: number;
  ms: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (msg: string, error = false) => {
  const el = $('status');
  el.textContent = msg;
  el.className = error ? 'error' : '';
};

let gpu: Gpu | null = null;
let run: Loaded | null = null;
let scan: Scan | null = null;
let rawVolume: { name: string; volume: Volume } | null = null;

async function loadRun(files: Record<string, Uint8Array>, source: string): Promise<void> {
  const text = (name: string) => {
    const f = files[name];
    if (!f) throw new Error(`${source}: ${name} is missing (choose config.json, tokenizer.json and model.safetensors of one run)`);
    return new TextDecoder().decode(f);
  };
  const json = JSON.parse(text('config.json'));
  const cfg = fromRadfinderJson(json, `${source}/config.json`);
  const tok = loadTokenizer(text('tokenizer.json'), `${source}/tokenizer.json`, cfg.text.eosTokenId, cfg.text.vocabSize);
  const weights = files['model.safetensors'];
  if (!weights) throw new Error(`${source}: model.safetensors is missing`);
  // The new model replaces the old one only once its weights fit.
  const model = withoutInit(() => new RadFinderModel(gpu!, cfg));
  try {
    await loadWeightsFromBytes(model, weights, `${source}/model.safetensors`);
  } catch (e) {
    model.dispose();
    throw e;
  }
  run?.model.dispose();
  run = { cfg, model, tok, maxTokens: json.radfinder_model_config?.text_backbone_kwargs?.tokenizer_max_length ?? 4096 };
  scan = null;
  if (rawVolume) await prepareScan(rawVolume.name, rawVolume.volume);
}

async function prepareScan(name: string, volume: Volume): Promise<void> {
  rawVolume = { name, volume };
  if (!run) {
    status(`CT ${name} read (${volume.shape.join('x')}); now load a model`);
    return;
  }
  const t0 = performance.now();
  const c = run.cfg;
  const prepared = prepareRadfinder(volume, { pixdim: c.preprocessing.pixdim, window: c.vision.window, patchDepth: c.vision.patch[2], huMin: c.preprocessing.huMin, huMax: c.preprocessing.huMax, dtype: c.preprocessing.dtype }, name);
  const [X, Y, Z] = prepared.shape;
  const embeddings = await embedScan(run.model, prepared.data, prepared.shape);
  scan = { name, prepared, embeddings };
  drawViews(null);
  status(`CT ${name}: ${volume.shape.join('x')} voxels, prepared to ${X}x${Y}x${Z} at ${c.preprocessing.pixdim.join('x')} mm, ${prepared.bins} depth bins; embedded in ${(performance.now() - t0).toFixed(0)} ms on ${gpu!.describe()}`);
  ($('localize') as HTMLButtonElement).disabled = false;
}

async function localize(sentence: string): Promise<LocalizeResult> {
  if (!run || !scan) throw new Error('load a model and a CT first');
  const t0 = performance.now();
  const { model, tok, cfg } = run;
  const s = scan;
  const [snippet] = await embedTexts(model, tok, [sentence], run.maxTokens, { which: 'snippet' });
  const d = s.embeddings.depth;
  const { probabilities, bin, expectedMm } = localizeSnippet(d.normalized, d.valid, snippet.snippet.normalized, cfg.localization.tau, binMmOf(cfg));
  const pz = cfg.vision.patch[2];
  const [X, Y] = [s.prepared.shape[0], s.prepared.shape[1]];
  const worldZ = voxelToWorld(s.prepared.affine, [(X - 1) / 2, (Y - 1) / 2, (bin + 0.5) * pz - 0.5])[2];
  return { sentence, probabilities, bin, expectedMm, worldZ, ms: performance.now() - t0 };
}

function drawViews(r: LocalizeResult | null): void {
  if (!scan || !run) return;
  const v = scan.prepared;
  const [X, Y, Z] = v.shape;
  const pz = run.cfg.vision.patch[2];
  // RadFinder's layout: depth fastest.
  const at = (x: number, y: number, z: number) => v.data[(x * Y + y) * Z + z];
  // Radiological convention: the patient's right (RAS +x) on the screen's left, so column
  // c shows x = X - 1 - c. Coronal: z up (head at the top), at the middle of y.
  const cor = $('coronal') as HTMLCanvasElement;
  cor.width = X;
  cor.height = Z;
  const cctx = cor.getContext('2d')!;
  const img = cctx.createImageData(X, Z);
  const yMid = Math.floor(Y / 2);
  for (let z = 0; z < Z; z++)
    for (let x = 0; x < X; x++) {
      const g = Math.round(255 * at(X - 1 - x, yMid, z));
      const band = r && Math.floor(z / pz) === r.bin;
      const o = 4 * ((Z - 1 - z) * X + x);
      img.data.set(band ? [Math.min(255, g + 60), Math.min(255, g + 40), g * 0.6, 255] : [g, g, g, 255], o);
    }
  cctx.putImageData(img, 0, 0);
  // Displayed at the physical aspect ratio (voxels need not be cubes).
  const [sx, sy, sz] = run.cfg.preprocessing.pixdim;
  const width = Math.max(256, X * 3);
  cor.style.width = `${width}px`;
  cor.style.height = `${(width * Z * sz) / (X * sx)}px`;
  // Axial slice at the predicted depth (or the middle): anterior (+y) at the top, right on the left.
  const zSlice = r ? Math.min(Z - 1, r.bin * pz + Math.floor(pz / 2)) : Math.floor(Z / 2);
  const ax = $('axial') as HTMLCanvasElement;
  ax.width = X;
  ax.height = Y;
  const actx = ax.getContext('2d')!;
  const aimg = actx.createImageData(X, Y);
  for (let y = 0; y < Y; y++)
    for (let x = 0; x < X; x++) {
      const g = Math.round(255 * at(X - 1 - x, y, zSlice));
      aimg.data.set([g, g, g, 255], 4 * ((Y - 1 - y) * X + x));
    }
  actx.putImageData(aimg, 0, 0);
  ax.style.width = `${width}px`;
  ax.style.height = `${(width * Y * sy) / (X * sx)}px`;
  $('axialCaption').textContent = `axial slice ${zSlice} of ${Z}${r ? ' (the predicted depth)' : ''}`;
  // Bars: one per bin, feet (bin 0) on the left.
  const svg = $('bars');
  const bins = scan.prepared.bins;
  const w = 400 / bins;
  const probs = r?.probabilities ?? new Array(bins).fill(0);
  const top = Math.max(...probs, 1e-9); // bars scaled to the most likely bin
  svg.innerHTML =
    probs
      .map((p, b) => `<rect x="${b * w + 1}" y="${118 - 100 * (p / top)}" width="${w - 2}" height="${100 * (p / top)}" fill="${r && b === r.bin ? '#ffcc44' : scan!.embeddings.depth.valid[b] ? '#4a86d8' : '#333'}"><title>bin ${b}: ${(100 * p).toFixed(1)}%</title></rect>`)
      .join('') + (r ? `<text x="4" y="12" fill="#aaa" font-size="10">top: ${(100 * top).toFixed(0)}%</text>` : '');
}

async function runLocalize(): Promise<void> {
  const sentence = ($('sentence') as HTMLTextAreaElement).value.trim();
  if (!sentence) return;
  try {
    const r = await localize(sentence);
    drawViews(r);
    const binMm = binMmOf(run!.cfg);
    $('result').innerHTML =
      `Most likely depth: <b>bin ${r.bin}</b> (${(r.bin * binMm).toFixed(0)}-${((r.bin + 1) * binMm).toFixed(0)} mm from the crop's lowest slice, ` +
      `world z ${r.worldZ.toFixed(1)} mm), probability ${(100 * r.probabilities[r.bin]).toFixed(0)}%; expected depth ${r.expectedMm.toFixed(0)} mm. ` +
      `<span style="color:#888">(${r.ms.toFixed(0)} ms)</span>`;
    (window as unknown as { lastResult: LocalizeResult }).lastResult = r;
    document.body.dataset.state = 'localized';
  } catch (e) {
    status((e as Error).message, true);
  }
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function main(): Promise<void> {
  try {
    if (!window.isSecureContext) throw new Error('the page is not a secure context (open it as http://localhost or over https)');
    gpu = await Gpu.create();
  } catch (e) {
    status(`WebGPU is not available here: ${(e as Error).message}`, true);
    document.body.dataset.ready = 'true';
    return;
  }
  status(`WebGPU: ${gpu.describe()}. Load a model and a CT.`);
  $('runFiles').addEventListener('change', async (ev) => {
    const files: Record<string, Uint8Array> = {};
    for (const f of Array.from((ev.target as HTMLInputElement).files ?? [])) files[f.name] = new Uint8Array(await f.arrayBuffer());
    try {
      await loadRun(files, 'the chosen files');
      status(`model loaded (${(run!.model.parameterCount() / 1e6).toFixed(2)} M parameters)${scan ? '' : '; now load a CT'}`);
    } catch (e) {
      status((e as Error).message, true);
    }
  });
  $('ctFile').addEventListener('change', async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (!f) return;
    try {
      status(`reading ${f.name}...`);
      await prepareScan(f.name, decodeNifti(new Uint8Array(await f.arrayBuffer()), f.name));
    } catch (e) {
      status((e as Error).message, true);
    }
  });
  $('localize').addEventListener('click', () => void runLocalize());

  const params = new URLSearchParams(location.search);
  try {
    const weightsUrl = params.get('weights');
    if (weightsUrl) {
      const base = weightsUrl.endsWith('/') ? weightsUrl : `${weightsUrl}/`;
      await loadRun(
        {
          'config.json': await fetchBytes(`${base}config.json`),
          'tokenizer.json': await fetchBytes(`${base}tokenizer.json`),
          'model.safetensors': await fetchBytes(`${base}model.safetensors`),
        },
        weightsUrl,
      );
    }
    const ctUrl = params.get('ct');
    if (ctUrl) await prepareScan(ctUrl.split('/').pop()!, decodeNifti(await fetchBytes(ctUrl), ctUrl));
    const q = params.get('q');
    if (q) {
      ($('sentence') as HTMLTextAreaElement).value = q;
      await runLocalize();
    }
  } catch (e) {
    status((e as Error).message, true);
  }
  document.body.dataset.ready = 'true';
}

void main();
