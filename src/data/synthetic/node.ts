// Node-only: writes a synthetic dataset to disk: DIR/volumes/<id>.nii.gz (int16 HU, stored RAS
// or LPS as each case says) and DIR/manifest.jsonl (+ DIR/synth.json with the settings).
// gzip runs on libuv's thread pool (node:zlib, asynchronous) while the next case renders, so
// both cores are used.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DataError } from '../../errors.ts';
import { encodeNifti } from '../nifti.ts';
import { type ManifestEntry, serializeManifest } from '../manifest.ts';
import { generateCase, storedVolume, synthDefaults, toManifestEntry, type SynthOptions } from './index.ts';

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
  await mkdir(volDir, { recursive: true }).catch((e: Error) => {
    throw new DataError(o.out, 'output folder', `cannot create ${volDir}: ${e.message}`);
  });
  const write = (path: string, data: string | Uint8Array) =>
    writeFile(path, data).catch((e: Error) => {
      throw new DataError(path, 'file', `cannot write: ${e.message}`);
    });
  const entries: ManifestEntry[] = [];
  const inFlight: Promise<void>[] = [];
  let bytes = 0;
  let done = 0;
  for (let i = 0; i < o.n; i++) {
    const c = generateCase(seed, i, o);
    const rel = `volumes/${c.id}.nii.gz`;
    entries.push(toManifestEntry(c, rel));
    const raw = encodeNifti(storedVolume(c), { datatype: 'int16', description: `ctvlm synthetic ${c.id} seed ${seed}` });
    const id = c.id;
    const job = gzipAsync(raw, { level: o.gzipLevel ?? 1 }).then(async (gz) => {
      await write(join(o.out, rel), gz);
      bytes += gz.length;
      done++;
      o.onProgress?.(done, o.n, id);
    });
    job.catch(() => {}); // awaited below; this only keeps a failure from being 'unhandled' meanwhile
    inFlight.push(job);
    // Keep at most two compressions queued (bounded memory).
    if (inFlight.length >= 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const manifestPath = join(o.out, 'manifest.jsonl');
  await write(manifestPath, serializeManifest(entries));
  const { out: _out, onProgress: _p, ...settings } = o;
  await write(join(o.out, 'synth.json'), JSON.stringify({ generator: 'ct-vlm-webgpu synthetic chest CT', ...synthDefaults(settings), seed }, null, 2) + '\n');
  return { manifestPath, entries, bytes, seconds: (performance.now() - t0) / 1000 };
}
