// 3D patch embedding against float64 index arithmetic: volumes of several channels,
// patches of unequal sides, a non-square grid; gradients of the weights, the bias and
// the volume by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('patch3d');

function refPatchify(x: Float64Array, [B, C, Z, Y, X]: number[], [pz, py, px]: number[]): Float64Array {
  const [nz, ny, nx] = [Z / pz, Y / py, X / px];
  const F = C * pz * py * px;
  const out = new Float64Array(B * nz * ny * nx * F);
  for (let b = 0; b < B; b++)
    for (let iz = 0; iz < nz; iz++) for (let iy = 0; iy < ny; iy++) for (let ix = 0; ix < nx; ix++) {
      const tok = (iz * ny + iy) * nx + ix;
      for (let c = 0; c < C; c++) for (let dz = 0; dz < pz; dz++) for (let dy = 0; dy < py; dy++) for (let dx = 0; dx < px; dx++) {
        const f = ((c * pz + dz) * py + dy) * px + dx;
        out[(b * nz * ny * nx + tok) * F + f] = x[(((b * C + c) * Z + iz * pz + dz) * Y + iy * py + dy) * X + ix * px + dx];
      }
    }
  return out;
}

t('patchify and embed against float64', async () => {
  const gpu = await testGpu();
  for (const [shape, patch] of [[[1, 1, 4, 6, 8], [2, 3, 4]], [[2, 2, 4, 4, 6], [4, 2, 3]], [[1, 1, 2, 2, 2], [1, 1, 1]]] as [number[], number[]][]) {
    const x = Float64Array.from(Float32Array.from(randomValues(ref.size(shape), 1)));
    const xt = ops.tensor(gpu, Float32Array.from(x), shape);
    const p = ops.patchify3d(xt, patch as ops.Patch3d);
    const expect = refPatchify(x, shape, patch);
    assertClose(await p.floats(), expect, { rtol: 0, atol: 0 }, `patchify ${shape} / ${patch}`);
    const F = p.shape[2], T = p.shape[1], D = 5;
    const w = Float64Array.from(Float32Array.from(randomValues(F * D, 2)));
    const b = Float64Array.from(Float32Array.from(randomValues(D, 3)));
    const y = ops.patchEmbed3d(xt, ops.tensor(gpu, Float32Array.from(w), [F, D]), ops.tensor(gpu, Float32Array.from(b), [D]), patch as ops.Patch3d);
    assert.equal([...y.shape], [shape[0], T, D]);
    assertClose(await y.floats(), ref.matmul(expect, w, shape[0] * T, F, D, false, false, b), { rtol: 1e-5, atol: 1e-6 }, `patchEmbed3d ${shape}`);
  }
});

t('gradients: weight, bias and volume', async () => {
  const gpu = await testGpu();
  const shape = [1, 2, 2, 2, 4], patch: ops.Patch3d = [1, 2, 2], F = 2 * 1 * 2 * 2, D = 3, T = 2 * 1 * 2;
  await checkGradients({
    what: 'patchEmbed3d', gpu,
    inputs: [{ data: randomValues(ref.size(shape), 4), shape }, { data: randomValues(F * D, 5), shape: [F, D] }, { data: randomValues(D, 6), shape: [D] }],
    op: (x, w, b) => ops.patchEmbed3d(x, w, b, patch),
    reference: (x, w, b) => ref.matmul(refPatchify(x, shape, patch), w, T, F, D, false, false, b),
  });
});

t('volumes that are not whole patches are refused', async () => {
  const gpu = await testGpu();
  assert.throws(() => ops.patchify3d(ops.zeros(gpu, [1, 1, 5, 4, 4]), [2, 2, 2]), /\[1x1x5x4x4\] is not a whole number of 2x2x2 patches/);
  assert.throws(() => ops.patchify3d(ops.zeros(gpu, [1, 4, 4]), [2, 2, 2]), /expected a volume \[batch, channels, z, y, x\]/);
});

t.run();
