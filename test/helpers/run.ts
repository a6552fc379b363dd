// Reading a training run's folder back in tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSafetensors } from '../../src/io/safetensors.ts';

/** The weights of RUN's latest checkpoint, by checkpoint key. */
export function latestWeights(run: string): Record<string, Float32Array> {
  const latest = readFileSync(join(run, 'latest'), 'utf8').trim();
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(run, latest, 'model.safetensors'))), 'model');
  return Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.data as Float32Array]));
}
