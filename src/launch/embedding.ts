// Launches of kernels/embedding.wgsl (no autograd): the embedding lookup (gather) and its
// deterministic scatter-add gradient.
import source from '../../kernels/embedding.wgsl';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs } from './util.ts';

export const embeddingKernel = defineKernel({
  file: 'embedding.wgsl',
  source,
  params: { tokens: 'u32', dim: 'u32', vocab: 'u32' },
  buffers: { W: read(), ids: read('i32'), out: write(), GY: read(), GW: write() },
  entries: { gather: ['W', 'ids', 'out'], scatter: ['ids', 'GY', 'GW'] },
});

/** Checks weight [vocab, dim] and i32 ids; returns [vocab, dim]. */
function checkShapes(op: string, weight: Tensor, ids: Tensor): [number, number] {
  checkInputs(op, [weight]);
  checkInputs(op, [weight, ids], null);
  if (ids.dtype !== 'i32') throw new ValueError(`${op}: ids '${ids.name}' must be i32, got ${ids.dtype}`);
  if (weight.rank !== 2) throw new ShapeError(`${op}: weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  return [weight.shape[0], weight.shape[1]];
}

/**
 * Rows of `weight` [vocab, dim] picked by i32 `ids` (any shape): a new tensor [...ids.shape, dim].
 * Ids outside [0, vocab) are clamped by the kernel (the op checks them where it can).
 * @throws ValueError for ids that are not i32; ShapeError for a weight that is not 2-D.
 */
export function embeddingForward(weight: Tensor, ids: Tensor): Tensor {
  const [vocab, dim] = checkShapes('embedding', weight, ids);
  const gpu = weight.gpu;
  const tokens = ids.size;
  const out = new Tensor(gpu, [...ids.shape, dim], 'f32', undefined, 'embedding');
  gpu.launch(embeddingKernel.gather, {
    params: { tokens, dim, vocab },
    buffers: { W: weight.buffer, ids: ids.buffer, out: out.buffer },
    workgroups: grid1d(tokens * Math.ceil(dim / 64), 64),
    label: `embedding ${fmtShape(weight.shape)}[${fmtShape(ids.shape)}]`,
  });
  return out;
}

/**
 * The weight gradient of the lookup: dW [vocab, dim] with dW[v] = sum of gy rows whose id is v
 * (summed in a fixed order: deterministic). gy: [...ids.shape, dim].
 * @throws ShapeError as embeddingForward, or for a gy of another size.
 */
export function embeddingBackward(weight: Tensor, ids: Tensor, gy: Tensor): Tensor {
  const [vocab, dim] = checkShapes('embedding.backward', weight, ids);
  checkInputs('embedding.backward', [gy]);
  if (gy.size !== ids.size * dim)
    throw new ShapeError(`embedding.backward: gradient ${fmtShape(gy.shape)} does not match ids ${fmtShape(ids.shape)} x dim ${dim}`);
  const gpu = weight.gpu;
  const gw = new Tensor(gpu, weight.shape, 'f32', undefined, 'grad.embedding');
  gpu.launch(embeddingKernel.scatter, {
    params: { tokens: ids.size, dim, vocab },
    buffers: { ids: ids.buffer, GY: gy.buffer, GW: gw.buffer },
    workgroups: grid1d(vocab, 64),
    label: `embedding.backward ${fmtShape(weight.shape)}`,
  });
  return gw;
}
