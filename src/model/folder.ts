// Weights folders on disk (Node): a RadFinder weights folder (config.json in the release's
// layout, model.safetensors, optionally tokenizer.json) or a run of ours (its latest
// checkpoint folder holds the same three files).
import { open, readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import type { SafetensorsSource } from '../io/safetensors.ts';
import { configAssumptions, fromRadfinderJson, type RadFinderConfig } from './config.ts';
import { RadFinderModel } from './model.ts';
import { withoutInit } from '../nn/module.ts';
import { loadWeights, type LoadReport } from './weights.ts';
import { loadTokenizer, type TextTokenizer } from './text.ts';

/** A file read by byte ranges (a 4 GB checkpoint is never held whole). */
export async function fileSource(path: string): Promise<SafetensorsSource & { close(): Promise<void> }> {
  const fh = await open(path, 'r');
  const size = (await fh.stat()).size;
  return {
    name: path,
    size,
    async read(begin, end) {
      const out = new Uint8Array(end - begin);
      let at = 0;
      while (at < out.length) {
        const { bytesRead } = await fh.read(out, at, Math.min(out.length - at, 1 << 30), begin + at);
        if (bytesRead === 0) throw new DataError(path, 'data', `ends at byte ${begin + at}, before ${end} (truncated?)`);
        at += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}

export interface WeightsFolder {
  /** The folder holding config.json and model.safetensors. */
  dir: string;
  config: RadFinderConfig;
  /** The config.json object as read. */
  json: Record<string, unknown>;
  tokenizerPath: string | null;
  /** Token limit for texts (tokenizer_max_length; the release's evaluation uses 4096). */
  maxTextTokens: number;
}

/** Finds the weights folder of W: W itself, or the latest checkpoint of a run folder. */
export async function resolveWeightsFolder(path: string): Promise<WeightsFolder> {
  if (!existsSync(path)) throw new DataError(path, 'weights', 'no such file or folder');
  let dir = path;
  if (!statSync(path).isDirectory()) throw new DataError(path, 'weights', 'expected a folder (config.json + model.safetensors), or a run folder of `ctvlm train`');
  if (existsSync(join(path, 'latest')) && !existsSync(join(path, 'model.safetensors'))) {
    const name = (await readFile(join(path, 'latest'), 'utf8')).trim();
    dir = join(path, name);
    if (!existsSync(dir)) throw new DataError(join(path, 'latest'), 'latest', `points at ${name}, which is missing`);
  }
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw new DataError(dir, 'config.json', 'missing: a weights folder holds config.json and model.safetensors');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    if (existsSync(join(dir, 'model.safetensors.index.json')))
      throw new DataError(dir, 'model.safetensors', 'missing: the folder holds a sharded checkpoint (model.safetensors.index.json), which is not read here; save it as one model.safetensors (e.g. safetensors.torch.save_file of the merged state dict)');
    throw new DataError(dir, 'model.safetensors', 'missing: a weights folder holds config.json and model.safetensors');
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(cfgPath, 'utf8'));
  } catch (e) {
    throw new DataError(cfgPath, 'config', `not valid JSON (${(e as Error).message})`);
  }
  const config = fromRadfinderJson(json, cfgPath);
  const m = (json.radfinder_model_config ?? {}) as { text_backbone_kwargs?: { tokenizer_max_length?: number } };
  const maxTextTokens = m.text_backbone_kwargs?.tokenizer_max_length ?? 4096;
  const tok = join(dir, 'tokenizer.json');
  return { dir, config, json, tokenizerPath: existsSync(tok) ? tok : null, maxTextTokens };
}

export interface LoadedWeights extends WeightsFolder {
  model: RadFinderModel;
  tokenizer: TextTokenizer | null;
  report: LoadReport;
}

/** Builds the model of a weights folder and loads its weights (and tokenizer, if present). */
export async function openWeightsFolder(gpu: Gpu, path: string, onProgress?: (done: number, total: number) => void): Promise<LoadedWeights> {
  const f = await resolveWeightsFolder(path);
  const tokenizer = f.tokenizerPath ? loadTokenizer(await readFile(f.tokenizerPath, 'utf8'), f.tokenizerPath, f.config.text.eosTokenId, f.config.text.vocabSize) : null;
  const model = withoutInit(() => new RadFinderModel(gpu, f.config));
  const src = await fileSource(join(f.dir, 'model.safetensors'));
  try {
    const report = await loadWeights(model, src, onProgress, configAssumptions(f.json, 'config.json'));
    return { ...f, model, tokenizer, report };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await src.close();
  }
}
