// 3D patch embedding (Conv3d, kernel = stride = 16x16x4, 1 channel), forward and backward.
import { Rng, tensor } from '../../src/ops/creation.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { permute } from '../../src/ops/layout.ts';
import { patchEmbed3d } from '../../src/ops/patch3d.ts';
import { checkRow, hostRandn, preparePeer, settlePeer, shapeStr, type Ctx } from '../lib/case.ts';
import { measureInterleaved, type Runner } from '../lib/measure.ts';
import { kernelsOf, opRunner, tensorsRunner } from '../lib/ours.ts';
import type { TfTensor } from '../lib/peer.ts';
import { newRow, setOurs, setPeer } from '../lib/row.ts';

const [p0, p1, p2] = [16, 16, 4];
const K = p0 * p1 * p2;

/** Max |ours - f64| over 64 sampled outputs of the patch embedding of volume hx
 * [B, 1, X, Y, Z] by weight hw [E, K] and bias hb [E] (out: [M, E]). */
function sampleDiff(out: Float32Array, hx: Float32Array, hw: Float32Array, hb: Float32Array, [B, X, Y, Z, E]: number[]): number {
  const [nH, nW, nD] = [X / p0, Y / p1, Z / p2];
  const M = B * nH * nW * nD;
  const rng = new Rng(7);
  let worst = 0;
  for (let s = 0; s < 64; s++) {
    const m = rng.int(0, M - 1), e = rng.int(0, E - 1);
    const bb = Math.floor(m / (nH * nW * nD)), t = m % (nH * nW * nD);
    const [ph, pw, pd] = [Math.floor(t / (nW * nD)), Math.floor(t / nD) % nW, t % nD];
    let acc = hb[e];
    for (let i = 0; i < p0; i++) for (let j = 0; j < p1; j++) for (let l = 0; l < p2; l++)
      acc += hw[e * K + (i * p1 + j) * p2 + l] * hx[((bb * X + ph * p0 + i) * Y + pw * p1 + j) * Z + pd * p2 + l];
    worst = Math.max(worst, Math.abs(out[m * E + e] - acc));
  }
  return worst;
}

/**
 * Patch embedding (Conv3d, kernel = stride = 16x16x4, 1 channel) forward and backward (dW +
 * dbias; the volume is data): the in-place kernels of kernels/patch3d.wgsl against the
 * previous path, a permute copy (im2col) then our subgroup matmul (+ sum for dbias). The
 * peer runs tf.conv3d on the same data (channels-last, same token order) for the forward.
 */
