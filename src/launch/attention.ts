// Launches of kernels/attention.wgsl and kernels/attention_tiled.wgsl (no autograd): fused
// scaled dot-product attention, forward and backward, and the choice of kernel variant and
// head layout (gpu.tuning.attention). Heads whose width is not a multiple of 4 run on
// zero-padded copies (src/launch/pad.ts), which leaves every dot product unchanged.
import source from '../../kernels/attention.wgsl';
import { attentionLayoutProblem, laneGroup } from '../gpu/tuning.ts';
import { kernelVariant, layout, rowSpread } from './attention-lanes.ts';
import tiledSource from '../../kernels/attention_tiled.wgsl';
import { GpuError, ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Tensor, fmtShape, scope } from '../tensor.ts';
import { padRows, unpadRows } from './pad.ts';
import { checkFinite, checkInputs, sameShape } from './util.ts';

const strideParams = { qsb: 'u32', qsh: 'u32', qsl: 'u32', ksb: 'u32', ksh: 'u32', ksl: 'u32' } as const;

// The buffers of both attention kernels (the subgroup/plain file and the tiled one).
// Stats: per query, the largest score m and log l, l = sum_j exp(score_j - m) (vec2f).
const attentionBuffers = {
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
};

export const attentionKernel = defineKernel({
  file: 'attention.wgsl',
  source,
  // GRP: query heads per key/value head; off = Lk - Lq (CAUSAL: key j <= query i + off);
  // nch: chunks per lane part (DYN).
  // qsb, qsh, qsl (ksb, ksh, ksl): rows between batches, heads and positions of q (k, v), which
  // place the rows as [B, H, L, D] or [B, L, H, D] (AttentionOptions.layout).
  params: { H: 'u32', GRP: 'u32', Lq: 'u32', Lk: 'u32', scale: 'f32', off: 'i32', nch: 'u32', rs: 'u32', ...strideParams },
  buffers: attentionBuffers,
  entries: {
    attention: ['Q', 'K', 'V', 'mask', 'O', 'Stats'],
    attention_backward_q: ['Q', 'K', 'V', 'mask', 'dO', 'Oin', 'StatsIn', 'Delta', 'dQ'],
    attention_backward_kv: ['Q', 'K', 'V', 'mask', 'dO', 'StatsIn', 'DeltaIn', 'dK', 'dV'],
  },
});

