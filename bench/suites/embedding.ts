// The embedding's weight gradient (a scatter-add of gy rows into dW by token id) at RadFinder's
// vocabulary (Qwen3's 151,669 ids): grouped by id on the host (ids made with fromInts, as the
// text model's are) against the scan of every id per vocabulary row (ids the host does not
// know); the peer is tfjs's unsortedSegmentSum, the op its gather gradient runs.
import { embeddingBackward } from '../../src/launch/embedding.ts';
import { fromInts, tensor } from '../../src/ops/creation.ts';
import { Rng } from '../../src/rng.ts';
import { Tensor } from '../../src/tensor.ts';
import { checkRow, hostRandn, runCase, type Ctx } from '../lib/case.ts';
import { kernelsOf, opRunner } from '../lib/ours.ts';

export async function benchEmbedding(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  // RadFinder's vocabulary; a width that fits one lavapipe binding (128 MiB: the release's 1024
  // would be 621 MB); 8 reports of 512 tokens. Ids drawn with a skew towards small ids, so that
  // frequent tokens repeat as in text.
  const V = 151_669, D = ctx.quick ? 64 : 128, T = 4096;
  const rng = new Rng(0x3b);
  const ids = Int32Array.from({ length: T }, () => Math.floor(V * rng.uniform(0, 1) ** 3));
  const gy = hostRandn(T * D, 0x3c);
  const G = tensor(gpu, gy, [T, D], 'gy');
  const hostIds = fromInts(gpu, ids, [T], 'ids');
  const deviceIds = new Tensor(gpu, [T], 'i32', undefined, 'device ids');
  gpu.upload(deviceIds.buffer, ids);
  const ref = new Float64Array(V * D);
  ids.forEach((id, i) => { for (let c = 0; c < D; c++) ref[id * D + c] += gy[i * D + c]; });
  const tIds = peer?.tf.tensor(ids, [T], 'int32');
  const tGy = peer?.tf.tensor(gy, [T, D], 'float32');
  let peerReuse = null;
  for (const [variant, call] of [
    ['grouped by id (host ids)', () => embeddingBackward([V, D], hostIds, G, ids)],
    ['scan per vocabulary row (device ids)', () => embeddingBackward([V, D], deviceIds, G)],
  ] as const) {
    const { row, peerRun } = await runCase(ctx, {
      section: 'embedding',
      op: 'embedding backward (scatter-add)',
      shape: `${V}x${D}, ${T} ids`,
      variant,
      metric: 'GB/s',
      // dW written once, gy and the ids read once.
      work: 4 * (V * D + T * D + T),
      // Wall clock: the grouped path clears dW with a clear command, which no timestamp covers.
      ours: () => ({ ...opRunner(gpu, call), timestamps: undefined }),
      kernels: () => kernelsOf(gpu, call),
      peer: peerReuse ? { reuse: peerReuse } : { op: peer && tIds && tGy ? () => peer.tf.unsortedSegmentSum(tGy, tIds, V) : null },
    });
    peerReuse = peerRun;
    await checkRow(row, call, peerRun.out, (out) => {
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
      return worst;
    });
    ctx.rows.push(row);
  }
  tIds?.dispose();
  tGy?.dispose();
  for (const t of [G, hostIds, deviceIds]) t.dispose();
  gpu.trim();
}
