// Embedding lookup (gather) with a deterministic scatter-add gradient (kernels/embedding.wgsl,
// src/launch/embedding.ts).
import { record } from '../autograd.ts';
import { ValueError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { embeddingBackward, embeddingForward } from '../launch/embedding.ts';
import { hostInts } from './creation.ts';

/**
 * Rows of `weight` [vocab, dim] picked by integer `ids` (any shape): result [...ids.shape, dim].
 * Throws ValueError for ids that are not i32, ShapeError for a weight that is not [vocab, dim], ValueError (for ids
 * made by fromInts, whose host copy is known) an id outside [0, vocab).
 */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  // Ids made by fromInts are checked on the host (no readback); the launch checks the rest.
  const vocab = weight.shape[0];
  const host = weight.rank === 2 && ids.dtype === 'i32' ? hostInts(ids) : undefined;
  if (host)
    for (let i = 0; i < host.length; i++)
      if (host[i] < 0 || host[i] >= vocab)
        throw new ValueError(`embedding: id ${host[i]} at position ${i} of '${ids.name}' is outside the vocabulary [0, ${vocab})`);
  const out = embeddingForward(weight, ids);
  return record(out, 'embedding', [weight], (gy) => [embeddingBackward(weight.shape, ids, gy, host)]);
}
