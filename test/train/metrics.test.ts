// The progress line's ETA (src/train/metrics.ts etaSeconds): the first epoch's steps wait for
// volumes to be read, the later ones do not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { etaSeconds, formatMetricLine } from '../../src/train/metrics.ts';

test('ETA: steps still reading volumes at the measured rate, the rest at the warm rate', () => {
  // 100 steps left, 30 of them before every case has been read once: 30 x 1.2 s + 70 x 0.55 s.
  assert.is(etaSeconds(1200, 100, 30, 550, false), (30 * 1200 + 70 * 550) / 1000);
  // Past the first epoch the measured time stands, waits included (a dataset larger than its cache).
  assert.is(etaSeconds(1200, 100, 0, 550, false), 120);
  assert.is(etaSeconds(1200, 100, -5, 550, false), 120);
  // More reading steps than steps left: all at the measured rate.
  assert.is(etaSeconds(1200, 10, 40, 550, false), 12);
  // No warm measurement (a short run): the plain product.
  assert.is(etaSeconds(500, 8, 4, null, false), 4);
  // A warm step slower than the measured one (a slow moment) is capped at the measured rate.
  assert.is(etaSeconds(100, 10, 2, 300, false), 1);
  // The first step alone says nothing of the rest (pipeline compilation); nothing left is 0 s.
  assert.is(etaSeconds(1200, 799, 130, 550, true), null);
  assert.is(etaSeconds(1200, 0, 0, null, true), 0);
});

test('progress line: the wait for volumes and the ETA, or "-" without one', () => {
  const base = { step: 20, lr: 1e-3, loss: 2.5, siglip: 2, prompts: 0.9, localization: 1.1, gradNorm: 3.2, msPerStep: 1180, dataWaitMs: 640, liveBytes: 2 ** 30 };
  const s = formatMetricLine(base, 800, 512.4, 0);
  assert.match(s, /1180 ms\/step \(640 reading data\)  ETA 512 s  GPU /);
  assert.match(formatMetricLine({ ...base, step: 1 }, 800, null, 0), /ETA -  GPU /);
  assert.not.match(formatMetricLine({ ...base, dataWaitMs: 0 }, 800, 5, 0), /reading/);
});

test.run();
