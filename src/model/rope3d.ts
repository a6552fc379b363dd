// RadFinder's 3D rotary position angles (the window backbone and the feature combiner):
// a convention of the model, built on the framework's generic ropeTablesFromAngles.
import { ShapeError } from '../errors.ts';

/**
 * RadFinder's 3D RoPE angles (RADFINDER-MODEL.md 2.4; radfinder rotary_pos_embed.py) for a
 * grid (G0, G1, G2) of tokens enumerated with axis 2 fastest: F = headDim / 6 frequencies per
 * axis with periods[k] (base^(k/F)); coordinate c_a(i) = 2 (i + 0.5) / div_a - 1 (div = the
 * grid unless given: RadFinder's "physical" depth divisor); angle[a F + k] = 2 pi c_a /
 * periods[k]. `prefix` unrotated tokens (CLS) come first with angle 0.
 * Returns one array of headDim / 2 angles per token.
 */
export function rope3dAngles(grid: readonly [number, number, number], periods: ArrayLike<number>, opts: { divisors?: readonly [number, number, number]; prefix?: number } = {}): Float64Array[] {
  const F = periods.length;
  const div = opts.divisors ?? grid;
  const out: Float64Array[] = [];
  for (let p = 0; p < (opts.prefix ?? 0); p++) out.push(new Float64Array(3 * F));
  for (let i = 0; i < grid[0]; i++)
    for (let j = 0; j < grid[1]; j++)
      for (let k = 0; k < grid[2]; k++) {
        const a = new Float64Array(3 * F);
        const c = [(2 * (i + 0.5)) / div[0] - 1, (2 * (j + 0.5)) / div[1] - 1, (2 * (k + 0.5)) / div[2] - 1];
        for (let ax = 0; ax < 3; ax++) for (let f = 0; f < F; f++) a[ax * F + f] = (2 * Math.PI * c[ax]) / periods[f];
        out.push(a);
      }
  return out;
}

/** RadFinder's rope.periods buffer: base^(k / F), k = 0..F-1, F = headDim / 6 (f32, as stored). */
export function rope3dPeriods(headDim: number, base: number): Float32Array {
  if (headDim % 6) throw new ShapeError(`rope3dPeriods: head dimension ${headDim} must be divisible by 6 (3 axes x sin/cos pairs)`);
  const F = headDim / 6;
  return Float32Array.from({ length: F }, (_, k) => base ** (k / F));
}
