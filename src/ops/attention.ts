// Fused scaled dot-product attention (kernels/attention.wgsl): forward with an online
// softmax, backward recomputing the probabilities from the saved log-sum-exp. Grouped-query
// attention, causal masking and any head width, without copies of k and v per query head.
import source from '../../kernels/attention.wgsl';
import { isGradEnabled, record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d, type Gpu, type KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, checkFinite, checkInputs, sameShape } from '../launch/util.ts';

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

export type AttentionVariant = 'auto' | 'subgroup' | 'plain';
let variantChoice: AttentionVariant = 'auto';
/** Picks the attention kernel (tests and benchmarks compare them). */
export function setAttentionVariant(v: AttentionVariant): void {
  variantChoice = v;
}

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
 */
const MAX_FWD = 32;
const MAX_BWD = 16;
const CHUNK = 4;
let layoutChoice: { parts?: number; chunk?: number } | null = null;
/**
 * Overrides the head layout (benchmarks and tests compare them): `parts` lanes per query
 * (subgroup kernel; 1, 2, 4 or 8), chunks of at most `chunk` vec4s. null: automatic.
 * `{ parts: 1 }` trades compile time for speed: at D = 90, forward + backward take ~30% less
 * time unsplit, but the backward kernels compile in ~11 s instead of ~4 s on lavapipe (once
 * per machine: Mesa caches compiled shaders on disk).
 */
export function setAttentionLayout(l: { parts?: number; chunk?: number } | null): void {
  if (l?.parts !== undefined && ![1, 2, 4, 8].includes(l.parts)) throw new ShapeError(`setAttentionLayout: parts ${l.parts} is not 1, 2, 4 or 8`);
  if (l?.chunk !== undefined && !(Number.isInteger(l.chunk) && l.chunk >= 1)) throw new ShapeError(`setAttentionLayout: chunk ${l.chunk} is not a positive integer`);
  layoutChoice = l;
}

interface Layout {
  /** vec4s of the head (D padded to 4 * HD4). */
  HD4: number;
  /** Lanes per query, vec4s per lane (NCH chunks of CH). */
  P: number;
  HL: number;
  CH: number;
  NCH: number;
}

function layout(D: number, G: number, backward: boolean): Layout {
  const HD4 = Math.ceil(D / 4);
  const most = backward ? MAX_BWD : MAX_FWD;
  let P = 1;
  if (G) {
    P = layoutChoice?.parts ?? 1;
    if (layoutChoice?.parts === undefined) while (P < G && Math.ceil(HD4 / P) > most) P *= 2;
    if (P > G) throw new ShapeError(`attention: ${P} lanes per query need subgroups of at least ${P}`);
  }
  const per = Math.ceil(HD4 / P);
  // The subgroup kernel loops over chunks only when told to (4x slower than a split).
  const max = layoutChoice?.chunk ?? (G || per <= MAX_BWD ? per : CHUNK);
  const NCH = Math.ceil(per / max);
  const CH = Math.ceil(per / NCH);
  return { HD4, P, HL: NCH * CH, CH, NCH };
}

/** Lanes per subgroup block that share rows (0: the plain kernel). */
function groupOf(gpu: Gpu): number {
  // Rows are shared in groups of G lanes: 8 where subgroups have at least 8, else 4.
  const G = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
  if (variantChoice === 'subgroup' && !G) throw new ShapeError('attention: the subgroup kernel needs subgroups of at least 4 lanes');
  return variantChoice === 'plain' ? 0 : G;
}

function spec(gpu: Gpu, entry: string, L: Layout, G: number, flags: { MASK: boolean; CAUSAL: boolean }, bindings: KernelSpec['bindings']): KernelSpec {
  const sg = G > 0;
  const g = G || 8;
  const QPG = g / L.P;
  return {
    file: 'attention.wgsl',
    source,
    entry,
    flags: { ...flags, PARTS: L.P > 1, DYN: L.NCH > 1, PADV: L.P * L.HL > L.HD4, SG: sg, SGEXACT: sg && gpu.subgroupMinSize === G && gpu.subgroupMaxSize === G },
    consts: { HD4: L.HD4, P: L.P, HL: L.HL, CH: L.CH, NCH: L.NCH, G: g, QPG, SPC: Math.ceil(L.CH / QPG), QW: 64 / L.P },
    bindings,
  };
}

/** Rows of D floats to rows of 4 * HD4 (zero tail), or back (unpad), as a new tensor. */
function padHead(x: Tensor, D: number, unpad: boolean, name: string): Tensor {
  const gpu = x.gpu;
  const HD4 = Math.ceil(D / 4);
  const rows = x.size / (unpad ? 4 * HD4 : D);
  const y = new Tensor(gpu, [...x.shape.slice(0, -1), unpad ? D : 4 * HD4], 'f32', undefined, name);
  // The whole file is expanded: the attention kernels' constants are needed too.
  const k = gpu.kernel({
    file: 'attention.wgsl', source, entry: 'attention_pad', flags: { UNPAD: unpad }, consts: { HD4, P: 1, HL: HD4, CH: 1, NCH: 1, G: 8, QPG: 8, SPC: 1, QW: 64 },
    bindings: [...new Array(15).fill(null), 'uniform', 'read', 'write'],
  });
  const slots = rows * HD4;
  gpu.dispatch(k, {
    uniforms: new Uniforms().u32(slots, D, 0, 0).bytes(),
    buffers: [x.buffer, y.buffer],
    workgroups: grid1d(slots, 64),
    label: `attention.${unpad ? 'unpad' : 'pad'} ${rows}x${D}`,
  });
  return y;
}

