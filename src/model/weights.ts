// Loading and reading model weights as safetensors bytes (browser-safe; the Node checkpoint
// files are in src/train/checkpoint.ts).
import { DataError } from '../errors.ts';
import type { Module } from '../nn/module.ts';
import { decodeSafetensors, encodeSafetensors, type NamedArray } from '../train/safetensors.ts';

/** Copies weights into the model by name; every parameter must be present with its shape. */
export function applyWeights(model: Module, bytes: Uint8Array, source: string): Record<string, string> {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  for (const [name, p] of model.namedParameters()) {
    const t = tensors[name];
    if (!t) throw new DataError(source, name, 'parameter missing from the weights (a different model configuration?)');
    if (t.shape.join() !== p.shape.join()) throw new DataError(source, name, `shape [${t.shape}] does not match the model's [${p.shape}]`);
    p.gpu.upload(p.buffer, t.data);
  }
  return metadata;
}

/** The model's weights as safetensors bytes. */
export async function weightBytes(model: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const tensors: Record<string, NamedArray> = {};
  for (const [name, p] of model.namedParameters()) tensors[name] = { shape: [...p.shape], data: await p.floats() };
  return encodeSafetensors(tensors, metadata);
}
