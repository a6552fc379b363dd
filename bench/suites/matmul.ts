// C = A @ B (and A @ Bᵀ) in every matmul variant the device has, against tf.matMul.
import { Rng, tensor } from '../../src/ops/creation.ts';
import { matmul } from '../../src/ops/matmul.ts';
import type { Tuning } from '../../src/gpu/tuning.ts';
import { checkRow, hostRandn, runCase, shapeStr, type Ctx, type PeerPlan } from '../lib/case.ts';
import { kernelsOf, opRunner } from '../lib/ours.ts';
import type { TfTensor } from '../lib/peer.ts';

interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transB: boolean;
}

/** Max |ours - fp64| over sampled entries of C = A @ op(B). */
function refDiff(a: Float32Array, b: Float32Array, c: Float32Array, s: MatmulShape, samples = 64): number {
  const rng = new Rng(1234);
  let worst = 0;
  for (let t = 0; t < samples; t++) {
    const i = rng.int(0, s.M - 1);
    const j = rng.int(0, s.N - 1);
    let acc = 0;
    for (let k = 0; k < s.K; k++) acc += a[i * s.K + k] * (s.transB ? b[j * s.K + k] : b[k * s.N + j]);
    worst = Math.max(worst, Math.abs(c[i * s.N + j] - acc));
  }
  return worst;
}

export async function benchMatmul(ctx: Ctx): Promise<void> {
  const { gpu, peer } = ctx;
  const square = (n: number) => ({ M: n, N: n, K: n, transB: false });
  const shapes: MatmulShape[] = ctx.quick
    ? [square(256), square(1024), { M: 1024, N: 1024, K: 1024, transB: true }]
    : [...[256, 512, 1024, 2048].map(square), { M: 4096, N: 1024, K: 256, transB: false }, { M: 1024, N: 1024, K: 1024, transB: true }];
  const allVariants: Tuning['matmul']['variant'][] = [...(gpu.subgroupMinSize >= 8 ? (['subgroup'] as const) : []), 'tiled'];
  for (const s of shapes) {
    const aShape = [s.M, s.K];
    const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
    const ha = hostRandn(s.M * s.K, 1);
    const hb = hostRandn(s.K * s.N, 2);
    const a = tensor(gpu, ha, aShape, 'A');
    const b = tensor(gpu, hb, bShape, 'B');
    const shape = `${shapeStr(aShape)}@${shapeStr(bShape)}${s.transB ? 'ᵀ' : ''}`;
    const op = s.transB ? 'matmul transB' : 'matmul';

    // The peer gets the same data; it is measured alongside the first (default) variant and
    // that measurement is reused for the others.
    let ta: TfTensor | null = null;
    let tb: TfTensor | null = null;
    let peerPlan: PeerPlan;
    try {
      if (peer) {
        ta = peer.tf.tensor(ha, aShape, 'float32');
        tb = peer.tf.tensor(hb, bShape, 'float32');
      }
      const [pa, pb] = [ta, tb];
      peerPlan = { op: pa && pb ? () => peer!.tf.matMul(pa, pb, false, s.transB) : () => { throw new Error('no peer inputs'); } };
    } catch (e) {
      peerPlan = { reuse: { side: null, note: `tfjs failed: ${(e as Error).message}`, programs: '', out: null } };
    }

    // --quick: the transposed case with the default variant only.
    const variants = ctx.quick && s.transB ? allVariants.slice(0, 1) : allVariants;
    for (const v of variants) {
      gpu.tuning.matmul.variant = v;
      const call = () => matmul(a, b, { transB: s.transB });
      const { row, peerRun } = await runCase(ctx, {
        section: 'matmul',
        op,
        shape,
        variant: v,
        metric: 'GFLOP/s',
        work: 2 * s.M * s.N * s.K,
        ours: () => opRunner(gpu, call),
        kernels: () => kernelsOf(gpu, call),
        peer: peerPlan,
      });
      await checkRow(row, call, peerRun.out, (out) => refDiff(ha, hb, out, s), 'f64 (64 samples)');
      ctx.rows.push(row);
      peerPlan = { reuse: peerRun };
    }
    ta?.dispose();
    tb?.dispose();
    gpu.tuning.matmul.variant = 'auto';
    a.dispose();
    b.dispose();
    gpu.trim();
  }
}
