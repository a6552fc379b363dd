// From prepared cases (host arrays) to a Batch of device tensors. The dataset prepares
// volumes x fastest ([Z, Y, X]); the model takes RadFinder's layout, depth fastest
// ([X, Y, Z]): the conversion is here, at the boundary.
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import type { PreparedCase } from '../data/dataset.ts';
import type { Batch, TextBatch } from '../model/model.ts';
import { encodeTexts, type TextTokenizer } from '../model/text.ts';
import { promptPairs } from '../data/prompts.ts';
import { LABELS } from '../data/labels.ts';
import { ZERO_SHOT_TEMPLATES, templatePair } from '../model/tasks.ts';
import { fromInts, tensor } from '../ops/creation.ts';
import type { Rng } from '../rng.ts';

export interface BatchOptions {
  reportTokens: number;
  promptTokens: number;
  snippetTokens: number;
  maxSnippets: number;
  posWeight: number[];
  /** Picks the prompt phrasings (training samples one per question per step). */
  rng: Rng;
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
  o: Pick<BatchOptions, 'reportTokens' | 'snippetTokens' | 'maxSnippets'>,
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

/**
 * One phrasing per label for a training step, drawn uniformly from the label's report-style
 * pairs (src/data/prompts.ts) and the seven template pairs zero-shot evaluation averages
 * (RadFinder's mean7 protocol): a model trained here meets the evaluation's phrasings. RadFinder
 * itself trains on other prompt sets; this choice is ours (see README).
 */
export function sampleTrainingPrompts(rng: Rng): { pos: string[]; neg: string[] } {
  const pos: string[] = [];
  const neg: string[] = [];
  LABELS.forEach((label, l) => {
    const own = promptPairs(l);
    const k = Math.floor(rng.next() * (own.length + ZERO_SHOT_TEMPLATES.length));
    const p = k < own.length ? own[k] : templatePair(label, k - own.length);
    pos.push(p.pos);
    neg.push(p.neg);
  });
  return { pos, neg };
}

/** A training batch: makeInputs plus labels, this step's prompt phrasings and pos_weight. */
export function makeBatch(gpu: Gpu, tok: TextTokenizer, cases: PreparedCase[], o: BatchOptions): { batch: Batch; snippets: BatchSnippet[] } {
  const { inputs, snippets } = makeInputs(gpu, tok, cases, o);
  const Q = cases[0].labels.length;
  const labels = new Float32Array(cases.length * Q);
  cases.forEach((c, i) => labels.set(Array.from(c.labels), i * Q));
  const { pos, neg } = sampleTrainingPrompts(o.rng);
  const prompts: TextBatch = encodeTexts(gpu, tok, [...pos, ...neg], o.promptTokens, 'prompts');
  const batch: Batch = {
    ...inputs,
    labels: tensor(gpu, labels, [cases.length, Q], 'labels'),
    prompts,
    posWeight: tensor(gpu, o.posWeight, [Q], 'posWeight'),
  };
  return { batch, snippets };
}
