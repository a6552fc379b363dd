// Localizing one sentence in one embedded scan: the demo's question "which depth does this
// sentence refer to?" (browser-safe; Node uses it too).
import type { Tensor } from '../tensor.ts';
import type { WordPieceTokenizer } from '../data/tokenizer.ts';
import type { CtClipModel } from './model.ts';
import { fromInts, tensor } from '../ops/creation.ts';
import { noGrad } from '../autograd.ts';
import { scopeAsync } from '../tensor.ts';

export interface Localization {
  /** Softmax over the bins that hold scan (0 elsewhere), feet (bin 0) to head. */
  probabilities: number[];
  /** The most likely bin. */
  bin: number;
  /** Expected depth in mm from the first bin's start (the soft-argmax readout). */
  expectedMm: number;
}

/** depth: [1, bins, E] from model.embedVolume; binValid: 1 for bins that hold scan. */
export async function localizeSentence(model: CtClipModel, tok: WordPieceTokenizer, depth: Tensor, binValid: ArrayLike<number>, sentence: string, maxTokens: number): Promise<Localization> {
  const gpu = model.gpu;
  const scores = await scopeAsync(async () => {
    const enc = tok.encodeBatch([sentence], { maxLength: maxTokens, padding: 'longest' });
    const sc = noGrad(() => {
      const emb = model.embedText(fromInts(gpu, enc.ids, [1, enc.length]), tensor(gpu, Float32Array.from(enc.attentionMask), [1, enc.length]));
      return model.depthScores(depth, emb, fromInts(gpu, [0], [1]));
    });
    return sc.floats();
  });
  // The depth head's masked softmax, on the host: one row of tens of bins, and the page
  // needs every probability for its bars.
  let m = -Infinity;
  scores.forEach((v, b) => binValid[b] && (m = Math.max(m, v)));
  const e = Array.from(scores, (v, b) => (binValid[b] ? Math.exp(v - m) : 0));
  const z = e.reduce((a, b) => a + b, 0);
  const probabilities = e.map((v) => v / z);
  const bin = probabilities.indexOf(Math.max(...probabilities));
  const binMm = model.cfg.binMm;
  return { probabilities, bin, expectedMm: probabilities.reduce((a, p, b) => a + p * (b + 0.5) * binMm, 0) };
}
