// Launches of kernels/attention.wgsl (no autograd): fused scaled dot-product attention,
// forward and backward, and the choice of kernel variant and head layout
// (gpu.tuning.attention). Heads whose width is not a multiple of 4 run on zero-padded copies
// (src/launch/pad.ts), which leaves every dot product unchanged.
import source from '../../kernels/attention.wgsl';
import { GpuError, ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Tensor, fmtShape, scope } from '../tensor.ts';
import { padRows, unpadRows } from './pad.ts';
import { checkFinite, checkInputs, sameShape } from './util.ts';

export const attentionKernel = defineKernel({
  file: 'attention.wgsl',
  source,
  // GRP: query heads per key/value head; off = Lk - Lq (CAUSAL: key j <= query i + off);
  // nch: chunks per lane part (DYN).
  params: { H: 'u32', GRP: 'u32', Lq: 'u32', Lk: 'u32', scale: 'f32', off: 'i32', nch: 'u32' },
  // Stats: per query, the largest score m and log l, l = sum_j exp(score_j - m) (vec2f).
  buffers: {
    Q: read('vec4f'),
    K: read('vec4f'),
    V: read('vec4f'),
    mask: read('f32', { optional: true }),
    O: write('vec4f'),
    Stats: write('vec2f'),
    dO: read('vec4f'),
    Oin: read('vec4f'),
    StatsIn: read('vec2f'),
    Delta: write(),
    DeltaIn: read(),
    dQ: write('vec4f'),
    dK: write('vec4f'),
    dV: write('vec4f'),
  },
  entries: {
    attention: ['Q', 'K', 'V', 'mask', 'O', 'Stats'],
    attention_backward_q: ['Q', 'K', 'V', 'mask', 'dO', 'Oin', 'StatsIn', 'Delta', 'dQ'],
    attention_backward_kv: ['Q', 'K', 'V', 'mask', 'dO', 'StatsIn', 'DeltaIn', 'dK', 'dV'],
  },
});

export interface AttentionOptions {
  /** [B, Lk]: 1 where a key may be attended to, 0 where not (padding). No gradient. */
  mask?: Tensor;
  /** Default 1 / sqrt(headDim) (of the true head width D, also when it is padded inside). */
  scale?: number;
  /**
   * Query i attends only keys j <= i + (Lk - Lq): j <= i for self-attention (Lq = Lk). For
   * Lq != Lk the queries are aligned with the last Lq keys (bottom-right, as FlashAttention
   * and a KV cache: the queries are the last Lq positions of the Lk-long sequence); with
   * Lq > Lk the first Lq - Lk queries see no key and get zeros. Combines with `mask`.
   */
  causal?: boolean;
}

/**
 * Largest head width allowed. Checked up to 1024 against the float64 reference; a lane's rows
 * still grow with D above 512 (first use of D = 512 / 1024 compiles ~25 s / ~80 s on lavapipe).
 */
export const ATTENTION_MAX_HEAD_DIM = 1024;

/**
 * How the kernels lay out a head of HD4 = ceil(D / 4) vec4s. A lane keeps its query's rows
 * in registers, fully unrolled: fastest, but the compile time grows faster than D (on
 * lavapipe a full unroll of D = 256 took minutes, D = 128 tens of seconds). So the subgroup
 * kernel spreads a query over P lanes (a power of two, at most G) once a lane would hold
 * more than MAX_FWD (forward) or MAX_BWD (backward kernels, which keep more rows) vec4s;
 * this costs some speed (each key row is loaded for fewer queries). The plain kernel (no
 * cross-lane sums without subgroups) instead loops over chunks of CHUNK vec4s for heads of
 * more than MAX_BWD vec4s (private arrays indexed at run time). Measured on lavapipe (first
 * forward + backward): D = 128 as one unrolled block compiles in 25 s (subgroup) or 80 s
 * (plain), as here in about 11 s and 5 s; chunk loops run 4x slower than a split in the
 * subgroup kernel, and chunks of 4 beat chunks of 8 in the plain one (only a fallback).
 *
 * gpu.tuning.attention.layout overrides it (benchmarks and tests compare layouts): `parts`
 * lanes per query (subgroup kernel; 1, 2, 4 or 8), chunks of at most `chunk` vec4s.
 * `{ parts: 1 }` trades compile time for speed: at D = 90, forward + backward take ~30% less
 * time unsplit, but the backward kernels compile in ~11 s instead of ~4 s on lavapipe (once
 * per machine: Mesa caches compiled shaders on disk).
 */
const MAX_FWD = 32;
const MAX_BWD = 16;
const CHUNK = 4;

interface Layout {
  /** vec4s of the head (D padded to 4 * HD4). */
  HD4: number;
  /** Lanes per query, vec4s per lane (NCH chunks of CH). */
  P: number;
  HL: number;
  CH: number;
  NCH: number;
}

