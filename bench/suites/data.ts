// CPU data preparation.
import { createVolume } from '../../src/data/volume.ts';
import { resample } from '../../src/data/prep.ts';
import { runCase, type Ctx } from '../lib/case.ts';

/** CPU data preparation: the bound is a 512 x 512 x 300 resample in under 5 s. */
export async function benchData(ctx: Ctx): Promise<void> {
  const v = createVolume([512, 512, 300], { spacing: [0.7, 0.7, 1.0] });
  for (let i = 0; i < v.data.length; i++) v.data[i] = (i % 2001) - 1000;
  const { row } = await runCase(ctx, {
    section: 'data',
    op: 'resample 0.7x0.7x1 -> 0.75x0.75x3 mm (CPU)',
    shape: '512x512x300',
    variant: 'trilinear',
    metric: 'GB/s',
    work: v.data.length * 4,
    ours: () => ({ run: () => void resample(v, { spacing: [0.75, 0.75, 3] }), sync: async () => {} }),
    peer: { op: null, note: 'no peer (host code)' },
  });
  ctx.rows.push(row);
}
