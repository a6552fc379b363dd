// From prepared cases (host arrays) to a Batch of device tensors.
import type { Gpu } from '../gpu/runtime.ts';
import { DataError } from '../errors.ts';
import type { PreparedCase } from '../data/dataset.ts';
import type { WordPieceTokenizer } from '../data/tokenizer.ts';
import type { Batch } from '../model/model.ts';
import { samplePromptSet } from '../data/prompts.ts';
import { fromInts, tensor } from '../ops/creation.ts';
import type { Rng } from '../rng.ts';

function texts(gpu: Gpu, tok: WordPieceTokenizer, lines: string[], maxLength: number, name: string) {
  const enc = tok.encodeBatch(lines, { maxLength, padding: 'longest' });
  return {
    ids: fromInts(gpu, enc.ids, [enc.batch, enc.length], `${name}.ids`),
    mask: tensor(gpu, Float32Array.from(enc.attentionMask), [enc.batch, enc.length], `${name}.mask`),
  };
}

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

/**
 * What evaluation needs of a batch (volumes, reports, located snippets), uploaded; training
 * adds labels and prompts in makeBatch. At most maxSnippets snippets, in case order.
 */
export function makeInputs(
  gpu: Gpu,
  tok: WordPieceTokenizer,
  cases: PreparedCase[],
  o: Pick<BatchOptions, 'reportTokens' | 'snippetTokens' | 'maxSnippets'>,
): { inputs: Pick<Batch, 'volume' | 'reportIds' | 'reportMask' | 'reportValid' | 'snippets'>; snippets: BatchSnippet[] } {
  const B = cases.length;
  const [Z, Y, X] = cases[0].shape;
  for (const c of cases)
    if (c.shape.join() !== cases[0].shape.join())
      throw new DataError(c.id, 'shape', `prepared as ${c.shape.join('x')}, but the batch is ${cases[0].shape.join('x')} (one batch needs one crop shape)`);
  const vol = new Float32Array(B * Z * Y * X);
  cases.forEach((c, i) => vol.set(c.volume, i * Z * Y * X));
  const report = texts(gpu, tok, cases.map((c) => c.report), o.reportTokens, 'report');
  const snippets = cases.flatMap((c, i) => c.snippets.map((s) => ({ case: i, bin: s.bin, zMm: s.zMm, text: s.text }))).slice(0, o.maxSnippets);
  const inputs: Pick<Batch, 'volume' | 'reportIds' | 'reportMask' | 'reportValid' | 'snippets'> = {
    volume: tensor(gpu, vol, [B, 1, Z, Y, X], 'volume'),
    reportIds: report.ids,
    reportMask: report.mask,
    reportValid: tensor(gpu, cases.map((c) => (c.report.trim() ? 1 : 0)), [B], 'reportValid'),
  };
  if (snippets.length) {
    const bins = cases[0].bins;
    const valid = new Float32Array(snippets.length * bins);
    snippets.forEach((s, k) => valid.set(Array.from(cases[s.case].binValid), k * bins));
    const t = texts(gpu, tok, snippets.map((s) => s.text), o.snippetTokens, 'snippets');
    inputs.snippets = {
      ids: t.ids,
      mask: t.mask,
      case: fromInts(gpu, snippets.map((s) => s.case), [snippets.length], 'snippet.case'),
      target: fromInts(gpu, snippets.map((s) => s.bin), [snippets.length], 'snippet.target'),
      validBins: tensor(gpu, valid, [snippets.length, bins], 'snippet.validBins'),
      targetMm: tensor(gpu, snippets.map((s) => s.zMm), [snippets.length, 1], 'snippet.targetMm'),
    };
  }
  return { inputs, snippets };
}

/** A training batch: makeInputs plus labels, this step's prompt phrasings and pos_weight. */
export function makeBatch(gpu: Gpu, tok: WordPieceTokenizer, cases: PreparedCase[], o: BatchOptions): { batch: Batch; snippets: BatchSnippet[] } {
  const { inputs, snippets } = makeInputs(gpu, tok, cases, o);
  const Q = cases[0].labels.length;
  const labels = new Float32Array(cases.length * Q);
  cases.forEach((c, i) => labels.set(Array.from(c.labels), i * Q));
  const { pos, neg } = samplePromptSet(o.rng);
  const prompts = texts(gpu, tok, [...pos, ...neg], o.promptTokens, 'prompts');
  const batch: Batch = {
    ...inputs,
    labels: tensor(gpu, labels, [cases.length, Q], 'labels'),
    promptIds: prompts.ids,
    promptMask: prompts.mask,
    posWeight: tensor(gpu, o.posWeight, [Q], 'posWeight'),
  };
  return { batch, snippets };
}
