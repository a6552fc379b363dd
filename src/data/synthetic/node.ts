// Node-only: writes a synthetic dataset to disk: DIR/volumes/<id>.nii.gz (int16 HU, stored RAS
// or LPS as each case says) and DIR/manifest.jsonl (+ DIR/synth.json with the settings).
// Cases are written by worker threads (dist/synth-worker.js, worker.ts), one per core up to 4,
// each rendering and compressing every k-th case; without that script (a test bundle, a
// program that bundles this module) they are written here, with gzip on libuv's thread pool
// while the next case renders. Either way the files are the same byte for byte.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
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
  /** Called after each case is written (in no particular order of cases). */
  onProgress?: (done: number, total: number, id: string) => void;
  /**
   * Worker threads (default: the cores, at most 4; 1 writes in this thread). Ignored when the
   * worker script cannot be found next to this module (see workerScript).
   */
  workers?: number;
  /** Path of the worker script (default: synth-worker.js in dist/, found from this module). */
  workerScript?: string;
}

/** What a worker is given (worker.ts). */
export interface SynthWorkerJob {
  out: string;
  seed: number;
  n: number;
  first: number;
  stride: number;
  gzipLevel: number;
  settings: SynthOptions;
}

/** What a worker posts: a case written, or the one line of the failure that stopped it. */
export type SynthWorkerMessage = { kind: 'case'; index: number; entry: ManifestEntry; bytes: number } | { kind: 'error'; path: string; message: string };

/**
 * Case `i` of dataset `seed` as a file: its manifest entry, the uncompressed NIfTI-1 bytes
 * (int16 HU) and its path relative to the dataset folder.
 */
export function renderCaseFile(seed: number, i: number, settings: SynthOptions): { entry: ManifestEntry; raw: Uint8Array; rel: string } {
  const c = generateCase(seed, i, settings);
  const rel = `volumes/${c.id}.nii.gz`;
  const raw = encodeNifti(storedVolume(c), { datatype: 'int16', description: `ctvlm synthetic ${c.id} seed ${seed}` });
  return { entry: toManifestEntry(c, rel), raw, rel };
}

/** dist/synth-worker.js seen from this module: dist/cli.js and dist/index.js sit beside it, chunks one level down. */
function findWorkerScript(): string | undefined {
  for (const rel of ['./synth-worker.js', '../synth-worker.js']) {
    const url = new URL(rel, import.meta.url);
    if (url.protocol !== 'file:') continue;
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  return undefined;
}

export interface WriteDatasetResult {
  manifestPath: string;
  entries: ManifestEntry[];
  /** Bytes of volume files written. */
  bytes: number;
  /** Worker threads that wrote them (1: this thread). */
  workers: number;
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
  const { out: _out, onProgress: _p, workers: _w, workerScript: _s, n: _n, seed: _seed, gzipLevel: _g, ...synth } = o;
  const gzipLevel = o.gzipLevel ?? 1;
  const script = o.workerScript !== undefined ? resolve(o.workerScript) : findWorkerScript();
  const workers = Math.max(1, Math.min(o.n, o.workers ?? Math.min(4, availableParallelism())));
  const entries: ManifestEntry[] = new Array(o.n);
  let bytes = 0;
  let done = 0;
  const written = (i: number, entry: ManifestEntry, size: number) => {
    entries[i] = entry;
    bytes += size;
    done++;
    o.onProgress?.(done, o.n, entry.id);
  };
  if (workers > 1 && script) {
    const pool: Worker[] = [];
    let failed: DataError | undefined;
    const fail = (e: DataError) => {
      failed ??= e;
      for (const w of pool) void w.terminate(); // the first failure stops the others
    };
    await Promise.all(
      Array.from({ length: workers }, (_, first) => {
        const job: SynthWorkerJob = { out: o.out, seed, n: o.n, first, stride: workers, gzipLevel, settings: synth };
        const w = new Worker(script, { workerData: job });
        pool.push(w);
        return new Promise<void>((resolve) => {
          w.on('message', (m: SynthWorkerMessage) => (m.kind === 'case' ? written(m.index, m.entry, m.bytes) : fail(new DataError(m.path, 'file', m.message))));
          w.on('error', (e) => fail(new DataError(o.out, 'synthetic data', `worker failed: ${e.message}`)));
          w.on('exit', () => resolve());
        });
      }),
    );
    if (failed) throw failed;
    if (done !== o.n) throw new DataError(o.out, 'synthetic data', `only ${done} of ${o.n} cases were written`);
  } else {
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < o.n; i++) {
      const { entry, raw, rel } = renderCaseFile(seed, i, synth);
      const job = gzipAsync(raw, { level: gzipLevel }).then(async (gz) => {
        await write(join(o.out, rel), gz);
        written(i, entry, gz.length);
      });
      job.catch(() => {}); // awaited below; this only keeps a failure from being 'unhandled' meanwhile
      inFlight.push(job);
      // Keep at most two compressions queued (bounded memory).
      if (inFlight.length >= 2) await inFlight.shift();
    }
    await Promise.all(inFlight);
  }
  const manifestPath = join(o.out, 'manifest.jsonl');
  await write(manifestPath, serializeManifest(entries));
  await write(join(o.out, 'synth.json'), JSON.stringify({ generator: 'ct-vlm-webgpu synthetic chest CT', ...synthDefaults({ ...synth, n: o.n, gzipLevel } as SynthOptions), seed }, null, 2) + '\n');
  return { manifestPath, entries, bytes, workers: workers > 1 && script ? workers : 1, seconds: (performance.now() - t0) / 1000 };
}