function layout(gpu: Gpu, D: number, G: number, backward: boolean): Layout {
  const choice = gpu.tuning.attention.layout;
  if (choice?.parts !== undefined && ![1, 2, 4, 8].includes(choice.parts))
    throw new ValueError(`attention: gpu.tuning.attention.layout.parts = ${choice.parts} is not 1, 2, 4 or 8`);
  if (choice?.chunk !== undefined && !(Number.isInteger(choice.chunk) && choice.chunk >= 1))
    throw new ValueError(`attention: gpu.tuning.attention.layout.chunk = ${choice.chunk} is not a positive integer`);
  const HD4 = Math.ceil(D / 4);
  const most = backward ? MAX_BWD : MAX_FWD;
  let P = 1;
  if (G) {
    P = choice?.parts ?? 1;
    if (choice?.parts === undefined) while (P < G && Math.ceil(HD4 / P) > most) P *= 2;
    if (P > G) throw new GpuError(`attention: ${P} lanes per query need subgroups of at least ${P}; this device has ${gpu.subgroupMinSize}`);
  }
  const per = Math.ceil(HD4 / P);
  // The subgroup kernel loops over chunks only when told to (4x slower than a split).
  const max = choice?.chunk ?? (G || per <= MAX_BWD ? per : CHUNK);
  const NCH = Math.ceil(per / max);
  const CH = Math.ceil(per / NCH);
  return { HD4, P, HL: NCH * CH, CH, NCH };
}

