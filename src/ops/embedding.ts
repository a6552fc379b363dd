// Embedding lookup (gather) with a deterministic scatter-add gradient (kernels/embedding.wgsl).
import source from '../../kernels/embedding.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Uniforms, checkInputs } from '../launch/util.ts';
import { hostInts } from './creation.ts';

/** Rows of `weight` [vocab, dim] picked by integer `ids` (any shape): result [...ids.shape, dim]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  const gpu = checkInputs('embedding', [weight]);
  checkInputs('embedding', [weight, ids], null);
  if (ids.dtype !== 'i32') throw new ShapeError(`embedding: ids '${ids.name}' must be i32, got ${ids.dtype}`);
  if (weight.rank !== 2) throw new ShapeError(`embedding: weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  const [vocab, dim] = weight.shape;
  const host = hostInts(ids);
  if (host)
    for (let i = 0; i < host.length; i++)
      if (host[i] < 0 || host[i] >= vocab)
        throw new ShapeError(`embedding: id ${host[i]} at position ${i} of '${ids.name}' is outside the vocabulary [0, ${vocab})`);
  const tokens = ids.size;
  const uniforms = new Uniforms().u32(tokens, dim, vocab, 0).bytes();
  const out = new Tensor(gpu, [...ids.shape, dim], 'f32', undefined, 'embedding');
  const k = gpu.kernel({ file: 'embedding.wgsl', source, entry: 'gather', bindings: ['uniform', 'read', 'read', 'write'] });
  gpu.dispatch(k, { uniforms, buffers: [weight.buffer, ids.buffer, out.buffer], workgroups: grid1d(tokens * Math.ceil(dim / 64), 64), label: `embedding ${fmtShape(weight.shape)}[${fmtShape(ids.shape)}]` });
  return record(out, 'embedding', [weight], (gy) => {
    const gw = new Tensor(gpu, weight.shape, 'f32', undefined, 'grad.embedding');
    const s = gpu.kernel({ file: 'embedding.wgsl', source, entry: 'scatter', bindings: ['uniform', null, 'read', null, 'read', 'write'] });
    gpu.dispatch(s, { uniforms, buffers: [ids.buffer, gy.buffer, gw.buffer], workgroups: grid1d(vocab, 64), label: `embedding.backward ${fmtShape(weight.shape)}` });
    return [gw];
  });
}
