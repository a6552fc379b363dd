// C = A @ B (and A @ Bᵀ) in every matmul variant the device has, against tf.matMul; then
// the linear layers of the model's training step (the `small` preset at 1x and 4x width),
// each as its forward and its two backward products, against a 1024^3 product measured in
// alternating rounds with it.
import { Rng, tensor } from '../../src/ops/creation.ts';
import { matmul, matmulVariantFor } from '../../src/ops/matmul.ts';
import { matmulLoadBytesPerFlop, uniformBByDefault } from '../../src/launch/matmul.ts';
import type { Tuning } from '../../src/gpu/tuning.ts';
import type { Tensor } from '../../src/tensor.ts';
import { PRESETS, type TrainConfig } from '../../src/train/config.ts';
import { NUM_LABELS } from '../../src/data/labels.ts';
import { checkRow, hostRandn, runCase, shapeStr, type Ctx, type PeerPlan } from '../lib/case.ts';
import { fmtRate } from '../lib/format.ts';
import { measureInterleaved } from '../lib/measure.ts';
import { kernelsOf, opRunner } from '../lib/ours.ts';
import type { TfTensor } from '../lib/peer.ts';
import { newRow, rateOf, setOurs, setPeer, sideOf } from '../lib/row.ts';

interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transB: boolean;
  transA?: boolean;
}

/** Max |ours - fp64| over sampled entries of C = op(A) @ op(B) (+ bias). */
function refDiff(a: Float32Array, b: Float32Array, c: Float32Array, s: MatmulShape, samples = 64, bias?: Float32Array): number {
  const rng = new Rng(1234);
  let worst = 0;
  for (let t = 0; t < samples; t++) {
    const i = rng.int(0, s.M - 1);
    const j = rng.int(0, s.N - 1);
    let acc = bias ? bias[j] : 0;
    for (let k = 0; k < s.K; k++) acc += (s.transA ? a[k * s.M + i] : a[i * s.K + k]) * (s.transB ? b[j * s.K + k] : b[k * s.N + j]);
    worst = Math.max(worst, Math.abs(c[i * s.N + j] - acc));
  }
  return worst;
}

/** One linear layer shape of the training step: x [rows, inF] @ W [outF, inF]ᵀ (+ bias). */
export interface LinearShape {
  /** Where in the model: parts and layers of this shape, e.g. 'backbone attn.q/attn.proj'. */
  name: string;
  rows: number;
  inF: number;
  outF: number;
  bias: boolean;
  /** Times this shape runs in one step's forward. */
  count: number;
  /** False where the layer's input is data (the patch histogram): no input-gradient product. */
  inputGrad?: false;
}

/**
 * The linear layers of one training step of `cfg` with every width (vision width, text
 * hidden size, head width and MLP sizes, the heads' sizes) multiplied by `k`, heads and
 * depths kept (so that head widths stay divisible by 6 for 3D RoPE). Rows follow the batch
 * the step uses: cfg.batch crops of cfg.data.grid windows, (1 + tokens per window) rows per
 * window in the backbone, the combiner's two passes, and the texts at their token caps
 * (reports, 2 x labels prompts, maxSnippets snippets): the longest a batch can be.
 * Layers of one shape are merged (count summed, names joined).
 */
