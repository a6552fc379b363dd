// The training step's profile (`ctvlm profile`): where a step's device time goes, by op family
// and by op, from the runtime's timestamp queries (one record per dispatch), next to the step's
// wall time without profiling, its host time (encoding, submitting) and how many dispatches,
// submits, copies and clears it issues. Each dispatch is put in the phase of the step it ran
// in (forward with the losses, backward, optimizer) by where it falls between the calls of
// model.loss() and opt.step(). The step is trainer.ts's own (step.ts trainStep), on a real
// dataset folder, after warm-up steps that compile every pipeline and fill the buffer pool.
// profile-format.ts prints it.
import { mkdir } from 'node:fs/promises';
import { CtvlmError } from '../app-errors.ts';
import { autotuneSeenKernels } from '../launch/layout-tuners.ts';
import type { Gpu, ProfileRecord } from '../gpu/runtime.ts';
import { CtDataset, type PreparedCase } from '../data/dataset.ts';
import { RadFinderModel } from '../model/model.ts';
import { QWEN3_EMBEDDING_0_6B } from '../model/qwen3.ts';
import { paperConfig, type RadFinderConfig } from '../model/config.ts';
import { wordPieceForModel } from '../model/text.ts';
import { minTrainingCases, type TrainConfig } from './config.ts';
import { manifestPath, runTokenizer, settleConfig } from './run-folder.ts';
import { checkNegativeReports, createOptimizer, disposeLosses, prepareStep, trainStep, type StepContext } from './step.ts';

export type Phase = 'forward' | 'backward' | 'optimizer';
export const PHASES: readonly Phase[] = ['forward', 'backward', 'optimizer'];

/** A dispatch's timestamp record with the phase of the step it ran in. */
export interface PhasedRecord extends ProfileRecord {
  phase: Phase;
}

// Op family by kernel file: what one would fuse or rewrite together. A file whose name starts
// with a key belongs to its family ('matmul_f16.wgsl' is a matmul); any other file (a kernel
// added later) still gets a row of its own, named by its file and marked.
const FAMILIES: Record<string, string> = {
  matmul: 'matmul',
  attention: 'attention',
  pad: 'attention pad/unpad',
  elementwise: 'elementwise',
  layout: 'layout copies',
  reduce: 'reductions',
  layernorm: 'norms',
  rmsnorm: 'norms',
  softmax: 'softmax',
  patch3d: 'patch embed',
  patchhist: 'patch embed',
  embedding: 'embedding',
  glu: 'SwiGLU gate',
  rope: 'rope',
  crossentropy: 'losses',
  siglip: 'losses',
  localization: 'losses',
  optim: 'optimizer',
  gradnorm: 'optimizer',
};
const FAMILY_KEYS = Object.keys(FAMILIES).sort((a, b) => b.length - a.length);

/** Marks the family of a kernel file that FAMILIES does not name. */
export const UNMAPPED = ' (unmapped)';

/** The op family of a kernel named 'file.wgsl:entry' (gpu.launch's name for it). */
export function opFamily(kernel: string): string {
  const stem = kernel.split(':')[0].replace(/\.wgsl$/, '');
  const key = FAMILY_KEYS.find((k) => stem.startsWith(k));
  return key ? FAMILIES[key] : `${stem}${UNMAPPED}`;
}

/**
 * Floating-point operations of a matmul dispatch from its label ('matmul [8x129x96]@[384x96]ᵀ+bias':
 * 2 * batch * M * K * N, the batch broadcast over both operands; a dispatch of some columns
 * only, '... columns 128-255' (the uniform-B slabs of src/launch/matmul.ts), counts those), or
 * null for a label of another form or with operands that do not chain.
 */
