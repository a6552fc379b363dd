import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  centerCropToWindows,
  cropOrPad,
  cropStart,
  DEFAULT_SPACING,
  PREP_PAPER,
  PREP_SMALL,
  extractRegion,
  flipAxes,
  huToUnit,
  permuteFlip,
  prepareVolume,
  randomFlip,
  reorientToRas,
  reorientToRasInPlace,
  resample,
  resampledShape,
  seededRng,
  windowGridShape,
} from '../../src/data/prep.ts';
import {
  affineFromRows,
  affineFromSpacing,
  createVolume,
  orientationCodes,
  sampleLinear,
  sampleNearest,
  voxelToWorld,
  worldToVoxel,
  type Volume,
} from '../../src/data/volume.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg = '') => {
  assert.is(a.length, b.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${msg} [${i}]: ${a[i]} vs ${b[i]}`);
};

function randomVolume(shape: [number, number, number], affine = affineFromSpacing([1, 1, 1]), seed = 1): Volume {
  const v = createVolume(shape, { affine });
  const rng = seededRng(seed);
  for (let i = 0; i < v.data.length; i++) v.data[i] = Math.round(rng() * 2000 - 1000);
  return v;
}

/** Every output voxel holds the input's value at the same world point (nearest; pad where outside). */
function assertWorldConsistent(input: Volume, output: Volume, pad = NaN, msg = '') {
  const [nx, ny, nz] = output.shape;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const w = voxelToWorld(output, [i, j, k]);
        const p = worldToVoxel(input, w);
        for (const c of p) assert.ok(Math.abs(c - Math.round(c)) < 1e-6, `${msg}: not on the input grid ${p}`);
        const want = sampleNearest(input, p, pad);
        const got = output.data[i + nx * (j + ny * k)];
        assert.ok(got === want || (Number.isNaN(got) && Number.isNaN(want)), `${msg} voxel ${i},${j},${k}: ${got} vs ${want}`);
      }
}

test('reorientToRas: any axis permutation/flip -> RAS, exact data, world positions kept', () => {
  const affines = [
    affineFromSpacing([-0.8, -0.8, 2], [200, 150, -300]), // LPS
    affineFromRows([[0, 0, -2], [1, 0, 0], [0, -1.5, 0]], [10, -20, 30]), // permuted
    affineFromRows([[0.98, 0.05, 0], [-0.05, -0.98, 0], [0, 0, -3]], [0, 0, 0]), // slightly oblique, RPI
  ];
  for (const m of affines) {
    const v = randomVolume([5, 4, 3], m);
    const r = reorientToRas(v);
    assert.is(orientationCodes(r), 'RAS');
    for (let a = 0; a < 3; a++) assert.ok(r.affine[5 * a] > 0, 'diagonal positive');
    assertWorldConsistent(v, r, NaN, `reorient ${orientationCodes(v)}`);
    // reorienting RAS again is the identity
    const rr = reorientToRas(r);
    assert.equal(Array.from(rr.data), Array.from(r.data));
  }
});

test('reorientToRasInPlace = reorientToRas (voxels, shape, affine) for every flip combination and a permutation; same array where only flips are needed', () => {
  const diag = (sx: number, sy: number, sz: number) => {
    const m = new Float64Array(16);
    [m[0], m[5], m[10], m[12], m[13], m[14], m[15]] = [sx, sy, sz, 3, -2, 7, 1];
    return m;
  };
  const cases: Float64Array[] = [];
  for (let f = 0; f < 8; f++) cases.push(diag(f & 1 ? -0.7 : 0.7, f & 2 ? -0.8 : 0.8, f & 4 ? -2.5 : 2.5));
  // Voxel axes i, j, k along world y, -x, z: a permutation, which takes reorientToRas's copy.
  const perm = new Float64Array(16);
  [perm[1], perm[4], perm[10], perm[15]] = [0.7, -0.8, 2.5, 1];
  cases.push(perm);
  for (const [c, affine] of cases.entries())
    for (const shape of [[5, 4, 3], [1, 1, 1], [6, 1, 7], [2, 3, 2]] as [number, number, number][]) {
      const v = randomVolume(shape, affine, 10 + c);
      const want = reorientToRas(v);
      const input = v.data.slice();
      const got = reorientToRasInPlace({ ...v, data: input });
      const what = `affine ${c}, shape ${shape}`;
      assert.equal(got.shape, want.shape, what);
      assert.equal(Array.from(got.data), Array.from(want.data), what);
      assert.equal(Array.from(got.affine), Array.from(want.affine), what);
      assert.equal(Array.from(got.spacing), Array.from(want.spacing), what);
      assert.is(got.data === input, c < 8, `${what}: in place`);
    }
});

test('flips update the affine: world content unchanged; seeded random flips are reproducible', () => {
  const v = randomVolume([4, 3, 5], affineFromSpacing([0.75, 0.75, 3], [1, 2, 3]));
  const f = flipAxes(v, [false, false, true]);
  assert.is(f.data[0], v.data[4 * 3 * 4]); // first plane is the old last plane
  assert.is(orientationCodes(f), 'RAI');
  assertWorldConsistent(v, f, NaN, 'flip z');
  const a = randomFlip(v, seededRng(42)), b = randomFlip(v, seededRng(42));
  assert.equal(a.flipped, b.flipped);
  assert.equal(Array.from(a.volume.data), Array.from(b.volume.data));
  assertWorldConsistent(v, a.volume, NaN, 'random flip');
  // over many draws each axis flips about half the time
  const rng = seededRng(7);
  const counts = [0, 0, 0];
  for (let t = 0; t < 400; t++) randomFlip(createVolume([1, 1, 1]), rng).flipped.forEach((x, i) => (counts[i] += +x));
  for (const c of counts) assert.ok(c > 150 && c < 250, `flip count ${c}`);
  // permute + flip both
  assertWorldConsistent(v, permuteFlip(v, [2, 0, 1], [true, false, true]), NaN, 'permuteFlip');
});

test('crop / pad (centre, random, explicit): affine updated, world point -> same value', () => {
  const v = randomVolume([9, 6, 5], affineFromRows([[0, -1, 0], [2, 0, 0], [0, 0, 3]], [5, 6, 7]));
  const c = cropOrPad(v, [4, 10, 5], { padValue: -7 });
  assert.equal(c.shape, [4, 10, 5]);
  assertWorldConsistent(v, c, -7, 'centre crop/pad');
  assert.is(cropStart(9, 4), 2);
  assert.is(cropStart(6, 10), -2);
  const rng = seededRng(3);
  for (let t = 0; t < 5; t++) {
    const r = cropOrPad(v, [7, 8, 2], { mode: 'random', rng, padValue: -9 });
    assertWorldConsistent(v, r, -9, 'random crop/pad');
  }
  for (let t = 0; t < 200; t++) {
    const s = cropStart(10, 4, 'random', rng);
    assert.ok(s >= 0 && s <= 6);
    const p = cropStart(4, 10, 'random', rng);
    assert.ok(p >= -6 && p <= 0);
  }
  const e = extractRegion(v, [-3, 2, 4], [20, 1, 3], 0);
  assertWorldConsistent(v, e, 0, 'extractRegion');
});

test('window grid: largest whole number of windows, at least one', () => {
  assert.equal(windowGridShape([477, 477, 100]), [384, 384, 96]);
  assert.equal(windowGridShape([100, 300, 20]), [128, 256, 32]);
  const v = randomVolume([300, 140, 70]);
  const c = centerCropToWindows(v, [128, 128, 32]);
  assert.equal(c.shape, [256, 128, 64]);
  close(voxelToWorld(c, [0, 0, 0]), [22, 6, 3], 0, 'crop start');
});

test('HU clip to [-1000, 1000] and scale to [0, 1]', () => {
  const v = createVolume([5, 1, 1], { data: new Float32Array([-3000, -1000, 0, 500, 3071]) });
  assert.equal(Array.from(huToUnit(v).data), [0, 0, 0.5, 0.75, 1]);
  assert.equal(Array.from(huToUnit(v, { min: -500, max: 500 }).data), [0, 0, 0.5, 1, 1]);
});

/** Independent float64 trilinear reference: output voxel x at input index x * s_out / s_in (clamped). */
function referenceResample(v: Volume, target: number[]): Float64Array {
  const sp = v.spacing;
  const out = resampledShape(v.shape, sp, target);
  const r = new Float64Array(out[0] * out[1] * out[2]);
  const [nx, ny, nz] = v.shape;
  const at = (i: number, j: number, k: number) => v.data[i + nx * (j + ny * k)];
  let o = 0;
  for (let k = 0; k < out[2]; k++)
    for (let j = 0; j < out[1]; j++)
      for (let i = 0; i < out[0]; i++) {
        const c = [(i * target[0]) / sp[0], (j * target[1]) / sp[1], (k * target[2]) / sp[2]].map((x, a) => Math.min(x, v.shape[a] - 1));
        const f = c.map((x, a) => Math.min(Math.floor(x), Math.max(v.shape[a] - 2, 0)));
        const w = c.map((x, a) => x - f[a]);
        let s = 0;
        for (let dz = 0; dz < 2; dz++)
          for (let dy = 0; dy < 2; dy++)
            for (let dx = 0; dx < 2; dx++) {
              const wt = (dx ? w[0] : 1 - w[0]) * (dy ? w[1] : 1 - w[1]) * (dz ? w[2] : 1 - w[2]);
              if (wt === 0) continue;
              s += wt * at(Math.min(f[0] + dx, nx - 1), Math.min(f[1] + dy, ny - 1), Math.min(f[2] + dz, nz - 1));
            }
        r[o++] = s;
      }
  return r;
}

test('resample: exact on a linear ramp, matches a float64 trilinear reference, identity returns the input', () => {
  const m = affineFromSpacing([0.7, 0.9, 1.1], [-50, 20, 100]);
  const ramp = createVolume([23, 17, 29], { affine: m });
  const f = (x: number, y: number, z: number) => 0.3 * x - 1.7 * y + 2.1 * z + 5; // linear in world mm
  for (let k = 0; k < 29; k++)
    for (let j = 0; j < 17; j++)
      for (let i = 0; i < 23; i++) ramp.data[i + 23 * (j + 17 * k)] = f(...voxelToWorld(ramp, [i, j, k]));
  const target = [0.75, 0.75, 3];
  const r = resample(ramp, { spacing: target });
  assert.equal(r.shape, resampledShape([23, 17, 29], [0.7, 0.9, 1.1], target));
  assert.equal(r.shape, [21, 20, 11]);
  close(r.spacing, target, 1e-12, 'spacing');
  close(voxelToWorld(r, [0, 0, 0]), [-50, 20, 100], 1e-12, 'origin kept');
  const [nx, ny, nz] = r.shape;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const w = voxelToWorld(r, [i, j, k]);
        const got = r.data[i + nx * (j + ny * k)];
        assert.ok(Math.abs(got - f(w[0], w[1], w[2])) < 1e-3, `ramp at ${w}: ${got} vs ${f(w[0], w[1], w[2])}`);
      }
  // a random volume against the float64 reference, and against per-point sampling in world space
  const v = randomVolume([31, 26, 40], affineFromSpacing([0.6, 0.8, 1.25], [3, 4, 5]));
  for (const t of [[0.75, 0.75, 3], [0.5, 1.1, 0.9], [0.6, 0.8, 1.25]]) {
    const got = resample(v, { spacing: t });
    close(got.data, referenceResample(v, t), 2e-3, `reference ${t}`);
    for (let q = 0; q < 50; q++) {
      const ijk = [q % got.shape[0], (q * 7) % got.shape[1], (q * 13) % got.shape[2]];
      const want = sampleLinear(v, worldToVoxel(v, voxelToWorld(got, ijk)));
      assert.ok(Math.abs(got.data[ijk[0] + got.shape[0] * (ijk[1] + got.shape[1] * ijk[2])] - want) < 2e-3);
    }
  }
  const id = resample(v, { spacing: [0.6, 0.8, 1.25] });
  assert.equal(id.shape, v.shape);
  assert.equal(Array.from(id.data), Array.from(v.data));
  assert.ok(id.data !== v.data, 'a copy');
  // an oblique volume: columns rescaled, direction kept
  const ob = randomVolume([8, 8, 8], affineFromRows([[0, 0, -2], [1, 0, 0], [0, -1.5, 0]]));
  const ro = resample(ob, { spacing: [0.5, 3, 1] });
  close(ro.spacing, [0.5, 3, 1], 1e-12, 'oblique spacing');
  close(voxelToWorld(ro, [1, 1, 1]), [-1, 0.5, -3], 1e-12, 'oblique axes');
});

test('prepareVolume: eval = centred whole windows in [0, 1]; train = random crop + flips, reproducible', () => {
  // small windows keep the test fast
  const v = randomVolume([60, 50, 20], affineFromSpacing([-1.5, -1.5, 6], [40, 30, -100]));
  const e = prepareVolume(v, { window: [16, 16, 8] });
  assert.is(orientationCodes(e), 'RAS');
  close(e.spacing, DEFAULT_SPACING, 1e-9, 'spacing');
  for (let a = 0; a < 3; a++) assert.is(e.shape[a] % [16, 16, 8][a], 0);
  assert.equal(e.shape, [112, 96, 32]); // resampled 119 x 99 x 39
  for (const x of e.data) assert.ok(x >= 0 && x <= 1);
  const t1 = prepareVolume(v, { mode: 'train', rng: seededRng(5), trainCrop: [48, 48, 16] });
  const t2 = prepareVolume(v, { mode: 'train', rng: seededRng(5), trainCrop: [48, 48, 16] });
  assert.equal(t1.shape, [48, 48, 16]);
  assert.equal(Array.from(t1.data), Array.from(t2.data));
  assert.equal(Array.from(t1.affine), Array.from(t2.affine));
});

// The speed bound (512 x 512 x 300 resampled in under 5 s) is checked by
// `npm run bench -- --only data`, which prints the time; tests do not time things.

test('grid presets: the paper (0.75 x 0.75 x 3 mm) and the small model (coarser in-plane, same 96 mm windows)', () => {
  assert.equal(PREP_PAPER.spacing, [0.75, 0.75, 3]);
  for (const p of [PREP_PAPER, PREP_SMALL]) {
    for (let a = 0; a < 3; a++) assert.is(p.window[a]! * p.spacing[a]!, 96, 'windows are 96 mm');
    for (let a = 0; a < 3; a++) assert.is(p.trainCrop[a]! % p.window[a]!, 0);
  }
  assert.ok(PREP_SMALL.spacing[0] > PREP_PAPER.spacing[0]);
  const v = randomVolume([60, 50, 20], affineFromSpacing([-1.5, -1.5, 6], [40, 30, -100]));
  const e = prepareVolume(v, { ...PREP_SMALL });
  close(e.spacing, PREP_SMALL.spacing, 1e-9, 'spacing');
  assert.equal(e.shape, [64, 64, 32]); // resampled 60 x 50 x 39: padded to one window in x and y, cropped to one in z
  assert.is(orientationCodes(e), 'RAS');
});

test.run();
