// Issue 7 experiment (session 27): are the dense-warm-up masks (dense-masks.test.ts) in the
// loader's voxel grid? For N training cases, the synthetic case rendered in memory and
// prepared as the masks were (RAS, the preset's spacing) against the loader's pre-crop volume
// read from the NIfTI file; both HU-scaled. Prints the shapes and the largest difference (the
// file stores int16 HU: up to 0.5 HU of rounding, 0.00025 after scaling, more at the resample).
//   DATA=runs/quickstart/data N=5 node scripts/test-only.mjs scripts/issue7/dense-align.test.ts
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { sampleCase, renderVolume } from '../../src/data/synthetic/index.ts';
import { reorientToRas, resample } from '../../src/data/prep.ts';
import { huToUnitInPlace } from '../../src/data/crop.ts';
import { CtDataset } from '../../src/data/dataset.ts';
import { preset } from '../../src/train/config.ts';

const t = suite('dense-align');
t('masks in the loader grid', async () => {
  const cfg = preset('small');
  const data = process.env.DATA ?? 'runs/quickstart/data';
  const ds = await CtDataset.open(join(data, 'manifest.jsonl'), { split: 'train', config: cfg.data, cache: false });
  const n = Number(process.env.N ?? 5);
  for (let i = 0; i < n; i++) {
    const id = ds.entry(i).id;
    const { spec } = sampleCase(0, Number(id.slice(6)), {});
    const v = renderVolume(spec).volume;
    huToUnitInPlace(v.data);
    const mine = resample(reorientToRas(v), { spacing: cfg.data.spacing });
    const theirs = await ds.resampled(i);
    let maxd = 0, sum = 0;
    for (let k = 0; k < mine.data.length; k++) {
      const d = Math.abs(mine.data[k]! - theirs.data[k]!);
      maxd = Math.max(maxd, d);
      sum += d;
    }
    console.log(`${id}: ${mine.shape.join('x')} vs ${theirs.shape.join('x')}; max |diff| ${maxd.toExponential(2)}, mean ${(sum / mine.data.length).toExponential(2)}`);
    assert.equal(mine.shape, theirs.shape);
    assert.ok(sum / mine.data.length < 1e-3);
  }
});
t.run();
