// Evaluation of a trained model on a split (or listed cases of it): text-to-image retrieval,
// zero-shot disease classification from prompt embeddings, and intra-scan localization with
// its baselines; the per-case material is kept and summarised with 95% bootstrap intervals
// over cases (summary.ts).
import type { Gpu } from '../gpu/runtime.ts';
import type { CtDataset, PreparedCase } from '../data/dataset.ts';
import type { RadFinderModel } from '../model/model.ts';
import type { TextTokenizer } from '../model/text.ts';
import { noGrad } from '../autograd.ts';
import { scopeAsync, type Tensor } from '../tensor.ts';
import { depthHead } from '../losses/localization.ts';
import { makeInputs } from '../model/inputs.ts';
import { normalize, zeroShotPrompts, zeroShotScore } from '../model/tasks.ts';
import { retrievalRanks, snippetErrors, type LocalizationSample } from './metrics.ts';
import { summarize, type EvalRaw, type EvalReport } from './summary.ts';
import type { BootstrapOptions } from './bootstrap.ts';

export type { EvalReport } from './summary.ts';

export interface EvalOptions {
  batch: number;
  reportTokens: number;
  promptTokens: number;
  snippetTokens: number;
  /** Evaluate only these cases of the split (indices into it), in this order; default all. */
  indices?: number[];
  /** With `indices`: how the subset was chosen (recorded in the report). */
  subsetRule?: string;
  /** Bootstrap of the intervals (default 1000 resamples, seed 0, 95%). */
  bootstrap?: BootstrapOptions;
  onProgress?: (done: number, total: number) => void;
}

const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
};

/** Rows of [n, E] L2-normalised in place. */
function normalizeRows(x: Float32Array, E: number): Float32Array {
  for (let i = 0; i < x.length; i += E) x.set(normalize(x.subarray(i, i + E)), i);
  return x;
}

/**
 * Evaluates the model on a dataset split the way the release evaluates (RADFINDER-MODEL.md
 * section 4): retrieval with projection_image vs projection_text, zero-shot classification
 * with projection_image_copy vs the seven templates' mean (sigmoid(cos_pos - cos_neg)),
 * localization with the per-depth embeddings vs projection_text_copy (argmax over valid bins).
 */
export async function evaluate(gpu: Gpu, model: RadFinderModel, tok: TextTokenizer, data: CtDataset, o: EvalOptions): Promise<EvalReport> {
  const E = model.cfg.head.out;
  const list = o.indices ?? Array.from({ length: data.size }, (_, i) => i);
  const n = list.length;
  const images = new Float32Array(n * E);
  const diseases = new Float32Array(n * E);
  const reports = new Float32Array(n * E);
  const labels: Int8Array[] = [];
  const ids: string[] = [];
  const texts: string[] = [];
  const locCase: number[] = [];
  const locSamples: LocalizationSample[] = [];
  const loc = model.cfg.localization;
  for (let start = 0; start < n; start += o.batch) {
    const cases: PreparedCase[] = [];
    for (let i = start; i < Math.min(n, start + o.batch); i++) cases.push(await data.prepare(list[i], 'eval', 0));
    await scopeAsync(async () => {
      const { inputs: batch, snippets } = makeInputs(gpu, tok, cases, { reportTokens: o.reportTokens, snippetTokens: o.snippetTokens, maxSnippets: Infinity });
      const out = noGrad(() => {
        const { image, disease, depth } = model.encodeImage(batch.volume, { depth: !!batch.snippets });
        const report = model.encodeText(batch.report);
        let head: Tensor | null = null;
        if (batch.snippets) {
          const sn = model.encodeSnippets(batch.snippets.text);
          head = depthHead(model.depthScores(depth, sn, batch.snippets.case), batch.snippets.validBins, batch.snippets.target, { sigma: loc.sigma, binMm: model.binMm, target: loc.target });
        }
        return { image, disease, report, head };
      });
      images.set(await out.image.floats(), start * E);
      diseases.set(await out.disease.floats(), start * E);
      reports.set(await out.report.floats(), start * E);
      if (out.head) {
        const h = await out.head.floats();
        snippets.forEach((s, k) => {
          const valid = [...cases[s.case].binValid].flatMap((v, b) => (v ? [b] : []));
          locCase.push(start + s.case);
          locSamples.push({ target: s.bin, predicted: h[3 * k + 2], expectedMm: h[3 * k + 1], targetMm: s.zMm, validBins: valid });
        });
      }
    });
    for (const c of cases) {
      labels.push(c.labels);
      ids.push(c.id);
      texts.push(c.report);
    }
    o.onProgress?.(Math.min(n, start + o.batch), n);
  }
  normalizeRows(images, E);
  normalizeRows(diseases, E);
  normalizeRows(reports, E);

  // Retrieval: each (non-empty) report ranks every volume of the evaluated pool.
  const sim = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sim[i * n + j] = dot(reports, i * E, images, j * E, E);
  const queries = texts.flatMap((t, i) => (t.trim() !== '' ? [i] : []));
  const ranks = retrievalRanks(sim, n, queries);
  const rank: (number | null)[] = new Array(n).fill(null);
  queries.forEach((i, q) => (rank[i] = ranks[q]));
  const top = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => j)
      .sort((a, b) => sim[i * n + b] - sim[i * n + a] || a - b)
      .slice(0, 5),
  );

  // Zero-shot: the seven templates per class, mean of normalised embeddings, renormalised.
  const prompts = await zeroShotPrompts(model, tok, o.promptTokens * 2);
  const classes = prompts.map((p, q) => ({
    label: p.label,
    scores: Array.from({ length: n }, (_, i) => zeroShotScore(diseases.subarray(i * E, (i + 1) * E), p)),
    labels: labels.map((l) => l[q]),
  }));

  const errors = locSamples.map((s) => snippetErrors(s, model.binMm));
  const raw: EvalRaw = {
    split: data.split,
    ids,
    reports: texts,
    rank,
    top,
    topSim: top.map((t, i) => t.map((j) => sim[i * n + j])),
    classes,
    snippets: {
      case: locCase,
      target: locSamples.map((s) => s.target),
      predicted: locSamples.map((s) => s.predicted),
      expectedMm: locSamples.map((s) => s.expectedMm),
      targetMm: locSamples.map((s) => s.targetMm),
      randomMm: errors.map((e) => e.randomMm),
      middleMm: errors.map((e) => e.middleMm),
    },
    binMm: model.binMm,
    ...(o.indices ? { subset: { of: data.size, rule: o.subsetRule ?? 'listed cases' } } : {}),
  };
  return summarize(raw, o.bootstrap);
}
