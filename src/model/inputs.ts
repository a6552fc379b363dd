// The model's inputs from prepared cases (host arrays) as device tensors: what training
// (src/train/batch.ts adds labels and prompts) and evaluation (src/eval/evaluate.ts) both feed
// the model. The dataset prepares volumes x fastest ([Z, Y, X]); the model takes RadFinder's
// layout, depth fastest ([X, Y, Z]): the conversion is here, at the boundary.
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import type { PreparedCase } from '../data/dataset.ts';
import type { Batch } from './model.ts';
import { encodeTexts, type TextTokenizer } from './text.ts';
import { allFinite, fromInts, tensor } from '../ops/creation.ts';
import { permute } from '../launch/layout.ts';
import { Tensor } from '../tensor.ts';
import { ValueError } from '../errors.ts';

export interface InputOptions {
  reportTokens: number;
  snippetTokens: number;
  maxSnippets: number;
  /** Reports of other cases appended after the batch's own (SigLIP negatives; training only). */
  extraReports?: readonly string[];
}

export interface BatchSnippet {
  case: number;
  bin: number;
  zMm: number;
  text: string;
}

/** A [Z, Y, X] (x fastest) volume written as [X, Y, Z] (z fastest) at `out[offset..]`. */
export function toDepthFastest(src: Float32Array, shape: readonly [number, number, number], out: Float32Array, offset = 0): void {
  const [Z, Y, X] = shape;
  const YX = Y * X;
  // In 8x8 (z, x) tiles: the plain loop writes with a stride of Y*Z floats and missed the cache
  // on every voxel (38 ms for a batch of eight 128x64x64 crops; 7.5 ms tiled).
  const T = 8;
  for (let z0 = 0; z0 < Z; z0 += T) {
    const z1 = Math.min(Z, z0 + T);
    for (let y = 0; y < Y; y++)
      for (let x0 = 0; x0 < X; x0 += T) {
        const x1 = Math.min(X, x0 + T);
        for (let x = x0; x < x1; x++) {
          const o = offset + (x * Y + y) * Z;
          const s = y * X + x;
          for (let z = z0; z < z1; z++) out[o + z] = src[s + z * YX];
        }
      }
  }
}

// One host array for every batch's volumes, reused: a fresh 16 MB array per step cost more
// in page faults than the transpose itself (60 ms against 9 ms for eight 128x64x64 crops).
// tensor() copies it into the device queue at once, so the next batch may overwrite it.
let staging = new Float32Array(0);
function volumeStaging(n: number): Float32Array {
  if (staging.length < n) staging = new Float32Array(n);
  return staging.subarray(0, n);
}

/**
 * The cases' volumes ([Z, Y, X] each) as one device tensor [B, 1, X, Y, Z]: transposed on the
 * host before the upload, or (gpu.tuning.volumeOnDevice; by default on GPUs) uploaded as they
 * are and permuted on the device. The same values either way (test/model/inputs.test.ts).
 * @throws ValueError naming the first non-finite voxel, as tensor() does.
 */
export function uploadVolumes(gpu: Gpu, cases: PreparedCase[], shape: readonly [number, number, number]): Tensor {
  const [Z, Y, X] = shape;
  const B = cases.length;
  const n = Z * Y * X;
  if (!(gpu.tuning.volumeOnDevice ?? !gpu.isLavapipe)) {
    const vol = volumeStaging(B * n);
    cases.forEach((c, i) => toDepthFastest(c.volume, shape, vol, i * n));
    return tensor(gpu, vol, [B, 1, X, Y, Z], 'volume');
  }
  cases.forEach((c, i) => {
    if (!allFinite(c.volume)) {
      const j = c.volume.findIndex((v) => !Number.isFinite(v));
      throw new ValueError(`tensor 'volume': value ${c.volume[j]} at voxel ${j} of case ${c.id} (z ${Math.floor(j / (Y * X))}, y ${Math.floor(j / X) % Y}, x ${j % X}) is not finite`);
    }
  });
  const raw = new Tensor(gpu, [B, 1, Z, Y, X], 'f32', undefined, 'volume.zyx');
  cases.forEach((c, i) => gpu.upload(raw.buffer, c.volume.subarray(0, n), i * n * 4));
  const volume = permute(raw, [0, 1, 4, 3, 2]);
  raw.dispose();
  return volume;
}

/**
 * What evaluation needs of a batch (volumes, reports, located snippets), uploaded: volume
 * [B, 1, X, Y, Z], report and reportValid with B + K rows (the cases' own reports, then the K
 * o.extraReports), snippets of the B cases. At most maxSnippets snippets, in case order.
 * @throws DataError when the cases' crop shapes differ.
 */
export function makeInputs(
  gpu: Gpu,
  tok: TextTokenizer,
  cases: PreparedCase[],
  o: InputOptions,
): { inputs: Pick<Batch, 'volume' | 'report' | 'reportValid' | 'snippets'>; snippets: BatchSnippet[] } {
  const shape = cases[0].shape;
  for (const c of cases)
    if (c.shape.join() !== shape.join())
      throw new DataError(c.id, 'shape', `prepared as ${c.shape.join('x')}, but the batch is ${shape.join('x')} (one batch needs one crop shape)`);
  const reports = [...cases.map((c) => c.report), ...(o.extraReports ?? [])];
  const snippets = cases.flatMap((c, i) => c.snippets.map((s) => ({ case: i, bin: s.bin, zMm: s.zMm, text: s.text }))).slice(0, o.maxSnippets);
  const inputs: Pick<Batch, 'volume' | 'report' | 'reportValid' | 'snippets'> = {
    volume: uploadVolumes(gpu, cases, shape),
    report: encodeTexts(gpu, tok, reports, o.reportTokens, 'report'),
    reportValid: tensor(gpu, reports.map((r) => (r.trim() ? 1 : 0)), [reports.length], 'reportValid'),
  };
  if (snippets.length) {
    const bins = cases[0].bins;
    const valid = new Float32Array(snippets.length * bins);
    snippets.forEach((s, k) => valid.set(Array.from(cases[s.case].binValid), k * bins));
    inputs.snippets = {
      text: encodeTexts(gpu, tok, snippets.map((s) => s.text), o.snippetTokens, 'snippets'),
      case: fromInts(gpu, snippets.map((s) => s.case), [snippets.length], 'snippet.case'),
      target: fromInts(gpu, snippets.map((s) => s.bin), [snippets.length], 'snippet.target'),
      validBins: tensor(gpu, valid, [snippets.length, bins], 'snippet.validBins'),
      targetMm: tensor(gpu, snippets.map((s) => s.zMm), [snippets.length, 1], 'snippet.targetMm'),
    };
  }
  return { inputs, snippets };
}
