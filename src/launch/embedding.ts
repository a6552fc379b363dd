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
  params: { tokens: 'u32', dim: 'u32', vocab: 'u32', uniques: 'u32' },
  buffers: { W: read(), ids: read('i32'), out: write(), GY: read(), GW: write(), segs: read('i32') },
  entries: { gather: ['W', 'ids', 'out'], scatter: ['ids', 'GY', 'GW'], scatter_sorted: ['segs', 'GY', 'GW'] },
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
    params: { tokens, dim, vocab, uniques: 0 },
    buffers: { W: weight.buffer, ids: ids.buffer, out: out.buffer },
    workgroups: grid1d(tokens * Math.ceil(dim / 64), 64),
    label: `embedding ${fmtShape(weight.shape)}[${fmtShape(ids.shape)}]`,
  });
  return out;
}

/**
 * The token positions of `ids` grouped by id, for scatter_sorted: [rows (the ids present in
 * [0, vocab), ascending); starts (uniques + 1 offsets into order); order (positions, each
 * group ascending)]. Ids outside [0, vocab) are left out, as the scan kernel leaves them.
 */
export function embeddingSegments(ids: Int32Array, vocab: number): { segs: Int32Array; uniques: number } {
  // One numeric sort of id * T + position (exact in a double: vocab * T < 2^53).
  const T = ids.length;
  const keys = new Float64Array(T);
  let n = 0;
  for (let i = 0; i < T; i++) if (ids[i] >= 0 && ids[i] < vocab) keys[n++] = ids[i] * T + i;
  const sorted = keys.subarray(0, n).sort();
  const rows: number[] = [];
  const starts: number[] = [];
  const order = new Int32Array(n);
  let last = -1;
  for (let j = 0; j < n; j++) {
    const id = Math.floor(sorted[j] / T);
    order[j] = sorted[j] - id * T;
    if (id !== last) {
      rows.push(id);
      starts.push(j);
      last = id;
    }
  }
  starts.push(n);
  const segs = new Int32Array(rows.length + starts.length + n);
  segs.set(rows);
  segs.set(starts, rows.length);
  segs.set(order, rows.length + starts.length);
  return { segs, uniques: rows.length };
}

/**
 * The weight gradient of the lookup (it needs the weight's shape only): dW [vocab, dim] =
 * weightShape with dW[v] = sum of gy rows whose id is v
 * (summed in increasing position: deterministic, and the same bits on either path); ids outside
 * [0, vocab) add nothing. gy: [...ids.shape, dim]. With `hostIds` (the ids' host copy, as
 * fromInts keeps it; the caller vouches that it equals the device ids, which are then not read)
 * the positions are grouped by id on the host and the work is tokens x dim plus a clear of dW;
 * without, a scan of every id for every vocabulary row (vocab x tokens reads).
 * @throws ValueError for ids that are not i32; ShapeError for a weightShape that is not 2-D, a gy
 * of another size, or hostIds of another length than ids.
 */
export function embeddingBackward(weightShape: readonly number[], ids: Tensor, gy: Tensor, hostIds?: Int32Array): Tensor {
  const op = 'embedding.backward';
  checkInputs(op, [gy]);
  checkInputs(op, [gy, ids], null);
  if (ids.dtype !== 'i32') throw new ValueError(`${op}: ids '${ids.name}' must be i32, got ${ids.dtype}`);
  if (weightShape.length !== 2) throw new ShapeError(`${op}: weight must be [vocab, dim], got ${fmtShape(weightShape)}`);
  const [vocab, dim] = weightShape;
  if (gy.size !== ids.size * dim)
    throw new ShapeError(`embedding.backward: gradient ${fmtShape(gy.shape)} does not match ids ${fmtShape(ids.shape)} x dim ${dim}`);
  if (hostIds && hostIds.length !== ids.size) throw new ShapeError(`embedding.backward: ${hostIds.length} host ids for ids ${fmtShape(ids.shape)}`);
  const gpu = gy.gpu;
  const gw = new Tensor(gpu, [vocab, dim], 'f32', undefined, 'grad.embedding');
  const label = `${op} ${fmtShape(weightShape)}`;
  if (!hostIds) {
    gpu.launch(embeddingKernel.scatter, {
      params: { tokens: ids.size, dim, vocab, uniques: 0 },
      buffers: { ids: ids.buffer, GY: gy.buffer, GW: gw.buffer },
      workgroups: grid1d(vocab, 64),
      label,
    });
    return gw;
  }
  const { segs, uniques } = embeddingSegments(hostIds, vocab);
  gpu.clear(gw.buffer, 0, gw.size * 4);
  if (uniques === 0) return gw;
  const s = new Tensor(gpu, [segs.length], 'i32', undefined, 'embedding segments');
  gpu.upload(s.buffer, segs);
  gpu.launch(embeddingKernel.scatter_sorted, {
    params: { tokens: ids.size, dim, vocab, uniques },
    buffers: { segs: s.buffer, GY: gy.buffer, GW: gw.buffer },
    workgroups: grid1d(uniques * dim, 64),
    label: `${label} sorted`,
  });
  // Back to the pool now: the queue runs the dispatch before any later use of the buffer.
  s.dispose();
  return gw;
}
