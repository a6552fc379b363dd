// The model's inputs from prepared cases (host arrays) as device tensors: what training
// (src/train/batch.ts adds labels and prompts) and evaluation (src/eval/evaluate.ts) both feed
// the model. The dataset prepares volumes x fastest ([Z, Y, X]); the model takes RadFinder's
// layout, depth fastest ([X, Y, Z]): the conversion is here, at the boundary.
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import type { PreparedCase } from '../data/dataset.ts';
import type { Batch } from './model.ts';
import { encodeTexts, type TextTokenizer } from './text.ts';
import { fromInts, tensor } from '../ops/creation.ts';

export interface InputOptions {
  reportTokens: number;
  snippetTokens: number;
  maxSnippets: number;
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
  for (let z = 0; z < Z; z++)
    for (let y = 0; y < Y; y++) {
      const row = (z * Y + y) * X;
      for (let x = 0; x < X; x++) out[offset + (x * Y + y) * Z + z] = src[row + x];
    }
}

/** What evaluation needs of a batch (volumes, reports, located snippets), uploaded. At most maxSnippets snippets, in case order. */
export function makeInputs(
  gpu: Gpu,
  tok: TextTokenizer,
  cases: PreparedCase[],
  o: InputOptions,
): { inputs: Pick<Batch, 'volume' | 'report' | 'reportValid' | 'snippets'>; snippets: BatchSnippet[] } {
  const B = cases.length;
  const shape = cases[0].shape;
  const [Z, Y, X] = shape;
  for (const c of cases)
    if (c.shape.join() !== shape.join())
      throw new DataError(c.id, 'shape', `prepared as ${c.shape.join('x')}, but the batch is ${shape.join('x')} (one batch needs one crop shape)`);
  const vol = new Float32Array(B * Z * Y * X);
  cases.forEach((c, i) => toDepthFastest(c.volume, shape, vol, i * Z * Y * X));
  const snippets = cases.flatMap((c, i) => c.snippets.map((s) => ({ case: i, bin: s.bin, zMm: s.zMm, text: s.text }))).slice(0, o.maxSnippets);
  const inputs: Pick<Batch, 'volume' | 'report' | 'reportValid' | 'snippets'> = {
    volume: tensor(gpu, vol, [B, 1, X, Y, Z], 'volume'),
    report: encodeTexts(gpu, tok, cases.map((c) => c.report), o.reportTokens, 'report'),
    reportValid: tensor(gpu, cases.map((c) => (c.report.trim() ? 1 : 0)), [B], 'reportValid'),
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
