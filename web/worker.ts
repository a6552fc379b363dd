// The model side of the page, in a dedicated worker: the WebGPU device, the loaded model, each
// scan's embeddings and the zero-shot prompts, and the heavy CPU work (decoding, resampling).
// Requests run one at a time in arrival order: the framework's tensor scopes are one stack, and
// two tasks interleaving their awaits would mix their tensors.
import { Gpu } from '../src/gpu/runtime.ts';
import { binMm as binMmOf } from '../src/model/config.ts';
import { knowsNoWord, unusableText } from '../src/model/text.ts';
import { embedScan, embedTokenIds, localizeSnippet, zeroShotPrompts, zeroShotScore, dot, type ClassPromptEmbeddings, type ScanEmbeddings } from '../src/model/tasks.ts';
import { prepareRadfinder } from '../src/data/radfinder-prep.ts';
import { spacingFromAffine, voxelToWorld, type Vec3 } from '../src/data/volume.ts';
import { mineSnippets } from '../src/data/snippets.ts';
import { depthBin, resolveSnippet } from '../src/data/snippet-locate.ts';
import { parseManifest, type SeriesMeta } from '../src/data/manifest.ts';
import { decodeCt } from './decode.ts';
import { chooseWeightFiles, loadModel, urlWeightFiles, type LoadedModel } from './weights.ts';
import type { LocalizeResult, ModelInfo, Op, Ops, PreparedGeometry, Progress, Reply, Request, SnippetResult } from './protocol.ts';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
}

interface ScanState {
  embeddings: ScanEmbeddings;
  geometry: PreparedGeometry;
}

let gpu: Gpu | null = null;
let gpuError: string | null = null;
let current: LoadedModel | null = null;
let prompts: ClassPromptEmbeddings[] | null = null;
const scans = new Map<number, ScanState>();

class UserError extends Error {}

function needModel(): LoadedModel {
  if (!gpu) throw new UserError('the model needs WebGPU, which this page could not get (the first message says why); the viewer works without it');
  if (!current) throw new UserError('load a model first (a weights folder or a run folder)');
  return current;
}

function needScan(id: number): ScanState {
  const s = scans.get(id);
  if (!s) throw new UserError('this CT is not embedded with the current model yet');
  return s;
}

/** Token ids of a typed text; refuses an empty text and one the vocabulary knows nothing of. */
function tokenize(m: LoadedModel, text: string): number[] {
  const t = text.trim();
  const why = unusableText(t);
  if (why) throw new UserError(`the text box ${why}`);
  const ids = m.tok.encode(t);
  if (knowsNoWord(m.tok, ids))
    throw new UserError(`no word of "${t.length > 60 ? `${t.slice(0, 57)}...` : t}" is in the model's vocabulary (every token is [UNK]); try English report wording`);
  return ids;
}

/** Localization of one embedded snippet against a scan, as `ctvlm localize` computes it. */
function localizeOne(m: LoadedModel, s: ScanState, snippet: number[], sentence: string, t0: number): LocalizeResult {
  const d = s.embeddings.depth;
  const l = localizeSnippet(d.normalized, d.valid, snippet, m.cfg.localization.tau, binMmOf(m.cfg));
  const [X, Y] = s.geometry.shape;
  const pz = s.geometry.patchDepth;
  const worldZ = voxelToWorld(s.geometry.affine, [(X - 1) / 2, (Y - 1) / 2, (l.bin + 0.5) * pz - 0.5])[2];
  return { sentence, probabilities: l.probabilities, cosine: l.cosine, bin: l.bin, expectedMm: l.expectedMm, worldZ, ms: performance.now() - t0 };
}

function modelInfo(m: LoadedModel): ModelInfo {
  return {
    name: m.name,
    parameters: m.model.parameterCount(),
    dtypes: Object.entries(m.report.dtypes).map(([k, n]) => `${n} ${k}`).join(', '),
    tokenizer: m.tok.kind,
    pixdim: [...m.cfg.preprocessing.pixdim] as Vec3,
    binMm: binMmOf(m.cfg),
    tau: m.cfg.localization.tau,
  };
}

type Handler<K extends Op> = (arg: Ops[K][0], progress: (p: Progress) => void) => Promise<Ops[K][1]>;

