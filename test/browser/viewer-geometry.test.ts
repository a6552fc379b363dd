// The viewer's geometry (web/geometry.ts) in Node, for volumes stored in every axis order and
// direction: each plane shows the patient's right on the screen's left, anterior (axial) or
// superior (coronal, sagittal) at the top and anterior on the sagittal's left, whatever the
// file's voxel order; the orientation letters agree with the affine; world z <-> slice is exact
// for axis-aligned volumes; a depth bin's z range follows the crop's affine.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { affineFromRows, createVolume, voxelToWorld, type Vec3 } from '../../src/data/volume.ts';
import { binZRange, canonicalOf, DepthAxis, letterOf, planeMarks, planeSize, PLANES, renderPlane, type Plane } from '../../web/geometry.ts';

const t = suite('viewer geometry');

// Voxel axis -> world direction (rows of the 3x3 part: world = R * ijk): RAS, LPS, and a
// permuted and flipped one (i runs to the feet, j to the patient's left, k forwards).
const ORIENTATIONS: Record<string, number[][]> = {
  RAS: [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
  LPS: [[-1, 0, 0], [0, -1, 0], [0, 0, 1]],
  ILA: [[0, -1, 0], [0, 0, 1], [-1, 0, 0]],
};
const SPACING: Vec3 = [0.8, 0.9, 2.5];
const SHAPE: Vec3 = [7, 5, 4];

function volumeOf(rows: number[][]) {
  const scaled = rows.map((r) => r.map((x, c) => x * SPACING[c]));
  const affine = affineFromRows(scaled, [10, -20, 30]);
  const v = createVolume(SHAPE, { affine });
  // Each voxel holds its flat index, so a rendered pixel tells which voxel it shows.
  v.data.forEach((_, i) => (v.data[i] = i));
  return v;
}

const EXPECTED: Record<Plane, { left: string; right: string; top: string; bottom: string }> = {
  axial: { left: 'R', right: 'L', top: 'A', bottom: 'P' },
  coronal: { left: 'R', right: 'L', top: 'S', bottom: 'I' },
  sagittal: { left: 'A', right: 'P', top: 'S', bottom: 'I' },
};

for (const [name, rows] of Object.entries(ORIENTATIONS)) {
  t(`${name}: every plane in radiological display, letters from the affine`, () => {
    const v = volumeOf(rows);
    const c = canonicalOf(v);
    for (const plane of PLANES) {
      assert.equal(planeMarks(v, c, plane), EXPECTED[plane], `${name} ${plane} marks`);
      const s = planeSize(c, plane);
      const index = Math.floor(s.slices / 2);
      const out = new Uint8ClampedArray(4 * s.cols * s.rows);
      // A window that maps the voxel index straight to gray (indices < 256 here).
      renderPlane(v.data, c, v.shape, plane, index, { width: 255, level: 127.5 }, out);
      const world = (col: number, row: number) => {
        const flat = out[4 * (row * s.cols + col)];
        const ijk = [flat % SHAPE[0], Math.floor(flat / SHAPE[0]) % SHAPE[1], Math.floor(flat / (SHAPE[0] * SHAPE[1]))];
        return voxelToWorld(v, ijk);
      };
      // Screen right and down must move the world point towards the expected letters.
      const right = world(1, 0).map((x, k) => x - world(0, 0)[k]);
      const down = world(0, 1).map((x, k) => x - world(0, 0)[k]);
      assert.is(letterOf(right), EXPECTED[plane].right, `${name} ${plane}: screen right`);
      assert.is(letterOf(down), EXPECTED[plane].bottom, `${name} ${plane}: screen down`);
      assert.equal([s.cols, s.rows].sort(), [...SHAPE].filter((_, a) => a !== c.axis[plane === 'axial' ? 2 : plane === 'coronal' ? 1 : 0]).sort());
    }
  });

  t(`${name}: world z <-> axial slice`, () => {
    const v = volumeOf(rows);
    const c = canonicalOf(v);
    const d = new DepthAxis(v, c);
    for (let s = 0; s < c.n[2]; s++) {
      assert.ok(Math.abs(d.sOfZ(d.zOfS(s)) - s) < 1e-9, `${name}: slice ${s}`);
      assert.is(d.sliceOfZ(d.zOfS(s) + 0.4 * c.mm[2]), s);
    }
    assert.ok(d.zOfS(1) > d.zOfS(0), 'the axial index runs to the head');
    assert.is(d.sliceOfZ(-1e6), 0);
    assert.is(d.sliceOfZ(1e6), c.n[2] - 1);
  });
}

t('a slightly oblique (tilted) volume keeps its letters', () => {
  const a = 0.15; // about 9 degrees about x
  const v = volumeOf([[1, 0, 0], [0, Math.cos(a), -Math.sin(a)], [0, Math.sin(a), Math.cos(a)]]);
  const c = canonicalOf(v);
  for (const plane of PLANES) assert.equal(planeMarks(v, c, plane), EXPECTED[plane], plane);
});

t("a depth bin's world z range follows the crop's affine", () => {
  const affine = Array.from(affineFromRows([[12, 0, 0], [0, 12, 0], [0, 0, 6]], [-100, -50, -300]));
  const g = { affine, shape: [32, 32, 16] as Vec3, bins: 8, patchDepth: 2, binMm: 12 };
  // Bin 3 covers crop slices 6 and 7: voxel edges 5.5 and 7.5 -> z = -300 + 6 * [5.5, 7.5].
  assert.equal(binZRange(g, 3), [-267, -255]);
});

t.run();
