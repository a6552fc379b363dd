// The release's three tasks at inference (RADFINDER-MODEL.md section 4; radfinder
// retrieval_task.py, binary_zs_ctrate_task.py mean7, localization_task.py), on host arrays of
// embeddings. Browser-safe.
import type { Gpu } from '../gpu/runtime.ts';
import { LABELS } from '../data/labels.ts';
import { noGrad } from '../autograd.ts';
import { scopeAsync } from '../tensor.ts';
import { tensor } from '../ops/creation.ts';
import { ValueError } from '../errors.ts';
import type { RadFinderModel } from './model.ts';
import { textBatch, type TextTokenizer, type Truncation } from './text.ts';

/** The 18 CT-RATE abnormalities, as written in the release's prompts (radfinder prompt_rate_labels.py PATHOLOGIES: our LABELS). */
export const PATHOLOGIES = LABELS;

/** The release's seven zero-shot template pairs T1..T7 ({a}: the pathology as written). */
export const ZERO_SHOT_TEMPLATES: readonly (readonly [string, string])[] = [
  ['{a}.', 'No {a}.'],
  ['Findings are compatible with {a}.', 'Findings are not compatible with {a}.'],
  ['There is {a}.', 'There is no {a}.'],
  ['{a} is seen.', '{a} is not seen.'],
  ['{a}.', 'Not {a}.'],
  ['{a} is observed.', '{a} is not observed.'],
  ['{a} is present.', '{a} is not present.'],
];

/** The template pair k of a pathology. */
export function templatePair(pathology: string, k: number): { pos: string; neg: string } {
  const [pos, neg] = ZERO_SHOT_TEMPLATES[k];
  return { pos: pos.replace('{a}', pathology), neg: neg.replace('{a}', pathology) };
}

/** Every zero-shot prompt text (18 pathologies x 7 pairs). */
export function zeroShotTexts(): string[] {
  return PATHOLOGIES.flatMap((p) => ZERO_SHOT_TEMPLATES.flatMap((_, k) => Object.values(templatePair(p, k))));
}

export interface Embedding {
  raw: number[];
  normalized: number[];
}

export function normalize(v: ArrayLike<number>): number[] {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  // torch F.normalize: x / max(|x|, 1e-12).
  const n = Math.max(Math.sqrt(s), 1e-12);
  return Array.from(v, (x) => x / n);
}

export function embeddingOf(v: ArrayLike<number>): Embedding {
  return { raw: Array.from(v), normalized: normalize(v) };
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

export interface ScanEmbeddings {
  grid: [number, number, number];
  /** projection_image (retrieval). */
  image: Embedding;
  /** projection_image_copy (disease). */
  disease: Embedding;
  /** projection_image_copy per depth bin (localization), with the valid mask. */
  depth: { raw: number[][]; normalized: number[][]; valid: boolean[] };
}

/**
 * One prepared scan ([X, Y, Z] crop, depth fastest, a whole number of windows) through the
 * image side: the three embeddings, read back.
 */
export async function embedScan(model: RadFinderModel, crop: Float32Array, shape: readonly [number, number, number]): Promise<ScanEmbeddings> {
  const gpu = model.gpu;
  return scopeAsync(async () => {
    const e = noGrad(() => model.encodeImage(tensor(gpu, crop, [1, 1, ...shape], 'crop')));
    const [image, disease, depth] = await Promise.all([e.image.floats(), e.disease.floats(), e.depth.floats()]);
    checkFinite(image, 'the image embedding (projection_image)');
    checkFinite(disease, 'the disease embedding (projection_image_copy)');
    checkFinite(depth, 'the per-depth embeddings (projection_image_copy)');
    const E = image.length;
    const D = depth.length / E;
    const rows = Array.from({ length: D }, (_, d) => Array.from(depth.subarray(d * E, (d + 1) * E)));
    return {
      grid: e.grid,
      image: embeddingOf(image),
      disease: embeddingOf(disease),
      depth: { raw: rows, normalized: rows.map(normalize), valid: rows.map(() => true) },
    };
  });
}

// Weights whose activations overflow float32 (a diverged checkpoint) give NaN embeddings, which
// would be printed as null scores and rank as NaN: refused, naming the embedding.
function checkFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i])) throw new ValueError(`${what} has non-finite values (${values[i]} at ${i}): the weights overflow float32 (a diverged checkpoint?)`);
}

export interface TextEmbeddings {
  ids: number[];
  /** projection_text (reports, prompts). */
  report: Embedding;
  /** projection_text_copy (snippets). */
  snippet: Embedding;
}

