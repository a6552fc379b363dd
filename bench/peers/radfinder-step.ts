// The two sides of the bench's `step` section: our model, optimizer and a training batch on
// the device, and the PyTorch peer (radfinder_step.py) given the same initial weights and the
// same batch through files. Also the correctness check that must pass before timings mean
// anything: the first step's loss, its gradient norm, and the second step's loss (after one
// clipped AdamW update) on both sides.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { RadFinderModel, type Batch, type TextBatch } from '../../src/model/model.ts';
import { weightBytes } from '../../src/model/weights.ts';
import { textBatch } from '../../src/model/text.ts';
import { encodeSafetensors, type NamedArray } from '../../src/io/safetensors.ts';
import { fromInts, tensor } from '../../src/ops/creation.ts';
import { NUM_LABELS } from '../../src/data/labels.ts';
import { Rng } from '../../src/rng.ts';
import type { TrainConfig } from '../../src/train/config.ts';
import { createOptimizer, disposeLosses, optimizeBatch, paramGroup } from '../../src/train/step.ts';
import type { AdamW } from '../../src/optim/index.ts';
import { PythonPeer, repoRoot, type Reply } from './python.ts';

/** The first step's loss must agree to this (relative): both run the same float32 math on the
 * same inputs; what differs is summation order (GEMM blocking, FMA, reductions). Measured on
 * the small preset's x1 model: 3.3e-7 against PyTorch on the reference BLAS (which sums as
 * plainly as our kernels), 8.0e-6 against it on OpenBLAS; a missing term or a different layer
 * moves it by 1e-3 or more. */
export const LOSS_TOL = 3e-5;
/** The gradient norm and the second step's loss (after one AdamW update) go through the whole
 * backward and the optimizer: looser, since Adam's first step is g / |g| and flips the sign of
 * an update wherever a gradient entry is at float32 noise. Measured (step-2 loss, OpenBLAS):
 * 1.1e-4 at x1, 4.5e-5 at x2, 1.6e-5 at x4. */
export const AFTER_TOL = 3e-4;

/** A training batch's host arrays (the shapes a `small` run feeds: B crops of the preset's grid,
 * reports up to reportTokens, 2 x 18 prompts, maxSnippets snippets), drawn from a seed. */
export interface HostBatch {
  tensors: Record<string, NamedArray>;
  lengths: Record<'report' | 'prompts' | 'snippets', number[]>;
  shapes: string;
}

export function hostBatch(cfg: TrainConfig, seed: number): HostBatch {
  const rng = new Rng(seed);
  const m = cfg.model;
  const B = cfg.batch;
  const [gx, gy, gz] = cfg.data.grid;
  const [X, Y, Z] = [gx * m.vision.window[0], gy * m.vision.window[1], gz * m.vision.window[2]];
  const D2 = gz * (m.vision.window[2] / m.vision.patch[2]);
  const Q = NUM_LABELS;
  const S = cfg.maxSnippets;
  const tensors: Record<string, NamedArray> = {};
  const vol = new Float32Array(B * X * Y * Z);
  for (let i = 0; i < vol.length; i++) vol[i] = rng.next();
  tensors.volume = { shape: [B, 1, X, Y, Z], data: vol };
  // Token rows: random ids past the special tokens, ending with the EOS; one row at the limit.
  const texts = (name: 'report' | 'prompts' | 'snippets', n: number, lo: number, max: number) => {
    const lens = Array.from({ length: n }, (_, i) => (i === 0 ? max : rng.int(lo, max)));
    const ids = new Int32Array(n * max);
    const mask = new Float32Array(n * max);
    lens.forEach((len, r) => {
      for (let j = 0; j < len; j++) ids[r * max + j] = j === len - 1 ? m.text.eosTokenId : rng.int(5, cfg.vocabSize - 1);
      mask.fill(1, r * max, r * max + len);
    });
    tensors[`${name}.ids`] = { shape: [n, max], data: ids };
    tensors[`${name}.mask`] = { shape: [n, max], data: mask };
    return lens;
  };
  const lengths = {
    report: texts('report', B, Math.floor(cfg.reportTokens / 2), cfg.reportTokens),
    prompts: texts('prompts', 2 * Q, 4, cfg.promptTokens),
    snippets: texts('snippets', S, 6, cfg.snippetTokens),
  };
  // The last report empty (its SigLIP row and column masked, as a case without a report).
  tensors.reportValid = { shape: [B], data: Float32Array.from({ length: B }, (_, i) => (i === B - 1 ? 0 : 1)) };
  tensors.labels = { shape: [B, Q], data: Float32Array.from({ length: B * Q }, () => (rng.chance(0.1) ? -1 : rng.chance(0.3) ? 1 : 0)) };
  tensors.posWeight = { shape: [Q], data: Float32Array.from({ length: Q }, () => rng.uniform(1, 20)) };
  // Snippets in case order, each with the scan's valid bins (a prefix) and a target among them.
  const cases = Array.from({ length: S }, (_, s) => Math.floor((s * B) / S));
  const validTo = Array.from({ length: B }, () => rng.int(Math.floor(D2 / 2), D2));
  const valid = new Float32Array(S * D2);
  cases.forEach((c, s) => valid.fill(1, s * D2, s * D2 + validTo[c]));
  tensors['snippet.case'] = { shape: [S], data: Int32Array.from(cases) };
  tensors['snippet.target'] = { shape: [S], data: Int32Array.from(cases, (c) => rng.int(0, validTo[c] - 1)) };
  tensors['snippet.validBins'] = { shape: [S, D2], data: valid };
  const L = (k: keyof typeof lengths) => Math.max(...lengths[k]);
  const shapes = `crops ${B}x1x${X}x${Y}x${Z}, reports ${B}x${L('report')}, prompts ${2 * Q}x${L('prompts')}, snippets ${S}x${L('snippets')} over ${D2} bins`;
  return { tensors, lengths, shapes };
}

