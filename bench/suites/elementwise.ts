// Bandwidth of the elementwise kernels (add, exp) and of a raw buffer copy.
import { add, exp } from '../../src/ops/elementwise.ts';
import { hostRandn, runCase, type Ctx } from '../lib/case.ts';
import { benchSimple } from '../lib/simple.ts';

/** copyBufferToBuffer through gpu.copy: no dispatch, so no timestamp; wall clock only. */
async function benchRawCopy(ctx: Ctx, n: number): Promise<void> {
  const { gpu } = ctx;
  const bytes = 4 * n;
  const src = gpu.acquire(bytes, 'bench copy src');
  const dst = gpu.acquire(bytes, 'bench copy dst');
  gpu.upload(src, hostRandn(n, 5));
  const { row } = await runCase(ctx, {
    section: 'elementwise',
    op: 'copy (op: copyBufferToBuffer)',
    shape: `${n / 2 ** 20}M f32`,
    variant: 'command',
    metric: 'GB/s',
    work: 2 * bytes,
    ours: () => ({ run: () => gpu.copy(src, 0, dst, 0, bytes), sync: () => gpu.sync() }),
    peer: { op: null, note: 'the copy() op issues this copy command; timestamp queries time passes, not copies: wall clock' },
  });
  ctx.rows.push(row);
  gpu.release(src);
  gpu.release(dst);
  gpu.trim();
}

export async function benchElementwise(ctx: Ctx): Promise<void> {
  const sizes = ctx.quick ? [4 * 2 ** 20] : [4 * 2 ** 20, 16 * 2 ** 20];
  for (const n of sizes) {
    const shape = [n / 1024, 1024];
    await benchSimple(
      ctx,
      {
        section: 'elementwise',
        op: 'add',
        shape,
        inputs: 2,
        bytes: (m) => 3 * 4 * m,
        ours: ([a, b]) => add(a, b),
        peer: ([a, b], p) => p.tf.add(a, b),
        ref: ([a, b], i) => a[i] + b[i],
      },
      3,
    );
    await benchSimple(
      ctx,
      {
        section: 'elementwise',
        op: 'exp',
        shape,
        inputs: 1,
        bytes: (m) => 2 * 4 * m,
        ours: ([x]) => exp(x),
        peer: ([x], p) => p.tf.exp(x),
        ref: ([x], i) => Math.exp(x[i]),
      },
      6,
    );
    await benchRawCopy(ctx, n);
  }
}
