// One full training step of RadFinder (forward, backward, gradient-norm clipping, AdamW: the
// device part of src/train/step.ts trainStep, optimizeBatch) against the same step in PyTorch
// (bench/peers/radfinder_step.py, float32, on the CPU, or on the CUDA GPU when ours runs on a GPU
// adapter and torch has one; STEP_PEER_DEVICE=cpu|cuda chooses) on the same machine, for the `small`
// preset and at 2x and 4x its widths (quick runs: 1x and 2x). Both sides start from the
// same weights (ours, written to a safetensors file the peer loads by name) and run the same
// batch (written beside them); the losses of their first step must agree before the timings
// mean anything, and the check is printed (bench/peers/radfinder-step.ts). Samples: wall time
// of one step each (ours ends with a full device sync), taken in rounds that alternate between
// the two sides (the machine is shared), medians after warm-up.
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { preset, type TrainConfig } from '../../src/train/config.ts';
import { median } from '../lib/measure.ts';
import { fmtMs, fmtRate, fmtRatio, table } from '../lib/format.ts';
import { newRow, type Side } from '../lib/row.ts';
import type { Ctx } from '../lib/case.ts';
import { probeTorch } from '../peers/python.ts';
import { autotuneSeenKernels } from '../../src/launch/layout-tuners.ts';
import { hostBatch, StepSides, type HostBatch } from '../peers/radfinder-step.ts';

/** A training preset with every width (vision E, projection heads, text hidden / head /
 * MLP widths) times k; depths, head counts, batch and input shapes kept. The text vocabulary
 * is the preset's vocabSize (a run takes it from its trained tokenizer), and SigLIP's b is
 * what a new run's 'auto' sets for the batch. RadFinder's objective, which the PyTorch peer
 * mirrors: without the small preset's report-side prompt loss (README "Learning"). */
export function scaledConfig(k: number, name = 'small'): TrainConfig {
  const cfg = preset(name);
  const m = cfg.model;
  const v = m.vision;
  return {
    ...cfg,
    model: {
      ...m,
      vision: { ...v, backbone: { ...v.backbone, embedDim: v.backbone.embedDim * k } },
      head: { hidden: m.head.hidden * k, bottleneck: m.head.bottleneck * k, out: m.head.out * k },
      text: { ...m.text, hiddenSize: m.text.hiddenSize * k, headDim: m.text.headDim * k, intermediateSize: m.text.intermediateSize * k, vocabSize: cfg.vocabSize },
      siglipInit: { ...m.siglipInit, b: -Math.log(Math.max(1, cfg.batch - 1)) },
      reportPromptWeight: 0,
    },
  };
}

/**
 * Approximate FLOPs of one step: 3 x the forward's matmul FLOPs (the backward of a matmul is
 * two of the same size), attention's QK^T and AV counted in full (no causal halving); the
 * elementwise work, norms and losses are left out. For the rate column only.
 */
export function stepFlops(cfg: TrainConfig, h: HostBatch): number {
  const m = cfg.model;
  const v = m.vision;
  const E = v.backbone.embedDim;
  const B = cfg.batch;
  const [gx, gy, gz] = cfg.data.grid;
  const nWin = gx * gy * gz;
  const t = v.window.map((w, i) => w / v.patch[i]);
  const T = t[0] * t[1] * t[2];
  const block = (seqs: number, n: number, ratio: number) => seqs * (2 * n * E * E * (4 + 2 * Math.round(ratio * E) / E) + 4 * n * n * E);
  let f = 2 * B * nWin * T * v.patch[0] * v.patch[1] * v.patch[2] * E;
  f += v.backbone.depth * block(B * nWin, T + 1, v.backbone.mlpRatio);
  f += 2 * B * nWin * 2 * E * E + v.combiner.depth * block(B, nWin + 1, v.combiner.mlpRatio);
  f += 2 * B * nWin * t[2] * E * E + v.combiner.depth * block(B, nWin * t[2] + 1, v.combiner.mlpRatio);
  const { hidden: hh, bottleneck: bn, out } = m.head;
  const head = (rows: number, inp: number) => 2 * rows * (inp * hh + hh * hh + hh * bn + bn * out);
  const D2 = gz * t[2];
  const tx = m.text;
  const S = h.lengths.snippets.length;
  f += head(2 * B, 2 * E) + head(B * D2, 2 * E) + head(B + h.lengths.prompts.length + S, tx.hiddenSize);
  for (const k of ['report', 'prompts', 'snippets'] as const) {
    const [N, L] = h.tensors[`${k}.ids`].shape;
    const perTok = 2 * tx.hiddenSize * (tx.numAttentionHeads + 2 * tx.numKeyValueHeads) * tx.headDim + 2 * tx.numAttentionHeads * tx.headDim * tx.hiddenSize + 6 * tx.hiddenSize * tx.intermediateSize;
    f += tx.numHiddenLayers * N * (L * perTok + 4 * tx.numAttentionHeads * L * L * tx.headDim);
  }
  return 3 * f;
}

