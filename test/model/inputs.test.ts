// The data boundary: the dataset prepares volumes x fastest ([Z, Y, X]); the model takes
// RadFinder's layout, depth fastest ([X, Y, Z]).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toDepthFastest, uploadVolumes } from '../../src/model/inputs.ts';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import type { PreparedCase } from '../../src/data/dataset.ts';

const t = suite('model inputs');
t.after.each(resetTuning);

t('toDepthFastest: voxel (x, y, z) lands at (x Y + y) Z + z, at the offset (inside one 8x8 tile and across partial tiles)', () => {
  for (const [Z, Y, X] of [
    [3, 2, 4],
    [19, 3, 11],
    [1, 1, 1],
  ]) {
    const src = Float32Array.from({ length: Z * Y * X }, (_, i) => i);
    const out = new Float32Array(5 + Z * Y * X).fill(-1);
    toDepthFastest(src, [Z, Y, X], out, 5);
    for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) assert.is(out[5 + (x * Y + y) * Z + z], src[(z * Y + y) * X + x], `${Z}x${Y}x${X}: voxel ${x},${y},${z}`);
    assert.equal([...out.subarray(0, 5)], [-1, -1, -1, -1, -1]);
  }
});

// The batch's volume tensor: transposed on the host, or uploaded x fastest and permuted on the
// device (gpu.tuning.volumeOnDevice; GPUs by default), in each layout of the device's copy.
// Exact: both only move values. Shapes off every tile; two cases.
t('uploadVolumes: host and device transposition give the same [B, 1, X, Y, Z]; a non-finite voxel is named', async () => {
  const gpu = await testGpu();
  for (const [Z, Y, X] of [[19, 3, 11], [1, 1, 1], [40, 33, 9]] as [number, number, number][]) {
    const n = Z * Y * X;
    const cases = [0, 1].map((b) => ({ id: `case${b}`, shape: [Z, Y, X], volume: Float32Array.from({ length: n }, (_, i) => b * 1e5 + i) }) as unknown as PreparedCase);
    const runs: [string, Float32Array][] = [];
    for (const [name, onDevice, layout] of [['host', false, 'auto'], ['device run', true, 'run'], ['device element', true, 'element'], ['device tiled', true, 'tiled']] as const) {
      gpu.tuning.volumeOnDevice = onDevice;
      gpu.tuning.layout.variant = layout;
      const v = uploadVolumes(gpu, cases, [Z, Y, X]);
      assert.equal([...v.shape], [2, 1, X, Y, Z]);
      runs.push([name, await v.floats()]);
      v.dispose();
    }
    const [, host] = runs[0];
    for (let b = 0; b < 2; b++)
      for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++)
        if (host[b * n + (x * Y + y) * Z + z] !== b * 1e5 + (z * Y + y) * X + x) assert.unreachable(`${Z}x${Y}x${X}: host case ${b} voxel ${x},${y},${z}`);
    for (const [name, got] of runs.slice(1)) assert.is(got.findIndex((v, i) => v !== host[i]), -1, `${Z}x${Y}x${X}: ${name} against host`);
  }
  const bad = { id: 'case7', shape: [2, 2, 2], volume: Float32Array.from([0, 1, 2, 3, 4, NaN, 6, 7]) } as unknown as PreparedCase;
  gpu.tuning.volumeOnDevice = true;
  assert.throws(() => uploadVolumes(gpu, [bad], [2, 2, 2]), /tensor 'volume': value NaN at voxel 5 of case case7 \(z 1, y 0, x 1\) is not finite/);
  gpu.tuning.volumeOnDevice = false;
  assert.throws(() => uploadVolumes(gpu, [bad], [2, 2, 2]), /tensor 'volume': value NaN at index \d+ is not finite/);
});

t.run();