export function modelLinears(cfg: TrainConfig, k: number): LinearShape[] {
  const v = cfg.model.vision;
  const t = cfg.model.text;
  const h = cfg.model.head;
  const B = cfg.batch;
  const E = v.backbone.embedDim * k;
  const nWin = cfg.data.grid[0] * cfg.data.grid[1] * cfg.data.grid[2];
  const tg = v.window.map((w, i) => w / v.patch[i]);
  const T = tg[0] * tg[1] * tg[2];
  const out: (LinearShape & { parts: string[]; layers: string[] })[] = [];
  const add = (name: string, rows: number, inF: number, outF: number, bias: boolean, count: number, inputGrad = true) => {
    const [part, layer] = name.split(' ');
    const same = out.find((l) => l.rows === rows && l.inF === inF && l.outF === outF && l.bias === bias && (l.inputGrad ?? true) === inputGrad);
    if (!same) return void out.push({ name, rows, inF, outF, bias, count, parts: [part], layers: [layer], ...(inputGrad ? {} : { inputGrad: false as const }) });
    same.count += count;
    if (!same.parts.includes(part)) same.parts.push(part);
    if (!same.layers.includes(layer)) same.layers.push(layer);
    // text(prompts)+text(snippets) -> text(prompts+snippets)
    same.name = `${same.parts.join('+').replace(/(\w+)\(([^)]*)\)\+\1\(/g, '$1($2+')} ${same.layers.join('/')}`;
  };
  const vit = (part: string, rows: number, depth: number, mlpRatio: number) => {
    const hidden = Math.round(E * mlpRatio);
    add(`${part} attn.q`, rows, E, E, true, depth);
    add(`${part} attn.kv`, rows, E, 2 * E, true, depth);
    add(`${part} attn.proj`, rows, E, E, true, depth);
    add(`${part} mlp.fc1`, rows, E, hidden, true, depth);
    add(`${part} mlp.fc2`, rows, hidden, E, true, depth);
  };
  if (v.patchHistogram) add('backbone patch_embed.hist_proj', B * nWin * T, v.patchHistogram.length, E, true, 1, false);
  vit('backbone', B * nWin * (1 + T), v.backbone.depth, v.backbone.mlpRatio);
  add('combiner patch_proj', B * nWin, 2 * E, E, true, 1);
  vit('combiner', B * (1 + nWin), v.combiner.depth, v.combiner.mlpRatio);
  add('combiner-axis axis_patch_proj', B * nWin * tg[2], E, E, true, 1);
  vit('combiner-axis', B * (1 + nWin * tg[2]), v.combiner.depth, v.combiner.mlpRatio);
  const H = t.hiddenSize * k;
  const hd = t.headDim * k;
  const I = t.intermediateSize * k;
  const texts: [string, number][] = [
    ['text(reports)', B * cfg.reportTokens],
    ['text(prompts)', 2 * NUM_LABELS * cfg.promptTokens],
    ['text(snippets)', cfg.maxSnippets * cfg.snippetTokens],
  ];
  for (const [part, rows] of texts) {
    add(`${part} q_proj`, rows, H, t.numAttentionHeads * hd, false, t.numHiddenLayers);
    add(`${part} k_proj`, rows, H, t.numKeyValueHeads * hd, false, t.numHiddenLayers);
    add(`${part} v_proj`, rows, H, t.numKeyValueHeads * hd, false, t.numHiddenLayers);
    add(`${part} o_proj`, rows, t.numAttentionHeads * hd, H, false, t.numHiddenLayers);
    add(`${part} gate_proj`, rows, H, I, false, t.numHiddenLayers);
    add(`${part} up_proj`, rows, H, I, false, t.numHiddenLayers);
    add(`${part} down_proj`, rows, I, H, false, t.numHiddenLayers);
  }
  const [hid, bott, o] = [h.hidden * k, h.bottleneck * k, h.out * k];
  const head = (part: string, rows: number, inF: number) => {
    add(`${part} layers.0`, rows, inF, hid, true, 1);
    add(`${part} layers.2`, rows, hid, hid, true, 1);
    add(`${part} layers.4`, rows, hid, bott, true, 1);
    add(`${part} last_layer`, rows, bott, o, false, 1);
  };
  // projection_image and _copy on the pooled features, _copy again on each depth bin
  // (grid depth x depth tokens per window); projection_text on reports and prompts (two
  // calls), _copy on snippets.
  head('head(image)', B, 2 * E);
  head('head(disease)', B, 2 * E);
  head('head(depth)', B * cfg.data.grid[2] * tg[2], 2 * E);
  head('head(reports)', B, H);
  head('head(prompts)', 2 * NUM_LABELS, H);
  head('head(snippets)', cfg.maxSnippets, H);
  return out.map(({ parts: _p, layers: _l, ...l }) => l);
}

