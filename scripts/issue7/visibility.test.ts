// Usage: N=60 SEED=0 node scripts/test-only.mjs scripts/issue7/visibility.test.ts
// For each present finding: render with and without it, prepare both as evaluation does (small
// preset), and count the model-input voxels it changes by more than 50 HU (0.025 in unit scale).
import { suite } from 'uvu';
import { sampleCase, renderVolume } from '../../src/data/synthetic/index.ts';
import { prepareForModel } from '../../src/data/crop.ts';
import { preset } from '../../src/train/config.ts';
import { LABELS } from '../../src/data/labels.ts';
const t = suite('vis');
t('visibility', () => {
  const cfg = preset('small');
  const N = Number(process.env.N ?? 60);
  const seed = Number(process.env.SEED ?? 0);
  const per: Record<number, number[]> = {};
  const perSum: Record<number, number[]> = {};
  for (let i = 0; i < N; i++) {
    const { spec, labels } = sampleCase(seed, i, {});
    const full = prepareForModel(renderVolume(spec).volume, cfg.data).volume.data;
    for (let l = 0; l < labels.length; l++) {
      if (!labels[l]) continue;
      const without = prepareForModel(renderVolume(spec, [l]).volume, cfg.data).volume.data;
      let n = 0, s = 0;
      for (let k = 0; k < full.length; k++) { const d = Math.abs(full[k]! - without[k]!); if (d > 0.025) n++; s += d; }
      (per[l] ??= []).push(n);
      (perSum[l] ??= []).push(s * 2000);
    }
  }
  for (let l = 0; l < LABELS.length; l++) {
    const a = (per[l] ?? []).slice().sort((x, y) => x - y);
    const q = (p: number) => a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))] : NaN;
    const zero = a.filter((x) => x === 0).length;
    console.log(`${String(l).padStart(2)} ${LABELS[l]!.padEnd(36)} n=${a.length} invisible=${zero} voxels>50HU p10=${q(0.1)} median=${q(0.5)} p90=${q(0.9)}`);
  }
});
t.run();
