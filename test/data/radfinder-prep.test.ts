// Preprocessing for RadFinder weights (RADFINDER-MODEL.md section 1; MONAI's Spacing output
// size, CenterSpatialCrop and SpatialPad offsets; float16 rounding): the worked example of
// the spec, the order "scale, then resample", crops and pads, the depth-fastest layout, and
// bins mapped back to the file's slices.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binToSourceVoxel, monaiResampledShape, prepareRadfinder, radfinderGeometry, roundHalfEven, roundToHalf } from '../../src/data/radfinder-prep.ts';
import { affineFromRows, createVolume } from '../../src/data/volume.ts';
import { DataError } from '../../src/errors.ts';

const t = suite('radfinder preprocessing');
const opts = { pixdim: [0.75, 0.75, 3] as [number, number, number], window: [128, 128, 32] as [number, number, number], patchDepth: 4, huMin: -1000, huMax: 1000, dtype: 'float16' as const };

t('MONAI output size (numpy rounding), the spec worked example', () => {
  assert.equal([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(-0.5), roundHalfEven(2.4), roundHalfEven(2.6)], [0, 2, 2, -0, 2, 3]);
  // 512 x 512 x 107 at 0.787 x 0.787 x 5 mm -> 537 x 537 x 178.
  assert.equal(monaiResampledShape([512, 512, 107], [0.787, 0.787, 5], [0.75, 0.75, 3]), [537, 537, 178]);
  // (n - 1) s / t + 1 = 2.5 exactly rounds to 2 (half to even), 3.5 to 4.
  assert.equal(monaiResampledShape([4, 6, 2], [0.5, 0.5, 1.5], [1, 1, 1]), [2, 4, 2]);
});

t('float16 rounding (ties to even), as torch .half()', () => {
  assert.is(roundToHalf(0.1), 0.0999755859375);
  assert.is(roundToHalf(1 + 2 ** -11), 1); // a tie: to even
  assert.is(roundToHalf(1 + 3 * 2 ** -11), 1 + 2 ** -9);
  assert.is(roundToHalf(2 ** -25), 0); // below half the smallest subnormal: a tie to 0
  assert.is(roundToHalf(3 * 2 ** -26), 2 ** -24);
  assert.is(roundToHalf(70000), Infinity);
});

t('the worked example: crop 512 x 512 x 160 at offsets (12, 12, 9), grid (4, 4, 5)', () => {
  const g = radfinderGeometry([512, 512, 107], [0.787, 0.787, 5], opts.pixdim, opts.window);
  assert.equal(g, { resampledShape: [537, 537, 178], cropStart: [12, 12, 9], shape: [512, 512, 160], grid: [4, 4, 5] });
  // The same through prepareRadfinder at a quarter of the in-plane size (windows 32 voxels).
  const p = prepareRadfinder(createVolume([128, 128, 107], { spacing: [0.787 * 4, 0.787 * 4, 5] }), { ...opts, pixdim: [3, 3, 3], window: [32, 32, 32] });
  assert.equal([p.resampledShape, p.shape, p.grid, p.cropStart], [[134, 134, 178], [128, 128, 160], [4, 4, 5], [3, 3, 9]]);
  assert.is(p.bins, 40);
});

t('intensity is clipped and scaled BEFORE resampling; the output is depth fastest', () => {
  // Along x: 3000 HU next to -1000 HU. Halfway between them (x spacing 2 -> 1 mm): clip first
  // gives (1 + 0) / 2 = 0.5; resampling first would give 1000 HU -> 1.
  const data = new Float32Array(2 * 2 * 2);
  for (let i = 0; i < 8; i++) data[i] = i % 2 === 0 ? 3000 : -1000;
  const v = createVolume([2, 2, 2], { spacing: [2, 1, 3], data });
  const p = prepareRadfinder(v, { ...opts, pixdim: [1, 1, 3], window: [3, 2, 2], patchDepth: 1, dtype: 'float32' });
  assert.equal(p.shape, [3, 2, 2]);
  // Voxel (x = 1, y, z) is the midpoint; layout (x Y + y) Z + z.
  for (let y = 0; y < 2; y++) for (let z = 0; z < 2; z++) assert.is(p.data[(1 * 2 + y) * 2 + z], 0.5, `x=1 y=${y} z=${z}`);
  assert.is(p.data[0], 1);
  assert.is(p.data[(2 * 2 + 0) * 2 + 0], 0);
  // Depth fastest: make z vary and check neighbours in memory.
  const dz = Float32Array.from({ length: 8 }, (_, i) => (Math.floor(i / 4) ? 1000 : -1000));
  const q = prepareRadfinder(createVolume([2, 2, 2], { spacing: [1, 1, 3], data: dz }), { ...opts, pixdim: [1, 1, 3], window: [2, 2, 2], patchDepth: 1, dtype: 'float32' });
  assert.equal([...q.data.subarray(0, 2)], [0, 1]);
});

t('an axis shorter than one window is padded symmetrically (left = floor(diff / 2)) with 0; others are cropped centred', () => {
  const v = createVolume([5, 9, 4], { spacing: [1, 1, 3], fill: 1000 });
  const p = prepareRadfinder(v, { ...opts, pixdim: [1, 1, 3], window: [8, 4, 2], patchDepth: 2, dtype: 'float32' });
  // x: 5 < 8: pad 3 -> left 1, right 2. y: 9 -> 2 windows of 4, start 9 // 2 - 4 = 0. z: 4 -> 2 windows.
  assert.equal(p.shape, [8, 8, 4]);
  assert.equal(p.cropStart, [-1, 0, 0]);
  const at = (x: number, y: number, z: number) => p.data[(x * 8 + y) * 4 + z];
  assert.equal([at(0, 0, 0), at(1, 0, 0), at(5, 0, 0), at(6, 0, 0), at(7, 0, 0)], [0, 1, 1, 0, 0]);
});

t('LPS input: reoriented to RAS; a bin maps back to the slice of the file it came from', () => {
  // 10 x 12 x 40 slices, LPS (x and y flipped), 2.5 mm slices; slice k has value k * 40 - 1000.
  const data = Float32Array.from({ length: 10 * 12 * 40 }, (_, i) => Math.floor(i / 120) * 40 - 1000);
  const v = createVolume([10, 12, 40], { data, affine: affineFromRows([[-1, 0, 0], [0, -1, 0], [0, 0, 2.5]], [5, 6, -50]) });
  const o = { ...opts, pixdim: [1, 1, 2.5] as [number, number, number], window: [4, 4, 8] as [number, number, number], patchDepth: 2, dtype: 'float32' as const };
  const p = prepareRadfinder(v, o);
  assert.equal(p.shape, [8, 12, 40]);
  for (let bin = 0; bin < p.bins; bin++) {
    const s = binToSourceVoxel(p, v, bin, 2);
    // Bin b covers crop slices 2b, 2b + 1: its centre is between them, rounded to the even one... or the next.
    assert.ok(s.slice === 2 * bin || s.slice === 2 * bin + 1, `bin ${bin} -> slice ${s.slice}`);
    // Crop slice 2b holds the file's slice 2b (z already runs toward S).
    assert.ok(Math.abs(p.data[(4 * 12 + 6) * 40 + 2 * bin] - (2 * bin * 40) / 2000) < 1e-6, 'the crop holds the file slice there');
  }
  assert.throws(() => prepareRadfinder(createVolume([30, 30, 1], { spacing: [1, 1, 1] }), opts, 'flat.nii'), (e: unknown) => e instanceof DataError && /flat\.nii: shape: z is 1 voxel/.test((e as Error).message));
});

t.run();