const clamp = (x: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, x));

function wallSide(samples: number[]): Side {
  const ms = median(samples);
  return { clock: 'wall', ms, tsMs: null, wallMs: ms, tsSamples: [], wallSamples: samples.map((x) => +x.toFixed(2)), wallIters: 1 };
}

interface WidthResult {
  k: number;
  width: number;
  params: number;
  peerParams: number | null;
  flops: number;
  ours: number[];
  /** The peer's samples per thread count (the cores available first, then 1). */
  peer: { threads: number; ms: number[] }[];
  check: string;
  agree: boolean | null;
  /** Our process's CPU time while the peer ran, as a share of the peer's wall time. */
  idleCpu: number | null;
  load: string;
  /** Ours / PyTorch's better thread count in each timed round (perRoundRatios). */
  roundRatios: number[];
}

/**
 * Ours / PyTorch's better thread count in each round (medians within the round): the spread
 * shows how far the machine drifted while the width ran, which the overall medians hide.
 */
export function perRoundRatios(ours: readonly number[], peers: readonly (readonly number[])[], rounds: number): number[] {
  const part = (xs: readonly number[], i: number) => xs.slice((i * xs.length) / rounds, ((i + 1) * xs.length) / rounds);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const best = Math.min(...peers.filter((p) => p.length).map((p) => median(part(p, i))));
    if (Number.isFinite(best) && ours.length) out.push(median(part(ours, i)) / best);
  }
  return out;
}

/** PyTorch's thread counts: the cores available, and 1 as well on a machine with more. On a
 * shared machine whose load exceeds its cores, OpenMP's spinning barriers can make the
 * multi-threaded run many times slower than the single-threaded one (measured here: 10x on 2
 * cores at load 15), so both are timed and shown. */
const peerThreads = (cores: number) => (cores > 1 ? [cores, 1] : [1]);

