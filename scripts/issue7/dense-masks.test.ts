// Issue 7 experiment (sessions 26-27), not part of the model: where each finding is, for a dense
// (per-patch) warm-up of the window backbone (dense-warmup.ts). For every case of the splits in
// SPLITS (default train; test too for dense-warmup's token-level scores) of a synthetic
// dataset written with seed SEED (default 0, the main job's), each present finding
// is rendered with and without it (the noise is the same in both, so they differ only where
// the finding is), the 0/1 difference is resampled as the loader resamples the volume (RAS, the
// preset's spacing, linear), and voxels covered at least half set the label's bit.
//   DATA=runs/quickstart/data OUT=/tmp/dw SHARD=0 SHARDS=2 node scripts/test-only.mjs scripts/issue7/dense-masks.test.ts
// Writes OUT/<id>.bin: u32 nx, ny, nz, then nx*ny*nz u32 label bits (x fastest).
import { suite } from 'uvu';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { sampleCase, renderVolume } from '../../src/data/synthetic/index.ts';
import { reorientToRas, resample } from '../../src/data/prep.ts';
import { preset } from '../../src/train/config.ts';
import type { Volume } from '../../src/data/volume.ts';

const t = suite('dense-masks');
t('masks', () => {
  const cfg = preset('small');
  const data = process.env.DATA ?? 'runs/quickstart/data';
  const out = process.env.OUT ?? '/tmp/dw';
  const seed = Number(process.env.SEED ?? 0);
  const shard = Number(process.env.SHARD ?? 0), shards = Number(process.env.SHARDS ?? 1);
  // The training split's masks train; the test split's only score (token-level AUROC).
  const splits = (process.env.SPLITS ?? 'train').split(',');
  mkdirSync(out, { recursive: true });
  const entries = readFileSync(join(data, 'manifest.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const t0 = performance.now();
  let done = 0;
  entries.forEach((e, i) => {
    if (!splits.includes(e.split) || i % shards !== shard) return;
    const path = join(out, `${e.id}.bin`);
    if (existsSync(path)) return;
    const idx = Number(e.id.slice(6));
    const { spec, labels } = sampleCase(seed, idx, {});
    if (labels.join() !== e.labels.join()) throw new Error(`${e.id}: labels differ from the manifest's`);
    const full = renderVolume(spec).volume;
    let bits: Uint32Array | null = null;
    let shape: number[] = [];
    const prep = (v: Volume) => resample(reorientToRas(v), { spacing: cfg.data.spacing });
    for (let l = 0; l < labels.length; l++) {
      if (labels[l] !== 1) continue;
      const without = renderVolume(spec, [l]).volume;
      const d = new Float32Array(full.data.length);
      for (let k = 0; k < d.length; k++) d[k] = full.data[k] !== without.data[k] ? 1 : 0;
      const r = prep({ ...full, data: d });
      if (!bits) {
        bits = new Uint32Array(r.data.length);
        shape = r.shape;
      }
      for (let k = 0; k < r.data.length; k++) if (r.data[k]! >= 0.5) bits[k] |= 1 << l;
    }
    if (!bits) {
      shape = prep({ ...full, data: new Float32Array(full.data.length) }).shape;
      bits = new Uint32Array(shape[0]! * shape[1]! * shape[2]!);
    }
    const buf = new Uint32Array(3 + bits.length);
    buf.set(shape, 0);
    buf.set(bits, 3);
    writeFileSync(path, buf);
    if (++done % 50 === 0) console.log(`${done} cases, ${((performance.now() - t0) / done).toFixed(0)} ms each`);
  });
  console.log(`shard ${shard}: ${done} cases in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
});
t.run();