export function matmulFlops(label: string): number | null {
  const cols = / columns (\d+)-(\d+)$/.exec(label);
  const m = /^matmul \[([\dx]+)\](ᵀ?)@\[([\dx]+)\](ᵀ?)/.exec(label);
  if (!m) return null;
  const a = m[1].split('x').map(Number);
  const b = m[3].split('x').map(Number);
  if (a.length < 2 || b.length < 2) return null;
  const batch = Math.max(...[a, b].map((d) => d.slice(0, -2).reduce((x, y) => x * y, 1)));
  const [ar, ac] = m[2] ? [a.at(-1)!, a.at(-2)!] : [a.at(-2)!, a.at(-1)!];
  const [br, bc] = m[4] ? [b.at(-1)!, b.at(-2)!] : [b.at(-2)!, b.at(-1)!];
  if (ac !== br) return null;
  const n = cols ? Number(cols[2]) - Number(cols[1]) + 1 : bc;
  return cols && (n < 1 || Number(cols[2]) >= bc) ? null : 2 * batch * ar * ac * n;
}

/** The op a dispatch ran, from its label: the first word ('matmul', 'add', 'layerNorm.backward', ...). */
export function opName(label: string): string {
  return label.trim().split(/\s+/)[0] || '?';
}

export interface FamilyRow {
  family: string;
  /** Milliseconds per step (timestamps). */
  ms: number;
  /** Fraction of the step's timed dispatch time. */
  share: number;
  /** Dispatches per step. */
  dispatches: number;
  /** Milliseconds and dispatches per step in each phase. */
  phaseMs: Record<Phase, number>;
  phaseDispatches: Record<Phase, number>;
  /** The kernel entry points seen ('file.wgsl:entry'). */
  kernels: string[];
}

export interface OpRow {
  /** 'file.wgsl:entry' and the op from the label, or a whole label (by shape). */
  key: string;
  family: string;
  ms: number;
  share: number;
  dispatches: number;
}

export interface Grouped {
  /** Timed dispatch milliseconds per step (the sum of every record, over steps). */
  gpuMs: number;
  dispatches: number;
  phaseMs: Record<Phase, number>;
  phaseDispatches: Record<Phase, number>;
  /** Largest first. */
  families: FamilyRow[];
  /** By kernel entry point and op; largest first. */
  ops: OpRow[];
  /** By whole label (op and shapes); largest first. */
  shapes: OpRow[];
  /** The matmul family's work from its labels' shapes, per step; `unparsed` dispatches are left out of both. */
  matmul: { gflop: number; ms: number; unparsed: number };
}

const zeroPhases = (): Record<Phase, number> => ({ forward: 0, backward: 0, optimizer: 0 });

/**
 * Groups `steps` steps' dispatch records by op family, by op and by label; every figure is per
 * step. Every record lands in exactly one family, one op row and one shape row.
 * @throws CtvlmError when steps is not a positive integer.
 */