const linearFlops = (l: LinearShape) => 2 * l.rows * l.inF * l.outF;

/**
 * The shapes to time: the largest by FLOPs per step until they cover 90% of the step's
 * linear-layer FLOPs, at most `max`; the largest alone with --quick.
 */
function pickLinears(all: LinearShape[], quick: boolean, max = 8): LinearShape[] {
  const total = all.reduce((s, l) => s + l.count * linearFlops(l), 0);
  const sorted = [...all].sort((a, b) => b.count * linearFlops(b) - a.count * linearFlops(a));
  const picked: LinearShape[] = [];
  let covered = 0;
  for (const l of sorted) {
    if (picked.length >= (quick ? 1 : max) || covered >= 0.9 * total) break;
    picked.push(l);
    covered += l.count * linearFlops(l);
  }
  return picked;
}

/** The 1024^3 product every model-shape row is measured beside (A @ B, the model's variant). */
interface Reference {
  call: () => Tensor;
  flops: number;
}

/**
 * A linear layer's three products: y = x Wᵀ (+ b), dX = G W, dW = Gᵀ x (what the matmul op's
 * backward rule launches), each measured in alternating rounds with the 1024^3 reference, so
 * that the ratio compares the two under the same load (the machine is shared; a 1024^3 rate
 * taken a minute earlier can be off by 2x).
 */
async function benchLinear(ctx: Ctx, label: string, l: LinearShape, share: number, ref: Reference): Promise<void> {
  const { gpu } = ctx;
  gpu.tuning.matmul.variant = 'auto';
  const variant = matmulVariantFor(gpu);
  const hx = hostRandn(l.rows * l.inF, 11);
  const hw = hostRandn(l.outF * l.inF, 12);
  const hg = hostRandn(l.rows * l.outF, 13);
  const hb = l.bias ? hostRandn(l.outF, 14) : undefined;
  const x = tensor(gpu, hx, [l.rows, l.inF], 'x');
  const w = tensor(gpu, hw, [l.outF, l.inF], 'W');
  const g = tensor(gpu, hg, [l.rows, l.outF], 'G');
  const bias = hb ? tensor(gpu, hb, [l.outF], 'b') : undefined;
  const all: { what: string; shape: string; call: () => Tensor; s: MatmulShape; a: Float32Array; b: Float32Array; bias?: Float32Array }[] = [
    { what: 'fwd', shape: `${l.rows}x${l.inF}@${l.outF}x${l.inF}ᵀ${bias ? '+bias' : ''}`, call: () => matmul(x, w, { transB: true, bias }), s: { M: l.rows, N: l.outF, K: l.inF, transB: true }, a: hx, b: hw, bias: hb },
    { what: 'dX', shape: `${l.rows}x${l.outF}@${l.outF}x${l.inF}`, call: () => matmul(g, w), s: { M: l.rows, N: l.inF, K: l.outF, transB: false }, a: hg, b: hw },
    { what: 'dW', shape: `${l.rows}x${l.outF}ᵀ@${l.rows}x${l.inF}`, call: () => matmul(g, x, { transA: true }), s: { M: l.outF, N: l.inF, K: l.rows, transB: false, transA: true }, a: hg, b: hx },
  ];
  const products = all.filter((p) => p.what !== 'dX' || l.inputGrad !== false);
  for (const p of products) {
    const row = newRow({ section: 'matmul', op: `model ${label} ${l.name} ${p.what}`, shape: p.shape, variant, metric: 'GFLOP/s', work: 2 * p.s.M * p.s.N * p.s.K });
    ctx.progress(`${row.op} ${row.shape} (and 1024^3, interleaved)`);
    let refNote = '';
    // The same product with the other choice of gpu.tuning.matmul.uniformB (B through uniform
    // bindings or from storage; kernels/matmul.wgsl UB), timed in the same rounds where that
    // choice changes the kernel: the row shows what the uniform reads gain or lose here.
    const setting = gpu.tuning.matmul.uniformB;
    const uniformNow = !!(setting ?? uniformBByDefault(gpu));
    const withOther = () => {
      gpu.tuning.matmul.uniformB = !uniformNow;
      try {
        return p.call();
      } finally {
        gpu.tuning.matmul.uniformB = setting;
      }
    };
    const usesUniform = (ks: string[]) => ks.some((k) => k.endsWith(':matmul_sg_ub'));
    let otherNote = '';
    try {
      row.kernels = await kernelsOf(gpu, p.call);
      const compare = usesUniform(row.kernels) !== usesUniform(await kernelsOf(gpu, withOther));
      const runners = [opRunner(gpu, p.call), opRunner(gpu, ref.call), ...(compare ? [opRunner(gpu, withOther)] : [])];
      const [ours, beside, other] = await measureInterleaved(runners, ctx.budget);
      setOurs(row, ours);
      const what = uniformNow ? 'B from storage instead' : 'B through uniform bindings instead';
      if (other && !(other instanceof Error) && !(ours instanceof Error)) {
        const [o, x] = [sideOf(ours), sideOf(other)];
        otherNote = `${what}: ${fmtRate(rateOf(row.work, x.ms))} GFLOP/s (uniform B ${(uniformNow ? x.ms / o.ms : o.ms / x.ms).toFixed(2)}x as fast as storage B)`;
      } else if (other instanceof Error) otherNote = `${what} failed: ${other.message}`;
      if (beside instanceof Error) refNote = `1024^3 failed: ${beside.message}`;
      else {
        const refSide = sideOf(beside);
        const refRate = rateOf(ref.flops, refSide.ms);
        refNote = `1024^3 beside it ${fmtRate(refRate)} GFLOP/s (${refSide.clock})`;
        if (row.ours && refRate && row.ours.clock === refSide.clock) row.ratioTo1024 = row.rate! / refRate;
      }
    } catch (e) {
      row.error = (e as Error).message;
    }
    setPeer(row, { side: null, note: [refNote, otherNote, `${l.count}x per step (${(100 * share).toFixed(0)}% of the step's linear-layer FLOPs)`].filter(Boolean).join('; '), programs: '', out: null });
    await checkRow(row, p.call, null, (out) => refDiff(p.a, p.b, out, p.s, 64, p.bias), 'f64 (64 samples)');
    ctx.rows.push(row);
  }
  for (const t of [x, w, g, bias]) t?.dispose();
  gpu.trim();
}