/** The host batch on the device, as makeBatch builds it. */
export function deviceBatch(gpu: Gpu, h: HostBatch): Batch {
  const t = h.tensors;
  const text = (name: 'report' | 'prompts' | 'snippets'): TextBatch => {
    const [n, max] = t[`${name}.ids`].shape;
    const ids = t[`${name}.ids`].data;
    const rows = h.lengths[name].map((len, r) => Array.from(ids.subarray(r * max, r * max + len)));
    if (rows.length !== n) throw new Error(`step: ${name} rows`);
    return textBatch(gpu, rows, max, name);
  };
  const f = (k: string) => tensor(gpu, t[k].data, t[k].shape, k);
  const S = t['snippet.case'].shape[0];
  return {
    volume: f('volume'),
    report: text('report'),
    reportValid: f('reportValid'),
    labels: f('labels'),
    prompts: text('prompts'),
    posWeight: f('posWeight'),
    snippets: {
      text: text('snippets'),
      case: fromInts(gpu, t['snippet.case'].data, [S], 'snippet.case'),
      target: fromInts(gpu, t['snippet.target'].data, [S], 'snippet.target'),
      validBins: f('snippet.validBins'),
      targetMm: tensor(gpu, new Float32Array(S), [S, 1], 'snippet.targetMm'), // read only with l1Weight > 0
    },
  };
}

export function disposeBatch(b: Batch): void {
  const texts = [b.report, b.prompts, ...(b.snippets ? [b.snippets.text] : [])];
  for (const t of [b.volume, b.reportValid, b.labels, b.posWeight, ...texts.flatMap((x) => [x.ids, x.mask])]) t.dispose();
  if (b.snippets) for (const t of [b.snippets.case, b.snippets.target, b.snippets.validBins, b.snippets.targetMm]) t.dispose();
}

