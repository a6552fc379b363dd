// RadFinder-format weights (RADFINDER-MODEL.md section 5): model.safetensors whose keys are
// "model." + the SigLIP module's state-dict names. Loading accepts F32, F16, BF16 (and F64)
// tensors, `weight_g` / `weight_v` as aliases of the weight-norm tensors, ignores LoRA's
// lora_A / lora_B (the stored `weight` already is what the reference forward uses), and
// refuses a missing, unexpected or mis-shaped key with one line naming the file, the key and
// both shapes, before anything is uploaded. Browser-safe.
import { DataError } from '../errors.ts';
import type { RadFinderModel } from './model.ts';
import type { Rope3d } from './vision.ts';
import { bytesSource, encodeSafetensors, openSafetensors, type NamedArray, type SafetensorsSource } from '../io/safetensors.ts';

export const KEY_PREFIX = 'model.';

/** One checkpoint tensor of the model: its key, its shape in the file, and how to set / get it. */
export interface StateEntry {
  key: string;
  shape: number[];
  set(data: Float32Array): void;
  get(): Promise<Float32Array>;
}

const fmt = (s: readonly number[]) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`;

/** Every tensor of a RadFinder checkpoint for this model, in state-dict order. */
export function stateEntries(model: RadFinderModel): StateEntry[] {
  const out: StateEntry[] = [];
  const scalars = new Set(['criterion.t', 'criterion.b']);
  for (const [name, t] of model.stateDict()) {
    if (name.endsWith('rope.periods') || name.endsWith('patch_embed.hist_centres')) continue;
    out.push({
      key: KEY_PREFIX + name,
      // RadFinder's t and b are 0-d tensors; ours hold one value.
      shape: scalars.has(name) ? [] : [...t.shape],
      set: (d) => t.gpu.upload(t.buffer, d),
      get: () => t.floats(),
    });
  }
  const ropes: [string, Rope3d][] = [
    ['backbone_image.rope.periods', model.backbone_image.rope],
    ['feature_comb_image.rope.periods', model.feature_comb_image.rope],
  ];
  for (const [name, rope] of ropes) out.push({ key: KEY_PREFIX + name, shape: [rope.host.length], set: (d) => rope.setPeriods(d), get: async () => rope.host });
  const pe = model.backbone_image.patch_embed;
  if (pe.hist_centres) {
    const shape = [...pe.hist_centres.shape];
    // Checked (count, finite, ascending) and kept on the host too, for the op's order check.
    out.push({ key: `${KEY_PREFIX}backbone_image.patch_embed.hist_centres`, shape, set: (d) => pe.setCentres(d), get: async () => pe.centres! });
  }
  const emb = model.backbone_text.embed_tokens;
  if (emb.host) {
    const host = emb.host;
    out.push({ key: `${KEY_PREFIX}backbone_text.embed_tokens.weight`, shape: [emb.vocab, emb.dim], set: (d) => host.set(d), get: async () => host });
  }
  return out;
}

/** The number of values the checkpoint of this model holds (the published model: about 1.03 B). */
export function checkpointParameterCount(model: RadFinderModel): number {
  return stateEntries(model).reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1), 0);
}

/** The key a file's name stands for: aliases resolved; null for tensors we ignore (LoRA). */
export function canonicalKey(name: string): string | null {
  if (/\.lora_[AB](\.weight)?$/.test(name)) return null;
  return name.replace(/\.weight_g$/, '.parametrizations.weight.original0').replace(/\.weight_v$/, '.parametrizations.weight.original1');
}

/** A disagreement between a file's tensors and the tensors a configuration expects. */
export interface KeyProblem {
  kind: 'unexpected' | 'shape' | 'duplicate' | 'missing';
  /** The file's name for the tensor ('missing': the expected key). */
  key: string;
  /** Shape in the file (all but 'missing') and expected (all but 'unexpected'). */
  fileShape?: number[];
  shape?: number[];
  /** The expected key an alias stood for ('duplicate'). */
  canonical?: string;
}

/**
 * Matches a file's tensors to the expected key table: file names without the "model." prefix
 * read as if they had it, aliases resolved, LoRA tensors ignored, a 0-d expected shape met by
 * any one-value tensor. Returns the (file name, expected key) pairs and every problem, in the
 * file's order, then the missing keys.
 */
export function matchKeys(file: ReadonlyMap<string, { shape: number[] }>, expected: ReadonlyMap<string, readonly number[]>): { pairs: [string, string][]; problems: KeyProblem[]; ignored: number } {
  const prefixed = [...file.keys()].some((k) => k.startsWith(KEY_PREFIX));
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const pairs: [string, string][] = [];
  const problems: KeyProblem[] = [];
  const seen = new Set<string>();
  let ignored = 0;
  for (const [name, e] of file) {
    const canon = canonicalKey(prefixed ? name : KEY_PREFIX + name);
    if (canon === null) {
      ignored++;
      continue;
    }
    const shape = expected.get(canon);
    if (!shape) problems.push({ kind: 'unexpected', key: name, fileShape: e.shape });
    else if (seen.has(canon)) problems.push({ kind: 'duplicate', key: name, canonical: canon });
    else {
      seen.add(canon);
      if (e.shape.join() !== shape.join() && !(shape.length === 0 && n(e.shape) === 1)) problems.push({ kind: 'shape', key: name, fileShape: e.shape, shape: [...shape] });
      else pairs.push([name, canon]);
    }
  }
  for (const [key, shape] of expected) if (!seen.has(key)) problems.push({ kind: 'missing', key, shape: [...shape] });
  return { pairs, problems, ignored };
}

/** One line for a problem (after the file's name and the key). */
export function describeProblem(p: KeyProblem): string {
  switch (p.kind) {
    case 'unexpected':
      return `unexpected key ${fmt(p.fileShape!)}: this model has no such tensor (weights of another architecture, or a configuration that does not match them?)`;
    case 'shape':
      return `shape ${fmt(p.fileShape!)} in the file, ${fmt(p.shape!)} in the model built from the configuration`;
    case 'duplicate':
      return `holds ${p.canonical} a second time (under an alias)`;
    case 'missing':
      return `missing ${fmt(p.shape!)}: the file does not hold this tensor of the model`;
  }
}

export interface LoadReport {
  /** Tensors loaded, by the file's dtype. */
  dtypes: Record<string, number>;
  /** LoRA tensors present and ignored. */
  ignored: number;
  metadata: Record<string, string>;
}

/**
 * Loads a RadFinder-format safetensors source into the model. Every key of the model must be
 * present with its shape; keys the model does not have are refused (LoRA keys excepted).
 * Throws a DataError naming the file and the key; `configNote` (configAssumptions) is added to
 * it, since a configuration that left out the model's sizes is the likely cause.
 */
export async function loadWeights(model: RadFinderModel, src: SafetensorsSource, onProgress?: (done: number, total: number) => void, configNote = ''): Promise<LoadReport> {
  const file = await openSafetensors(src);
  const entries = new Map(stateEntries(model).map((e) => [e.key, e]));
  const { pairs, problems, ignored } = matchKeys(file.entries, new Map([...entries].map(([k, e]) => [k, e.shape])));
  if (problems.length) throw new DataError(src.name, problems[0].key, `${describeProblem(problems[0])}${configNote ? ` (${configNote})` : ''}`);
  const plan = pairs.map(([name, canon]) => [name, entries.get(canon)!] as const);
  const dtypes: Record<string, number> = {};
  for (const [name] of plan) {
    const d = file.entries.get(name)!.dtype;
    dtypes[d] = (dtypes[d] ?? 0) + 1;
  }
  let done = 0;
  for (const [name, ours] of plan) {
    const data = await file.tensor(name);
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i])) throw new DataError(src.name, name, `value ${data[i]} at index ${i} is not finite`);
    ours.set(data instanceof Float32Array ? data : Float32Array.from(data));
    onProgress?.(++done, plan.length);
  }
  return { dtypes, ignored, metadata: file.metadata };
}

/** loadWeights from bytes in memory (the browser, tests). */
export function loadWeightsFromBytes(model: RadFinderModel, bytes: Uint8Array, source: string): Promise<LoadReport> {
  return loadWeights(model, bytesSource(bytes, source));
}

/** The model as RadFinder-format safetensors bytes (F32). */
export async function weightBytes(model: RadFinderModel, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const tensors: Record<string, NamedArray> = {};
  for (const e of stateEntries(model)) tensors[e.key] = { shape: e.shape, data: await e.get() };
  return encodeSafetensors(tensors, { format: 'pt', ...metadata });
}