/** One width: both sides built from the same weights and batch, checked, then timed in rounds. */
async function benchWidth(ctx: Ctx, k: number, torch: boolean, device: 'cpu' | 'cuda'): Promise<WidthResult> {
  const cfg = scaledConfig(k);
  const h = hostBatch(cfg, 0x57e9);
  const threads = device === 'cuda' ? [availableParallelism()] : peerThreads(availableParallelism());
  const load = loadavg()[0].toFixed(1);
  // STEP_PEER_DIR keeps the peer's files (for running radfinder_step.py by hand).
  const keepDir = process.env.STEP_PEER_DIR ? join(process.env.STEP_PEER_DIR, `x${k}`) : undefined;
  const sides = await StepSides.open(ctx.gpu, cfg, h, { peer: torch, threads: threads[0], keepDir, device });
  const r: WidthResult = {
    k,
    width: cfg.model.vision.backbone.embedDim,
    params: sides.params,
    peerParams: sides.peerParams,
    flops: stepFlops(cfg, h),
    ours: [],
    peer: sides.peer ? threads.map((n) => ({ threads: n, ms: [] })) : [],
    check: '',
    agree: null,
    idleCpu: null,
    load,
    roundRatios: [],
  };
  try {
    ctx.progress(`step x${k}: E ${r.width}, ${r.params} parameters; ${h.shapes}`);
    // Steps 1 and 2 on each side (our first also compiles the pipelines).
    const c = await sides.check();
    if ('agree' in c) {
      r.agree = c.agree;
      r.check = c.text;
      ctx.progress(`  check ${r.check}`);
    } else r.check = `loss ${c.ours.loss1.toPrecision(8)} (no peer)`;
    // As `ctvlm train` after its first step: where autotuning is on (GPUs), the matmul classes
    // the step met launch their measured fastest variant, so the step timed is a training run's.
    const tuned = await autotuneSeenKernels(ctx.gpu, { log: ctx.progress });
    if (tuned) ctx.progress(`  ${tuned}`);
    // One more warm-up step on each side and thread count; the slowest sizes the rounds.
    const warm = [await sides.ourStep()];
    for (const p of r.peer) warm.push(...(await sides.peerSteps(p.threads, 1)));
    const rounds = ctx.quick ? 2 : 3;
    const perRound = clamp(Math.round((ctx.quick ? 6000 : 30000) / rounds / Math.max(...warm)), 1, 8);
    let peerWall = 0;
    let idle = 0;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < perRound; i++) r.ours.push(await sides.ourStep());
      for (const p of r.peer) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        p.ms.push(...(await sides.peerSteps(p.threads, perRound)));
        peerWall += performance.now() - t0;
        const used = process.cpuUsage(c0);
        idle += (used.user + used.system) / 1000;
      }
    }
    if (r.peer.length) r.idleCpu = idle / peerWall;
    r.roundRatios = perRoundRatios(r.ours, r.peer.map((p) => p.ms), rounds);
    ctx.progress(`  ours ${fmtMs(median(r.ours))} ms/step (${r.ours.length} samples)${r.peer.map((p) => `, PyTorch ${p.threads} thread(s) ${fmtMs(median(p.ms))} ms/step (${p.ms.length})`).join('')}`);
  } finally {
    sides.close();
  }
  return r;
}

/** Where the peer runs: STEP_PEER_DEVICE (cpu or cuda, checked by parseOptions) if set; else on
 * the CUDA GPU when ours runs on a GPU adapter and torch has one (the same machine's
 * accelerator on both sides), else on the CPU. */
function peerDevice(ctx: Ctx, cuda: string | null): 'cpu' | 'cuda' {
  const env = process.env.STEP_PEER_DEVICE as 'cpu' | 'cuda' | undefined;
  if (env) return env;
  return !ctx.gpu.isLavapipe && cuda ? 'cuda' : 'cpu';
}