export async function benchPatch(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  const shapes: [number, number, number, number, number][] = ctx.quick
    ? [[8, 64, 64, 128, 64], [1, 128, 128, 32, 1080]]
    : [[8, 64, 64, 128, 64], [8, 64, 64, 128, 256], [1, 128, 128, 32, 1080]];
  for (const [B, X, Y, Z, E] of shapes) {
    const [nH, nW, nD] = [X / p0, Y / p1, Z / p2];
    const M = B * nH * nW * nD;
    const hx = hostRandn(B * X * Y * Z, 41);
    const hw = hostRandn(E * K, 42).map((v) => v / 32);
    const hb = hostRandn(E, 43);
    const x = tensor(gpu, hx, [B, 1, X, Y, Z], 'volume');
    const w = tensor(gpu, hw, [E, 1, p0, p1, p2], 'weight');
    const b = tensor(gpu, hb, [E], 'bias');
    const w2 = w.view([E, K]); // the old path's weight as a matrix, a leaf of its own graph
    w.requiresGrad = b.requiresGrad = w2.requiresGrad = true;
    const g = tensor(gpu, hostRandn(M * E, 44), [B, nH * nW * nD, E], 'grad');
    const g2 = g.view([M, E]);
    const im2col = () => {
      const v = x.view([B, 1, nH, p0, nW, p1, nD, p2]);
      const pt = permute(v, [0, 2, 4, 6, 1, 3, 5, 7]);
      const a = pt.view([M, K]);
      v.dispose();
      pt.dispose();
      return a;
    };
    const ops = {
      new: () => patchEmbed3d(x, w, b),
      old: () => {
        const a = im2col();
        const y = matmul(a, w2, { transB: true, bias: b });
        a.dispose();
        return y;
      },
    };
    // Graphs kept for the backward rows (their rules are what is timed).
    const yNew = ops.new();
    const aOld = im2col();
    const yOld = matmul(aOld, w2, { transB: true, bias: b });
    const none = () => null;
    const backs = { new: () => yNew.node!.backward(g, none), old: () => yOld.node!.backward(g2, none) };

    let tx: TfTensor | null = null, tw: TfTensor | null = null, tb: TfTensor | null = null;
    let peerPlan: { op: (() => TfTensor) | null; note?: string } = { op: null, note: ctx.quick && peer ? 'tfjs conv3d skipped in --quick (seconds per call)' : ctx.peerMissing };
    if (peer && !ctx.quick) {
      // tf.conv3d and tf.reshape exist in tfjs-core; bench/lib/peer.ts types only what other sections use.
      const tf = peer.tf as typeof peer.tf & { conv3d(x: TfTensor, f: TfTensor, strides: number[], pad: 'valid'): TfTensor; reshape(x: TfTensor, shape: number[]): TfTensor };
      tx = tf.tensor(hx, [B, X, Y, Z, 1], 'float32');
      // [E, 1, p0, p1, p2] -> tfjs's [p0, p1, p2, in, out].
      const hwt = new Float32Array(E * K);
      for (let e = 0; e < E; e++) for (let k = 0; k < K; k++) hwt[k * E + e] = hw[e * K + k];
      tw = tf.tensor(hwt, [p0, p1, p2, 1, E], 'float32');
      tb = tf.tensor(hb, [E], 'float32');
      // (2D before the bias add: tfjs's rank-5 broadcast add fails to compile here.)
      peerPlan = { op: () => tf.tidy(() => tf.add(tf.reshape(tf.conv3d(tx!, tw!, [p0, p1, p2], 'valid'), [M, E]), tb!)) };
    }
    const shape = `${shapeStr([B, 1, X, Y, Z])}*${shapeStr([E, 1, p0, p1, p2])}`;
    for (const dir of ['forward', 'backward'] as const) {
      const op = dir === 'forward' ? 'patch embed 16x16x4' : 'patch embed backward (dW, dbias)';
      ctx.progress(`${op} ${shape}: in place and permute + matmul${dir === 'forward' && peer && !ctx.quick ? ' and tfjs conv3d' : ''}, interleaved`);
      // New and old path (and tfjs) sampled in alternating rounds, so that both see the same load.
      const runners: Runner[] = dir === 'forward' ? [opRunner(gpu, ops.new), opRunner(gpu, ops.old)] : [tensorsRunner(gpu, backs.new), tensorsRunner(gpu, backs.old)];
      const { run: peerRun, runner: peerRunner } = await preparePeer(ctx, dir === 'forward' ? peerPlan : { op: null, note: 'no peer for the backward' });
      const results = await measureInterleaved(peerRunner ? [...runners, peerRunner] : runners, ctx.budget);
      if (peerRunner) settlePeer(ctx, peerRun, peerRunner, results[2]);
      for (const [i, v] of (['new', 'old'] as const).entries()) {
        const row = newRow({ section: 'patch', op, shape, variant: v === 'new' ? 'in place (patch3d.wgsl)' : 'permute copy + matmul', metric: 'GFLOP/s', work: 2 * M * K * E });
        setOurs(row, results[i]);
        if (dir === 'forward') row.kernels = await kernelsOf(gpu, ops[v]);
        setPeer(row, peerRun);
        if (dir === 'forward') await checkRow(row, ops[v], peerRun.out, (out) => sampleDiff(out, hx, hw, hb, [B, X, Y, Z, E]), 'f64 (64 samples)');
        ctx.rows.push(row);
      }
    }
    for (const t of [x, w, w2, b, g, g2, yNew, aOld, yOld]) t.dispose();
    for (const t of [tx, tw, tb]) t?.dispose();
    gpu.trim();
  }
}
