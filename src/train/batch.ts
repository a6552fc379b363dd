// A training batch: the model's inputs (src/model/inputs.ts) plus the labels, this step's
// prompt phrasings and pos_weight.
import type { Gpu } from '../gpu/runtime.ts';
import type { PreparedCase } from '../data/dataset.ts';
import type { Batch, TextBatch } from '../model/model.ts';
import { encodeTexts, type TextTokenizer } from '../model/text.ts';
import { makeInputs, type BatchSnippet, type InputOptions } from '../model/inputs.ts';
import { promptPairs } from '../data/prompts.ts';
import { LABELS } from '../data/labels.ts';
import { ZERO_SHOT_TEMPLATES, templatePair } from '../model/tasks.ts';
import { tensor } from '../ops/creation.ts';
import type { Rng } from '../rng.ts';

export interface BatchOptions extends InputOptions {
  promptTokens: number;
  posWeight: number[];
  /** Picks the prompt phrasings (training samples one per question per step). */
  rng: Rng;
  /** Uploads Batch.reportLabels when true (the model's reportPromptWeight > 0). */
  reportLabels?: boolean;
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
  // An empty report says nothing about its labels: unknown (-1) for the report-side prompt loss.
  const reportLabels = o.reportLabels ? labels.map((v, k) => (cases[Math.floor(k / Q)].report.trim() ? v : -1)) : null;
  const { pos, neg } = sampleTrainingPrompts(o.rng);
  const prompts: TextBatch = encodeTexts(gpu, tok, [...pos, ...neg], o.promptTokens, 'prompts');
  const batch: Batch = {
    ...inputs,
    labels: tensor(gpu, labels, [cases.length, Q], 'labels'),
    ...(reportLabels ? { reportLabels: tensor(gpu, reportLabels, [cases.length, Q], 'reportLabels') } : {}),
    prompts,
    posWeight: tensor(gpu, o.posWeight, [Q], 'posWeight'),
  };
  return { batch, snippets };
}
