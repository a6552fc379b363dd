// Attention forward, softmax(q k^T / sqrt(D)) v.
import { tensor } from '../../src/ops/creation.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { mulScalar } from '../../src/ops/elementwise.ts';
import { softmax } from '../../src/ops/softmax.ts';
import { attention } from '../../src/ops/attention.ts';
import { attentionVariantFor } from '../../src/launch/attention.ts';
import { checkRow, hostRandn, runCase, type Ctx, type PeerPlan } from '../lib/case.ts';
import { kernelsOf, opRunner } from '../lib/ours.ts';
import type { TfTensor } from '../lib/peer.ts';
import type { PeerRun } from '../lib/row.ts';

/**
 * Attention forward, softmax(q k^T / sqrt(D)) v: our fused kernel (both variants), our
 * composite (matmul, softmax, matmul) and tfjs's composite, on one window's tokens; also
 * the RadFinder head widths 90 (vision, padded to 92 inside) and 128 (text), and the small
 * preset's window attention (128 windows x heads of 129 tokens, head width 24).
 */
export async function benchAttention(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  // 128 x 129 x 24: the small preset's window attention as the training step runs it (8 crops
  // x 4 windows x 4 heads, 128 tokens and the window's class token, head width 96 / 4); its
  // fourth entry [B, H] also times it in the model's layout, [B, L, H, D] (blhd).
  const shapes: [number, number, number, [number, number]?][] = ctx.quick
    ? [[8, 512, 32]]
    : [[8, 512, 32], [4, 1024, 64], [8, 256, 90], [8, 256, 128], [128, 129, 24, [32, 4]]];
  for (const [BH, L, D, blhd] of shapes) {
    const shape = [1, BH, L, D];
    const n = BH * L * D;
    const [hq, hk, hv] = [31, 32, 33].map((seed) => hostRandn(n, seed));
    const [q, k, v] = [hq, hk, hv].map((h, i) => tensor(gpu, h, shape, `qkv${i}`));
    const scale = 1 / Math.sqrt(D);
    let peerPlan: PeerPlan = { op: null, note: ctx.peerMissing };
    let tq: TfTensor | null = null, tk: TfTensor | null = null, tv: TfTensor | null = null;
    if (peer) {
      const tf = peer.tf;
      [tq, tk, tv] = [hq, hk, hv].map((h) => tf.tensor(h, [BH, L, D], 'float32'));
      peerPlan = { op: () => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(tq!, tk!, false, true), tf.scalar(scale))), tv!)) };
    }
    const work = 4 * BH * L * L * D;
    const label = `${BH}x${L}x${D} (B*H x L x D)`;
    let peerReuse: PeerRun | null = null;
    // 'fused' is the automatic choice (subgroup on CPU adapters, tiled on GPUs); the others
    // are forced. --quick skips the tiled variant where it is not the automatic one.
    const auto = (gpu.tuning.attention.variant = 'auto', attentionVariantFor(gpu));
    for (const variant of ['fused', 'fused-plain', 'fused-tiled', 'composite'] as const) {
      if (variant === 'fused-plain' && (gpu.subgroupMinSize < 4 || auto === 'plain')) continue;
      if (variant === 'fused-tiled' && (auto === 'tiled' || ctx.quick)) continue;
      gpu.tuning.attention.variant = variant === 'fused-plain' ? 'plain' : variant === 'fused-tiled' ? 'tiled' : 'auto';
      const op = variant === 'composite'
        ? () => matmul(softmax(mulScalar(matmul(q, k, { transB: true }), scale)), v)
        : () => attention(q, k, v);
      const { row, peerRun } = await runCase(ctx, {
        section: 'attention',
        op: 'attention forward',
        shape: label,
        variant: variant === 'fused' ? `fused (${auto})` : variant,
        metric: 'GFLOP/s',
        work,
        ours: () => opRunner(gpu, op),
        kernels: () => kernelsOf(gpu, op),
        peer: peerReuse ? { reuse: peerReuse } : peerPlan,
      });
      peerReuse = peerRun;
      await checkRow(row, op, peerRun.out, (out) => attentionRefDiff(hq, hk, hv, out, 1, BH, L, D, 'bhld'), 'f64 (16 rows)');
      ctx.rows.push(row);
    }
    gpu.tuning.attention.variant = 'auto';
    if (blhd) {
      // The same work in the layout the model runs it in: [windows, L, heads, D] (blhd), read
      // in place by the kernel with a head's tokens H * D floats apart.
      const bl = [blhd[0], L, blhd[1], D];
      const [qb, kb, vb] = [hq, hk, hv].map((h, i) => tensor(gpu, h, bl, `blhd${i}`));
      const op = () => attention(qb, kb, vb, { layout: 'blhd' });
      const { row } = await runCase(ctx, {
        section: 'attention',
        op: 'attention forward',
        shape: `${bl.join('x')} (B x L x H x D)`,
        variant: `fused (${auto}), blhd`,
        metric: 'GFLOP/s',
        work,
        ours: () => opRunner(gpu, op),
        kernels: () => kernelsOf(gpu, op),
        peer: peerReuse ? { reuse: peerReuse } : peerPlan,
      });
      // tfjs's output is in the other layout: the float64 reference alone checks this row.
      await checkRow(row, op, null, (out) => attentionRefDiff(hq, hk, hv, out, blhd[0], blhd[1], L, D, 'blhd'), 'f64 (16 rows)');
      ctx.rows.push(row);
      for (const x of [qb, kb, vb]) x.dispose();
    }
    for (const x of [q, k, v]) x.dispose();
    for (const x of [tq, tk, tv]) x?.dispose();
    gpu.trim();
  }
}

/**
 * Max |out - float64 attention| over 16 query rows spread over the heads and positions:
 * q, k, v and out hold B x H heads of L tokens of width D, laid out [B, H, L, D] ('bhld') or
 * [B, L, H, D] ('blhd').
 */
export function attentionRefDiff(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, B: number, H: number, L: number, D: number, layout: 'bhld' | 'blhd'): number {
  const at = layout === 'bhld' ? (b: number, h: number, i: number) => ((b * H + h) * L + i) * D : (b: number, h: number, i: number) => ((b * L + i) * H + h) * D;
  const scale = 1 / Math.sqrt(D);
  const s = new Float64Array(L);
  let worst = 0;
  for (let r = 0; r < 16; r++) {
    const bh = Math.floor((r * (B * H - 1)) / 15);
    const [b, h, i] = [Math.floor(bh / H), bh % H, Math.floor((r * 7919) % L)];
    const qi = at(b, h, i);
    let max = -Infinity;
    for (let j = 0; j < L; j++) {
      const kj = at(b, h, j);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[qi + d] * k[kj + d];
      s[j] = dot * scale;
      max = Math.max(max, s[j]);
    }
    let sum = 0;
    for (let j = 0; j < L; j++) sum += (s[j] = Math.exp(s[j] - max));
    for (let d = 0; d < D; d++) {
      let o = 0;
      for (let j = 0; j < L; j++) o += s[j] * v[at(b, h, j) + d];
      const diff = Math.abs(out[qi + d] - o / sum);
      if (Number.isNaN(diff)) return NaN;
      if (diff > worst) worst = diff;
    }
  }
  return worst;
}
