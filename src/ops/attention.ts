// Fused scaled dot-product attention (kernels/attention.wgsl, src/launch/attention.ts):
// forward with an online softmax, backward recomputing the probabilities from the saved
// per-query statistics. Grouped-query attention, causal masking and any head width, without
// copies of k and v per query head.
import { record, willRecord } from '../autograd.ts';
import { ValueError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { attentionBackward, attentionForward, type AttentionOptions } from '../launch/attention.ts';

export { ATTENTION_MAX_HEAD_DIM, type AttentionLayout, type AttentionOptions } from '../launch/attention.ts';

/**
 * softmax(scale * q k^T + mask) v, fused (the [Lq, Lk] scores are never stored).
 *
 * - q: [B, H, Lq, D]; k and v: [B, Hkv, Lk, D] with H a multiple of Hkv (grouped-query
 *   attention: query head h reads key/value head floor(h / (H / Hkv)), as repeat_interleave
 *   of the key/value heads; Hkv = H is multi-head attention). Returns [B, H, Lq, D].
 * - opts.layout 'blhd': q [B, Lq, H, D], k and v [B, Lk, Hkv, D], output and gradients
 *   likewise (read and written in place by the kernels: no permuted copies).
 * - Any head width 1 <= D <= ATTENTION_MAX_HEAD_DIM; widths that are not a multiple of 4 are
 *   zero-padded inside (a copy of q, k, v and the gradients), which leaves every dot
 *   product unchanged.
 * - opts.mask [B, Lk] (1 = attend, no gradient), opts.causal (see AttentionOptions),
 *   opts.scale (default 1 / sqrt(D)). A query with no key left to attend to gets a zero
 *   output and zero gradients.
 * - Gradients for q, k and v (dk, dv summed over the query heads of each group).
 * - The kernel variant and head layout come from gpu.tuning.attention.
 *
 * Throws ShapeError naming the op and the shapes: inputs not of rank 4, k and v of other
 * shapes, batch or head width differing from q, H not a multiple of Hkv, D above the
 * limit, a mask not [B, Lk]; ValueError for a mask needing a gradient, a scale that is not
 * finite, a causal that is not a boolean, a layout other than 'bhld' or 'blhd', a gpu.tuning.attention.variant unknown or its
 * layout or tile out of range (or a tile too large for the device);
 * GpuError where gpu.tuning.attention asks for subgroups the device lacks.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (opts.mask?.requiresGrad) throw new ValueError('attention: the mask takes no gradient');
  const recording = willRecord([q, k, v]);
  const { o, saved } = attentionForward(q, k, v, opts, recording);
  return record(o, 'attention', [q, k, v], (g) => attentionBackward(saved!, g));
}
