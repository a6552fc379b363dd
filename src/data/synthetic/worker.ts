// Worker-thread entry of writeSyntheticDataset (node.ts), built as dist/synth-worker.js: renders,
// encodes and compresses every `stride`-th case from `first`, writes each volume and posts its
// manifest entry. Every case is a function of (seed, index) alone, so the dataset is the same
// byte for byte whatever the number of workers.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';
import { renderCaseFile, type SynthWorkerJob, type SynthWorkerMessage } from './node.ts';

const job = workerData as SynthWorkerJob;
const post = (m: SynthWorkerMessage) => parentPort!.postMessage(m);
let path = job.out;
let doing = 'case generation failed';
try {
  for (let i = job.first; i < job.n; i += job.stride) {
    path = job.out; // a failure before the write names the dataset folder and the case, not the last file
    doing = `case ${i} failed`;
    const { entry, raw, rel } = renderCaseFile(job.seed, i, job.settings);
    const gz = gzipSync(raw, { level: job.gzipLevel });
    path = join(job.out, rel);
    doing = 'cannot write';
    writeFileSync(path, gz);
    post({ kind: 'case', index: i, entry, bytes: gz.length });
  }
} catch (e) {
  post({ kind: 'error', path, message: `${doing}: ${(e as Error).message}` });
}