/** What the peer needs besides the weights and the batch (see radfinder_step.py). */
function peerSpec(cfg: TrainConfig, model: RadFinderModel, h: HostBatch): object {
  const groups: Record<string, { lrScale: number; weightDecay: number }> = {};
  const group = paramGroup(model, cfg);
  for (const [name, p] of model.namedParameters()) {
    const g = group(p);
    groups[`model.${name}`] = { lrScale: g.lrScale ?? 1, weightDecay: g.weightDecay ?? cfg.weightDecay };
  }
  return { model: cfg.model, optim: { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: 1e-8, clipNorm: cfg.clipNorm }, groups, lengths: h.lengths };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
const num = (r: Reply, k: string): number => {
  const v = r[k];
  if (typeof v !== 'number') throw new Error(`the PyTorch peer's reply has no number '${k}': ${JSON.stringify(r).slice(0, 200)}`);
  return v;
};

export interface StepCheck {
  /** Everything within tolerance and the same parameter count on both sides. */
  agree: boolean;
  /** One line: the values and their relative differences. */
  text: string;
  ours: { loss1: number; gradNorm1: number; loss2: number };
  peer: { loss1: number; gradNorm1: number; loss2: number };
}

/** Our model, optimizer and batch, and the peer on the same weights and batch (when asked for). */
export class StepSides {
  readonly model: RadFinderModel;
  readonly opt: AdamW;
  readonly batch: Batch;
  readonly params: number;
  peer: PythonPeer | null = null;
  peerParams: number | null = null;
  private dir: string | null = null;

  private constructor(
    readonly gpu: Gpu,
    readonly cfg: TrainConfig,
    readonly host: HostBatch,
  ) {
    this.model = new RadFinderModel(gpu, cfg.model, cfg.seed).train(); // as the trainer: batch statistics in any feature BatchNorm
    this.opt = createOptimizer(this.model, cfg);
    this.batch = deviceBatch(gpu, host);
    this.params = this.model.parameterCount();
  }

  /**
   * Builds our side; with `peer`, writes the weights, the batch and peer.json to `keepDir` (kept)
   * or a temporary folder (removed on close) and starts the peer with `threads` threads, on the
   * CPU or (`device: 'cuda'`) the first CUDA GPU.
   */
  static async open(gpu: Gpu, cfg: TrainConfig, host: HostBatch, o: { peer: boolean; threads: number; keepDir?: string; device?: 'cpu' | 'cuda' }): Promise<StepSides> {
    const s = new StepSides(gpu, cfg, host);
    try {
      if (o.peer) {
        const dir = o.keepDir ?? mkdtempSync(join(tmpdir(), 'ctvlm-step-peer-'));
        if (!o.keepDir) s.dir = dir; // removed on close
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'model.safetensors'), await weightBytes(s.model));
        writeFileSync(join(dir, 'batch.safetensors'), encodeSafetensors(host.tensors));
        writeFileSync(join(dir, 'peer.json'), JSON.stringify(peerSpec(cfg, s.model, host)));
        s.peer = new PythonPeer(join(repoRoot(), 'bench', 'peers', 'radfinder_step.py'), [dir, '--threads', String(o.threads), '--device', o.device ?? 'cpu']);
        s.peerParams = num(await s.peer.next(), 'params');
      }
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  /** One of our steps, timed (wall ms, ending with a full device sync). */
  async ourStep(): Promise<number> {
    const t0 = performance.now();
    const parts = optimizeBatch(this.model, this.opt, this.batch);
    await this.gpu.sync();
    const ms = performance.now() - t0;
    disposeLosses(parts);
    return ms;
  }

  /** The peer's wall ms of `count` steps at `threads` threads. */
  async peerSteps(threads: number, count: number): Promise<number[]> {
    if (!this.peer) throw new Error('step: no peer');
    await this.peer.ask(`threads ${threads}`);
    return (await this.peer.ask(`steps ${count}`)).ms as number[];
  }

  /** Steps 1 and 2 on our side (and the peer's): their losses and the first gradient norm. */
  async check(): Promise<StepCheck | { ours: StepCheck['ours'] }> {
    const p1 = optimizeBatch(this.model, this.opt, this.batch);
    const loss1 = await p1.total.item();
    const gradNorm1 = await this.opt.lastGradNorm();
    disposeLosses(p1);
    const p2 = optimizeBatch(this.model, this.opt, this.batch);
    const loss2 = await p2.total.item();
    disposeLosses(p2);
    const ours = { loss1, gradNorm1, loss2 };
    if (!this.peer) return { ours };
    const c = await this.peer.ask('check');
    const peer = { loss1: num(c, 'loss1'), gradNorm1: num(c, 'gradNorm1'), loss2: num(c, 'loss2') };
    const d = [rel(loss1, peer.loss1), rel(gradNorm1, peer.gradNorm1), rel(loss2, peer.loss2)];
    const agree = d[0] <= LOSS_TOL && d[1] <= AFTER_TOL && d[2] <= AFTER_TOL && this.params === this.peerParams;
    const text =
      `${agree ? 'agree' : 'DISAGREE'}: step-1 loss ${loss1.toPrecision(8)} vs ${peer.loss1.toPrecision(8)} (rel ${d[0].toExponential(1)}, tol ${LOSS_TOL}); ` +
      `grad norm ${gradNorm1.toPrecision(6)} vs ${peer.gradNorm1.toPrecision(6)} (rel ${d[1].toExponential(1)}); step-2 loss rel ${d[2].toExponential(1)} (tol ${AFTER_TOL})` +
      (this.params === this.peerParams ? '' : `; parameter counts differ: ${this.params} vs ${this.peerParams}`);
    return { agree, text, ours, peer };
  }

  close(): void {
    this.peer?.close();
    this.peer = null;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    disposeBatch(this.batch);
    this.opt.dispose();
    this.model.dispose();
    this.gpu.trim();
  }
}