/**
 * softmax(scale * q k^T + mask) v, fused (the [Lq, Lk] scores are never stored).
 *
 * - q: [B, H, Lq, D]; k and v: [B, Hkv, Lk, D] with H a multiple of Hkv (grouped-query
 *   attention: query head h reads key/value head floor(h / (H / Hkv)), as repeat_interleave
 *   of the key/value heads; Hkv = H is multi-head attention). Returns [B, H, Lq, D].
 * - Any head width 1 <= D <= ATTENTION_MAX_HEAD_DIM; widths that are not a multiple of 4 are
 *   zero-padded inside (a copy of q, k, v and the gradients), which leaves every dot
 *   product unchanged.
 * - opts.mask [B, Lk] (1 = attend, no gradient), opts.causal (see AttentionOptions),
 *   opts.scale (default 1 / sqrt(D)). A query with no key left to attend to gets a zero
 *   output and zero gradients.
 * - Gradients for q, k and v (dk, dv summed over the query heads of each group).
 *
 * Throws ShapeError naming the op and the shapes: inputs not of rank 4, k and v of other
 * shapes, batch or head width differing from q, H not a multiple of Hkv, D above the
 * limit, a mask not [B, Lk] or needing a gradient, a scale that is not finite.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const mask = opts.mask;
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
  if (mask?.requiresGrad) throw new ShapeError('attention: the mask takes no gradient');
  const causal = opts.causal ?? false;
  if (typeof causal !== 'boolean') throw new ShapeError(`attention: causal must be true or false, got ${String(causal)}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  checkFinite('attention', 'scale', scale);
  const GRP = H / Hkv;
  const G = groupOf(gpu);
  const L = layout(D, G, false);
  const LB = layout(D, G, true);
  const params = (l: Layout) => new Uniforms().u32(B, H, GRP, Lq, Lk).f32(scale).i32(Lk - Lq).u32(l.NCH).bytes();
  const maskBuf = mask ? mask.buffer : gpu.placeholder;
  const flags = { MASK: !!mask, CAUSAL: causal };
  const label = `attention [${B}x${H}${GRP > 1 ? `/${Hkv}` : ''}] ${Lq}x${Lk}x${D}${mask ? ' masked' : ''}${causal ? ' causal' : ''}`;

  // Head widths that are not a multiple of 4 run on zero-padded copies.
  const padded = D % 4 !== 0;
  const [qp, kp, vp] = padded ? [padHead(q, D, false, 'attention.q'), padHead(k, D, false, 'attention.k'), padHead(v, D, false, 'attention.v')] : [q, k, v];
  const op = new Tensor(gpu, qp.shape, 'f32', undefined, 'attention');
  const lse = new Tensor(gpu, [B, H, Lq], 'f32', undefined, 'attention.lse');
  const fwd = gpu.kernel(spec(gpu, 'attention', L, G, flags, ['uniform', 'read', 'read', 'read', 'read', 'write', 'write']));
  gpu.dispatch(fwd, {
    uniforms: params(L),
    buffers: [qp.buffer, kp.buffer, vp.buffer, maskBuf, op.buffer, lse.buffer],
    workgroups: [Math.ceil(Lq / (64 / L.P)), B * H, 1],
    label,
  });
  const o = padded ? padHead(op, D, true, 'attention') : op;
  const recording = isGradEnabled() && [q, k, v].some((t) => t.requiresGrad);
  // What the backward needs lives as long as the output.
  if (padded) {
    if (recording) for (const t of [qp, kp, vp, op]) o.own(t);
    else for (const t of [qp, kp, vp, op]) t.dispose();
  }
  o.own(lse);

  return record(o, 'attention', [q, k, v], (g) => {
    const gp = padded ? padHead(g, D, false, 'grad.attention.o') : g;
    const dq = new Tensor(gpu, qp.shape, 'f32', undefined, 'grad.attention.q');
    const dk = new Tensor(gpu, kp.shape, 'f32', undefined, 'grad.attention.k');
    const dv = new Tensor(gpu, vp.shape, 'f32', undefined, 'grad.attention.v');
    const delta = gpu.acquire(B * H * Lq * 4, 'attention delta');
    const uniforms = params(LB);
    const bq = gpu.kernel(
      spec(gpu, 'attention_backward_q', LB, G, flags, ['uniform', 'read', 'read', 'read', 'read', null, null, 'read', 'read', 'read', 'write', null, 'write']),
    );
    gpu.dispatch(bq, {
      uniforms,
      buffers: [qp.buffer, kp.buffer, vp.buffer, maskBuf, gp.buffer, op.buffer, lse.buffer, delta, dq.buffer],
      workgroups: [Math.ceil(Lq / (64 / LB.P)), B * H, 1],
      label: `${label}.backward q`,
    });
    const bkv = gpu.kernel(
      spec(gpu, 'attention_backward_kv', LB, G, flags, [
        'uniform', 'read', 'read', 'read', 'read', null, null, 'read', null, 'read', null, 'read', null, 'write', 'write',
      ]),
    );
    gpu.dispatch(bkv, {
      uniforms,
      buffers: [qp.buffer, kp.buffer, vp.buffer, maskBuf, gp.buffer, lse.buffer, delta, dk.buffer, dv.buffer],
      workgroups: [Math.ceil(Lk / (64 / LB.P)), B * Hkv, 1],
      label: `${label}.backward kv`,
    });
    gpu.release(delta);
    if (!padded) return [dq, dk, dv];
    gp.dispose();
    const out = [dq, dk, dv].map((t, i) => {
      const u = padHead(t, D, true, `grad.attention.${'qkv'[i]}`);
      t.dispose();
      return u;
    });
    return out;
  });
}
