// Checkpoints: a folder per save (model and optimizer as safetensors, the run state as
// JSON), written under a temporary name and renamed into place, with a `latest` file that
// is itself replaced atomically. A run killed at any moment leaves the previous checkpoint
// whole, and `latest` never points at a half-written one.
import { mkdir, readFile, rename, rm, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { readJsonFile, writeAtomic } from '../io/atomic.ts';
import type { AdamW, SGD } from '../optim/index.ts';
import { decodeSafetensors, encodeSafetensors, type NamedArray } from '../io/safetensors.ts';
import { loadWeights, weightBytes } from '../model/weights.ts';
import type { RadFinderModel } from '../model/model.ts';
import { fileSource } from '../model/folder.ts';

export async function saveModelWeights(model: RadFinderModel, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeAtomic(path, await weightBytes(model, metadata));
}

/** Loads RadFinder-format weights by key; every tensor of the model must be present with its shape. */
export async function loadModelWeights(model: RadFinderModel, path: string): Promise<Record<string, string>> {
  const src = await fileSource(path);
  try {
    return (await loadWeights(model, src)).metadata;
  } finally {
    await src.close();
  }
}

export interface RunState {
  step: number;
  [key: string]: unknown;
}

/**
 * Saves model, optimizer and state as <dir>/ckpt-<step> (with `files`, e.g. config.json and
 * tokenizer.json, so that the folder is a weights folder), then points <dir>/latest at it.
 */
export async function saveCheckpoint(dir: string, model: RadFinderModel, opt: AdamW | SGD, state: RunState, files: Record<string, string> = {}, keep = 2): Promise<string> {
  const name = `ckpt-${String(state.step).padStart(7, '0')}`;
  const tmp = join(dir, `${name}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModelWeights(model, join(tmp, 'model.safetensors'));
  const o = await opt.stateDict();
  const tensors: Record<string, NamedArray> = {};
  o.moments.forEach((row, i) => row.forEach((a, j) => (tensors[`${i}.${j}`] = { shape: [a.length], data: a })));
  await writeAtomic(join(tmp, 'optimizer.safetensors'), encodeSafetensors(tensors, { step: String(o.step) }));
  await writeAtomic(join(tmp, 'state.json'), JSON.stringify(state, null, 1));
  for (const [name, text] of Object.entries(files)) await writeAtomic(join(tmp, name), text);
  const final = join(dir, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeAtomic(join(dir, 'latest'), name);
  // Older checkpoints beyond `keep` go.
  const all = (await readdir(dir)).filter((f) => /^ckpt-\d+$/.test(f)).sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await rm(join(dir, old), { recursive: true, force: true });
  return final;
}

/** The latest complete checkpoint folder of a run, or null. */
export async function latestCheckpoint(dir: string): Promise<string | null> {
  const pointer = join(dir, 'latest');
  if (!existsSync(pointer)) return null;
  const name = (await readFile(pointer, 'utf8')).trim();
  const path = join(dir, name);
  if (!existsSync(join(path, 'state.json'))) throw new DataError(pointer, 'latest', `points at ${name}, which is missing or incomplete`);
  return path;
}

/**
 * Loads a checkpoint folder into `model` (and `opt`'s moments) and returns its run state.
 * @throws DataError naming the folder and the file when it is not a checkpoint folder (no
 * such folder, or one without model.safetensors, optimizer.safetensors where `opt` is given,
 * or state.json), or a file that cannot be read.
 */
export async function loadCheckpoint(path: string, model: RadFinderModel, opt: AdamW | SGD | null): Promise<RunState> {
  if (!existsSync(path)) throw new DataError(path, 'checkpoint', 'does not exist');
  for (const f of ['model.safetensors', ...(opt ? ['optimizer.safetensors'] : []), 'state.json'])
    if (!existsSync(join(path, f))) throw new DataError(path, f, 'missing: not a checkpoint folder (a ckpt-NNNNNNN folder of a run written by `ctvlm train`)');
  await loadModelWeights(model, join(path, 'model.safetensors'));
  if (opt) {
    const file = join(path, 'optimizer.safetensors');
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(await readFile(file)), file);
    const moments: Float32Array[][] = [];
    for (const [key, t] of Object.entries(tensors)) {
      const [i, j] = key.split('.').map(Number);
      (moments[i] ??= [])[j] = t.data as Float32Array;
    }
    opt.loadStateDict({ step: Number(metadata.step ?? 0), moments });
  }
  return readRunState(path);
}

/**
 * A checkpoint folder's state.json (its step, the loss logged at it).
 * @throws DataError naming the file when it is missing, not JSON, or has no whole-number step.
 */
export async function readRunState(checkpoint: string): Promise<RunState> {
  const path = join(checkpoint, 'state.json');
  const state = await readJsonFile<RunState | null>(path, 'state');
  if (!state || typeof state !== 'object' || !Number.isInteger(state.step) || state.step < 0)
    throw new DataError(path, 'step', `expected a whole number, got ${JSON.stringify(state && typeof state === 'object' ? state.step : state)}`);
  return state;
}