export function groupRecords(records: readonly PhasedRecord[], steps: number): Grouped {
  if (!Number.isInteger(steps) || steps < 1) throw new CtvlmError(`profile: steps must be a positive integer, got ${steps}`);
  const fam = new Map<string, { ms: number; n: number; phaseMs: Record<Phase, number>; phaseN: Record<Phase, number>; kernels: Set<string> }>();
  const ops = new Map<string, { family: string; ms: number; n: number }>();
  const shapes = new Map<string, { family: string; ms: number; n: number }>();
  const phaseMs = zeroPhases();
  const phaseN = zeroPhases();
  let total = 0;
  const mm = { flops: 0, ms: 0, unparsed: 0 };
  const bump = (m: Map<string, { family: string; ms: number; n: number }>, key: string, family: string, ms: number) => {
    const e = m.get(key) ?? { family, ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    m.set(key, e);
  };
  for (const r of records) {
    const family = opFamily(r.kernel);
    const f = fam.get(family) ?? { ms: 0, n: 0, phaseMs: zeroPhases(), phaseN: zeroPhases(), kernels: new Set<string>() };
    f.ms += r.ms;
    f.n++;
    f.phaseMs[r.phase] += r.ms;
    f.phaseN[r.phase]++;
    f.kernels.add(r.kernel);
    fam.set(family, f);
    bump(ops, `${r.kernel} ${opName(r.label)}`, family, r.ms);
    bump(shapes, r.label, family, r.ms);
    if (family === 'matmul') {
      const fl = matmulFlops(r.label);
      if (fl === null) mm.unparsed++;
      else {
        mm.flops += fl;
        mm.ms += r.ms;
      }
    }
    phaseMs[r.phase] += r.ms;
    phaseN[r.phase]++;
    total += r.ms;
  }
  const share = (ms: number) => (total > 0 ? ms / total : 0);
  const rows = (m: Map<string, { family: string; ms: number; n: number }>): OpRow[] =>
    [...m].map(([key, e]) => ({ key, family: e.family, ms: e.ms / steps, share: share(e.ms), dispatches: e.n / steps })).sort((a, b) => b.ms - a.ms);
  const perStep = (p: Record<Phase, number>) => Object.fromEntries(PHASES.map((k) => [k, p[k] / steps])) as Record<Phase, number>;
  return {
    gpuMs: total / steps,
    dispatches: records.length / steps,
    phaseMs: perStep(phaseMs),
    phaseDispatches: perStep(phaseN),
    families: [...fam]
      .map(([family, f]) => ({ family, ms: f.ms / steps, share: share(f.ms), dispatches: f.n / steps, phaseMs: perStep(f.phaseMs), phaseDispatches: perStep(f.phaseN), kernels: [...f.kernels].sort() }))
      .sort((a, b) => b.ms - a.ms),
    ops: rows(ops),
    shapes: rows(shapes),
    matmul: { gflop: mm.flops / 1e9 / steps, ms: mm.ms / steps, unparsed: mm.unparsed / steps },
  };
}

// ------------------------------------------------------------------ model sizes

/**
 * The preset's model with every width multiplied by `k` (vision width, text hidden size, head
 * width and MLP width, projection heads); depths, head counts and the window geometry kept.
 * @throws CtvlmError for a k that is not a positive integer.
 */
export function scaleWidths(m: RadFinderConfig, k: number): RadFinderConfig {
  if (!Number.isInteger(k) || k < 1) throw new CtvlmError(`profile: --width-scale must be a positive integer, got ${k}`);
  return {
    ...m,
    vision: { ...m.vision, backbone: { ...m.vision.backbone, embedDim: m.vision.backbone.embedDim * k } },
    text: { ...m.text, hiddenSize: m.text.hiddenSize * k, headDim: m.text.headDim * k, intermediateSize: m.text.intermediateSize * k },
    head: { hidden: m.head.hidden * k, bottleneck: m.head.bottleneck * k, out: m.head.out * k },
  };
}

/**
 * The released model's widths (vision 1080 with 12 heads in the backbone and the combiner,
 * Qwen3-Embedding-0.6B's text widths, heads 2048/256/512) at the preset's depths, window
 * geometry and vocabulary (the paper's 24 + 4 vision blocks and 28 text layers, and its
 * 512-token windows, are far too slow to train on lavapipe).
 */
export function paperWidths(m: RadFinderConfig): RadFinderConfig {
  const p = paperConfig();
  const q = QWEN3_EMBEDDING_0_6B;
  return {
    ...m,
    vision: {
      ...m.vision,
      backbone: { ...m.vision.backbone, embedDim: p.vision.backbone.embedDim, heads: p.vision.backbone.heads },
      combiner: { ...m.vision.combiner, heads: p.vision.combiner.heads },
    },
    text: { ...m.text, hiddenSize: q.hiddenSize, numAttentionHeads: q.numAttentionHeads, numKeyValueHeads: q.numKeyValueHeads, headDim: q.headDim, intermediateSize: q.intermediateSize },
    head: { ...p.head },
  };
}

/** The model with `depth` backbone blocks, combiner blocks and text layers. */
export function withDepth(m: RadFinderConfig, depth: number): RadFinderConfig {
  if (!Number.isInteger(depth) || depth < 1) throw new CtvlmError(`profile: --depth must be a positive integer, got ${depth}`);
  return {
    ...m,
    vision: { ...m.vision, backbone: { ...m.vision.backbone, depth }, combiner: { ...m.vision.combiner, depth } },
    text: { ...m.text, numHiddenLayers: depth },
  };
}

/** One line naming a model's sizes, e.g. 'vision 96 x (2 + 2 blocks), 4 heads; text 64 x 2 layers ...'. */
export function describeModel(m: RadFinderConfig): string {
  const v = m.vision;
  const t = m.text;
  return (
    `vision width ${v.backbone.embedDim}, ${v.backbone.heads} heads, ${v.backbone.depth} backbone + ${v.combiner.depth} combiner blocks, ` +
    `window ${v.window.join('x')} voxels / patch ${v.patch.join('x')}; text hidden ${t.hiddenSize}, ${t.numHiddenLayers} layers, ` +
    `${t.numAttentionHeads}/${t.numKeyValueHeads} heads of ${t.headDim}, MLP ${t.intermediateSize}; heads ${m.head.hidden}/${m.head.bottleneck}/${m.head.out}`
  );
}

// ------------------------------------------------------------------ the measurement

export interface ProfileOptions {
  /** A dataset folder (manifest.jsonl) or manifest file; its training split feeds the steps. */
  data: string;
  config: TrainConfig;
  /** A scratch folder for the tokenizer and configuration the step needs (created if absent; not removed). */
  workDir: string;
  /** Unmeasured steps first (pipeline compilation, buffer pool growth). Default 1. */
  warmup?: number;
  /** Rounds of one step without profiling and one with it. Default 2. */
  steps?: number;
  log?: (line: string) => void;
}

/** Per step, medians over the measured steps (milliseconds). */
export interface StepTiming {
  /** From the start of encoding to the end of the device's work. */
  wallMs: number;
  /** Each measured step's wall time, in order. */
  wallSamples: number[];
  /** Host time recording the step (batch upload, ops, autograd, optimizer), flushes excluded. */
  encodeMs: number;
  /** Host time in flushes (command buffer finish and queue submit). */
  submitMs: number;
  /** Per step, exact. */
  submits: number;
  dispatches: number;
  copies: number;
  clears: number;
  /** Bind groups the step had to create (the rest came from the runtime's cache). */
  bindGroupsCreated: number;
}

export interface StepProfile extends Grouped {
  steps: number;
  warmup: number;
  batch: number;
  parameters: number;
  model: string;
  device: string;
  /** Steps without profiling. */
  plain: StepTiming;
  /** Steps with profiling on (one compute pass and two timestamps per dispatch). */
  profiled: StepTiming;
  /** Each profiled step's sum of timestamp records, in order (ms). */
  timedSamples: number[];
  /** Every timestamp record of the profiled steps, in dispatch order. */
  records: PhasedRecord[];
}

/** The median of a non-empty list. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Profiles the training step of `config` on `data`'s training split: `warmup` steps, then
 * `steps` rounds of a step timed without profiling and one with timestamp queries. The model
 * is freshly initialised (its weights do not change the work a step does).
 * @throws CtvlmError when the device has no timestamp queries or the split is smaller than a batch.
 */
export async function profileTrainingStep(gpu: Gpu, o: ProfileOptions): Promise<StepProfile> {
  const log = o.log ?? (() => {});
  const warmup = o.warmup ?? 1;
  const steps = o.steps ?? 2;
  if (!Number.isInteger(warmup) || warmup < 0) throw new CtvlmError(`profile: warm-up steps must be an integer >= 0, got ${warmup}`);
  if (!Number.isInteger(steps) || steps < 1) throw new CtvlmError(`profile: steps must be a positive integer, got ${steps}`);
  if (!gpu.canProfile) throw new CtvlmError(`profile: this adapter (${gpu.describe()}) has no timestamp queries`);
  const manifest = manifestPath(o.data);
  const trainSet = await CtDataset.open(manifest, { split: 'train', config: o.config.data, cache: true });
  if (trainSet.size < minTrainingCases(o.config))
    throw new CtvlmError(`profile: ${manifest} has ${trainSet.size} training case(s); a batch of ${o.config.batch} needs at least ${minTrainingCases(o.config)}`);
  checkNegativeReports(o.config, trainSet.size, manifest);
  await mkdir(o.workDir, { recursive: true });
  const tok = await runTokenizer(o.workDir, false, trainSet, o.config.vocabSize);
  const cfg = await settleConfig(o.workDir, o.config, tok, false);
  const model = new RadFinderModel(gpu, cfg.model, cfg.seed).train();
  const opt = createOptimizer(model, cfg);
  const ctx: StepContext = { gpu, model, opt, tok: wordPieceForModel(tok), cfg, posWeight: trainSet.stats().posWeight, reports: trainSet.reports() };
  log(`model: ${(model.parameterCount() / 1e6).toFixed(2)} M parameters; ${describeModel(cfg.model)}; batch ${cfg.batch}`);

  // The runtime counts submits only; the rest is counted here by wrapping the instance's own
  // methods (every launch goes through gpu.dispatch), removed again in `finally`.
  const c = { dispatches: 0, copies: 0, clears: 0, flushMs: 0 };
  const marks: { lossEnd: number; optStart: number } = { lossEnd: -1, optStart: -1 };
  const g = gpu as unknown as Record<string, unknown>;
  const m = model as unknown as Record<string, unknown>;
  const op = opt as unknown as Record<string, unknown>;
  const wrap = (obj: Record<string, unknown>, name: string, f: (orig: (...a: unknown[]) => unknown, args: unknown[]) => unknown) => {
    const orig = (obj[name] as (...a: unknown[]) => unknown).bind(obj);
    obj[name] = (...args: unknown[]) => f(orig, args);
  };
  wrap(g, 'dispatch', (orig, args) => {
    const r = orig(...args);
    // The runtime skips empty grids before the profiler sees them: so does the count.
    const [x, y = 1, z = 1] = (args[1] as { workgroups: number[] }).workgroups;
    if (x && y && z) c.dispatches++;
    return r;
  });
  wrap(g, 'copy', (orig, args) => (args[4] ? c.copies++ : 0, orig(...args)));
  wrap(g, 'clear', (orig, args) => (c.clears++, orig(...args)));
  wrap(g, 'flush', (orig, args) => {
    const t = performance.now();
    try {
      return orig(...args);
    } finally {
      c.flushMs += performance.now() - t;
    }
  });
  wrap(m, 'loss', (orig, args) => {
    const r = orig(...args);
    marks.lossEnd = c.dispatches;
    return r;
  });
  wrap(op, 'step', (orig, args) => {
    marks.optStart = c.dispatches;
    return orig(...args);
  });

  interface Sample {
    wall: number;
    encode: number;
    submit: number;
    submits: number;
    dispatches: number;
    copies: number;
    clears: number;
    bindGroupsCreated: number;
    /** Sum of the step's timestamp records (0 unprofiled). */
    timed: number;
  }
  // One step, encoded after the previous one finished and its cases were read, so that the
  // wall time is this step's alone. With `records`, under timestamp queries, whose records
  // are appended with their phases.
  const oneStep = async (step: number, cases: PreparedCase[], records?: PhasedRecord[]): Promise<Sample> => {
    await gpu.sync();
    // The query set's largest size: a step of up to 2048 dispatches resolves once.
    if (records) gpu.startProfile(4096);
    marks.lossEnd = marks.optStart = -1;
    const c0 = { ...c, submits: gpu.submitCount, bindGroups: gpu.bindGroupStats().created };
    let raw: ProfileRecord[] = [];
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    let fEnd = c0.flushMs;
    try {
      const parts = trainStep(ctx, cases, step);
      t1 = performance.now();
      fEnd = c.flushMs;
      await gpu.sync();
      t2 = performance.now();
      disposeLosses(parts);
    } finally {
      if (records) raw = await gpu.endProfile();
    }
    const n = c.dispatches - c0.dispatches;
    if (marks.lossEnd < 0 || marks.optStart < 0) throw new CtvlmError('profile: the step did not call model.loss() and opt.step()');
    if (records) {
      if (raw.length !== n) throw new CtvlmError(`profile: ${raw.length} timestamp records for ${n} dispatches (something dispatched outside the runtime's count)`);
      const lossEnd = marks.lossEnd - c0.dispatches;
      const optStart = marks.optStart - c0.dispatches;
      raw.forEach((r, i) => records.push({ ...r, phase: i < lossEnd ? 'forward' : i < optStart ? 'backward' : 'optimizer' }));
    }
    return {
      wall: t2 - t0,
      encode: t1 - t0 - (fEnd - c0.flushMs),
      submit: fEnd - c0.flushMs,
      submits: gpu.submitCount - c0.submits,
      dispatches: n,
      copies: c.copies - c0.copies,
      clears: c.clears - c0.clears,
      bindGroupsCreated: gpu.bindGroupStats().created - c0.bindGroups,
      timed: raw.reduce((a, r) => a + r.ms, 0),
    };
  };
  const summary = (xs: Sample[]): StepTiming => {
    const mean = (k: keyof Sample) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
    return {
      wallMs: median(xs.map((x) => x.wall)),
      wallSamples: xs.map((x) => x.wall),
      encodeMs: median(xs.map((x) => x.encode)),
      submitMs: median(xs.map((x) => x.submit)),
      submits: mean('submits'),
      dispatches: mean('dispatches'),
      copies: mean('copies'),
      clears: mean('clears'),
      bindGroupsCreated: mean('bindGroupsCreated'),
    };
  };

  try {
    log(`${warmup} warm-up step(s), then ${steps} round(s) of a step without profiling and one with it ...`);
    for (let i = 0; i < warmup; i++) await oneStep(i, await prepareStep(trainSet, cfg, i));
    // As `ctvlm train` does after its first step: where autotuning is on (GPUs), the matmul
    // classes the step met launch their measured fastest variant (cached per adapter), so the
    // profile shows the step a training run takes.
    // One more unmeasured step then compiles the chosen variants' pipelines (2 s on the H200).
    const tuned = warmup > 0 ? await autotuneSeenKernels(gpu, { log }) : null;
    if (tuned) {
      log(tuned);
      await oneStep(warmup, await prepareStep(trainSet, cfg, warmup));
    }
    // Each round runs one step twice on the same cases (the same shapes, the same dispatches),
    // without and with profiling, which goes first alternating: a drift in the machine's load,
    // the JIT still warming up or garbage collection falls on both alike.
    const plainSamples: Sample[] = [];
    const profSamples: Sample[] = [];
    const records: PhasedRecord[] = [];
    for (let i = warmup; i < warmup + steps; i++) {
      const cases = await prepareStep(trainSet, cfg, i);
      if ((i - warmup) % 2) profSamples.push(await oneStep(i, cases, records));
      plainSamples.push(await oneStep(i, cases));
      if ((i - warmup) % 2 === 0) profSamples.push(await oneStep(i, cases, records));
    }
    const plain = summary(plainSamples);
    const profiled = summary(profSamples);
    return {
      ...groupRecords(records, steps),
      steps,
      warmup,
      batch: cfg.batch,
      parameters: model.parameterCount(),
      model: describeModel(cfg.model),
      device: gpu.describe(),
      plain,
      profiled,
      timedSamples: profSamples.map((x) => x.timed),
      records,
    };
  } finally {
    for (const name of ['dispatch', 'copy', 'clear', 'flush']) delete g[name];
    delete m.loss;
    delete op.step;
    opt.dispose();
    model.dispose();
  }
}