/** The model-shape rows: the step's largest linear layers at 1x and 4x the small preset's widths. */
export async function benchModelShapes(ctx: Ctx): Promise<void> {
  const { gpu } = ctx;
  gpu.tuning.matmul.variant = 'auto';
  const ra = tensor(gpu, hostRandn(1024 * 1024, 1), [1024, 1024], 'A');
  const rb = tensor(gpu, hostRandn(1024 * 1024, 2), [1024, 1024], 'B');
  const ref: Reference = { call: () => matmul(ra, rb), flops: 2 * 1024 ** 3 };
  const cfg = PRESETS.small();
  try {
    for (const k of [1, 4]) {
      const all = modelLinears(cfg, k);
      const total = all.reduce((s, l) => s + l.count * linearFlops(l), 0);
      const picked = pickLinears(all, ctx.quick);
      const covered = picked.reduce((s, l) => s + l.count * linearFlops(l), 0);
      ctx.progress(`model shapes x${k}: ${picked.length} of ${all.length} linear shapes, ${((100 * covered) / total).toFixed(0)}% of the step's ${((3 * total) / 1e9).toFixed(2)} linear GFLOP (forward + backward)`);
      for (const l of picked) await benchLinear(ctx, `x${k}`, l, (l.count * linearFlops(l)) / total, ref);
    }
  } finally {
    ra.dispose();
    rb.dispose();
    gpu.trim();
  }
}