/** Token id rows (each ending with the EOS) through the text side, in chunks. */
export async function embedTokenIds(model: RadFinderModel, rows: number[][], maxTokens: number, opts: { chunk?: number; onTruncate?: (t: Truncation) => void; which?: 'both' | 'report' | 'snippet' } = {}): Promise<TextEmbeddings[]> {
  const gpu: Gpu = model.gpu;
  const chunk = opts.chunk ?? 16;
  const which = opts.which ?? 'both';
  const out: TextEmbeddings[] = [];
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk);
    const [rep, snip] = await scopeAsync(async () => {
      const t = textBatch(gpu, part, maxTokens, 'text', (tr) => opts.onTruncate?.({ ...tr, index: tr.index + i }));
      const r = noGrad(() => {
        const state = model.textState(t);
        return [which !== 'snippet' ? model.projection_text.forward(state) : null, which !== 'report' ? model.projection_text_copy.forward(state) : null];
      });
      return Promise.all(r.map((x) => x?.floats() ?? null));
    });
    if (rep) checkFinite(rep, `the report embedding (projection_text) of text ${i + 1}${part.length > 1 ? `-${i + part.length}` : ''}`);
    if (snip) checkFinite(snip, `the snippet embedding (projection_text_copy) of text ${i + 1}${part.length > 1 ? `-${i + part.length}` : ''}`);
    part.forEach((ids, k) => {
      const E = model.cfg.head.out;
      const none = { raw: [], normalized: [] };
      out.push({
        ids,
        report: rep ? embeddingOf(rep.subarray(k * E, (k + 1) * E)) : none,
        snippet: snip ? embeddingOf(snip.subarray(k * E, (k + 1) * E)) : none,
      });
    });
  }
  return out;
}

/** Texts through the tokenizer, then embedTokenIds. */
export async function embedTexts(model: RadFinderModel, tok: TextTokenizer, texts: string[], maxTokens: number, opts: Parameters<typeof embedTokenIds>[3] = {}): Promise<TextEmbeddings[]> {
  return embedTokenIds(model, texts.map((t) => tok.encode(t)), maxTokens, opts);
}

export interface ClassPromptEmbeddings {
  label: string;
  /** The 7 templates' normalised embeddings averaged and renormalised. */
  pos: number[];
  neg: number[];
}

/** mean7 prompt embeddings of the 18 classes (projection_text). */
export async function zeroShotPrompts(model: RadFinderModel, tok: TextTokenizer, maxTokens: number): Promise<ClassPromptEmbeddings[]> {
  const texts = PATHOLOGIES.flatMap((p) => ZERO_SHOT_TEMPLATES.flatMap(([pos, neg]) => [pos.replace('{a}', p), neg.replace('{a}', p)]));
  const emb = await embedTexts(model, tok, texts, maxTokens, { which: 'report', chunk: 32 });
  const T = ZERO_SHOT_TEMPLATES.length;
  return PATHOLOGIES.map((label, c) => {
    const avg = (off: number) => {
      const m = new Float64Array(model.cfg.head.out);
      for (let t = 0; t < T; t++) emb[(c * T + t) * 2 + off].report.normalized.forEach((v, i) => (m[i] += v / T));
      return normalize(m);
    };
    return { label, pos: avg(0), neg: avg(1) };
  });
}

/** score = softmax([cos_pos, cos_neg])[0] = sigmoid(cos_pos - cos_neg) (no temperature: binary_zs_ctrate_task.py). */
export function zeroShotScore(diseaseNormalized: ArrayLike<number>, p: ClassPromptEmbeddings): number {
  return 1 / (1 + Math.exp(-(dot(diseaseNormalized, p.pos) - dot(diseaseNormalized, p.neg))));
}

export interface Localization {
  /** cos(depth_d, snippet) per bin. */
  cosine: number[];
  /** softmax(cos / tau) over the valid bins, 0 elsewhere (the training distribution). */
  probabilities: number[];
  /** argmax over valid bins. */
  bin: number;
  /** Expected bin centre in mm from the crop's first slice (sum p_d (d + 1/2) binMm). */
  expectedMm: number;
}

export function localizeSnippet(depthNormalized: number[][], valid: boolean[], snippetNormalized: ArrayLike<number>, tau: number, binMm: number): Localization {
  const cosine = depthNormalized.map((d) => dot(d, snippetNormalized));
  let m = -Infinity;
  let bin = -1;
  cosine.forEach((c, d) => {
    if (valid[d] && c > m) {
      m = c;
      bin = d;
    }
  });
  const e = cosine.map((c, d) => (valid[d] ? Math.exp((c - m) / tau) : 0));
  const z = e.reduce((a, b) => a + b, 0);
  const probabilities = e.map((v) => v / z);
  return { cosine, probabilities, bin, expectedMm: probabilities.reduce((a, p, d) => a + p * (d + 0.5) * binMm, 0) };
}
