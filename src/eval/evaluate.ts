// Evaluation of a trained model on a split: text-to-image retrieval, zero-shot disease
// classification from prompt embeddings, and intra-scan localization with its baselines.
import type { Gpu } from '../gpu/runtime.ts';
import type { CtDataset, PreparedCase } from '../data/dataset.ts';
import type { WordPieceTokenizer } from '../data/tokenizer.ts';
import type { CtClipModel } from '../model/model.ts';
import { allPrompts } from '../data/prompts.ts';
import { noGrad } from '../autograd.ts';
import { scopeAsync, type Tensor } from '../tensor.ts';
import { depthHead } from '../ops/localization.ts';
import { fromInts, tensor } from '../ops/creation.ts';
import { makeInputs } from '../train/batch.ts';
import { auroc, localizationMetrics, macroMean, recallAtK, type LocalizationMetrics, type LocalizationSample } from './metrics.ts';

export interface EvalReport {
  split: string;
  cases: number;
  retrieval: Record<string, number>;
  /** Recall@k of a random ranking, for comparison: k / cases. */
  retrievalChance: Record<string, number>;
  zeroShot: { perClass: { label: string; auroc: number; positives: number }[]; macroAuroc: number };
  localization: LocalizationMetrics;
}

export interface EvalOptions {
  batch: number;
  reportTokens: number;
  promptTokens: number;
  snippetTokens: number;
  sigma: number;
  binMm: number;
  onProgress?: (done: number, total: number) => void;
}

const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
};

async function embedTexts(gpu: Gpu, model: CtClipModel, tok: WordPieceTokenizer, lines: string[], maxLength: number, chunk = 32): Promise<Float32Array> {
  const E = model.cfg.embed;
  const out = new Float32Array(lines.length * E);
  for (let i = 0; i < lines.length; i += chunk) {
    const part = lines.slice(i, i + chunk);
    const emb = await scopeAsync(async () => {
      const enc = tok.encodeBatch(part, { maxLength, padding: 'longest' });
      const e = noGrad(() => model.embedText(fromInts(gpu, enc.ids, [enc.batch, enc.length]), tensor(gpu, Float32Array.from(enc.attentionMask), [enc.batch, enc.length])));
      return e.floats();
    });
    out.set(emb, i * E);
  }
  return out;
}

export async function evaluate(gpu: Gpu, model: CtClipModel, tok: WordPieceTokenizer, data: CtDataset, o: EvalOptions): Promise<EvalReport> {
  const E = model.cfg.embed;
  const n = data.size;
  const images = new Float32Array(n * E);
  const reports = new Float32Array(n * E);
  const labels: Int8Array[] = [];
  const hasReport: boolean[] = [];
  const locSamples: LocalizationSample[] = [];
  const logScale = (await model.logScale.floats())[0];
  for (let start = 0; start < n; start += o.batch) {
    const cases: PreparedCase[] = [];
    for (let i = start; i < Math.min(n, start + o.batch); i++) cases.push(await data.prepare(i, 'eval', 0));
    await scopeAsync(async () => {
      const { inputs: batch, snippets } = makeInputs(gpu, tok, cases, { reportTokens: o.reportTokens, snippetTokens: o.snippetTokens, maxSnippets: Infinity });
      const out = noGrad(() => {
        const { image, depth } = model.embedVolume(batch.volume);
        const report = model.embedText(batch.reportIds, batch.reportMask);
        let head: Tensor | null = null;
        if (batch.snippets) {
          const sn = model.embedText(batch.snippets.ids, batch.snippets.mask);
          head = depthHead(model.depthScores(depth, sn, batch.snippets.case), batch.snippets.validBins, batch.snippets.target, { sigma: o.sigma, binMm: o.binMm });
        }
        return { image, report, head };
      });
      images.set(await out.image.floats(), start * E);
      reports.set(await out.report.floats(), start * E);
      if (out.head) {
        const h = await out.head.floats();
        snippets.forEach((s, k) => {
          const valid = [...cases[s.case].binValid].flatMap((v, b) => (v ? [b] : []));
          locSamples.push({ target: s.bin, predicted: h[3 * k + 2], expectedMm: h[3 * k + 1], targetMm: s.zMm, validBins: valid });
        });
      }
    });
    for (const c of cases) {
      labels.push(c.labels);
      hasReport.push(c.report.trim() !== '');
    }
    o.onProgress?.(Math.min(n, start + o.batch), n);
  }

  // Retrieval: each (non-empty) report ranks every image of the split.
  const sim = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sim[i * n + j] = dot(reports, i * E, images, j * E, E);
  const ks = [1, 5, 10].filter((k) => k <= n);
  const retrieval = recallAtK(sim, n, ks, hasReport.flatMap((h, i) => (h ? [i] : [])));
  const retrievalChance = Object.fromEntries(ks.map((k) => [`R@${k}`, k / n]));

  // Zero-shot: per class, the prompt templates' embeddings averaged; p(present) from the
  // softmax over [pos, neg] similarities at the learned scale.
  const classes = allPrompts();
  const posEmb = await embedTexts(gpu, model, tok, classes.flatMap((c) => c.pos), o.promptTokens);
  const negEmb = await embedTexts(gpu, model, tok, classes.flatMap((c) => c.neg), o.promptTokens);
  const mean = (emb: Float32Array, first: number, count: number) => {
    const m = new Float32Array(E);
    for (let t = 0; t < count; t++) for (let e = 0; e < E; e++) m[e] += emb[(first + t) * E + e];
    const norm = Math.hypot(...m) || 1;
    return m.map((v) => v / norm);
  };
  const perClass: EvalReport['zeroShot']['perClass'] = [];
  let pOff = 0, nOff = 0;
  const scale = Math.exp(logScale);
  classes.forEach((c, q) => {
    const pm = mean(posEmb, pOff, c.pos.length);
    const nm = mean(negEmb, nOff, c.neg.length);
    pOff += c.pos.length;
    nOff += c.neg.length;
    const scores = Array.from({ length: n }, (_, i) => 1 / (1 + Math.exp(scale * (dot(images, i * E, nm, 0, E) - dot(images, i * E, pm, 0, E)))));
    const ls = labels.map((l) => l[q]);
    perClass.push({ label: c.label, auroc: auroc(scores, ls), positives: ls.filter((v) => v === 1).length });
  });
  return {
    split: data.split,
    cases: n,
    retrieval,
    retrievalChance,
    zeroShot: { perClass, macroAuroc: macroMean(perClass.map((p) => p.auroc)) },
    localization: localizationMetrics(locSamples, o.binMm),
  };
}
