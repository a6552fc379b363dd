// Writes the evaluation crops of a manifest (small preset, depth fastest [X, Y, Z]) and labels
// once, so that probes do not pay for decoding and resampling every step.
//   PROBE_DATA=DIR/manifest.jsonl CACHE=/tmp/g7crops node scripts/test-only.mjs scripts/issue7/cache-crops.test.ts
import { suite } from 'uvu';
import { mkdirSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { CtDataset } from '../../src/data/dataset.ts';
import { preset } from '../../src/train/config.ts';
import { toDepthFastest } from '../../src/model/inputs.ts';
const t = suite('cache');
t('cache crops', async () => {
  const cfg = preset('small');
  const man = process.env.PROBE_DATA!;
  const out = process.env.CACHE ?? '/tmp/g7crops';
  mkdirSync(out, { recursive: true });
  for (const split of (process.env.SPLITS ?? 'train,test').split(',') as ('train' | 'test')[]) {
    const ds = await CtDataset.open(man, { split, config: cfg.data });
    const fd = openSync(join(out, `${split}.f32`), 'w');
    const labels: number[][] = [];
    let shape: number[] = [];
    for (let i = 0; i < ds.size; i++) {
      const c = await ds.prepare(i, 'eval', 0);
      const [Z, Y, X] = c.shape;
      shape = [X, Y, Z];
      const v = new Float32Array(X * Y * Z);
      toDepthFastest(c.volume, c.shape, v, 0);
      writeSync(fd, new Uint8Array(v.buffer));
      labels.push(Array.from(c.labels));
    }
    closeSync(fd);
    writeFileSync(join(out, `${split}.json`), JSON.stringify({ shape, n: labels.length, labels, posWeight: ds.stats().posWeight }));
    console.log(`${split}: ${labels.length} crops of ${shape}`);
  }
});
t.run();
