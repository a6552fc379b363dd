// Rotary embeddings in the rotate-half pairing (RadFinder, Qwen3): forward against the
// float64 rotate-half of test/reference/radfinder.ts, the 3D angle tables against the
// reference's (coordinates at cell centres, "physical" divisors), Qwen3's 1D angles, and the
// backward by finite differences. (The interleaved pairing is tested in attention.test.ts.)
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as rf from '../reference/radfinder.ts';
import * as ops from '../../src/ops/index.ts';
import { ropeAfterPrefix } from '../../src/nn/transformer.ts';
import { rope3dAngles, rope3dPeriods } from '../../src/model/rope3d.ts';

const t = suite('rope (rotate-half)');

/** x [B, L, H, D] rotated per token by angles[l] (rotate-half), tokens before `prefix` unrotated. */
function refRope(x: Float64Array, B: number, L: number, H: number, D: number, angles: Float64Array[], prefix = 0): Float64Array {
  const y = Float64Array.from(x);
  for (let b = 0; b < B; b++)
    for (let l = prefix; l < L; l++)
      for (let h = 0; h < H; h++) {
        const o = ((b * L + l) * H + h) * D;
        y.set(rf.applyRopeHalf(x.slice(o, o + D), angles[l - prefix]), o);
      }
  return y;
}

t('3D angles match the reference, with and without the physical divisors', () => {
  const periods = rope3dPeriods(18, 100);
  assertClose(periods, Float64Array.from({ length: 3 }, (_, k) => 100 ** (k / 3)), { rtol: 1e-7, atol: 0 }, 'periods');
  for (const div of [undefined, [2, 3, 1] as [number, number, number]]) {
    const ours = rope3dAngles([2, 3, 8], periods, { divisors: div });
    const theirs = rf.rope3dAnglesFromPeriods([2, 3, 8], periods, div);
    assert.is(ours.length, theirs.length);
    ours.forEach((a, i) => assertClose(a, theirs[i], { rtol: 1e-12, atol: 0 }, `token ${i}`));
  }
  assert.throws(() => rope3dPeriods(16, 100), /divisible by 6/);
  // Qwen3 / Llama: angle l * theta^(-2i/D).
  const a = ops.rope1dAngles(5, 8, 1e6);
  assertClose(a[3], Float64Array.from({ length: 4 }, (_, i) => 3 * 1e6 ** (-2 * i / 8)), { rtol: 1e-6, atol: 0 }, 'rope1d');
});

t('forward and backward against float64 (head widths 6, 12, 90; a CLS prefix)', async () => {
  const gpu = await testGpu();
  for (const [B, grid, H, D] of [[1, [1, 1, 1], 1, 6], [2, [2, 3, 2], 3, 12], [1, [3, 1, 2], 1, 90]] as [number, [number, number, number], number, number][]) {
    const angles = rope3dAngles(grid, rope3dPeriods(D, 1000));
    const L = angles.length;
    const tables = ops.ropeTablesFromAngles(gpu, angles, D);
    const x = Float64Array.from(Float32Array.from(randomValues(B * L * H * D, L + D)));
    const y = await ops.rope(ops.tensor(gpu, Float32Array.from(x), [B, L, H, D]), tables).floats();
    assertClose(y, refRope(x, B, L, H, D, angles), { rtol: 1e-5, atol: 1e-6 }, `rope half ${B}x${L}x${H}x${D}`);
    // With a CLS token in front (left unrotated).
    const xc = Float64Array.from(Float32Array.from(randomValues(B * (L + 1) * H * D, 3)));
    const yc = await ropeAfterPrefix(ops.tensor(gpu, Float32Array.from(xc), [B, L + 1, H, D]), tables).floats();
    assertClose(yc, refRope(xc, B, L + 1, H, D, angles, 1), { rtol: 1e-5, atol: 1e-6 }, `rope half with CLS ${D}`);
    if (D <= 12)
      await checkGradients({
        what: `rope half ${D}`, gpu, inputs: [{ data: xc, shape: [B, L + 1, H, D] }],
        op: (a) => ropeAfterPrefix(a, tables), reference: (a) => refRope(a, B, L + 1, H, D, angles, 1),
      });
    tables.cos.dispose();
    tables.sin.dispose();
  }
});

t.run();