/** The same interface without the subgroup kernels' chunk count (see kernels/attention_tiled.wgsl). */
export const attentionTiledKernel = defineKernel({
  file: 'attention_tiled.wgsl',
  source: tiledSource,
  params: { H: 'u32', GRP: 'u32', Lq: 'u32', Lk: 'u32', scale: 'f32', off: 'i32', nt: 'u32', ...strideParams },
  buffers: attentionBuffers,
  entries: {
    attention_tiled: ['Q', 'K', 'V', 'mask', 'O', 'Stats'],
    attention_tiled_backward_q: ['Q', 'K', 'V', 'mask', 'dO', 'Oin', 'StatsIn', 'Delta', 'dQ'],
    attention_tiled_backward_kv: ['Q', 'K', 'V', 'mask', 'dO', 'StatsIn', 'DeltaIn', 'dK', 'dV'],
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
  /**
   * Where the heads lie: 'bhld' (default) q [B, H, Lq, D], k and v [B, Hkv, Lk, D]; 'blhd'
   * q [B, Lq, H, D], k and v [B, Lk, Hkv, D] (a projection's output reshaped, no permuted
   * copies). The output and the gradients come in the inputs' layout.
   */
  layout?: AttentionLayout;
}

export type AttentionLayout = 'bhld' | 'blhd';

/** The kernels' row strides (in rows of D) of q, o and k, v for a layout. */
function strides(layout: AttentionLayout, H: number, Hkv: number, Lq: number, Lk: number) {
  return layout === 'bhld'
    ? { qsb: H * Lq, qsh: Lq, qsl: 1, ksb: Hkv * Lk, ksh: Lk, ksl: 1 }
    : { qsb: Lq * H, qsh: 1, qsl: H, ksb: Lk * Hkv, ksh: 1, ksl: Hkv };
}

/**
 * Largest head width allowed. Checked up to 1024 against the float64 reference; a lane's rows
 * still grow with D above 512 (first use of D = 512 / 1024 compiles ~25 s / ~80 s on lavapipe).
 */
export const ATTENTION_MAX_HEAD_DIM = 1024;

/** 'tiled-f16': the tiled kernels over keys and values rounded to f16 (shader-f16; chosen by
 * name only, never by 'auto' or autotuning, since it is not exact: see attention_tiled.wgsl). */
export type AttentionVariant = 'subgroup' | 'plain' | 'tiled' | 'tiled-f16';

/** The variants that run the tiled kernels (kernels/attention_tiled.wgsl). */
const isTiled = (v: AttentionVariant) => v === 'tiled' || v === 'tiled-f16';

/** What a variant choice may depend on: the lengths and head width (autotune's shape class). */
export interface AttentionShape {
  Lq: number;
  Lk: number;
  D: number;
}

/**
 * The variants that compute attention correctly on this device, for autotuning (time these,
 * then set gpu.tuning.attention.variant): every variant accepts every shape the op accepts
 * (any lengths, head widths up to ATTENTION_MAX_HEAD_DIM, grouped-query, mask, causal), so
 * the list depends on the device only: the subgroup kernel needs subgroups of 4 lanes or
 * more. The shape is taken so that a variant limited to some shapes can say so here.
 */
export function attentionVariants(gpu: Gpu, _shape?: AttentionShape): AttentionVariant[] {
  return sharingGroup(gpu) ? ['subgroup', 'plain', 'tiled'] : ['plain', 'tiled'];
}

/**
 * What 'auto' means on an adapter. On CPU adapters (lavapipe, SwiftShader: `software`) the
 * choice measured best there: the subgroup kernel where subgroups of 4+ lanes exist, else
 * the plain one. On lavapipe the tiled kernel took 4-7x the subgroup kernel's time
 * (8x512x32 and 8x256x90, forward and backward; about the plain kernel's time or less): a
 * CPU pays for each barrier and gathers workgroup memory lane by lane. On other adapters, GPUs, the tiled kernel (the scheme of
 * FlashAttention-2): each key and value tile is read from memory once per workgroup of 8
 * to 64 queries, with coalesced loads, and shared through workgroup memory, where the
 * subgroup kernel reads each key row once per subgroup and the plain one once per lane;
 * and a query's q and accumulator are split over invocations at 8 vec4s each, where the
 * others keep up to 32 vec4s of each per lane (D = 128: 256 floats, past the 255 registers
 * an NVIDIA GPU gives an invocation, or arrays indexed at run time, which live in memory).
 * The textbook choice; on an H200 the tiled forward ran 3x faster than the plain one at 8 heads
 * x 512 x 32 (README "On an NVIDIA H200"); autotuning may replace it.
 */
export function autoAttentionVariant(software: boolean, subgroupMinSize: number): AttentionVariant {
  if (!software) return 'tiled';
  return subgroupMinSize >= 4 ? 'subgroup' : 'plain';
}

/**
 * The variant the launches run: gpu.tuning.attention.variant, 'auto' resolved by
 * autoAttentionVariant.
 * @throws GpuError for 'subgroup' on a device without subgroups of 4+ lanes; ValueError for
 *   an unknown variant name or an invalid gpu.tuning.attention.layout (refused whichever
 *   variant runs: on a GPU 'auto' is tiled, which has no use for a valid layout either).
 */
export function attentionVariantFor(gpu: Gpu): AttentionVariant {
  const problem = attentionLayoutProblem(gpu.tuning.attention.layout);
  if (problem) throw new ValueError(`attention: ${problem}`);
  const variant = gpu.tuning.attention.variant;
  if (variant === 'auto') return autoAttentionVariant(gpu.isLavapipe, gpu.subgroupMinSize);
  if (variant !== 'subgroup' && variant !== 'plain' && variant !== 'tiled' && variant !== 'tiled-f16')
    throw new ValueError(`attention: gpu.tuning.attention.variant = '${String(variant)}' is not auto, subgroup, plain, tiled or tiled-f16`);
  if (variant === 'tiled-f16' && !gpu.features.has('shader-f16'))
    throw new GpuError('attention: the tiled-f16 kernel needs the shader-f16 feature, which this device lacks');
  if (variant === 'subgroup' && !sharingGroup(gpu))
    throw new GpuError(`attention: the subgroup kernel needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  return variant;
}

/** Rows are shared in groups of G lanes: 8 where subgroups have at least 8, else 4 (0: none). */
function sharingGroup(gpu: Gpu): number {
  return laneGroup(gpu.subgroupMinSize);
}

/** Lanes per subgroup block that share rows (0: the plain kernel). */
function groupOf(gpu: Gpu, variant: AttentionVariant): number {
  return variant === 'subgroup' ? sharingGroup(gpu) : 0;
}

/**
 * The tiled kernels' layout (kernels/attention_tiled.wgsl): R invocations per row, each with
 * HL = NC * CL vec4 slices of it; NR rows per workgroup (T = NR * R invocations); tiles of NT
 * rows and DC = CL * R vec4s per chunk in workgroup memory.
 */
interface TiledLayout {
  HD4: number;
  R: number;
  HL: number;
  CL: number;
  NC: number;
  DC: number;
  NR: number;
  T: number;
  NT: number;
}

/**
 * Most vec4 slices of a row per invocation. An invocation keeps 2 such arrays in the forward
 * (q and the accumulator: 64 floats), 3 in the query backward, 4 in the key/value backward
 * (128 floats): within a GPU's registers. One bound for all three kernels: the head's split
 * R fixes the order in which a score's terms are summed, so that the backward recomputes
 * the forward's scores bit for bit.
 */
const TILED_SLICES = 8;
/** Workgroup memory the automatic tiles may take (more lowers occupancy on GPUs). */
const TILED_BYTES = 32768;

/** Workgroup memory of the backward kernels (the forward's is smaller): Ta, Tb, Sa, Sb, Rw. */
const tiledBytes = (T: number, NT: number, DC: number) => 2 * NT * DC * 16 + 2 * NT * T * 4 + NT * 16;

function tiledLayout(gpu: Gpu, D: number): TiledLayout {
  const choice = gpu.tuning.attention.tile;
  for (const k of ['rows', 'keys', 'chunks'] as const) {
    const v = choice?.[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new ValueError(`attention: gpu.tuning.attention.tile.${k} = ${v} is not a positive integer`);
  }
  const HD4 = Math.ceil(D / 4);
  let R = 1;
  while (Math.ceil(HD4 / R) > TILED_SLICES) R *= 2;
  const per = Math.ceil(HD4 / R);
  // At least 64 invocations, and at least 8 rows to share each tile.
  const NR = choice?.rows ?? Math.max(8, 64 / R);
  const T = NR * R;
  const most = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  if (T > most) throw new ValueError(`attention: gpu.tuning.attention.tile.rows = ${NR} needs ${T} invocations per workgroup (head width ${D}: ${R} per row); this device allows ${most}`);
  const limit = gpu.limits.maxComputeWorkgroupStorageSize;
  // Chunk counts that split the slices evenly where possible, fewest first.
  const chunkings: number[] = [];
  for (let n = 1; n <= per; n++) {
    const nc = Math.ceil(per / Math.ceil(per / n));
    if (!chunkings.includes(nc)) chunkings.push(nc);
  }
  const NCs = choice?.chunks !== undefined ? [choice.chunks] : chunkings;
  // Whole heads first (fewest barriers), then chunks, 4-row tiles last.
  const order: [number, number][] = choice?.keys !== undefined
    ? NCs.map((nc) => [choice.keys!, nc])
    : [...NCs.flatMap((nc) => [[16, nc], [8, nc]] as [number, number][]), ...NCs.map((nc) => [4, nc] as [number, number])];
  const forced = choice?.keys !== undefined || choice?.chunks !== undefined;
  for (const [NT, NC] of order) {
    const CL = Math.ceil(per / NC);
    const DC = CL * R;
    if (tiledBytes(T, NT, DC) <= (forced ? limit : Math.min(limit, TILED_BYTES))) return { HD4, R, HL: NC * CL, CL, NC, DC, NR, T, NT };
  }
  const [NT, NC] = order[order.length - 1];
  throw new ValueError(
    `attention: the tiled kernel's tile (head width ${D}, ${NR} rows, ${NT}-row tiles, ${NC} chunks) needs ${tiledBytes(T, NT, Math.ceil(per / NC) * R)} bytes of workgroup memory; this device allows ${limit} (see gpu.tuning.attention.tile)`,
  );
}

/**
 * The flags and template constants of the tiled kernels. DYNT (loops over a tile's rows with a
 * uniform trip count) on CPU drivers: lavapipe's LLVM unrolls the constant-count loops, which
 * made the forward compile 13x slower (43 s against 3.3 s at D = 20 with 16-row tiles, on 2
 * cores under a load of 15).
 */
function tiledVariant(gpu: Gpu, L: TiledLayout, mask: boolean, causal: boolean, f16?: 'tiles' | 'rows'): { flags: Record<string, boolean>; consts: Record<string, number> } {
  return {
    flags: { MASK: mask, CAUSAL: causal, PADV: L.R * L.HL > L.HD4, DYNT: gpu.tuning.attention.tile?.dynamicLoops ?? gpu.isLavapipe, F16T: f16 === 'tiles', F16R: f16 === 'rows' },
    consts: { HD4: L.HD4, R: L.R, HL: L.HL, CL: L.CL, NC: L.NC, DC: L.DC, NR: L.NR, T: L.T, NT: L.NT },
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
  layout: AttentionLayout;
  label: string;
  /** The forward's kernel variant, which the backward runs too (the same scores, bit for bit). */
  variant: AttentionVariant;
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
 * ops.attention for the shapes and options. Returns the output (q's shape) and, with
 * `save`, what attentionBackward needs; the output owns those tensors (they live as long
 * as it does).
 * @throws ShapeError naming the op and the shapes, ValueError for a bad option (see
 *   ops.attention), GpuError for a tuning the device cannot run.
 */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, save: boolean): { o: Tensor; saved: AttentionSaved | null } {
  const mask = opts.mask ?? null;
  const gpu = checkInputs('attention', mask ? [q, k, v, mask] : [q, k, v]);
  const what = `attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  const order = opts.layout ?? 'bhld';
  if (order !== 'bhld' && order !== 'blhd') throw new ValueError(`attention: layout must be 'bhld' or 'blhd', got ${String(order)}`);
  const bhld = order === 'bhld';
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new ShapeError(`${what}: expected ${bhld ? '[batch, heads, length, headDim]' : '[batch, length, heads, headDim]'} each`);
  const [B, , , D] = q.shape;
  const [H, Lq] = bhld ? [q.shape[1], q.shape[2]] : [q.shape[2], q.shape[1]];
  const [Hkv, Lk] = bhld ? [k.shape[1], k.shape[2]] : [k.shape[2], k.shape[1]];
  if (!sameShape(k.shape, v.shape) || k.shape[0] !== B || k.shape[3] !== D)
    throw new ShapeError(`${what}: k and v must be ${bhld ? `[${B}, Hkv, Lk, ${D}]` : `[${B}, Lk, Hkv, ${D}]`} (the same shape)`);
  if (H % Hkv) throw new ShapeError(`${what}: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
  if (D > ATTENTION_MAX_HEAD_DIM) throw new ShapeError(`${what}: head dimension ${D} is above the supported ${ATTENTION_MAX_HEAD_DIM}`);
  if (mask && (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Lk))
    throw new ShapeError(`${what}: mask ${fmtShape(mask.shape)} must be [${B}, ${Lk}]`);
  const causal = opts.causal ?? false;
  if (typeof causal !== 'boolean') throw new ValueError(`attention: causal must be true or false, got ${String(causal)}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  checkFinite('attention', 'scale', scale);
  const GRP = H / Hkv;
  const variant = attentionVariantFor(gpu);
  const label = `attention [${B}x${H}${GRP > 1 ? `/${Hkv}` : ''}] ${Lq}x${Lk}x${D}${mask ? ' masked' : ''}${causal ? ' causal' : ''}${bhld ? '' : ' blhd'}`;
  const st = strides(order, H, Hkv, Lq, Lk);

  return scope(() => {
    // Head widths that are not a multiple of 4 run on zero-padded copies.
    const padded = D % 4 !== 0;
    const [qp, kp, vp] = padded ? [padRows(q, 'attention.q'), padRows(k, 'attention.k'), padRows(v, 'attention.v')] : [q, k, v];
    const op = new Tensor(gpu, qp.shape, 'f32', undefined, 'attention');
    const stats = new Tensor(gpu, [B, H, Lq, 2], 'f32', undefined, 'attention.stats');
    const buffers = { Q: qp.buffer, K: kp.buffer, V: vp.buffer, mask: mask?.buffer ?? null, O: op.buffer, Stats: stats.buffer };
    if (isTiled(variant)) {
      const L = tiledLayout(gpu, D);
      gpu.launch(attentionTiledKernel.attention_tiled, {
        ...tiledVariant(gpu, L, !!mask, causal, variant === 'tiled-f16' ? 'tiles' : undefined),
        params: { H, GRP, Lq, Lk, scale, off: Lk - Lq, nt: L.NT, ...st },
        buffers,
        workgroups: [Math.ceil(Lq / L.NR), B * H, 1],
        label,
      });
    } else {
      const G = groupOf(gpu, variant);
      const L = layout(gpu, D, G, false);
      const { RPL, rs, wx } = rowSpread(gpu, L, G, Lq, 2);
      gpu.launch(attentionKernel.attention, {
        ...kernelVariant(gpu, L, G, !!mask, causal, RPL),
        params: { H, GRP, Lq, Lk, scale, off: Lk - Lq, nch: L.NCH, rs, ...st },
        buffers,
        workgroups: [wx, B * H, 1],
        label,
      });
    }
    const o = padded ? unpadRows(op, D, 'attention') : op;
    // What the backward needs lives as long as the output (the padded copies only when a
    // backward may come; this scope frees them otherwise).
    o.own(stats);
    if (padded && save) for (const t of [qp, kp, vp, op]) o.own(t);
    const saved = save ? { B, H, Hkv, Lq, Lk, D, scale, causal, mask, layout: order, label, variant, q: qp, k: kp, v: vp, o: op, stats } : null;
    return { o, saved };
  });
}

/**
 * The gradients [dq, dk, dv] of attention (shapes of q, k, v; dk and dv summed over the query
 * heads of each group) from the forward's saved tensors and the output gradient g
 * [B, H, Lq, D] ([B, Lq, H, D] for layout 'blhd'). A query with no key to attend to gets zero gradients.
 */
export function attentionBackward(s: AttentionSaved, g: Tensor): [Tensor, Tensor, Tensor] {
  const gpu = checkInputs('attention.backward', [s.q, s.k, s.v, s.o, s.stats, g]);
  const { B, H, Hkv, Lq, Lk, D } = s;
  const want = s.layout === 'bhld' ? [B, H, Lq, D] : [B, Lq, H, D];
  if (!sameShape(g.shape, want)) throw new ShapeError(`attention.backward: output gradient ${fmtShape(g.shape)} is not ${fmtShape(want)}`);
  const padded = D % 4 !== 0;
  if (isTiled(s.variant)) return scope(() => tiledBackward(s, padded ? padRows(g, 'grad.attention.o') : g));
  const G = groupOf(gpu, s.variant);
  const L = layout(gpu, D, G, true);
  const params = { H, GRP: H / Hkv, Lq, Lk, scale: s.scale, off: Lk - Lq, nch: L.NCH, ...strides(s.layout, H, Hkv, Lq, Lk) };
  return scope(() => {
    const gp = padded ? padRows(g, 'grad.attention.o') : g;
    const { dq, dk, dv, delta } = gradTensors(s);
    const mask = s.mask?.buffer ?? null;
    const rq = rowSpread(gpu, L, G, Lq, 3);
    const rk = rowSpread(gpu, L, G, Lk, 4);
    gpu.launch(attentionKernel.attention_backward_q, {
      ...kernelVariant(gpu, L, G, !!s.mask, s.causal, rq.RPL),
      params: { ...params, rs: rq.rs },
      buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, Oin: s.o.buffer, StatsIn: s.stats.buffer, Delta: delta.buffer, dQ: dq.buffer },
      workgroups: [rq.wx, B * H, 1],
      label: `${s.label}.backward q`,
    });
    gpu.launch(attentionKernel.attention_backward_kv, {
      ...kernelVariant(gpu, L, G, !!s.mask, s.causal, rk.RPL),
      params: { ...params, rs: rk.rs },
      buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, StatsIn: s.stats.buffer, DeltaIn: delta.buffer, dK: dk.buffer, dV: dv.buffer },
      workgroups: [rk.wx, B * Hkv, 1],
      label: `${s.label}.backward kv`,
    });
    if (!padded) return [dq, dk, dv];
    return [unpadRows(dq, D, 'grad.attention.q'), unpadRows(dk, D, 'grad.attention.k'), unpadRows(dv, D, 'grad.attention.v')];
  });
}

/** The backward's outputs (shaped like the padded q, k, v) and the per-query rowsum(dO * O). */
function gradTensors(s: AttentionSaved): { dq: Tensor; dk: Tensor; dv: Tensor; delta: Tensor } {
  const gpu = s.q.gpu;
  return {
    dq: new Tensor(gpu, s.q.shape, 'f32', undefined, 'grad.attention.q'),
    dk: new Tensor(gpu, s.k.shape, 'f32', undefined, 'grad.attention.k'),
    dv: new Tensor(gpu, s.v.shape, 'f32', undefined, 'grad.attention.v'),
    delta: new Tensor(gpu, [s.B, s.H, s.Lq], 'f32', undefined, 'attention.delta'),
  };
}

/** attentionBackward with the tiled kernels (gp: the output gradient, padded like s.q). */
function tiledBackward(s: AttentionSaved, gp: Tensor): [Tensor, Tensor, Tensor] {
  const gpu = gp.gpu;
  const { B, H, Hkv, Lq, Lk, D } = s;
  const L = tiledLayout(gpu, D);
  const f16 = s.variant === 'tiled-f16';
  const kernel = tiledVariant(gpu, L, !!s.mask, s.causal, f16 ? 'tiles' : undefined);
  const params = { H, GRP: H / Hkv, Lq, Lk, scale: s.scale, off: Lk - Lq, nt: L.NT, ...strides(s.layout, H, Hkv, Lq, Lk) };
  const { dq, dk, dv, delta } = gradTensors(s);
  const mask = s.mask?.buffer ?? null;
  gpu.launch(attentionTiledKernel.attention_tiled_backward_q, {
    ...kernel,
    params,
    buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, Oin: s.o.buffer, StatsIn: s.stats.buffer, Delta: delta.buffer, dQ: dq.buffer },
    workgroups: [Math.ceil(Lq / L.NR), B * H, 1],
    label: `${s.label}.backward q`,
  });
  gpu.launch(attentionTiledKernel.attention_tiled_backward_kv, {
    // Its tiles hold queries and output gradients (f32); its own key and value rows are rounded.
    ...(f16 ? tiledVariant(gpu, L, !!s.mask, s.causal, 'rows') : kernel),
    params,
    buffers: { Q: s.q.buffer, K: s.k.buffer, V: s.v.buffer, mask, dO: gp.buffer, StatsIn: s.stats.buffer, DeltaIn: delta.buffer, dK: dk.buffer, dV: dv.buffer },
    workgroups: [Math.ceil(Lk / L.NR), B * Hkv, 1],
    label: `${s.label}.backward kv`,
  });
  if (D % 4 === 0) return [dq, dk, dv];
  return [unpadRows(dq, D, 'grad.attention.q'), unpadRows(dk, D, 'grad.attention.k'), unpadRows(dv, D, 'grad.attention.v')];
}