/** The `step` section: our training step against PyTorch's at 1x, 2x, 4x the `small` widths. */
export async function benchStep(ctx: Ctx): Promise<void> {
  const probe = probeTorch();
  const device = peerDevice(ctx, probe.ok ? probe.cuda : null);
  const threads = device === 'cuda' ? [availableParallelism()] : peerThreads(availableParallelism());
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(
    probe.ok
      ? `step: peer PyTorch ${probe.version} (${device === 'cuda' ? `CUDA on ${probe.cuda ?? 'no GPU torch can see'}, float32 with TF32 off` : 'CPU, float32'}), torch.set_num_threads(${threads[0]}) = the cores available${threads.length > 1 ? ', and 1 thread as well' : ''}; ` +
          `its 512^3 matmul at 1 thread ${probe.mmGflops.toFixed(1)} GFLOP/s`
      : `step: no PyTorch peer: ${probe.reason}`,
  );
  if (probe.ok && probe.mmGflops < 15)
    console.log(
      'step: WARNING: PyTorch multiplies matrices slowly here, as on the reference BLAS: the peer is not at its best. ' +
        'On Debian, `npm run setup` as root installs libopenblas0-openmp (or: apt-get install libopenblas0-openmp).',
    );
  const widths = ctx.quick ? [1, 2] : [1, 2, 4];
  const results: WidthResult[] = [];
  for (const k of widths) {
    const row = newRow({ section: 'step', op: 'train step (fwd+bwd+clip+AdamW)', shape: `small x${k} widths`, variant: 'B=8', metric: 'GFLOP/s', work: 0 });
    try {
      const r = await benchWidth(ctx, k, probe.ok, device);
      results.push(r);
      row.shape = `small x${k} (E ${r.width}, ${(r.params / 1e6).toFixed(2)} M params)`;
      row.work = r.flops;
      row.ours = wallSide(r.ours);
      row.rate = row.rateWall = r.flops / (row.ours.ms * 1e-3) / 1e9;
      const main = r.peer[0];
      if (main?.ms.length) {
        row.peer = wallSide(main.ms);
        row.ratioWall = row.ours.wallMs / row.peer.wallMs;
      } else row.peerNote = probe.ok ? 'PyTorch failed' : probe.reason;
      const others = r.peer.slice(1).map((p) => `; PyTorch at ${p.threads} thread(s): ${fmtMs(median(p.ms))} ms/step, ours/PyTorch ${fmtRatio(row.ours!.ms / median(p.ms))}`);
      const spread = r.roundRatios.length ? `; ours/best per round ${r.roundRatios.map((x) => fmtRatio(x)).join(' ')}` : '';
      row.check = `PyTorch ${main ? `${main.threads} threads ` : ''}${r.check}${others.join('')}${spread}`;
    } catch (e) {
      row.error = (e as Error).message;
      ctx.progress(`  step x${k} failed: ${row.error}`);
    }
    ctx.rows.push(row);
  }
  const th = threads.map((n) => `${n} thr`);
  const body = results.map((r) => {
    const o = median(r.ours);
    const ps = threads.map((n) => {
      const p = r.peer.find((x) => x.threads === n);
      return p?.ms.length ? median(p.ms) : null;
    });
    const best = ps.filter((x): x is number => x !== null);
    const rate = (ms: number | null) => fmtRate(ms ? r.flops / (ms * 1e-3) / 1e9 : null);
    return [
      `x${r.k}`,
      String(r.width),
      `${r.params}${r.peerParams === null ? '' : r.peerParams === r.params ? ' (both)' : ` / ${r.peerParams}`}`,
      fmtMs(o),
      ...ps.flatMap((p) => [fmtMs(p), fmtRatio(p ? o / p : null)]),
      r.roundRatios.map((x) => fmtRatio(x)).join(' ') || '-',
      rate(o),
      rate(best.length ? Math.min(...best) : null),
      `${r.ours.length}/${r.peer.map((p) => p.ms.length).join('/') || 0}`,
      r.load,
      r.agree === null ? '-' : r.agree ? 'agree' : 'DISAGREE',
    ];
  });
  const headers = ['width', 'E', 'params', 'ours ms/step', ...th.flatMap((t) => [`PyTorch ${t}`, `ours/PyTorch ${t}`]), 'ours/best per round', 'ours GFLOP/s', 'PyTorch best GFLOP/s', 'samples', 'load', 'loss check'];
  console.log('');
  console.log(`step: one training step of the small preset at ${widths.map((k) => `${k}x`).join('/')} widths (vision E, heads, text; depths and head counts kept); ${hostBatch(scaledConfig(1), 0x57e9).shapes}`);
  console.log(table(headers, body, new Set(Array.from({ length: headers.length - 4 }, (_, i) => i + 1))));
  console.log('step: wall ms per step (median after warm-up; rounds alternate ours / PyTorch per thread count); ours ends with a full device sync, the batch is on each side already.');
  console.log("step: ours/best per round = our median over PyTorch's better thread count's, round by round: their spread is the machine's drift during the width.");
  console.log('step: GFLOP/s = ~3x the forward\'s matmul FLOPs per step / time; load = 1-minute load average when the width started.');
  console.log(`step: our process used ${results.filter((r) => r.idleCpu !== null).map((r) => `${((r.idleCpu ?? 0) * 100).toFixed(1)}%`).join(', ') || '-'} of a core while PyTorch ran; load average ${load0} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end on ${availableParallelism()} cores.`);
  for (const r of results) console.log(`step x${r.k}: ${r.check}`);
}
