import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  affineFromRows,
  affineFromSpacing,
  createVolume,
  orientationCodes,
  sampleLinear,
  sampleNearest,
  sampleWorld,
  spacingFromAffine,
  valueRange,
  voxelToWorld,
  worldToVoxel,
} from '../../src/data/volume.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-9, msg = '') => {
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${msg} [${i}]: ${Array.from(a)} vs ${Array.from(b)}`);
};

test('voxel <-> world round trip through an oblique affine', () => {
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const m = affineFromRows(
    [
      [0.7 * c, -0.8 * s, 0],
      [0.7 * s, 0.8 * c, 0.2],
      [0, 0, 2.5],
    ],
    [-100, 20.5, -300],
  );
  const p = [3.2, -1.5, 17];
  const w = voxelToWorld(m, p);
  close(worldToVoxel(m, w), p, 1e-9);
  close(voxelToWorld(m, [0, 0, 0]), [-100, 20.5, -300]);
  close(spacingFromAffine(m), [0.7, 0.8, Math.hypot(0.2, 2.5)], 1e-12);
});

test('orientation codes', () => {
  assert.is(orientationCodes(affineFromSpacing([1, 1, 1])), 'RAS');
  assert.is(orientationCodes(affineFromSpacing([-1, -1, 1])), 'LPS');
  assert.is(orientationCodes(affineFromSpacing([1, -2, -3])), 'RPI');
  // i along -z, j along +x, k along -y
  const m = affineFromRows([
    [0, 1, 0],
    [0, 0, -1],
    [-1, 0, 0],
  ]);
  assert.is(orientationCodes(m), 'IRP');
  // slightly oblique still reads as the nearest axes
  assert.is(orientationCodes(affineFromRows([[0.99, 0.1, 0], [-0.1, 0.99, 0], [0, 0, 1]])), 'RAS');
});

test('createVolume derives spacing from the affine', () => {
  const v = createVolume([2, 3, 4], { affine: affineFromSpacing([-0.5, 0.5, 3]) });
  assert.equal(v.spacing, [0.5, 0.5, 3]);
  assert.is(v.data.length, 24);
  assert.throws(() => createVolume([2, 2, 2], { data: new Float32Array(7) }), /needs 8/);
});

test('trilinear sampling is exact on a linear ramp, nearest picks the voxel, outside gives NaN', () => {
  const v = createVolume([5, 4, 3], { spacing: [2, 1, 3], origin: [10, 0, 0] });
  const f = (i: number, j: number, k: number) => 3 * i - 2 * j + 5 * k + 1;
  for (let k = 0; k < 3; k++) for (let j = 0; j < 4; j++) for (let i = 0; i < 5; i++) v.data[i + 5 * (j + 4 * k)] = f(i, j, k);
  for (const p of [[0.5, 1.25, 1.75], [4, 3, 2], [0, 0, 0], [2.9, 0.1, 1.5]]) assert.ok(Math.abs(sampleLinear(v, p) - f(p[0], p[1], p[2])) < 1e-5);
  assert.is(sampleNearest(v, [1.4, 2.6, 0.2]), f(1, 3, 0));
  assert.ok(Number.isNaN(sampleNearest(v, [-0.6, 0, 0])));
  assert.ok(Number.isNaN(sampleLinear(v, [0, 0, 2.6])));
  assert.is(sampleLinear(v, [0, 0, 2.6], -5), -5);
  // world: voxel (2, 1, 1) is at x = 10 + 4, y = 1, z = 3
  assert.is(sampleWorld(v, [14, 1, 3]), f(2, 1, 1));
  assert.ok(Math.abs(sampleWorld(v, [15, 1, 3], { interpolation: 'linear' }) - f(2.5, 1, 1)) < 1e-5);
});

test('valueRange ignores and counts NaN/Inf', () => {
  assert.equal(valueRange(new Float32Array([1, NaN, -3, Infinity, 2])), { min: -3, max: 2, nonFinite: 2 });
});

test.run();
