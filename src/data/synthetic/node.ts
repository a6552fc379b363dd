// Node-only: writes a synthetic dataset to disk: DIR/volumes/<id>.nii.gz (int16 HU) and
// DIR/manifest.jsonl (+ DIR/synth.json with the settings). gzip runs on libuv's thread pool
// (node:zlib, asynchronous) while the next case renders, so both cores are used.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeNifti } from '../nifti.ts';
import { type ManifestEntry, serializeManifest } from '../manifest.ts';
import { generateCase, synthDefaults, toManifestEntry, type SynthOptions } from './index.ts';

const gzipAsync = promisify(gzip);

export interface WriteDatasetOptions extends SynthOptions {
  /** Output folder (created). */
  out: string;
  /** Number of cases. */
  n: number;
  /** Dataset seed (default 0). */
  seed?: number;
  /** gzip level of the volumes (default 1: noisy CT barely compresses better at higher levels). */
  gzipLevel?: number;
  /** Called after each case is written. */
  onProgress?: (done: number, total: number, id: string) => void;
}

export interface WriteDatasetResult {
  manifestPath: string;
  entries: ManifestEntry[];
  /** Bytes of volume files written. */
  bytes: number;
  seconds: number;
}

export async function writeSyntheticDataset(o: WriteDatasetOptions): Promise<WriteDatasetResult> {
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const volDir = join(o.out, 'volumes');
  await mkdir(volDir, { recursive: true });
  const entries: ManifestEntry[] = [];
  const inFlight: Promise<void>[] = [];
  let bytes = 0;
  let done = 0;
  for (let i = 0; i < o.n; i++) {
    const c = generateCase(seed, i, o);
    const rel = `volumes/${c.id}.nii.gz`;
    entries.push(toManifestEntry(c, rel));
    const raw = encodeNifti(c.volume, { datatype: 'int16', description: `ctvlm synthetic ${c.id} seed ${seed}` });
    const id = c.id;
    inFlight.push(
      gzipAsync(raw, { level: o.gzipLevel ?? 1 }).then(async (gz) => {
        await writeFile(join(o.out, rel), gz);
        bytes += gz.length;
        done++;
        o.onProgress?.(done, o.n, id);
      }),
    );
    // Keep at most two compressions queued (bounded memory).
    if (inFlight.length >= 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const manifestPath = join(o.out, 'manifest.jsonl');
  await writeFile(manifestPath, serializeManifest(entries));
  const { out: _out, onProgress: _p, ...settings } = o;
  await writeFile(join(o.out, 'synth.json'), JSON.stringify({ generator: 'ct-vlm-webgpu synthetic chest CT', ...synthDefaults(settings), seed }, null, 2) + '\n');
  return { manifestPath, entries, bytes, seconds: (performance.now() - t0) / 1000 };
}
