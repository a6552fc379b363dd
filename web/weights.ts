// Weights into the worker: a weights folder (config.json, tokenizer.json, model.safetensors:
// RadFinder's layout, or a checkpoint of a run of ours), picked as files or as a folder (a run
// folder: its `latest` checkpoint), or served by `ctvlm web` under a URL. model.safetensors is
// read tensor by tensor (File.slice, or HTTP range requests), never held whole: a released
// checkpoint is gigabytes.
import { DataError } from '../src/errors.ts';
import type { Gpu } from '../src/gpu/runtime.ts';
import type { SafetensorsSource } from '../src/io/safetensors.ts';
import { bytesSource } from '../src/io/safetensors.ts';
import { configAssumptions, fromRadfinderJson, type RadFinderConfig } from '../src/model/config.ts';
import { RadFinderModel } from '../src/model/model.ts';
import { loadTokenizer, type TextTokenizer } from '../src/model/text.ts';
import { loadWeights, type LoadReport } from '../src/model/weights.ts';
import { withoutInit } from '../src/nn/module.ts';
import type { PickedFile, Progress } from './protocol.ts';

export interface LoadedModel {
  name: string;
  cfg: RadFinderConfig;
  model: RadFinderModel;
  tok: TextTokenizer;
  maxTokens: number;
  report: LoadReport;
}

/** Where the three files come from. */
interface WeightFiles {
  name: string;
  text(file: 'config.json' | 'tokenizer.json'): Promise<string | null>;
  safetensors(): Promise<SafetensorsSource>;
}

const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const baseOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * The weights folder among picked files: the folder holding model.safetensors; with several
 * (a run folder's checkpoints), the one its `latest` file names.
 */
export async function chooseWeightFiles(files: PickedFile[]): Promise<WeightFiles> {
  const full = (f: PickedFile) => f.path || f.file.name;
  const models = files.filter((f) => baseOf(full(f)) === 'model.safetensors');
  if (models.length === 0) throw new DataError('the chosen files', 'model.safetensors', 'missing: choose a weights folder (config.json, tokenizer.json, model.safetensors) or a run folder');
  let dir = dirOf(full(models[0]));
  if (models.length > 1) {
    const latest = files.filter((f) => baseOf(full(f)) === 'latest').sort((a, b) => full(a).length - full(b).length)[0];
    if (!latest) throw new DataError('the chosen folder', 'latest', `${models.length} checkpoints and no \`latest\` file naming one: choose one checkpoint folder`);
    const name = (await latest.file.text()).trim();
    dir = [dirOf(full(latest)), name].filter(Boolean).join('/');
    if (!models.some((m) => dirOf(full(m)) === dir)) throw new DataError(full(latest), 'latest', `names ${name}, which holds no model.safetensors`);
  }
  const inDir = (base: string) => files.find((f) => dirOf(full(f)) === dir && baseOf(full(f)) === base);
  const model = inDir('model.safetensors')!.file;
  return {
    name: dir || 'the chosen files',
    text: async (base) => (await inDir(base)?.file.text()) ?? null,
    safetensors: async () => ({ name: `${dir || '.'}/model.safetensors`, size: model.size, read: async (b, e) => new Uint8Array(await model.slice(b, e).arrayBuffer()) }),
  };
}

/** The files of a weights folder served under `base` (ranged reads of model.safetensors when the server allows). */
export function urlWeightFiles(base: string): WeightFiles {
  const dir = base.endsWith('/') ? base : `${base}/`;
  const get = async (url: string, init?: RequestInit) => {
    const res = await fetch(url, init);
    if (!res.ok) throw new DataError(url, 'HTTP', `${res.status} ${res.statusText}`);
    return res;
  };
  return {
    name: base,
    async text(file) {
      const res = await fetch(dir + file);
      if (res.status === 404) return null;
      if (!res.ok) throw new DataError(dir + file, 'HTTP', `${res.status} ${res.statusText}`);
      return res.text();
    },
    async safetensors() {
      const url = `${dir}model.safetensors`;
      const head = await get(url, { method: 'HEAD' });
      const size = Number(head.headers.get('content-length'));
      if (head.headers.get('accept-ranges') !== 'bytes' || !(size > 0)) return bytesSource(new Uint8Array(await (await get(url)).arrayBuffer()), url);
      return {
        name: url,
        size,
        async read(b, e) {
          if (e <= b) return new Uint8Array(0);
          const res = await get(url, { headers: { range: `bytes=${b}-${e - 1}` } });
          const bytes = new Uint8Array(await res.arrayBuffer());
          if (res.status !== 206 || bytes.length !== e - b) throw new DataError(url, 'range', `asked for bytes ${b}-${e - 1}, got ${bytes.length} bytes (HTTP ${res.status})`);
          return bytes;
        },
      };
    },
  };
}

/**
 * Builds the model a weights folder describes and loads its weights. The model is freed when
 * anything fails (the caller's current model stays); a tensor over the adapter's limits is a
 * GpuError from the buffer pool, naming the limit.
 */
export async function loadModel(gpu: Gpu, w: WeightFiles, progress: (p: Progress) => void): Promise<LoadedModel> {
  const cfgText = await w.text('config.json');
  if (cfgText === null) throw new DataError(w.name, 'config.json', 'missing: a weights folder holds config.json, tokenizer.json and model.safetensors');
  let json: { radfinder_model_config?: { text_backbone_kwargs?: { tokenizer_max_length?: number } } };
  try {
    json = JSON.parse(cfgText);
  } catch (e) {
    throw new DataError(`${w.name}/config.json`, 'config', `not valid JSON (${(e as Error).message})`);
  }
  const cfg = fromRadfinderJson(json, `${w.name}/config.json`);
  const tokText = await w.text('tokenizer.json');
  if (tokText === null) throw new DataError(w.name, 'tokenizer.json', 'missing: the page embeds typed text, which needs the tokenizer');
  const tok = loadTokenizer(tokText, `${w.name}/tokenizer.json`, cfg.text.eosTokenId, cfg.text.vocabSize);
  const src = await w.safetensors();
  progress({ label: `loading ${src.name} (${(src.size / 2 ** 20).toFixed(1)} MiB)`, done: 0, total: 0 });
  const model = withoutInit(() => new RadFinderModel(gpu, cfg));
  try {
    const report = await loadWeights(model, src, (done, total) => progress({ label: `loading weights: tensor ${done} of ${total}`, done, total }), configAssumptions(json, 'config.json'));
    return { name: w.name, cfg, model, tok, maxTokens: json.radfinder_model_config?.text_backbone_kwargs?.tokenizer_max_length ?? 4096, report };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
