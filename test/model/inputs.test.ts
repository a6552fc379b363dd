// The data boundary: the dataset prepares volumes x fastest ([Z, Y, X]); the model takes
// RadFinder's layout, depth fastest ([X, Y, Z]).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toDepthFastest } from '../../src/model/inputs.ts';

const t = suite('model inputs');

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

t.run();