/** Lanes per subgroup block that share rows (0: the plain kernel), from gpu.tuning.attention.variant. */
function groupOf(gpu: Gpu): number {
  const variant = gpu.tuning.attention.variant;
  // Rows are shared in groups of G lanes: 8 where subgroups have at least 8, else 4.
  const G = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
  if (variant === 'subgroup' && !G) throw new GpuError(`attention: the subgroup kernel needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  return variant === 'plain' ? 0 : G;
}

/** The flags and template constants of a kernel variant. */
function kernelVariant(gpu: Gpu, L: Layout, G: number, mask: boolean, causal: boolean): { flags: Record<string, boolean>; consts: Record<string, number> } {
  const sg = G > 0;
  const g = G || 8;
  const QPG = g / L.P;
  return {
    flags: { MASK: mask, CAUSAL: causal, PARTS: L.P > 1, DYN: L.NCH > 1, PADV: L.P * L.HL > L.HD4, SG: sg, SGEXACT: sg && gpu.subgroupMinSize === G && gpu.subgroupMaxSize === G },
    consts: { HD4: L.HD4, P: L.P, HL: L.HL, CH: L.CH, NCH: L.NCH, G: g, QPG, SPC: Math.ceil(L.CH / QPG), QW: 64 / L.P },
  };
}

/** An attention call, checked (attentionForward) and what its backward needs. */
export interface AttentionSaved {
  B: number;
  H: number;
  Hkv: number;
  Lq: number;
  Lk: number;
  D: number;
  scale: number;
  causal: boolean;
  mask: Tensor | null;
  label: string;
  /** q, k, v and the output, rows padded to a multiple of 4 where D is not (else q, k, v, o). */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  /** [B, H, Lq, 2]: per query the largest score m and log l (kernels/attention.wgsl). */
  stats: Tensor;
}

/**
 * softmax(scale * q k^T + mask) v, fused (the [Lq, Lk] scores are never stored); see
 * ops.attention for the shapes and options. Returns the output [B, H, Lq, D] and, with
 * `save`, what attentionBackward needs; the output owns those tensors (they live as long
 * as it does).
 * @throws ShapeError naming the op and the shapes, ValueError for a bad option (see
 *   ops.attention), GpuError for a tuning the device cannot run.
 */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, save: boolean): { o: Tensor; saved: AttentionSaved | null } {
  const mask = opts.mask ?? null;
  const gpu = checkInputs('attention', mask ? [q, k, v, mask] : [q, k, v]);
  const what = `attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new ShapeError(`${what}: expected [batch, heads, length, headDim] each`);
  const [B, H, Lq, D] = q.shape;
  const [, Hkv, Lk] = k.shape;
  if (!sameShape(k.shape, v.shape) || k.shape[0] !== B || k.shape[3] !== D)
    throw new ShapeError(`${what}: k and v must be [${B}, Hkv, Lk, ${D}] (the same shape)`);
  if (H % Hkv) throw new ShapeError(`${what}: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
  if (D > ATTENTION_MAX_HEAD_DIM) throw new ShapeError(`${what}: head dimension ${D} is above the supported ${ATTENTION_MAX_HEAD_DIM}`);
  if (mask && (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Lk))
    throw new ShapeError(`${what}: mask ${fmtShape(mask.shape)} must be [${B}, ${Lk}]`);
  const causal = opts.causal ?? false;
  if (typeof causal !== 'boolean') throw new ValueError(`attention: causal must be true or false, got ${String(causal)}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  checkFinite('attention', 'scale', scale);
  const GRP = H / Hkv;
  const G = groupOf(gpu);
  const L = layout(gpu, D, G, false);
  const label = `attention [${B}x${H}${GRP > 1 ? `/${Hkv}` : ''}] ${Lq}x${Lk}x${D}${mask ? ' masked' : ''}${causal ? ' causal' : ''}`;

  return scope(() => {
    // Head widths that are not a multiple of 4 run on zero-padded copies.
    const padded = D % 4 !== 0;
    const [qp, kp, vp] = padded ? [padRows(q, 'attention.q'), padRows(k, 'attention.k'), padRows(v, 'attention.v')] : [q, k, v];
    const op = new Tensor(gpu, qp.shape, 'f32', undefined, 'attention');
    const stats = new Tensor(gpu, [B, H, Lq, 2], 'f32', undefined, 'attention.stats');
    gpu.launch(attentionKernel.attention, {
      ...kernelVariant(gpu, L, G, !!mask, causal),
      params: { H, GRP, Lq, Lk, scale, off: Lk - Lq, nch: L.NCH },
      buffers: { Q: qp.buffer, K: kp.buffer, V: vp.buffer, mask: mask?.buffer ?? null, O: op.buffer, Stats: stats.buffer },
      workgroups: [Math.ceil(Lq / (64 / L.P)), B * H, 1],
      label,
    });
    const o = padded ? unpadRows(op, D, 'attention') : op;
    // What the backward needs lives as long as the output (the padded copies only when a
    // backward may come; this scope frees them otherwise).
    o.own(stats);
    if (padded && save) for (const t of [qp, kp, vp, op]) o.own(t);
    const saved = save ? { B, H, Hkv, Lq, Lk, D, scale, causal, mask, label, q: qp, k: kp, v: vp, o: op, stats } : null;
    return { o, saved };
  });
}

/**
 * The gradients [dq, dk, dv] of attention (shapes of q, k, v; dk and dv summed over the query
 * heads of each group) from the forward's saved tensors and the output gradient g
 * [B, H, Lq, D]. A query with no key to attend to gets zero gradients.
 */
export function attentionBackward(s: AttentionSaved, g: Tensor): [Tensor, Tensor, Tensor] {
  const gpu = checkInputs('attention.backward', [s.q, s.k, s.v, s.o, s.stats, g]);
  const { B, H, Hkv, Lq, Lk, D } = s;
  if (g.rank !== 4 || g.shape[0] !== B || g.shape[1] !== H || g.shape[2] !== Lq || g.shape[3] !== D)
    throw new ShapeError(`attention.backward: output gradient ${fmtShape(g.shape)} is not [${B}, ${H}, ${Lq}, ${D}]`);
  const G = groupOf(gpu);
  const L = layout(gpu, D, G, true);
  const kernel = kernelVariant(gpu, L, G, !!s.mask, s.causal);
  const params = { H, GRP: H / Hkv, Lq, Lk, scale: s.scale, off: Lk - Lq, nch: L.NCH };
  const padded = D % 4 !== 0;
  return scope(() => {
    const gp = padded ? padRows(g, 'grad.attention.o') : g;
    const dq = new Tensor(gpu, s.q.shape, 'f32', undefined, 'grad.attention.q');
    const dk = new Tensor(gpu, s.k.shape, 'f32', undefined, 'grad.attention.k');
    const dv = new Tensor(gpu, s.v.shape, 'f32', undefined, 'grad.attention.v');
    const delta = new Tensor(gpu, [B, H, Lq], 'f32', undefined, 'attention.delta');
    const mask = s.mask?.buffer ?? null;
    gpu.launch(attentionKernel.attention_backward_q, {
      ...kernel,
      params,
      buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, Oin: s.o.buffer, StatsIn: s.stats.buffer, Delta: delta.buffer, dQ: dq.buffer },
      workgroups: [Math.ceil(Lq / (64 / L.P)), B * H, 1],
      label: `${s.label}.backward q`,
    });
    gpu.launch(attentionKernel.attention_backward_kv, {
      ...kernel,
      params,
      buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, StatsIn: s.stats.buffer, DeltaIn: delta.buffer, dK: dk.buffer, dV: dv.buffer },
      workgroups: [Math.ceil(Lk / (64 / L.P)), B * Hkv, 1],
      label: `${s.label}.backward kv`,
    });
    if (!padded) return [dq, dk, dv];
    return [unpadRows(dq, D, 'grad.attention.q'), unpadRows(dk, D, 'grad.attention.k'), unpadRows(dv, D, 'grad.attention.v')];
  });
}
