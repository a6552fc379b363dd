// Fused scaled dot-product attention (kernels/attention.wgsl): forward with an online
// softmax, backward recomputing the probabilities from the saved log-sum-exp.
import source from '../../kernels/attention.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import type { Gpu, KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, checkInputs, sameShape } from './util.ts';

export interface AttentionOptions {
  /** [B, Lk]: 1 where a key may be attended to, 0 where not (padding). No gradient. */
  mask?: Tensor;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
}

export type AttentionVariant = 'auto' | 'subgroup' | 'plain';
let variantChoice: AttentionVariant = 'auto';
/** Picks the attention kernel (tests and benchmarks compare them). */
export function setAttentionVariant(v: AttentionVariant): void {
  variantChoice = v;
}

function spec(gpu: Gpu, entry: string, D: number, mask: boolean, bindings: KernelSpec['bindings']): KernelSpec {
  // Rows are shared in groups of G lanes: 8 where subgroups have at least 8, else 4.
  const G = gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
  if (variantChoice === 'subgroup' && !G) throw new ShapeError('attention: the subgroup kernel needs subgroups of at least 4 lanes');
  const sg = G > 0 && variantChoice !== 'plain';
  const HD4 = D / 4;
  return {
    file: 'attention.wgsl',
    source,
    entry,
    flags: { MASK: mask, SG: sg, SGEXACT: sg && gpu.subgroupMinSize === G && gpu.subgroupMaxSize === G },
    consts: { HD4, G: G || 8, SPL: Math.ceil(HD4 / (G || 8)) },
    bindings,
  };
}

/**
 * softmax(scale * q k^T + mask) v for q [B, H, Lq, D] and k, v [B, H, Lk, D]; D a multiple
 * of 4 (at most 256). Returns [B, H, Lq, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const mask = opts.mask;
  const gpu = checkInputs('attention', mask ? [q, k, v, mask] : [q, k, v]);
  const what = `attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new ShapeError(`${what}: expected [batch, heads, length, headDim] each`);
  const [B, H, Lq, D] = q.shape;
  const Lk = k.shape[2];
  if (!sameShape(k.shape, v.shape) || k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D)
    throw new ShapeError(`${what}: k and v must be [${B}, ${H}, Lk, ${D}]`);
  if (D % 4 || D > 256) throw new ShapeError(`${what}: head dimension ${D} must be a multiple of 4, at most 256`);
  if (mask && (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Lk))
    throw new ShapeError(`${what}: mask ${fmtShape(mask.shape)} must be [${B}, ${Lk}]`);
  if (mask?.requiresGrad) throw new ShapeError('attention: the mask takes no gradient');
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const uniforms = new Uniforms().u32(B, H, Lq, Lk).f32(scale).u32(0, 0, 0).bytes();
  const maskBuf = mask ? mask.buffer : gpu.placeholder;
  const label = `attention [${B}x${H}] ${Lq}x${Lk}x${D}${mask ? ' masked' : ''}`;

  const o = new Tensor(gpu, [B, H, Lq, D], 'f32', undefined, 'attention');
  const lse = new Tensor(gpu, [B, H, Lq], 'f32', undefined, 'attention.lse');
  o.own(lse);
  const fwd = gpu.kernel(spec(gpu, 'attention', D, !!mask, ['uniform', 'read', 'read', 'read', 'read', 'write', 'write']));
  gpu.dispatch(fwd, {
    uniforms,
    buffers: [q.buffer, k.buffer, v.buffer, maskBuf, o.buffer, lse.buffer],
    workgroups: [Math.ceil(Lq / 64), B * H, 1],
    label,
  });

  return record(o, 'attention', [q, k, v], (g) => {
    const dq = new Tensor(gpu, q.shape, 'f32', undefined, 'grad.attention.q');
    const dk = new Tensor(gpu, k.shape, 'f32', undefined, 'grad.attention.k');
    const dv = new Tensor(gpu, v.shape, 'f32', undefined, 'grad.attention.v');
    const delta = gpu.acquire(B * H * Lq * 4, 'attention delta');
    const bq = gpu.kernel(
      spec(gpu, 'attention_backward_q', D, !!mask, ['uniform', 'read', 'read', 'read', 'read', null, null, 'read', 'read', 'read', 'write', null, 'write']),
    );
    gpu.dispatch(bq, {
      uniforms,
      buffers: [q.buffer, k.buffer, v.buffer, maskBuf, g.buffer, o.buffer, lse.buffer, delta, dq.buffer],
      workgroups: [Math.ceil(Lq / 64), B * H, 1],
      label: `${label}.backward q`,
    });
    const bkv = gpu.kernel(
      spec(gpu, 'attention_backward_kv', D, !!mask, [
        'uniform', 'read', 'read', 'read', 'read', null, null, 'read', null, 'read', null, 'read', null, 'write', 'write',
      ]),
    );
    gpu.dispatch(bkv, {
      uniforms,
      buffers: [q.buffer, k.buffer, v.buffer, maskBuf, g.buffer, lse.buffer, delta, dk.buffer, dv.buffer],
      workgroups: [Math.ceil(Lk / 64), B * H, 1],
      label: `${label}.backward kv`,
    });
    gpu.release(delta);
    return [dq, dk, dv];
  });
}