const handlers: { [K in Op]: Handler<K> } = {
  async init() {
    try {
      gpu ??= await Gpu.create();
    } catch (e) {
      gpuError = (e as Error).message;
    }
    return { device: gpu?.describe() ?? null, error: gpuError };
  },

  async weights(arg, progress) {
    if (!gpu) needModel();
    const files = 'url' in arg ? urlWeightFiles(arg.url) : await chooseWeightFiles(arg.files);
    const next = await loadModel(gpu!, files, progress);
    // Only now that the new weights are in is the old model let go, with everything it embedded.
    current?.model.dispose();
    current = next;
    prompts = null;
    scans.clear();
    return modelInfo(next);
  },

  async decode(arg, progress) {
    return decodeCt(arg.name, arg.files, progress);
  },

  async embed({ id, volume, name }, progress) {
    const m = needModel();
    const c = m.cfg;
    const t0 = performance.now();
    progress({ label: `${name}: resampling to ${c.preprocessing.pixdim.join(' x ')} mm`, done: 0, total: 0 });
    const v = { data: volume.data, shape: volume.shape, affine: volume.affine, spacing: spacingFromAffine(volume.affine) };
    const prepared = prepareRadfinder(v, { pixdim: c.preprocessing.pixdim, window: c.vision.window, patchDepth: c.vision.patch[2], huMin: c.preprocessing.huMin, huMax: c.preprocessing.huMax, dtype: c.preprocessing.dtype }, name);
    progress({ label: `${name}: embedding ${prepared.shape.join('x')} voxels on the GPU`, done: 0, total: 0 });
    const embeddings = await embedScan(m.model, prepared.data, prepared.shape);
    const geometry: PreparedGeometry = { affine: Array.from(prepared.affine), shape: prepared.shape, bins: prepared.bins, patchDepth: c.vision.patch[2], binMm: binMmOf(c) };
    scans.set(id, { embeddings, geometry });
    return { geometry, ms: performance.now() - t0 };
  },

  async forget({ id }) {
    scans.delete(id);
    return null;
  },

  async localize({ id, text }) {
    const m = needModel();
    const s = needScan(id);
    const t0 = performance.now();
    const [e] = await embedTokenIds(m.model, [tokenize(m, text)], m.maxTokens, { which: 'snippet' });
    return localizeOne(m, s, e.snippet.normalized, text.trim(), t0);
  },

  async classify({ id }, progress) {
    const m = needModel();
    const s = needScan(id);
    const t0 = performance.now();
    if (!prompts) {
      progress({ label: 'embedding the 252 zero-shot prompts (once per model)', done: 0, total: 0 });
      prompts = await zeroShotPrompts(m.model, m.tok, m.maxTokens);
    }
    return { scores: prompts.map((p) => ({ label: p.label, score: zeroShotScore(s.embeddings.disease.normalized, p) })), ms: performance.now() - t0 };
  },

  async retrieve({ ids, text }) {
    const m = needModel();
    const t0 = performance.now();
    const [r] = await embedTokenIds(m.model, [tokenize(m, text)], m.maxTokens, { which: 'report' });
    const cosines = ids.filter((id) => scans.has(id)).map((id) => ({ id, cosine: dot(scans.get(id)!.embeddings.image.normalized, r.report.normalized) }));
    return { cosines, ms: performance.now() - t0 };
  },

  async report({ id, text, series }, progress) {
    const m = needModel();
    const s = needScan(id);
    const t0 = performance.now();
    const found = mineSnippets(text);
    if (found.length === 0) return { snippets: [], ms: performance.now() - t0 };
    progress({ label: `localizing ${found.length} referenced sentence(s)`, done: 0, total: 0 });
    const rows = found.map((sn) => tokenize(m, sn.sentence));
    const emb = await embedTokenIds(m.model, rows, m.maxTokens, { which: 'snippet' });
    const g = s.geometry;
    const snippets: SnippetResult[] = found.map((sn, i) => {
      const loc = resolveSnippet(sn, series ?? undefined);
      let referenced: SnippetResult['referenced'];
      if ('reason' in loc) referenced = { reason: `${loc.reason}: ${loc.detail}` };
      else {
        const bin = depthBin({ affine: g.affine, shape: g.shape }, loc.z, loc.thickness, g.patchDepth);
        referenced = bin === null ? { reason: `outside-crop: image ${sn.image} at z = ${loc.z.toFixed(1)} mm lies outside the model's crop` } : { z: loc.z, bin };
      }
      return { sentence: sn.sentence, ref: sn.ref, series: sn.series, image: sn.image, predicted: localizeOne(m, s, emb[i].snippet.normalized, sn.sentence, t0), referenced };
    });
    return { snippets, ms: performance.now() - t0 };
  },

  async manifest({ file }) {
    const entries = parseManifest(await file.text(), file.name);
    const series: Record<string, SeriesMeta> = {};
    let withSeries = 0;
    for (const e of entries)
      if (e.series) {
        withSeries++;
        series[e.volume.slice(e.volume.lastIndexOf('/') + 1)] = e.series;
        series[e.id] = e.series;
      }
    return { series, entries: entries.length, withSeries };
  },
};

/** Starts answering the page's requests (called from main.ts inside the worker). */
export function startWorker(): void {
  const scope = self as unknown as WorkerScope;
  let queue: Promise<void> = Promise.resolve();
  scope.onmessage = (ev) => {
    const { id, op, arg } = ev.data;
    const progress = (p: Progress) => scope.postMessage({ id, progress: p } satisfies Reply);
    queue = queue.then(async () => {
      try {
        const value = await (handlers[op] as Handler<Op>)(arg, progress);
        // Voxels go back by transfer, not by copy.
        const transfer = value && typeof value === 'object' && 'data' in value && value.data instanceof Float32Array ? [value.data.buffer] : [];
        scope.postMessage({ id, ok: true, value } satisfies Reply, transfer);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        scope.postMessage({ id, ok: false, error: message } satisfies Reply);
      }
    });
  };
}
