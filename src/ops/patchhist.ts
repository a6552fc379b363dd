// Soft intensity histograms of 3D patches (kernels/patchhist.wgsl, src/launch/patchhist.ts):
// a fixed, parameter-free reading of a CT volume that a linear layer can use from the first
// step (what tissue, in what share, each patch holds). Forward only.
import { ValueError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { patchHistogramForward } from '../launch/patchhist.ts';

export { MAX_HIST_BINS, checkCentres } from '../launch/patchhist.ts';

/**
 * The soft histogram of every patch of a one-channel volume: for bin k of patch row m, K
 * times the mean over the patch's voxels of the linear-interpolation weight of the voxel's
 * value on centre k (a value between centres c_j < c_{j+1} gives 1 - t to bin j and t to bin
 * j + 1; values beyond the ends count fully to the end bins). Each row sums to K: a bin is its
 * share of the patch relative to an even spread over the K bins (1 on average), the scale a
 * Linear layer's default initialisation suits (shares, 1 / K on average, learned several times
 * slower in the issue 7 probe).
 *
 * - x [B, 1, X, Y, Z] f32, depth fastest (as patchEmbed3d), in any units.
 * - centres [K] f32, 2 <= K <= 32, strictly ascending, in x's units (`hostCentres`, when
 *   given, is checked on the host for the order).
 * - patch [p0, p1, p2] voxels; window as patchEmbed3d's (cut first into windows).
 * - Returns [B * nWin, T, K] with rows in patchEmbed3d's order, so that a Linear(K, E) of it
 *   adds to the patch embedding token for token.
 * - No gradient: the result does not require one, and neither x nor centres may require one
 *   (a ValueError rather than a silently missing gradient).
 * - Throws ShapeError naming the op and the shapes (rank, channels, K, a window or volume that
 *   is not a whole number of patches or windows); ValueError for a gradient as above, or for
 *   `hostCentres` that are not finite and strictly ascending.
 * - Values are expected finite (the crop is clipped); a NaN or infinite voxel gives weights that WGSL leaves to the implementation (min and clamp of NaN).
 */
export function patchHistogram3d(
  x: Tensor,
  centres: Tensor,
  opts: { patch: readonly [number, number, number]; window?: readonly [number, number, number]; hostCentres?: ArrayLike<number> },
): Tensor {
  for (const [what, t] of [['x', x], ['centres', centres]] as const)
    if (t.requiresGrad) throw new ValueError(`patchHistogram3d: ${what} '${t.name}' requires a gradient, which this op does not give (it reads data, not activations)`);
  return patchHistogramForward(x, centres, opts.patch, opts.window, opts.hostCentres);
}