export async function benchMatmul(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  // BENCH_MATMUL=model: only the model-shape rows (each still measured beside 1024^3), for
  // tuning the kernels on the model's shapes without the square and peer rows.
  if (process.env.BENCH_MATMUL === 'model') return benchModelShapes(ctx);
  const square = (n: number) => ({ M: n, N: n, K: n, transB: false });
  // BENCH_MATMUL_SQUARES=1024,4096: these square products (every variant at each) and the
  // transposed 1024^3, for a GPU, whose peak takes larger products than the default sizes.
  // (checked by parseOptions).
  const squares = process.env.BENCH_MATMUL_SQUARES?.split(',').map(Number);
  const shapes: MatmulShape[] = squares
    ? [...squares.map(square), { M: 1024, N: 1024, K: 1024, transB: true }]
    : ctx.quick
      ? [square(256), square(1024), { M: 1024, N: 1024, K: 1024, transB: true }]
      : [...[256, 512, 1024, 2048].map(square), { M: 4096, N: 1024, K: 256, transB: false }, { M: 1024, N: 1024, K: 1024, transB: true }];
  // The GPU variants (workgroup-memory tiles; f16 operands where the adapter has shader-f16)
  // are measured too: on lavapipe they are slower (barriers, one SIMD lane per invocation),
  // on a GPU they are the point.
  const allVariants: Tuning['matmul']['variant'][] = [
    ...(gpu.subgroupMinSize >= 8 ? (['subgroup'] as const) : []),
    'tiled',
    'tiled-wg',
    ...(gpu.features.has('shader-f16') ? (['f16'] as const) : []),
  ];
  for (const s of shapes) {
    const aShape = [s.M, s.K];
    const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
    const ha = hostRandn(s.M * s.K, 1);
    const hb = hostRandn(s.K * s.N, 2);
    const a = tensor(gpu, ha, aShape, 'A');
    const b = tensor(gpu, hb, bShape, 'B');
    const shape = `${shapeStr(aShape)}@${shapeStr(bShape)}${s.transB ? 'ᵀ' : ''}`;
    const op = s.transB ? 'matmul transB' : 'matmul';

    // The peer gets the same data; it is measured alongside the first (default) variant and
    // that measurement is reused for the others.
    let ta: TfTensor | null = null;
    let tb: TfTensor | null = null;
    let peerPlan: PeerPlan;
    try {
      if (peer) {
        ta = peer.tf.tensor(ha, aShape, 'float32');
        tb = peer.tf.tensor(hb, bShape, 'float32');
      }
      const [pa, pb] = [ta, tb];
      peerPlan = { op: pa && pb ? () => peer!.tf.matMul(pa, pb, false, s.transB) : () => { throw new Error('no peer inputs'); } };
    } catch (e) {
      peerPlan = { reuse: { side: null, note: `tfjs failed: ${(e as Error).message}`, programs: '', out: null } };
    }

    // --quick: the transposed case with the default variant only, the GPU variants at 1024^3 only.
    const gpuOnly = (v: string) => v === 'tiled-wg' || v === 'f16';
    const variants = ctx.quick && s.transB ? allVariants.slice(0, 1) : allVariants.filter((v) => !(ctx.quick && !squares && gpuOnly(v) && s.M !== 1024));
    for (const v of variants) {
      gpu.tuning.matmul.variant = v;
      const call = () => matmul(a, b, { transB: s.transB });
      const { row, peerRun } = await runCase(ctx, {
        section: 'matmul',
        op,
        shape,
        variant: v,
        metric: 'GFLOP/s',
        work: 2 * s.M * s.N * s.K,
        ours: () => opRunner(gpu, call),
        kernels: () => kernelsOf(gpu, call),
        peer: peerPlan,
      });
      await checkRow(row, call, peerRun.out, (out) => refDiff(ha, hb, out, s), 'f64 (64 samples)');
      row.loadBytesPerFlop = matmulLoadBytesPerFlop(gpu, matmulVariantFor(gpu));
      ctx.rows.push(row);
      peerPlan = { reuse: peerRun };
    }
    ta?.dispose();
    tb?.dispose();
    gpu.tuning.matmul.variant = 'auto';
    a.dispose();
    b.dispose();
    gpu.trim();
  }
  await benchModelShapes(ctx);
}
